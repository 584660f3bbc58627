-- CreateEnum
CREATE TYPE "mint_status" AS ENUM ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED');

-- CreateEnum
CREATE TYPE "tx_status" AS ENUM ('SUBMITTED', 'CONFIRMED', 'FAILED', 'REPLACED', 'DROPPED');

-- CreateTable
CREATE TABLE "mints" (
    "idempotency_key" VARCHAR(200) NOT NULL,
    "mint_id" CHAR(66) NOT NULL,
    "to_address" CHAR(42) NOT NULL,
    "amount_wei" DECIMAL(78,0) NOT NULL,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "status" "mint_status" NOT NULL DEFAULT 'PENDING',
    "transaction_id" BIGINT,
    "error_reason" VARCHAR(64),
    "error_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "mints_pkey" PRIMARY KEY ("idempotency_key")
);

-- CreateTable
CREATE TABLE "blockchain_transactions" (
    "id" BIGSERIAL NOT NULL,
    "chain_id" INTEGER NOT NULL,
    "tx_hash" CHAR(66) NOT NULL,
    "from_address" CHAR(42) NOT NULL,
    "to_address" CHAR(42) NOT NULL,
    "nonce" BIGINT NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "raw_tx" TEXT,
    "max_fee_per_gas" DECIMAL(78,0) NOT NULL,
    "max_priority_fee_per_gas" DECIMAL(78,0) NOT NULL,
    "status" "tx_status" NOT NULL DEFAULT 'SUBMITTED',
    "block_number" BIGINT,
    "block_hash" CHAR(66),
    "gas_used" DECIMAL(78,0),
    "replaced_by_id" BIGINT,
    "broadcasts" INTEGER NOT NULL DEFAULT 1,
    "error_message" TEXT,
    "submitted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "mined_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "blockchain_transactions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "wallet_nonces" (
    "chain_id" INTEGER NOT NULL,
    "address" CHAR(42) NOT NULL,
    "next_nonce" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "wallet_nonces_pkey" PRIMARY KEY ("chain_id","address")
);

-- CreateIndex
CREATE UNIQUE INDEX "mints_mint_id_key" ON "mints"("mint_id");

-- CreateIndex
CREATE INDEX "mints_status_created_at_idx" ON "mints"("status", "created_at");

-- CreateIndex
CREATE INDEX "mints_transaction_id_idx" ON "mints"("transaction_id");

-- CreateIndex
CREATE UNIQUE INDEX "blockchain_transactions_tx_hash_key" ON "blockchain_transactions"("tx_hash");

-- CreateIndex
CREATE INDEX "blockchain_transactions_status_submitted_at_idx" ON "blockchain_transactions"("status", "submitted_at");

-- CreateIndex
CREATE INDEX "blockchain_transactions_chain_id_from_address_nonce_idx" ON "blockchain_transactions"("chain_id", "from_address", "nonce");

-- AddForeignKey
ALTER TABLE "mints" ADD CONSTRAINT "mints_transaction_id_fkey" FOREIGN KEY ("transaction_id") REFERENCES "blockchain_transactions"("id") ON DELETE SET NULL ON UPDATE CASCADE;
