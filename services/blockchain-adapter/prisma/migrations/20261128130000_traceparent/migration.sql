-- The W3C traceparent of the call that asked for each mint and clawback (OpenTelemetry): the
-- purchase's trace id is on the adapter's record, next to its transaction.
ALTER TABLE "mints" ADD COLUMN "traceparent" VARCHAR(55);
ALTER TABLE "clawbacks" ADD COLUMN "traceparent" VARCHAR(55);
