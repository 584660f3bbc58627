-- The outbox table of a service that publishes events (copy into one of its migrations, as is).
-- Rows are written in the same transaction as the state change they announce; the relay
-- (@cashback/outbox OutboxRelay) publishes them to JetStream with msgID = id and sets
-- published_at. Events of one aggregate are published in seq order.
CREATE TABLE "outbox_events" (
    "seq" BIGSERIAL NOT NULL,
    "id" UUID NOT NULL,
    "subject" VARCHAR(200) NOT NULL,
    "aggregate_id" VARCHAR(200) NOT NULL,
    "payload" JSONB NOT NULL,
    "headers" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("seq")
);

CREATE UNIQUE INDEX "outbox_events_id_key" ON "outbox_events"("id");

-- What the relay scans: only unpublished rows, in order, and per aggregate.
CREATE INDEX "outbox_events_unpublished_idx" ON "outbox_events"("seq") WHERE "published_at" IS NULL;
CREATE INDEX "outbox_events_aggregate_unpublished_idx" ON "outbox_events"("aggregate_id", "seq") WHERE "published_at" IS NULL;
-- Pruning published rows after the retention period.
CREATE INDEX "outbox_events_published_at_idx" ON "outbox_events"("published_at") WHERE "published_at" IS NOT NULL;

-- No NOTIFY trigger: a NOTIFY in every writing transaction serializes their commits cluster-wide
-- (see OutboxRelay's doc comment). The producer calls relay.wake() after committing; other
-- processes may `NOTIFY outbox_events` now and then; the relay polls as well.
