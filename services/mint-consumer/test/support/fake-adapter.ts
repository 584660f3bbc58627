import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { BlockchainService, ErrorDetailSchema, TransactionStatus, type MintTokenRequest } from "@cashback/proto/blockchain/v1";
import { keccak256, stringToHex } from "viem";

type Answer = { idempotencyKey: string; status: TransactionStatus; txHash: string; blockNumber: bigint; error?: { retryable: boolean; reason: string; message: string } };

/**
 * A BlockchainService in memory (Connect's router transport) that keeps the adapter's promises:
 * one outcome per idempotency key, balances that mints raise and clawbacks lower, FAILED
 * INSUFFICIENT_BALANCE for a clawback larger than the balance. Switches make it unavailable or
 * make it hold mints at SUBMITTED, to drive the consumer through its states without a chain.
 */
export function fakeAdapter() {
  const answers = new Map<string, Answer>();
  const balances = new Map<string, bigint>();
  const calls: { rpc: string; key: string }[] = [];
  const held = new Map<string, MintTokenRequest>();
  const state = { unavailable: false, holdMints: false, block: 10n };

  const unavailable = () =>
    new ConnectError("the chain is unreachable (circuit breaker open)", Code.Unavailable, undefined, [
      { desc: ErrorDetailSchema, value: create(ErrorDetailSchema, { retryable: true, reason: "CIRCUIT_OPEN", message: "breaker open" }) },
    ]);
  const settle = (key: string, apply: () => Answer["error"] | void): Answer => {
    const known = answers.get(key);
    if (known) return known;
    const error = apply();
    const answer: Answer = error
      ? { idempotencyKey: key, status: TransactionStatus.FAILED, txHash: "", blockNumber: 0n, error }
      : { idempotencyKey: key, status: TransactionStatus.CONFIRMED, txHash: keccak256(stringToHex(`tx:${key}`)), blockNumber: ++state.block };
    answers.set(key, answer);
    return answer;
  };
  const mint = (req: MintTokenRequest) => {
    calls.push({ rpc: "mint", key: req.idempotencyKey });
    if (state.holdMints && !answers.has(req.idempotencyKey)) {
      // Accepted, but its transaction is not mined until holdMints is off again.
      held.set(req.idempotencyKey, req);
      answers.set(req.idempotencyKey, { idempotencyKey: req.idempotencyKey, status: TransactionStatus.SUBMITTED, txHash: "", blockNumber: 0n });
    }
    if (!state.holdMints && held.has(req.idempotencyKey)) {
      held.delete(req.idempotencyKey);
      answers.delete(req.idempotencyKey);
    }
    if (answers.get(req.idempotencyKey)?.status === TransactionStatus.SUBMITTED) {
      return { ...answers.get(req.idempotencyKey)!, mintId: keccak256(stringToHex(req.idempotencyKey)), replayed: true };
    }
    const answer = settle(req.idempotencyKey, () => {
      balances.set(req.to.toLowerCase(), (balances.get(req.to.toLowerCase()) ?? 0n) + BigInt(req.amountWei));
    });
    return { ...answer, mintId: keccak256(stringToHex(req.idempotencyKey)), replayed: false };
  };

  const transport = createRouterTransport(({ service }) => {
    service(BlockchainService, {
      mintToken: (req) => {
        if (state.unavailable) throw unavailable();
        return mint(req);
      },
      mintBatch: (req) => {
        if (state.unavailable) throw unavailable();
        return { results: req.mints.map(mint) };
      },
      clawback: (req) => {
        if (state.unavailable) throw unavailable();
        calls.push({ rpc: "clawback", key: req.idempotencyKey });
        const answer = settle(req.idempotencyKey, () => {
          const holder = req.from.toLowerCase();
          const balance = balances.get(holder) ?? 0n;
          if (balance < BigInt(req.amountWei)) return { retryable: false, reason: "INSUFFICIENT_BALANCE", message: `holder has ${balance} wei, clawback needs ${req.amountWei}` };
          balances.set(holder, balance - BigInt(req.amountWei));
        });
        return { ...answer, refId: keccak256(stringToHex(req.idempotencyKey)), replayed: false };
      },
      getTransaction: (req) => {
        if (state.unavailable) throw unavailable();
        const key = String(req.lookup.value);
        calls.push({ rpc: "status", key });
        const waiting = held.get(key);
        if (!state.holdMints && waiting) mint(waiting); // mined now
        const a = answers.get(key);
        if (!a) throw new ConnectError(`no mint with idempotency key "${key}"`, Code.NotFound);
        return { status: a.status, txHash: a.txHash, blockNumber: a.blockNumber, confirmations: 1n, gasUsed: "1", idempotencyKeys: [key], error: a.error };
      },
      getBalance: (req) => ({ address: req.address, balanceWei: String(balances.get(req.address.toLowerCase()) ?? 0n), blockNumber: state.block }),
    });
  });

  return {
    transport,
    calls,
    state,
    balanceOf: (address: string) => balances.get(address.toLowerCase()) ?? 0n,
    /** Spends tokens of a holder (as if transferred away). */
    spend: (address: string, amount: bigint) => balances.set(address.toLowerCase(), (balances.get(address.toLowerCase()) ?? 0n) - amount),
  };
}
