-- A transaction whose gas came from the per-item bound instead of eth_estimateGas: when it
-- reverts, its mints go back to the queue to be estimated (the estimate names the refusal).
ALTER TABLE "blockchain_transactions" ADD COLUMN "gas_bounded" BOOLEAN NOT NULL DEFAULT false;
