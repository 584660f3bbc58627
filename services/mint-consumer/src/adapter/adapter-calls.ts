import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BlockchainService } from "@cashback/proto/blockchain/v1";
import { traceparentInterceptor } from "@cashback/telemetry";
import type { RequestEvent } from "../requests/machine.ts";
import { eventFromError, eventFromStatus, type StatusAnswer } from "./classify.ts";

export type AdapterClient = Client<typeof BlockchainService>;

/** One mint or clawback to send, as the adapter wants it. */
export interface AdapterWork {
  /** The request's id in our database (entry id / refund id). */
  id: string;
  idempotencyKey: string;
  wallet: string;
  amountWei: bigint;
  /** Labels stored with it at the adapter (ids of the purchase it came from). */
  metadata: Record<string, string>;
}

export type Rpc = "MintToken" | "MintBatch" | "GetTransaction" | "Clawback";

export interface AdapterCallsDeps {
  client: AdapterClient;
  /** Deadline per call. */
  timeoutMs: number;
  /** Single calls a refused batch is split into that run at once. */
  splitConcurrency?: number;
  /** Told about every call (for metrics). */
  observe?: (rpc: Rpc, outcome: RequestEvent["type"], seconds: number, size: number) => void;
}

/** The gRPC client the service uses: bearer token on every call, HTTP/2 kept alive. */
export function createAdapterClient(opts: { baseUrl: string; token: string; transport?: Transport }): AdapterClient {
  const bearer: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${opts.token}`);
    return next(req);
  };
  // The W3C trace context of the active span (the request's) goes along as call metadata.
  const transport = opts.transport ?? createGrpcTransport({ baseUrl: opts.baseUrl, interceptors: [bearer, traceparentInterceptor], pingIntervalMs: 15_000 });
  return createClient(BlockchainService, transport);
}

/**
 * The consumer's calls to the blockchain adapter. Each answer becomes a state-machine event per
 * request (classify.ts); no call throws. The idempotency keys come from the ledger (mintKey /
 * clawbackKey), so asking again - after a timeout, a crash, a replay - never mints twice.
 */
export class AdapterCalls {
  private readonly deps: Required<Omit<AdapterCallsDeps, "observe">> & Pick<AdapterCallsDeps, "observe">;

  constructor(deps: AdapterCallsDeps) {
    this.deps = { splitConcurrency: 16, ...deps };
  }

  /**
   * Mints: one MintToken for a lone request, one MintBatch (<= 200) for more. A batch the
   * adapter refuses as a whole (INVALID_ARGUMENT for one bad entry, ALREADY_EXISTS) is split into
   * single MintToken calls, so the bad entry fails alone and the others go ahead.
   */
  async mint(items: readonly AdapterWork[], signal?: AbortSignal): Promise<Map<string, RequestEvent>> {
    if (items.length === 0) return new Map();
    if (items.length === 1) return new Map([[items[0]!.id, await this.mintOne(items[0]!, signal)]]);
    const started = performance.now();
    try {
      const res = await this.deps.client.mintBatch({ mints: items.map(toMintRequest) }, { timeoutMs: this.deps.timeoutMs, signal });
      const events = new Map<string, RequestEvent>();
      items.forEach((item, i) => {
        const result = res.results[i];
        events.set(
          item.id,
          result && result.idempotencyKey === item.idempotencyKey
            ? eventFromStatus(result)
            : { type: "TRANSIENT", reason: "BAD_RESPONSE", message: `MintBatch answered ${res.results.length} results for ${items.length} entries`, mayHaveReached: true },
        );
      });
      this.observe("MintBatch", events.values().next().value!, started, items.length);
      return events;
    } catch (err) {
      const event = eventFromError(err);
      this.observe("MintBatch", event, started, items.length);
      if (event.type === "REFUSED" && !signal?.aborted) return this.mintOneByOne(items, signal);
      return new Map(items.map((item) => [item.id, event]));
    }
  }

  /** Where a request the adapter accepted stands (GetTransaction by its key). */
  async status(idempotencyKey: string, signal?: AbortSignal): Promise<RequestEvent> {
    const started = performance.now();
    let event: RequestEvent;
    try {
      const res = await this.deps.client.getTransaction({ lookup: { case: "idempotencyKey", value: idempotencyKey } }, { timeoutMs: this.deps.timeoutMs, signal });
      event = eventFromStatus(res as StatusAnswer);
    } catch (err) {
      event = eventFromError(err);
    }
    this.observe("GetTransaction", event, started, 1);
    return event;
  }

  /**
   * A refund's clawback: Clawback by its key (clawbackKey(refund id)), same answers as MintToken;
   * FAILED "INSUFFICIENT_BALANCE" when the holder holds less than the amount.
   */
  async clawback(item: AdapterWork, signal?: AbortSignal): Promise<RequestEvent> {
    const started = performance.now();
    let event: RequestEvent;
    try {
      const res = await this.deps.client.clawback(
        { idempotencyKey: item.idempotencyKey, from: item.wallet, amountWei: item.amountWei.toString(), metadata: item.metadata },
        { timeoutMs: this.deps.timeoutMs, signal },
      );
      event = res.idempotencyKey === item.idempotencyKey ? eventFromStatus(res) : { type: "TRANSIENT", reason: "BAD_RESPONSE", message: `Clawback answered for key ${res.idempotencyKey}`, mayHaveReached: true };
    } catch (err) {
      event = eventFromError(err);
    }
    this.observe("Clawback", event, started, 1);
    return event;
  }

  /** Whether the adapter answers our calls at all (readiness): any answer but a transport failure. */
  async reachable(signal?: AbortSignal): Promise<boolean> {
    try {
      await this.deps.client.getTransaction({ lookup: { case: "idempotencyKey", value: "readiness-probe" } }, { timeoutMs: 2_000, signal });
      return true;
    } catch (err) {
      const event = eventFromError(err);
      return event.type === "NOT_FOUND";
    }
  }

  private async mintOne(item: AdapterWork, signal?: AbortSignal): Promise<RequestEvent> {
    const started = performance.now();
    let event: RequestEvent;
    try {
      const res = await this.deps.client.mintToken(toMintRequest(item), { timeoutMs: this.deps.timeoutMs, signal });
      event = eventFromStatus(res);
    } catch (err) {
      event = eventFromError(err);
    }
    this.observe("MintToken", event, started, 1);
    return event;
  }

  private async mintOneByOne(items: readonly AdapterWork[], signal?: AbortSignal): Promise<Map<string, RequestEvent>> {
    const events = new Map<string, RequestEvent>();
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++]!;
        events.set(item.id, await this.mintOne(item, signal));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deps.splitConcurrency, items.length) }, worker));
    return new Map(items.map((item) => [item.id, events.get(item.id)!]));
  }

  private observe(rpc: Rpc, event: RequestEvent, started: number, size: number): void {
    this.deps.observe?.(rpc, event.type, (performance.now() - started) / 1000, size);
  }
}

function toMintRequest(item: AdapterWork) {
  return { idempotencyKey: item.idempotencyKey, to: item.wallet, amountWei: item.amountWei.toString(), metadata: item.metadata };
}
