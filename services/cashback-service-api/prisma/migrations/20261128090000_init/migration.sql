-- CreateEnum
CREATE TYPE "stacking" AS ENUM ('best_of', 'sum');

-- CreateEnum
CREATE TYPE "rule_kind" AS ENUM ('percentage', 'fixed');

-- CreateEnum
CREATE TYPE "ledger_kind" AS ENUM ('accrual', 'clawback');

-- CreateEnum
CREATE TYPE "ledger_status" AS ENUM ('pending', 'minted', 'failed', 'clawback_pending', 'clawed_back', 'clawback_failed');

-- CreateTable
CREATE TABLE "merchants" (
    "id" UUID NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "stacking" "stacking" NOT NULL DEFAULT 'best_of',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "merchants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "prefix" VARCHAR(16) NOT NULL,
    "key_hash" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "external_id" VARCHAR(200) NOT NULL,
    "email" VARCHAR(320) NOT NULL,
    "wallet_address" CHAR(42) NOT NULL,
    "cap_version" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "cashback_rules" (
    "id" UUID NOT NULL,
    "merchant_id" UUID,
    "name" VARCHAR(200) NOT NULL,
    "kind" "rule_kind" NOT NULL,
    "basis_points" INTEGER,
    "fixed_amount_wei" DECIMAL(78,0),
    "min_purchase_minor" BIGINT,
    "min_purchase_currency" CHAR(3),
    "max_cashback_wei" DECIMAL(78,0),
    "user_daily_cap_wei" DECIMAL(78,0),
    "user_monthly_cap_wei" DECIMAL(78,0),
    "categories" VARCHAR(64)[] DEFAULT ARRAY[]::VARCHAR(64)[],
    "starts_at" TIMESTAMPTZ(3),
    "ends_at" TIMESTAMPTZ(3),
    "priority" INTEGER NOT NULL DEFAULT 0,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "cashback_rules_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "purchases" (
    "id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "category" VARCHAR(64) NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "refunded_minor" BIGINT NOT NULL DEFAULT 0,
    "cashback_wei" DECIMAL(78,0) NOT NULL,
    "cashback_rules" JSONB NOT NULL DEFAULT '[]',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "purchases_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "refunds" (
    "id" UUID NOT NULL,
    "purchase_id" UUID NOT NULL,
    "merchant_id" UUID NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "clawback_wei" DECIMAL(78,0) NOT NULL,
    "reason" VARCHAR(500),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "refunds_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "cashback_ledger" (
    "id" UUID NOT NULL,
    "kind" "ledger_kind" NOT NULL,
    "status" "ledger_status" NOT NULL,
    "merchant_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "purchase_id" UUID NOT NULL,
    "refund_id" UUID,
    "accrual_id" UUID,
    "wallet_address" CHAR(42) NOT NULL,
    "amount_wei" DECIMAL(78,0) NOT NULL,
    "event_id" UUID NOT NULL,
    "chain_ref" CHAR(66),
    "tx_hash" CHAR(66),
    "block_number" BIGINT,
    "failure_reason" VARCHAR(64),
    "failure_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "cashback_ledger_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "cashback_usage" (
    "user_id" UUID NOT NULL,
    "rule_id" UUID NOT NULL,
    "period" VARCHAR(5) NOT NULL,
    "period_start" DATE NOT NULL,
    "used_wei" DECIMAL(78,0) NOT NULL,

    CONSTRAINT "cashback_usage_pkey" PRIMARY KEY ("user_id","rule_id","period","period_start")
);

-- CreateTable
CREATE TABLE "idempotency_keys" (
    "principal" VARCHAR(64) NOT NULL,
    "key" VARCHAR(255) NOT NULL,
    "request_method" VARCHAR(8) NOT NULL,
    "request_path" VARCHAR(300) NOT NULL,
    "request_hash" CHAR(64) NOT NULL,
    "response_status" INTEGER NOT NULL,
    "response_body" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("principal","key")
);

-- CreateTable
CREATE TABLE "processed_events" (
    "event_id" UUID NOT NULL,
    "type" VARCHAR(100) NOT NULL,
    "entry_id" UUID,
    "refund_id" UUID,
    "outcome" VARCHAR(32) NOT NULL,
    "envelope" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "processed_events_pkey" PRIMARY KEY ("event_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "api_keys_merchant_id_idx" ON "api_keys"("merchant_id");

-- CreateIndex
CREATE UNIQUE INDEX "users_merchant_id_external_id_key" ON "users"("merchant_id", "external_id");

-- CreateIndex
CREATE INDEX "users_merchant_id_id_idx" ON "users"("merchant_id", "id");

-- CreateIndex
CREATE INDEX "users_wallet_address_idx" ON "users"("wallet_address");

-- CreateIndex
CREATE INDEX "cashback_rules_merchant_id_idx" ON "cashback_rules"("merchant_id");

-- CreateIndex
CREATE INDEX "purchases_user_id_id_idx" ON "purchases"("user_id", "id");

-- CreateIndex
CREATE INDEX "refunds_purchase_id_idx" ON "refunds"("purchase_id");

-- CreateIndex
CREATE INDEX "cashback_ledger_user_id_id_idx" ON "cashback_ledger"("user_id", "id");

-- CreateIndex
CREATE INDEX "cashback_ledger_wallet_address_id_idx" ON "cashback_ledger"("wallet_address", "id");

-- CreateIndex
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys" USING BRIN ("created_at");

-- CreateIndex
CREATE INDEX "processed_events_entry_id_idx" ON "processed_events"("entry_id");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "cashback_rules" ADD CONSTRAINT "cashback_rules_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "purchases" ADD CONSTRAINT "purchases_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "purchases" ADD CONSTRAINT "purchases_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_purchase_id_fkey" FOREIGN KEY ("purchase_id") REFERENCES "purchases"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Hand-written (Prisma's schema language can not say these) -----------------------------------

-- Money invariants the code relies on, enforced by the database as well.
ALTER TABLE "purchases" ADD CONSTRAINT "purchases_amounts_check"
    CHECK ("amount_minor" > 0 AND "refunded_minor" >= 0 AND "refunded_minor" <= "amount_minor" AND "cashback_wei" >= 0);
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_amounts_check" CHECK ("amount_minor" > 0 AND "clawback_wei" >= 0);
ALTER TABLE "cashback_ledger" ADD CONSTRAINT "cashback_ledger_amount_check" CHECK ("amount_wei" > 0);
ALTER TABLE "cashback_usage" ADD CONSTRAINT "cashback_usage_check" CHECK ("period" IN ('day', 'month') AND "used_wei" >= 0);

-- One accrual (refund_id NULL) per purchase and one clawback per refund, and the lookup of a
-- purchase's entries, in one index; clawbacks by refund for the result events. (Every index on
-- this table is paid by every purchase: there are no others than these and the two by owner.)
CREATE UNIQUE INDEX "cashback_ledger_purchase_id_refund_id_key" ON "cashback_ledger"("purchase_id", "refund_id") NULLS NOT DISTINCT;
CREATE UNIQUE INDEX "cashback_ledger_refund_id_key" ON "cashback_ledger"("refund_id") WHERE "refund_id" IS NOT NULL;
ALTER TABLE "cashback_ledger" ADD CONSTRAINT "cashback_ledger_kind_check"
    CHECK (("kind" = 'accrual') = ("refund_id" IS NULL) AND ("kind" = 'accrual') = ("accrual_id" IS NULL));

-- Rules, merchants and keys are cached in memory by every API instance; a change anywhere tells
-- them all (LISTEN cashback_api_cache, src/support/cache-listener.ts).
CREATE FUNCTION "cashback_api_cache_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cashback_api_cache', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER "merchants_cache_notify" AFTER INSERT OR UPDATE OR DELETE ON "merchants"
    FOR EACH STATEMENT EXECUTE FUNCTION "cashback_api_cache_notify"();
CREATE TRIGGER "api_keys_cache_notify" AFTER INSERT OR UPDATE OR DELETE ON "api_keys"
    FOR EACH STATEMENT EXECUTE FUNCTION "cashback_api_cache_notify"();
CREATE TRIGGER "cashback_rules_cache_notify" AFTER INSERT OR UPDATE OR DELETE ON "cashback_rules"
    FOR EACH STATEMENT EXECUTE FUNCTION "cashback_api_cache_notify"();

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
