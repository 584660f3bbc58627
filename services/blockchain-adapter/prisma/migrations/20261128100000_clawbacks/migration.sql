-- CreateEnum
CREATE TYPE "clawback_status" AS ENUM ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED');

-- CreateTable
CREATE TABLE "clawbacks" (
    "idempotency_key" VARCHAR(200) NOT NULL,
    "ref_id" CHAR(66) NOT NULL,
    "from_address" CHAR(42) NOT NULL,
    "amount_wei" DECIMAL(78,0) NOT NULL,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "status" "clawback_status" NOT NULL DEFAULT 'PENDING',
    "transaction_id" BIGINT,
    "error_reason" VARCHAR(64),
    "error_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "clawbacks_pkey" PRIMARY KEY ("idempotency_key")
);

-- CreateIndex
CREATE UNIQUE INDEX "clawbacks_ref_id_key" ON "clawbacks"("ref_id");

-- CreateIndex
CREATE INDEX "clawbacks_status_created_at_idx" ON "clawbacks"("status", "created_at");

-- CreateIndex
CREATE INDEX "clawbacks_transaction_id_idx" ON "clawbacks"("transaction_id");

-- AddForeignKey
ALTER TABLE "clawbacks" ADD CONSTRAINT "clawbacks_transaction_id_fkey" FOREIGN KEY ("transaction_id") REFERENCES "blockchain_transactions"("id") ON DELETE SET NULL ON UPDATE CASCADE;
