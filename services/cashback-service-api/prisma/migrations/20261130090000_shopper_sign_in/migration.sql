-- CreateTable
CREATE TABLE "siwe_nonces" (
    "nonce" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),

    CONSTRAINT "siwe_nonces_pkey" PRIMARY KEY ("nonce")
);

-- CreateTable
CREATE TABLE "shopper_sessions" (
    "id" UUID NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "wallet_address" CHAR(42) NOT NULL,
    "chain_id" INTEGER NOT NULL,
    "nonce" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "shopper_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "siwe_nonces_expires_at_idx" ON "siwe_nonces"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "shopper_sessions_token_hash_key" ON "shopper_sessions"("token_hash");

-- CreateIndex
CREATE INDEX "shopper_sessions_expires_at_idx" ON "shopper_sessions"("expires_at");
