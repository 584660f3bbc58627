import type { ChainClient, SignedTx } from "../chain/chain-client.ts";
import { toDecimal } from "../db.ts";

/** The blockchain_transactions row of a transaction we signed. */
export function txRow(chain: ChainClient, signed: SignedTx) {
  return {
    chainId: chain.chainId,
    txHash: signed.hash,
    fromAddress: chain.signerAddress,
    gasBounded: signed.gasBounded ?? false,
    toAddress: signed.to ?? chain.token,
    nonce: signed.nonce,
    kind: signed.kind,
    rawTx: signed.raw,
    maxFeePerGas: toDecimal(signed.maxFeePerGas),
    maxPriorityFeePerGas: toDecimal(signed.maxPriorityFeePerGas),
  };
}
