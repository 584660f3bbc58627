import { ConfigError, int, isLoopback, optionalStr, str, url, resolveSecretFiles } from "@cashback/runtime";
import { getAddress, isAddress } from "viem";
import { MAX_RATE, WEI_PER_CBK } from "./rules/money.ts";

export const DEV_ADMIN_KEY = "dev-admin-key";
export const DEV_ADAPTER_TOKEN = "dev-adapter-token";

/** 1 CBK per major unit for 2-decimal currencies: 10^16 wei per cent. A development default. */
const DEFAULT_RATES = `USD:${WEI_PER_CBK / 100n},EUR:${WEI_PER_CBK / 100n},GBP:${WEI_PER_CBK / 100n}`;

export interface ApiConfig {
  host: string;
  port: number;
  databaseUrl: string;
  /** Admin key (Authorization: Bearer <key>): creates merchants, keys and platform-wide rules. */
  adminKey: string;
  usingDevAdminKey: boolean;
  natsUrl: string;
  adapterUrl: string;
  adapterAuthToken: string;
  /** How long GetBalance may take before the ledger says the balance is unavailable. */
  adapterTimeoutMs: number;
  /** Wei per minor unit of each accepted currency (ISO 4217). */
  rates: ReadonlyMap<string, bigint>;
  /** Idempotency-Key records are kept at least this long. */
  idempotencyTtlMs: number;
  /** Requests per key (or per IP without a key) in each window. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  bodyLimitBytes: number;
  /** node-postgres pool of the purchase write path and the relay. */
  dbPoolSize: number;
  /** Users (wallet, merchant, cap usage) kept in memory by the purchase writer. */
  userCacheSize: number;
  /** Purchases written by one statement at most (concurrent purchases share statements). */
  writeBatchMax: number;
  /** Purchase statements running at once; purchases arriving meanwhile wait for the next one. */
  writeStatements: number;
  /** Times a capped purchase may lose its guard to a concurrent one before it locks the user row. */
  capOptimisticAttempts: number;
  /** Published outbox rows are kept this long (the purchase trace shows them), then pruned. */
  outboxRetentionMs: number;
  /** Run the outbox relay and the result consumer in this process (default yes). */
  relayEnabled: boolean;
  /** How long the relay lets events gather between back-to-back passes (fewer, bigger passes). */
  relayLingerMs: number;
  /** The shopper page (/app) and its sign-in with Ethereum (/v1/shopper). */
  shopper: ShopperConfig;
}

export interface ShopperConfig {
  /** The chain the page adds to the wallet and every sign-in message must name. */
  chainId: number;
  chainName: string;
  /** The API's own JSON-RPC endpoint: signature checks of contract wallets (ERC-1271/6492). */
  chainRpcUrl: string;
  /** What the page gives the wallet in wallet_addEthereumChain: reachable from the shopper's browser. */
  walletRpcUrl: string;
  /** Block explorer for transaction links (none on the local chain). */
  explorerUrl: string | undefined;
  /** CashbackToken's address; when unset, read from deployments/<chainId>.json on each request. */
  tokenAddress: string | undefined;
  /**
   * Origins the page is served from (scheme://host[:port]): a sign-in message must name one of
   * them as its URI and that origin's host as its domain. Unset: http://127.0.0.1:<port> and
   * http://localhost:<port> of the port the API listens on.
   */
  publicOrigins: string[] | undefined;
  nonceTtlMs: number;
  sessionTtlMs: number;
}

export function loadConfig(given: Record<string, string | undefined> = process.env): ApiConfig {
  // Secrets from the environment or from <NAME>_FILE (never logged).
  const env = resolveSecretFiles(given, ["API_ADMIN_KEY", "ADAPTER_AUTH_TOKEN", "API_DATABASE_URL", "NATS_URL", "CHAIN_RPC_URL"]);
  const host = str(env, "API_HOST", "127.0.0.1");
  const adminKey = optionalStr(env, "API_ADMIN_KEY");
  // The development key (the default, or named explicitly as `npm start` does) only on loopback.
  const usingDevAdminKey = adminKey === undefined || adminKey === DEV_ADMIN_KEY;
  if (usingDevAdminKey && !isLoopback(host)) throw new ConfigError("API_ADMIN_KEY (other than the development key) is required when API_HOST is not a loopback address");
  if (!usingDevAdminKey && adminKey.length < 16) throw new ConfigError("API_ADMIN_KEY must be at least 16 characters");

  const adapterUrl = url(env, "ADAPTER_URL", "http://127.0.0.1:50051");
  const adapterToken = optionalStr(env, "ADAPTER_AUTH_TOKEN");
  if (!adapterToken && !isLoopback(new URL(adapterUrl).hostname.replace(/^\[|\]$/g, ""))) {
    throw new ConfigError("ADAPTER_AUTH_TOKEN is required when ADAPTER_URL is not a loopback address");
  }
  const natsUrl = url(env, "NATS_URL", "nats://127.0.0.1:4222");
  if (!/^(nats|tls):$/.test(new URL(natsUrl).protocol)) throw new ConfigError("NATS_URL must be a nats:// or tls:// URL");
  const databaseUrl = url(env, "API_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cashback_api");
  if (!/^postgres(ql)?:$/.test(new URL(databaseUrl).protocol)) throw new ConfigError("API_DATABASE_URL must be a postgresql:// URL");
  const dbPoolSize = int(env, "API_DB_POOL_SIZE", 10, { min: 2, max: 200 });

  return {
    host,
    port: int(env, "API_PORT", 3000, { max: 65535 }),
    databaseUrl,
    adminKey: adminKey ?? DEV_ADMIN_KEY,
    usingDevAdminKey,
    natsUrl,
    adapterUrl,
    adapterAuthToken: adapterToken ?? DEV_ADAPTER_TOKEN,
    adapterTimeoutMs: int(env, "ADAPTER_TIMEOUT_MS", 2_000, { min: 50, max: 60_000 }),
    rates: parseRates(str(env, "API_CASHBACK_RATES", DEFAULT_RATES)),
    idempotencyTtlMs: int(env, "API_IDEMPOTENCY_TTL_HOURS", 24, { min: 1, max: 24 * 365 }) * 3_600_000,
    rateLimitMax: int(env, "API_RATE_LIMIT_MAX", 6_000, { min: 1 }),
    rateLimitWindowMs: int(env, "API_RATE_LIMIT_WINDOW_MS", 60_000, { min: 100 }),
    bodyLimitBytes: int(env, "API_BODY_LIMIT_BYTES", 64 * 1024, { min: 1_024, max: 10 * 1024 * 1024 }),
    dbPoolSize,
    userCacheSize: int(env, "API_USER_CACHE_SIZE", 100_000, { min: 0 }),
    writeBatchMax: int(env, "API_WRITE_BATCH_MAX", 64, { min: 1, max: 1_000 }),
    writeStatements: int(env, "API_WRITE_STATEMENTS", 2, { min: 1, max: 100 }),
    capOptimisticAttempts: int(env, "API_CAP_OPTIMISTIC_ATTEMPTS", 4, { max: 100 }),
    outboxRetentionMs: int(env, "API_OUTBOX_RETENTION_HOURS", 24 * 7, { min: 1 }) * 3_600_000,
    relayEnabled: bool(env, "API_RELAY_ENABLED", true),
    relayLingerMs: int(env, "API_RELAY_LINGER_MS", 20, { max: 5_000 }),
    shopper: loadShopperConfig(env),
  };
}

function loadShopperConfig(env: Record<string, string | undefined>): ShopperConfig {
  const chainId = int(env, "CHAIN_ID", 31337, { min: 1, max: 2 ** 53 - 1 });
  const chainRpcUrl = httpUrl(env, "CHAIN_RPC_URL", "http://127.0.0.1:8545");
  const tokenAddress = optionalStr(env, "TOKEN_ADDRESS");
  if (tokenAddress !== undefined && !isAddress(tokenAddress, { strict: false })) throw new ConfigError("TOKEN_ADDRESS must be an address (0x + 40 hex digits)");
  const explorer = optionalStr(env, "SHOPPER_EXPLORER_URL");
  const origins = optionalStr(env, "API_PUBLIC_ORIGINS");
  return {
    chainId,
    chainName: str(env, "SHOPPER_CHAIN_NAME", chainId === 31337 ? "Hardhat local" : `Chain ${chainId}`),
    chainRpcUrl,
    walletRpcUrl: optionalStr(env, "SHOPPER_RPC_URL") ? httpUrl(env, "SHOPPER_RPC_URL", chainRpcUrl) : publishableRpcUrl(chainRpcUrl),
    explorerUrl: explorer ? httpUrl(env, "SHOPPER_EXPLORER_URL", explorer).replace(/\/+$/, "") : undefined,
    tokenAddress: tokenAddress ? getAddress(tokenAddress) : undefined,
    publicOrigins: origins === undefined ? undefined : parseOrigins(origins),
    nonceTtlMs: int(env, "API_SHOPPER_NONCE_TTL_SECONDS", 300, { min: 10, max: 3_600 }) * 1_000,
    sessionTtlMs: int(env, "API_SHOPPER_SESSION_TTL_MINUTES", 30, { min: 1, max: 24 * 60 }) * 60_000,
  };
}

/** "https://cashback.example.com,http://localhost:3000" -> origins, each exactly scheme://host[:port]. */
export function parseOrigins(value: string): string[] {
  const origins = value.split(",").map((o) => o.trim()).filter(Boolean);
  if (origins.length === 0) throw new ConfigError("API_PUBLIC_ORIGINS must list at least one origin");
  for (const origin of origins) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError(`API_PUBLIC_ORIGINS: "${origin}" is not a URL`);
    }
    if (!/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(`API_PUBLIC_ORIGINS: "${origin}" must be an origin, scheme://host[:port] with no path (e.g. https://cashback.example.com)`);
    }
  }
  return origins;
}

function httpUrl(env: Record<string, string | undefined>, name: string, fallback: string): string {
  const value = url(env, name, fallback);
  if (!/^https?:$/.test(new URL(value).protocol)) throw new ConfigError(`${name} must be an http:// or https:// URL`);
  return value;
}

/** "USD:10000000000000000,EUR:..." -> wei per minor unit by currency. */
export function parseRates(value: string): Map<string, bigint> {
  const rates = new Map<string, bigint>();
  for (const part of value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const match = /^([A-Z]{3}):([1-9][0-9]*)$/.exec(part);
    if (!match) throw new ConfigError(`API_CASHBACK_RATES: "${part}" is not CUR:wei_per_minor_unit (e.g. USD:10000000000000000)`);
    const rate = BigInt(match[2]!);
    if (rate > MAX_RATE) throw new ConfigError(`API_CASHBACK_RATES: the rate for ${match[1]} is above ${MAX_RATE} wei per minor unit`);
    if (rates.has(match[1]!)) throw new ConfigError(`API_CASHBACK_RATES: ${match[1]} is listed twice`);
    rates.set(match[1]!, rate);
  }
  if (rates.size === 0) throw new ConfigError("API_CASHBACK_RATES must list at least one currency");
  return rates;
}

function bool(env: Record<string, string | undefined>, name: string, fallback: boolean): boolean {
  const value = optionalStr(env, name);
  if (value === undefined) return fallback;
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

/**
 * The shopper page hands its RPC URL to every browser. CHAIN_RPC_URL may carry a provider's key
 * (in the user info, path or query), so it is only reused when it has none of them.
 */
function publishableRpcUrl(chainRpcUrl: string): string {
  const u = new URL(chainRpcUrl);
  if (u.username || u.password || (u.pathname !== "/" && u.pathname !== "") || u.search) {
    throw new ConfigError("SHOPPER_RPC_URL is required when CHAIN_RPC_URL has credentials, a path or a query (the shopper page would publish them)");
  }
  return chainRpcUrl;
}
