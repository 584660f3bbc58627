import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { traceparentInterceptor } from "@cashback/telemetry";
import { BlockchainService } from "@cashback/proto/blockchain/v1";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.ts";

export type BalanceAnswer =
  | { available: true; balance_wei: string; block_number: string }
  | { available: false; balance_wei: null; block_number: null; reason: string };

/**
 * The on-chain balance of a wallet, read through the blockchain adapter's GetBalance (Connect
 * over HTTP/1.1 with its bearer token). Never throws: an unreachable, slow or failing adapter
 * gives `available: false`, so the ledger stays readable.
 */
export class BalanceReader {
  private readonly client: Client<typeof BlockchainService>;

  constructor(private readonly deps: { adapterUrl: string; token: string; timeoutMs: number; logger: Logger; metrics: Metrics }) {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${deps.token}`);
      return next(req);
    };
    this.client = createClient(BlockchainService, createConnectTransport({ baseUrl: deps.adapterUrl, httpVersion: "1.1", interceptors: [bearer, traceparentInterceptor] }));
  }

  async balanceOf(address: string): Promise<BalanceAnswer> {
    try {
      const res = await this.client.getBalance({ address }, { timeoutMs: this.deps.timeoutMs });
      this.deps.metrics.balanceLookups.inc({ outcome: "ok" });
      return { available: true, balance_wei: res.balanceWei, block_number: res.blockNumber.toString() };
    } catch (err) {
      this.deps.metrics.balanceLookups.inc({ outcome: "unavailable" });
      this.deps.logger.warn({ err: String(err) }, "GetBalance failed; answering without the on-chain balance");
      return { available: false, balance_wei: null, block_number: null, reason: "the blockchain adapter did not answer; the on-chain balance is unavailable" };
    }
  }
}
