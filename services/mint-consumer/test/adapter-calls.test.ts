import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { BlockchainService, ErrorDetailSchema, TransactionStatus, type MintTokenRequest } from "@cashback/proto/blockchain/v1";
import { AdapterCalls, createAdapterClient, type AdapterWork } from "../src/adapter/adapter-calls.ts";
import { codeName, eventFromError, eventFromStatus, reasonCode } from "../src/adapter/classify.ts";

const TX = `0x${"c".repeat(64)}`;
const detail = (retryable: boolean, reason: string, message = "m") => [{ desc: ErrorDetailSchema, value: create(ErrorDetailSchema, { retryable, reason, message }) }];
const wireError = (code: Code, details: ReturnType<typeof detail> = []) => {
  const e = new ConnectError("boom", code, undefined, details);
  (e as { isWireError: boolean }).isWireError = true;
  return e;
};
const refused = () => new ConnectError("connect ECONNREFUSED 127.0.0.1:50051", Code.Unavailable, undefined, undefined, Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));

describe("reading the adapter's answers (classify)", () => {
  const statuses: [string, Parameters<typeof eventFromStatus>[0], unknown][] = [
    ["CONFIRMED", { status: TransactionStatus.CONFIRMED, txHash: TX, blockNumber: 12n }, { type: "CONFIRMED", txHash: TX, blockNumber: 12n }],
    ["CONFIRMED without a transaction: not trusted", { status: TransactionStatus.CONFIRMED, txHash: "", blockNumber: 12n }, { type: "TRANSIENT", reason: "BAD_RESPONSE" }],
    ["SUBMITTED with a hash", { status: TransactionStatus.SUBMITTED, txHash: TX, blockNumber: 0n }, { type: "SUBMITTED", txHash: TX }],
    ["SUBMITTED before signing", { status: TransactionStatus.SUBMITTED, txHash: "", blockNumber: 0n }, { type: "SUBMITTED", txHash: null }],
    ["FAILED, retryable = false: final", { status: TransactionStatus.FAILED, txHash: TX, blockNumber: 3n, error: { retryable: false, reason: "REVERTED", message: "no role" } }, { type: "REFUSED", reason: "REVERTED", message: "no role" }],
    ["FAILED, retryable = true: not final", { status: TransactionStatus.FAILED, txHash: "", blockNumber: 0n, error: { retryable: true, reason: "CHAIN_UNAVAILABLE", message: "x" } }, { type: "TRANSIENT", reason: "CHAIN_UNAVAILABLE", mayHaveReached: true }],
    ["FAILED with a reason that is no code", { status: TransactionStatus.FAILED, txHash: "", blockNumber: 0n, error: { retryable: false, reason: "bad reason!", message: "x" } }, { type: "REFUSED", reason: "FAILED" }],
    ["UNSPECIFIED", { status: TransactionStatus.UNSPECIFIED, txHash: "", blockNumber: 0n }, { type: "TRANSIENT", reason: "UNKNOWN_STATUS" }],
  ];
  for (const [name, answer, expected] of statuses) it(`status ${name}`, () => expect(eventFromStatus(answer)).toMatchObject(expected as object));

  const errors: [string, unknown, unknown][] = [
    ["UNAVAILABLE + ErrorDetail(retryable): transient, may have reached", wireError(Code.Unavailable, detail(true, "DATABASE_UNAVAILABLE")), { type: "TRANSIENT", reason: "DATABASE_UNAVAILABLE", mayHaveReached: true }],
    ["UNAVAILABLE CIRCUIT_OPEN: refused before anything was recorded", wireError(Code.Unavailable, detail(true, "CIRCUIT_OPEN")), { type: "TRANSIENT", reason: "CIRCUIT_OPEN", mayHaveReached: false }],
    ["INVALID_ARGUMENT + ErrorDetail: final", wireError(Code.InvalidArgument, detail(false, "INVALID_ARGUMENT", "amount_wei must be below 2^128")), { type: "REFUSED", reason: "INVALID_ARGUMENT", message: "amount_wei must be below 2^128" }],
    ["ALREADY_EXISTS + ErrorDetail: final", wireError(Code.AlreadyExists, detail(false, "IDEMPOTENCY_KEY_REUSED")), { type: "REFUSED", reason: "IDEMPOTENCY_KEY_REUSED" }],
    ["INTERNAL + ErrorDetail(not retryable): final", wireError(Code.Internal, detail(false, "INTERNAL")), { type: "REFUSED", reason: "INTERNAL" }],
    ["NOT_FOUND: the adapter does not hold the key", wireError(Code.NotFound, detail(false, "NOT_FOUND")), { type: "NOT_FOUND" }],
    ["connection refused: transient, never reached", refused(), { type: "TRANSIENT", reason: "ADAPTER_UNREACHABLE", mayHaveReached: false }],
    ["UNAVAILABLE without detail (reset mid-call): may have reached", new ConnectError("stream reset", Code.Unavailable), { type: "TRANSIENT", reason: "UNAVAILABLE", mayHaveReached: true }],
    ["DEADLINE_EXCEEDED: may have reached", new ConnectError("timeout", Code.DeadlineExceeded), { type: "TRANSIENT", reason: "DEADLINE_EXCEEDED", mayHaveReached: true }],
    ["INVALID_ARGUMENT from the wire without detail: final", wireError(Code.InvalidArgument), { type: "REFUSED", reason: "INVALID_ARGUMENT" }],
    ["UNAUTHENTICATED: waits for an operator, never reached the handler", wireError(Code.Unauthenticated), { type: "TRANSIENT", reason: "UNAUTHENTICATED", mayHaveReached: false }],
    ["UNIMPLEMENTED (an older adapter): waits", wireError(Code.Unimplemented), { type: "TRANSIENT", reason: "UNIMPLEMENTED", mayHaveReached: false }],
    ["anything else: transient", new Error("socket hang up"), { type: "TRANSIENT", mayHaveReached: true }],
  ];
  for (const [name, err, expected] of errors) it(name, () => expect(eventFromError(err)).toMatchObject(expected as object));

  it("names codes and keeps only well-formed reasons", () => {
    expect(codeName(Code.DeadlineExceeded)).toBe("DEADLINE_EXCEEDED");
    expect(codeName(Code.Unavailable)).toBe("UNAVAILABLE");
    expect(reasonCode("REVERTED", "X")).toBe("REVERTED");
    expect(reasonCode("reverted", "X")).toBe("X");
    expect(reasonCode(undefined, "X")).toBe("X");
  });
});

/** A fake BlockchainService (Connect's in-memory router transport) that records what it was asked. */
function fakeAdapter(impl: Partial<ServiceImpl<typeof BlockchainService>>) {
  const calls: { rpc: string; keys: string[] }[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(BlockchainService, {
      mintToken: async (req, ctx) => {
        calls.push({ rpc: "MintToken", keys: [req.idempotencyKey] });
        if (!impl.mintToken) throw new ConnectError("no", Code.Unimplemented);
        return impl.mintToken(req, ctx);
      },
      mintBatch: async (req, ctx) => {
        calls.push({ rpc: "MintBatch", keys: req.mints.map((m) => m.idempotencyKey) });
        if (!impl.mintBatch) throw new ConnectError("no", Code.Unimplemented);
        return impl.mintBatch(req, ctx);
      },
      clawback: async (req, ctx) => {
        calls.push({ rpc: "Clawback", keys: [req.idempotencyKey] });
        if (!impl.clawback) throw new ConnectError("no", Code.Unimplemented);
        return impl.clawback(req, ctx);
      },
      getTransaction: async (req, ctx) => {
        calls.push({ rpc: "GetTransaction", keys: [String(req.lookup.value)] });
        if (!impl.getTransaction) throw new ConnectError("no", Code.Unimplemented);
        return impl.getTransaction(req, ctx);
      },
    });
  });
  const adapterCalls = new AdapterCalls({ client: createAdapterClient({ baseUrl: "http://fake", token: "t", transport }), timeoutMs: 5_000 });
  return { adapterCalls, calls };
}

const work = (n: number, amount = 1n): AdapterWork => ({ id: `id-${n}`, idempotencyKey: `cashback:${n}`, wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amountWei: amount, metadata: { entry_id: String(n) } });
const confirmed = (req: MintTokenRequest) => ({ idempotencyKey: req.idempotencyKey, status: TransactionStatus.CONFIRMED, txHash: TX, blockNumber: 5n, mintId: "0x" + "d".repeat(64) });
const TOO_BIG = 2n ** 128n;

describe("calling the adapter (fake BlockchainService over createRouterTransport)", () => {
  it("sends a lone mint with MintToken, with its key, recipient, amount and metadata", async () => {
    let seen: MintTokenRequest | undefined;
    const { adapterCalls, calls } = fakeAdapter({ mintToken: (req) => ((seen = req), confirmed(req)) });
    const events = await adapterCalls.mint([work(1, 25n)]);
    expect(calls).toEqual([{ rpc: "MintToken", keys: ["cashback:1"] }]);
    expect(seen).toMatchObject({ idempotencyKey: "cashback:1", to: work(1).wallet, amountWei: "25", metadata: { entry_id: "1" } });
    expect(events.get("id-1")).toEqual({ type: "CONFIRMED", txHash: TX, blockNumber: 5n });
  });

  it("sends several in one MintBatch and maps each result, in order, to its request", async () => {
    const { adapterCalls, calls } = fakeAdapter({
      mintBatch: (req) => ({
        results: req.mints.map((m, i) =>
          i === 1
            ? { idempotencyKey: m.idempotencyKey, status: TransactionStatus.SUBMITTED, txHash: TX, blockNumber: 0n, mintId: "" }
            : i === 2
              ? { idempotencyKey: m.idempotencyKey, status: TransactionStatus.FAILED, txHash: TX, blockNumber: 4n, mintId: "", error: { retryable: false, reason: "REVERTED", message: "r" } }
              : confirmed(m),
        ),
      }),
    });
    const events = await adapterCalls.mint([work(1), work(2), work(3)]);
    expect(calls).toEqual([{ rpc: "MintBatch", keys: ["cashback:1", "cashback:2", "cashback:3"] }]);
    expect([...events.entries()]).toEqual([
      ["id-1", { type: "CONFIRMED", txHash: TX, blockNumber: 5n }],
      ["id-2", { type: "SUBMITTED", txHash: TX }],
      ["id-3", { type: "REFUSED", reason: "REVERTED", message: "r" }],
    ]);
  });

  it("a batch refused as a whole (one bad entry) is split: the bad entry fails alone, the others are minted", async () => {
    const check = (req: MintTokenRequest) => {
      if (BigInt(req.amountWei) >= TOO_BIG) throw new ConnectError("amount_wei must be below 2^128", Code.InvalidArgument, undefined, detail(false, "INVALID_ARGUMENT", "amount_wei must be below 2^128"));
    };
    const { adapterCalls, calls } = fakeAdapter({
      mintBatch: (req) => {
        req.mints.forEach(check);
        return { results: req.mints.map(confirmed) };
      },
      mintToken: (req) => (check(req), confirmed(req)),
    });
    const events = await adapterCalls.mint([work(1), work(2, TOO_BIG), work(3)]);
    expect(calls[0]).toEqual({ rpc: "MintBatch", keys: ["cashback:1", "cashback:2", "cashback:3"] });
    expect(calls.slice(1).map((c) => c.rpc)).toEqual(["MintToken", "MintToken", "MintToken"]);
    expect(events.get("id-1")).toMatchObject({ type: "CONFIRMED" });
    expect(events.get("id-2")).toMatchObject({ type: "REFUSED", reason: "INVALID_ARGUMENT" });
    expect(events.get("id-3")).toMatchObject({ type: "CONFIRMED" });
  });

  it("a transient failure of a batch is the same transient failure for each entry (no split)", async () => {
    const { adapterCalls, calls } = fakeAdapter({
      mintBatch: () => {
        throw new ConnectError("breaker open", Code.Unavailable, undefined, detail(true, "CIRCUIT_OPEN"));
      },
    });
    const events = await adapterCalls.mint([work(1), work(2)]);
    expect(calls.map((c) => c.rpc)).toEqual(["MintBatch"]);
    for (const id of ["id-1", "id-2"]) expect(events.get(id)).toMatchObject({ type: "TRANSIENT", reason: "CIRCUIT_OPEN", mayHaveReached: false });
  });

  it("a batch answer that does not match the request is not trusted", async () => {
    const { adapterCalls } = fakeAdapter({ mintBatch: (req) => ({ results: req.mints.slice(1).map(confirmed) }) });
    const events = await adapterCalls.mint([work(1), work(2)]);
    expect(events.get("id-1")).toMatchObject({ type: "TRANSIENT", reason: "BAD_RESPONSE" });
    expect(events.get("id-2")).toMatchObject({ type: "TRANSIENT", reason: "BAD_RESPONSE" });
  });

  it("reconciles by key with GetTransaction: status, or NOT_FOUND when the adapter does not hold it", async () => {
    const { adapterCalls, calls } = fakeAdapter({
      getTransaction: (req) => {
        if (req.lookup.value === "cashback:2") throw new ConnectError("no mint", Code.NotFound, undefined, detail(false, "NOT_FOUND"));
        return { status: TransactionStatus.CONFIRMED, txHash: TX, blockNumber: 8n, confirmations: 1n, gasUsed: "1", idempotencyKeys: ["cashback:1"] };
      },
    });
    expect(await adapterCalls.status("cashback:1")).toEqual({ type: "CONFIRMED", txHash: TX, blockNumber: 8n });
    expect(await adapterCalls.status("cashback:2")).toEqual({ type: "NOT_FOUND" });
    expect(calls).toEqual([
      { rpc: "GetTransaction", keys: ["cashback:1"] },
      { rpc: "GetTransaction", keys: ["cashback:2"] },
    ]);
  });

  it("claws back with Clawback (key, holder, amount, metadata) and reads its answers like a mint's", async () => {
    let seen: { idempotencyKey: string; from: string; amountWei: string; metadata: Record<string, string> } | undefined;
    const { adapterCalls, calls } = fakeAdapter({
      clawback: (req) => {
        seen = req;
        if (req.idempotencyKey === "clawback:poor") {
          return { idempotencyKey: req.idempotencyKey, status: TransactionStatus.FAILED, txHash: "", blockNumber: 0n, refId: "", replayed: false, error: { retryable: false, reason: "INSUFFICIENT_BALANCE", message: "holds 1 wei" } };
        }
        return { idempotencyKey: req.idempotencyKey, status: TransactionStatus.CONFIRMED, txHash: TX, blockNumber: 11n, refId: "0x" + "e".repeat(64), replayed: false };
      },
    });
    const refund = { ...work(1, 7n), id: "refund-1", idempotencyKey: "clawback:r1", metadata: { refund_id: "r1" } };
    expect(await adapterCalls.clawback(refund)).toEqual({ type: "CONFIRMED", txHash: TX, blockNumber: 11n });
    expect(seen).toMatchObject({ idempotencyKey: "clawback:r1", from: refund.wallet, amountWei: "7", metadata: { refund_id: "r1" } });
    expect(await adapterCalls.clawback({ ...refund, idempotencyKey: "clawback:poor" })).toEqual({ type: "REFUSED", reason: "INSUFFICIENT_BALANCE", message: "holds 1 wei" });
    expect(calls.map((c) => c.rpc)).toEqual(["Clawback", "Clawback"]);
  });

  it("an adapter without Clawback (UNIMPLEMENTED) makes clawbacks wait, not fail", async () => {
    const { adapterCalls } = fakeAdapter({});
    expect(await adapterCalls.clawback({ ...work(1), idempotencyKey: "clawback:r2" })).toMatchObject({ type: "TRANSIENT", reason: "UNIMPLEMENTED", mayHaveReached: false });
  });

  it("is reachable when the adapter answers (even NOT_FOUND), not when it refuses the token", async () => {
    const ok = fakeAdapter({ getTransaction: () => { throw new ConnectError("no mint", Code.NotFound); } });
    expect(await ok.adapterCalls.reachable()).toBe(true);
    const denied = fakeAdapter({ getTransaction: () => { throw new ConnectError("bad token", Code.Unauthenticated); } });
    expect(await denied.adapterCalls.reachable()).toBe(false);
  });
});
