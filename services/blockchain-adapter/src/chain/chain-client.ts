import {
  createPublicClient,
  http,
  keccak256,
  type Address,
  type Hash,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type Transport,
  type TransactionReceipt,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { CircuitBreakerPolicy } from "cockatiel";
import { cashbackTokenAbi, readDeployment } from "@cashback/token";
import type { Metrics } from "../metrics.ts";
import { chainDown } from "./circuit-breaker.ts";
import { asContractRejection, isReceiptNotFound, isTransactionNotFound } from "./rpc-errors.ts";
import { encodeClawback, encodeMints, type ClawbackCall, type MintCall, type TxKind } from "./token-calls.ts";

export interface PreparedTx {
  kind: TxKind;
  /** Default: the token contract. */
  to?: Address;
  nonce: bigint;
  data: Hex;
  gas: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  /** The gas limit is a bound from the measured per-item cost, not an estimate (see gasBound). */
  gasBounded?: boolean;
}

export interface SignedTx extends PreparedTx {
  raw: Hex;
  hash: Hash;
}

/** Sends every JSON-RPC request through the breaker, and counts outcomes. */
function guardedHttp(url: string, timeoutMs: number, breaker: CircuitBreakerPolicy, metrics: Metrics): Transport {
  const base = http(url, { timeout: timeoutMs, retryCount: 0 }); // retries belong to callers, with backoff
  return (params) => {
    const transport = base(params);
    return {
      ...transport,
      request: async (args: Parameters<typeof transport.request>[0]) => {
        try {
          const result = await breaker.execute(() => transport.request(args));
          metrics.chainCalls.inc({ outcome: "ok" });
          return result;
        } catch (err) {
          metrics.chainCalls.inc({ outcome: "error" });
          throw err;
        }
      },
    } as ReturnType<Transport>;
  };
}

/** Everything the adapter asks of the chain, in the chain's own terms. */
export class ChainClient {
  readonly client: PublicClient;
  readonly signer: PrivateKeyAccount;
  readonly chainId: number;
  readonly token: Address;
  readonly deployBlock: bigint;
  private readonly logSpan: bigint;
  private readonly breaker: CircuitBreakerPolicy;
  /** The highest block number the node has told us. */
  private lastSeenHead = 0n;
  /** Market fees for new transactions, shared by every lane (see fees()). */
  private shared: { fees?: { at: number; fees: Promise<Fees> } } = {};

  private constructor(
    client: PublicClient,
    signer: PrivateKeyAccount,
    chainId: number,
    token: Address,
    deployBlock: bigint,
    logSpan: bigint,
    breaker: CircuitBreakerPolicy,
  ) {
    this.logSpan = logSpan;
    this.breaker = breaker;
    this.client = client;
    this.signer = signer;
    this.chainId = chainId;
    this.token = token;
    this.deployBlock = deployBlock;
  }

  static async connect(opts: {
    rpcUrl: string;
    rpcTimeoutMs: number;
    signerKey: Hex;
    tokenAddress?: Address;
    /** Where to start looking for the token's events when TOKEN_ADDRESS is given. */
    tokenDeployBlock?: bigint;
    logQueryBlocks: number;
    breaker: CircuitBreakerPolicy;
    metrics: Metrics;
    deploymentsDir?: string;
  }): Promise<ChainClient> {
    const client = createPublicClient({
      transport: guardedHttp(opts.rpcUrl, opts.rpcTimeoutMs, opts.breaker, opts.metrics),
    }) as PublicClient;
    const chainId = await client.getChainId();
    let token = opts.tokenAddress;
    let deployBlock = opts.tokenDeployBlock ?? 0n;
    if (!token) {
      const deployment = await readDeployment(chainId, opts.deploymentsDir);
      if (!deployment) {
        throw new Error(`no TOKEN_ADDRESS and no deployments/${chainId}.json: run \`npm run deploy\` first`);
      }
      token = deployment.address;
      deployBlock = BigInt(deployment.deployBlock);
    }
    const code = await client.getCode({ address: token });
    if (!code || code === "0x") throw new Error(`no contract at ${token} on chain ${chainId}: deploy the token first`);
    return new ChainClient(client, privateKeyToAccount(opts.signerKey), chainId, token, deployBlock, BigInt(opts.logQueryBlocks), opts.breaker);
  }

  /** The same chain and node connection, signing with another key (one per nonce lane). */
  withSigner(key: Hex): ChainClient {
    const lane = new ChainClient(this.client, privateKeyToAccount(key), this.chainId, this.token, this.deployBlock, this.logSpan, this.breaker);
    lane.lastSeenHead = this.lastSeenHead;
    lane.shared = this.shared;
    return lane;
  }

  get signerAddress(): Address {
    return this.signer.address;
  }

  /** Nonce for the next transaction, counting those in the node's mempool. */
  pendingNonce(): Promise<number> {
    return this.client.getTransactionCount({ address: this.signer.address, blockTag: "pending" });
  }

  minedNonce(): Promise<number> {
    return this.client.getTransactionCount({ address: this.signer.address, blockTag: "latest" });
  }

  async balanceOf(address: Address): Promise<{ balance: bigint; blockNumber: bigint }> {
    const blockNumber = await this.client.getBlockNumber({ cacheTime: 0 });
    const balance = await this.client.readContract({
      address: this.token,
      abi: cashbackTokenAbi,
      functionName: "balanceOf",
      args: [address],
      blockNumber,
    });
    return { balance, blockNumber };
  }

  /**
   * Encodes and prices the mints. With `estimate`, a mint the contract would reject throws here,
   * before signing. Without, the gas is bounded from the measured cost per item (gasBound), which
   * saves an eth_estimateGas that costs the node about as much as the mining itself; a refusal
   * then shows as a reverted transaction, and its mints come back to be estimated (Settlement).
   */
  async prepareMints(mints: readonly MintCall[], nonce: bigint, opts: { estimate?: boolean } = {}): Promise<PreparedTx> {
    const { kind, data } = encodeMints(mints);
    if (opts.estimate ?? true) return this.prepareCall(kind, data, nonce);
    const fees = await this.fees();
    return { kind, nonce, data, gas: gasBound(mints.length), gasBounded: true, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas };
  }

  /** Encodes and prices a clawback; a refusal (used refId, low balance) throws here, before signing. */
  prepareClawback(clawback: ClawbackCall, nonce: bigint): Promise<PreparedTx> {
    const { kind, data } = encodeClawback(clawback);
    return this.prepareCall(kind, data, nonce);
  }

  private async prepareCall(kind: TxKind, data: Hex, nonce: bigint): Promise<PreparedTx> {
    const [estimate, fees] = await Promise.all([
      // The address, not the local account: viem would otherwise fetch chain id, nonce and fees
      // one after another to fill a transaction that estimation does not need.
      this.client.estimateGas({ account: this.signer.address, to: this.token, data }).catch((err: unknown) => {
        throw asContractRejection(err) ?? err;
      }),
      this.fees(),
    ]);
    return {
      kind,
      nonce,
      data,
      gas: (estimate * 12n) / 10n, // headroom: state can change between estimate and inclusion
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    };
  }

  /**
   * The market's fees (viem: base fee x 1.2 + priority fee), asked of the node at most once per
   * FEE_CACHE_MS for all lanes: two JSON-RPC calls saved per round. The 20% headroom covers a
   * block or so of base-fee rise; a transaction that falls behind is replaced by the monitor.
   */
  fees(): Promise<Fees> {
    const cached = this.shared.fees;
    if (cached && Date.now() - cached.at < FEE_CACHE_MS) return cached.fees;
    const fees = this.client.estimateFeesPerGas().then((f) => ({ maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas }));
    this.shared.fees = { at: Date.now(), fees };
    fees.catch(() => {
      if (this.shared.fees?.fees === fees) this.shared.fees = undefined; // a failure is not remembered
    });
    return fees;
  }

  async sign(tx: PreparedTx): Promise<SignedTx> {
    const raw = await this.signer.signTransaction({
      type: "eip1559",
      chainId: this.chainId,
      nonce: Number(tx.nonce),
      to: tx.to ?? this.token,
      data: tx.data,
      gas: tx.gas,
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    });
    return { ...tx, raw, hash: keccak256(raw) };
  }

  async broadcast(raw: Hex): Promise<Hash> {
    return this.client.sendRawTransaction({ serializedTransaction: raw });
  }

  receipt(hash: Hash): Promise<TransactionReceipt | undefined> {
    return this.client.getTransactionReceipt({ hash }).catch((err: Error) => {
      if (isReceiptNotFound(err)) return undefined;
      throw err;
    });
  }

  /** Whether the node still knows the transaction (mined or in its mempool). */
  async isKnown(hash: Hash): Promise<boolean> {
    return this.client.getTransaction({ hash }).then(
      () => true,
      (err: Error) => {
        if (isTransactionNotFound(err)) return false;
        throw err;
      },
    );
  }

  async blockNumber(): Promise<bigint> {
    const head = await this.client.getBlockNumber({ cacheTime: 0 });
    if (head > this.lastSeenHead) this.lastSeenHead = head;
    return head;
  }

  /**
   * The chain's head when the node answers within `waitMs`, else the highest block it told us
   * before: for answers the database can give without the chain (e.g. a confirmed mint's
   * confirmations, which then count at least up to what we saw).
   */
  async headOrLastSeen(waitMs = 1_000): Promise<bigint> {
    if (chainDown(this.breaker)) return this.lastSeenHead;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, waitMs, undefined)));
    const head = await Promise.race([this.blockNumber().catch(() => undefined), late]);
    clearTimeout(timer);
    return head ?? this.lastSeenHead;
  }

  /** Whether each id is used, in order; "pending" also counts transactions in the mempool. */
  mintIdsUsed(mintIds: readonly Hex[], blockTag: "latest" | "pending" = "latest"): Promise<boolean[]> {
    return this.idsUsed("mintIdUsed", mintIds, blockTag);
  }

  /** Whether each clawback refId is used, in order; "pending" also counts the mempool. */
  refIdsUsed(refIds: readonly Hex[], blockTag: "latest" | "pending" = "latest"): Promise<boolean[]> {
    return this.idsUsed("refIdUsed", refIds, blockTag);
  }

  private async idsUsed(functionName: "mintIdUsed" | "refIdUsed", ids: readonly Hex[], blockTag: "latest" | "pending"): Promise<boolean[]> {
    const used: boolean[] = [];
    for (let i = 0; i < ids.length; i += 50) {
      const chunk = ids.slice(i, i + 50); // bounded fan-out towards the node
      used.push(...(await Promise.all(chunk.map((id) => this.client.readContract({ address: this.token, abi: cashbackTokenAbi, functionName, args: [id], blockTag })))));
    }
    return used;
  }

  /** The holder's balance at a given block (e.g. the block where a clawback reverted). */
  balanceAt(address: Address, blockNumber: bigint): Promise<bigint> {
    return this.client.readContract({ address: this.token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [address], blockNumber });
  }

  /**
   * The mined transactions that minted these ids, found by the event's indexed topic. Logs are
   * read newest first in spans of `logSpan` blocks (providers cap eth_getLogs ranges), stopping
   * once every id is found.
   */
  findMints(mintIds: readonly Hex[]): Promise<Map<Hex, FoundEvent>> {
    return this.findEvents(mintIds, (from, to, wanted) =>
      this.client
        .getContractEvents({ address: this.token, abi: cashbackTokenAbi, eventName: "CashbackMinted", args: { mintId: wanted }, fromBlock: from, toBlock: to })
        .then((logs) => logs.map((l) => ({ id: l.args.mintId, txHash: l.transactionHash, blockNumber: l.blockNumber }))),
    );
  }

  /** The mined transactions that clawed back these refIds (CashbackClawedBack), like findMints. */
  findClawbacks(refIds: readonly Hex[]): Promise<Map<Hex, FoundEvent>> {
    return this.findEvents(refIds, (from, to, wanted) =>
      this.client
        .getContractEvents({ address: this.token, abi: cashbackTokenAbi, eventName: "CashbackClawedBack", args: { refId: wanted }, fromBlock: from, toBlock: to })
        .then((logs) => logs.map((l) => ({ id: l.args.refId, txHash: l.transactionHash, blockNumber: l.blockNumber }))),
    );
  }

  private async findEvents(
    ids: readonly Hex[],
    query: (from: bigint, to: bigint, wanted: Hex[]) => Promise<{ id: Hex | undefined; txHash: Hash; blockNumber: bigint }[]>,
  ): Promise<Map<Hex, FoundEvent>> {
    const found = new Map<Hex, FoundEvent>();
    const wanted = new Set(ids);
    let to = wanted.size ? await this.blockNumber() : -1n;
    while (wanted.size > 0 && to >= this.deployBlock) {
      const from = to - this.logSpan + 1n > this.deployBlock ? to - this.logSpan + 1n : this.deployBlock;
      for (const hit of await query(from, to, [...wanted])) {
        if (hit.id && wanted.delete(hit.id)) found.set(hit.id, { txHash: hit.txHash, blockNumber: hit.blockNumber });
      }
      to = from - 1n;
    }
    return found;
  }
}

/**
 * Gas enough for `items` mints without asking the node: measured (bench:gas) at ~98k for a lone
 * first-ever mint and ~51k per entry of a mintBatch to fresh recipients; the bound is the worst
 * case plus ~10%. Unused gas is not charged. 200 entries stay under the 2^24 per-transaction cap.
 */
export function gasBound(items: number): bigint {
  return 60_000n + 56_000n * BigInt(items);
}

const FEE_CACHE_MS = 1_000;

export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** Where an event of ours was mined. */
export interface FoundEvent {
  txHash: Hash;
  blockNumber: bigint;
}
