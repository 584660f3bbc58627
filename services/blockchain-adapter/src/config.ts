import { getAddress, isAddress, type Address, type Hex } from "viem";
import { ConfigError, int, isLoopback, optionalStr, str, url, resolveSecretFiles } from "@cashback/runtime";
import { DEV_ADAPTER_KEY, LOCAL_CHAIN_ID } from "@cashback/token";
import type { ServerLimits } from "./rpc/server.ts";
import type { MetadataLimits } from "./validation.ts";

const DEV_AUTH_TOKEN = "dev-adapter-token";

export interface AdapterConfig {
  host: string;
  port: number;
  /** Bearer token every RPC must present. */
  authToken: string;
  databaseUrl: string;
  rpcUrl: string;
  /** The first of signerKeys (the only one unless ADAPTER_SIGNER_KEYS names several). */
  signerKey: Hex;
  /**
   * One nonce lane per key: each has its own wallet_nonces row, sender and monitor, so lanes send
   * in parallel and one stuck transaction holds back only its own lane. Each needs MINTER_ROLE.
   */
  signerKeys: Hex[];
  /** True when a signer key is the public dev key, allowed on the local chain only. */
  usingDevKey: boolean;
  /** The variable the signer keys came from (named in errors about them). */
  signerKeysFrom: "ADAPTER_SIGNER_KEYS" | "ADAPTER_PRIVATE_KEY";
  /** Token address; when unset it is read from deployments/<chainId>.json. */
  tokenAddress?: Address;
  /** First block to search for the token's events when tokenAddress is given (default 0). */
  tokenDeployBlock?: bigint;
  /** Widest block range per eth_getLogs call (providers cap it). */
  logQueryBlocks: number;
  confirmations: number;
  /** How long MintToken waits for a receipt before answering SUBMITTED. */
  receiptTimeoutMs: number;
  batchMax: number;
  /** "bound": mint gas from the per-item bound, estimated only after a revert; "always": estimate each batch. */
  gasEstimate: "bound" | "always";
  /** Extra time the dispatcher waits to fill a batch (0: send what is queued now). */
  batchWindowMs: number;
  monitorIntervalMs: number;
  /** A transaction pending this long without a receipt is re-sent or replaced with higher fees. */
  stuckAfterMs: number;
  rpcTimeoutMs: number;
  /** Ceiling for a replacement's maxFeePerGas, in wei (MAX_FEE_GWEI). */
  maxFeePerGas: bigint;
  breakerFailures: number;
  breakerHalfOpenAfterMs: number;
  /** What one client may cost the server (sizes, timeouts, connections). */
  limits: ServerLimits;
  /** Size of a mint's or clawback's free-form metadata. */
  metadata: MetadataLimits;
}

const MiB = 1024 * 1024;

export function loadConfig(given: Record<string, string | undefined> = process.env): AdapterConfig {
  // Secrets from the environment or from <NAME>_FILE (never logged).
  const env = resolveSecretFiles(given, ["ADAPTER_AUTH_TOKEN", "ADAPTER_PRIVATE_KEY", "ADAPTER_SIGNER_KEYS", "ADAPTER_DATABASE_URL", "CHAIN_RPC_URL"]);
  const host = str(env, "ADAPTER_HOST", "127.0.0.1");
  const explicitToken = optionalStr(env, "ADAPTER_AUTH_TOKEN");
  if (!explicitToken && !isLoopback(host)) {
    throw new ConfigError("ADAPTER_AUTH_TOKEN is required when ADAPTER_HOST is not a loopback address");
  }
  const signerKeys = parseSignerKeys(env);
  const signerKey = signerKeys[0]!;
  const tokenAddress = optionalStr(env, "TOKEN_ADDRESS");
  if (tokenAddress && !isAddress(tokenAddress)) throw new ConfigError("TOKEN_ADDRESS must be an address");

  const limits: ServerLimits = {
    readMaxBytes: int(env, "ADAPTER_READ_MAX_BYTES", 4 * MiB, { min: 1024, max: 64 * MiB }),
    maxHeaderBytes: int(env, "ADAPTER_MAX_HEADER_BYTES", 16 * 1024, { min: 1024, max: MiB }),
    maxConnections: int(env, "ADAPTER_MAX_CONNECTIONS", 256, { min: 1, max: 100_000 }),
    maxStreamsPerConnection: int(env, "ADAPTER_MAX_STREAMS_PER_CONNECTION", 100, { min: 1, max: 10_000 }),
    handshakeTimeoutMs: int(env, "ADAPTER_HANDSHAKE_TIMEOUT_MS", 10_000, { min: 100 }),
    requestTimeoutMs: int(env, "ADAPTER_REQUEST_TIMEOUT_MS", 30_000, { min: 100 }),
    idleTimeoutMs: int(env, "ADAPTER_IDLE_TIMEOUT_MS", 60_000, { min: 100 }),
  };
  // Node's HTTP/1.1 server refuses a headers timeout longer than the request timeout.
  if (limits.handshakeTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError("ADAPTER_HANDSHAKE_TIMEOUT_MS must not exceed ADAPTER_REQUEST_TIMEOUT_MS");
  }

  return {
    host,
    port: int(env, "ADAPTER_PORT", 50051, { max: 65535 }),
    authToken: explicitToken ?? DEV_AUTH_TOKEN,
    databaseUrl: url(env, "ADAPTER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/blockchain_adapter"),
    rpcUrl: url(env, "CHAIN_RPC_URL", "http://127.0.0.1:8545"),
    signerKey,
    signerKeys,
    // The public dev key (Hardhat account #1) is only accepted on the local chain (see app.ts).
    usingDevKey: signerKeys.some((k) => k.toLowerCase() === DEV_ADAPTER_KEY),
    signerKeysFrom: optionalStr(env, "ADAPTER_SIGNER_KEYS") === undefined ? "ADAPTER_PRIVATE_KEY" : "ADAPTER_SIGNER_KEYS",
    tokenAddress: tokenAddress ? getAddress(tokenAddress) : undefined,
    tokenDeployBlock: optionalStr(env, "TOKEN_DEPLOY_BLOCK") ? BigInt(int(env, "TOKEN_DEPLOY_BLOCK", 0)) : undefined,
    logQueryBlocks: int(env, "LOG_QUERY_BLOCKS", 10_000, { min: 1 }),
    confirmations: int(env, "CHAIN_CONFIRMATIONS", 1, { min: 1, max: 64 }),
    receiptTimeoutMs: int(env, "RECEIPT_TIMEOUT_MS", 30_000, { min: 100 }),
    // 200 mints to fresh wallets use ~10.2M gas, under the 16.7M per-transaction cap (EIP-7825).
    batchMax: int(env, "MINT_BATCH_MAX", 100, { min: 1, max: 200 }),
    batchWindowMs: int(env, "MINT_BATCH_WINDOW_MS", 0, { max: 10_000 }),
    gasEstimate: gasEstimateMode(env),
    monitorIntervalMs: int(env, "TX_MONITOR_INTERVAL_MS", 2_000, { min: 50 }),
    stuckAfterMs: int(env, "TX_STUCK_AFTER_MS", 30_000, { min: 100 }),
    rpcTimeoutMs: int(env, "RPC_TIMEOUT_MS", 5_000, { min: 100 }),
    maxFeePerGas: BigInt(int(env, "MAX_FEE_GWEI", 500, { min: 1 })) * 10n ** 9n,
    breakerFailures: int(env, "BREAKER_FAILURES", 5, { min: 1 }),
    breakerHalfOpenAfterMs: int(env, "BREAKER_HALF_OPEN_AFTER_MS", 5_000, { min: 10 }),
    limits,
    metadata: {
      maxEntries: int(env, "METADATA_MAX_ENTRIES", 32, { max: 1_000 }),
      maxKeyChars: int(env, "METADATA_MAX_KEY_CHARS", 64, { min: 1, max: 4_096 }),
      maxValueChars: int(env, "METADATA_MAX_VALUE_CHARS", 512, { min: 1, max: 65_536 }),
    },
  };
}

/** Why start-up stops when a signer key is the public dev key on a chain other than the local one. */
export function devKeyRefused(config: Pick<AdapterConfig, "signerKeysFrom">): string {
  const source = config.signerKeysFrom === "ADAPTER_SIGNER_KEYS" ? "ADAPTER_SIGNER_KEYS holds" : "ADAPTER_PRIVATE_KEY is unset or holds";
  return `${source} the public dev key: it is only allowed on chain ${LOCAL_CHAIN_ID}`;
}

const KEY = /^0x[0-9a-fA-F]{64}$/;

/** ADAPTER_SIGNER_KEYS (comma-separated) when set, else the one ADAPTER_PRIVATE_KEY (or the dev key). */
function parseSignerKeys(env: Record<string, string | undefined>): Hex[] {
  const list = optionalStr(env, "ADAPTER_SIGNER_KEYS");
  if (list === undefined) {
    const key = str(env, "ADAPTER_PRIVATE_KEY", DEV_ADAPTER_KEY);
    if (!KEY.test(key)) throw new ConfigError("ADAPTER_PRIVATE_KEY must be 32 bytes of 0x-hex");
    return [key as Hex];
  }
  if (optionalStr(env, "ADAPTER_PRIVATE_KEY") !== undefined) throw new ConfigError("set ADAPTER_SIGNER_KEYS or ADAPTER_PRIVATE_KEY, not both");
  const keys = list.split(",").map((k) => k.trim());
  keys.forEach((k, i) => {
    if (!KEY.test(k)) throw new ConfigError(`ADAPTER_SIGNER_KEYS entry ${i + 1} must be 32 bytes of 0x-hex`);
  });
  if (keys.length > 16) throw new ConfigError("ADAPTER_SIGNER_KEYS takes at most 16 keys");
  if (new Set(keys.map((k) => k.toLowerCase())).size !== keys.length) throw new ConfigError("ADAPTER_SIGNER_KEYS lists a key twice");
  return keys as Hex[];
}

function gasEstimateMode(env: Record<string, string | undefined>): "bound" | "always" {
  const mode = str(env, "MINT_GAS_ESTIMATE", "bound");
  if (mode !== "bound" && mode !== "always") throw new ConfigError('MINT_GAS_ESTIMATE must be "bound" or "always"');
  return mode;
}
