-- CreateEnum
CREATE TYPE "mint_request_status" AS ENUM ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED');

-- CreateEnum
CREATE TYPE "clawback_status" AS ENUM ('WAITING', 'PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED');

-- CreateTable
CREATE TABLE "processed_events" (
    "event_id" UUID NOT NULL,
    "replay_of" BIGINT NOT NULL DEFAULT 0,
    "event_type" VARCHAR(100) NOT NULL,
    "stream_seq" BIGINT NOT NULL,
    "processed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "processed_events_pkey" PRIMARY KEY ("event_id","replay_of")
);

-- CreateTable
CREATE TABLE "mint_requests" (
    "entry_id" UUID NOT NULL,
    "idempotency_key" VARCHAR(200) NOT NULL,
    "mint_id" CHAR(66) NOT NULL,
    "wallet" VARCHAR(42) NOT NULL,
    "amount_wei" DECIMAL(78,0) NOT NULL,
    "purchase_id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "status" "mint_request_status" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "adapter_may_know" BOOLEAN NOT NULL DEFAULT false,
    "retry_since" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error_reason" VARCHAR(64),
    "last_error" TEXT,
    "tx_hash" CHAR(66),
    "block_number" BIGINT,
    "source_event_id" UUID NOT NULL,
    "source_subject" VARCHAR(200) NOT NULL,
    "source_seq" BIGINT NOT NULL,
    "source_event" JSONB NOT NULL,
    "source_headers" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "mint_requests_pkey" PRIMARY KEY ("entry_id")
);

-- CreateTable
CREATE TABLE "clawbacks" (
    "refund_id" UUID NOT NULL,
    "entry_id" UUID NOT NULL,
    "idempotency_key" VARCHAR(200) NOT NULL,
    "ref_id" CHAR(66) NOT NULL,
    "wallet" VARCHAR(42) NOT NULL,
    "amount_wei" DECIMAL(78,0) NOT NULL,
    "purchase_id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "status" "clawback_status" NOT NULL DEFAULT 'WAITING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "adapter_may_know" BOOLEAN NOT NULL DEFAULT false,
    "retry_since" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error_reason" VARCHAR(64),
    "last_error" TEXT,
    "tx_hash" CHAR(66),
    "block_number" BIGINT,
    "source_event_id" UUID NOT NULL,
    "source_subject" VARCHAR(200) NOT NULL,
    "source_seq" BIGINT NOT NULL,
    "source_event" JSONB NOT NULL,
    "source_headers" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "clawbacks_pkey" PRIMARY KEY ("refund_id")
);

-- CreateIndex
CREATE INDEX "processed_events_processed_at_idx" ON "processed_events"("processed_at");

-- CreateIndex
CREATE UNIQUE INDEX "mint_requests_idempotency_key_key" ON "mint_requests"("idempotency_key");

-- CreateIndex
CREATE INDEX "mint_requests_status_next_attempt_at_idx" ON "mint_requests"("status", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "clawbacks_idempotency_key_key" ON "clawbacks"("idempotency_key");

-- CreateIndex
CREATE INDEX "clawbacks_status_next_attempt_at_idx" ON "clawbacks"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "clawbacks_entry_id_idx" ON "clawbacks"("entry_id");

-- The outbox (copied as is from packages/outbox/sql/outbox_events.sql).
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

-- Wakes the relay at once (LISTEN outbox_events); once per statement, not per row.
CREATE FUNCTION "outbox_events_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER "outbox_events_notify" AFTER INSERT ON "outbox_events"
    FOR EACH STATEMENT EXECUTE FUNCTION "outbox_events_notify"();
