import { ConfigError, int, isLoopback, optionalStr, str, url, resolveSecretFiles } from "@cashback/runtime";
import type { RetryPolicy } from "./requests/retry-policy.ts";

const DEV_ADAPTER_TOKEN = "dev-adapter-token";

export interface ConsumerConfig {
  /** GET /healthz, /readyz, /metrics. */
  host: string;
  port: number;
  databaseUrl: string;
  natsUrl: string;
  adapterUrl: string;
  /** Bearer token for the adapter; the dev token is only accepted for a loopback adapter. */
  adapterToken: string;
  /** Deadline of one adapter call (the adapter itself answers SUBMITTED after its receipt timeout, 30 s). */
  adapterTimeoutMs: number;
  /** Adapter calls in flight at once (MintBatch, MintToken, Clawback, GetTransaction). */
  concurrency: number;
  /** Mints per MintBatch call; 1 sends one MintToken per event. */
  mintBatchMax: number;
  /** Messages taken from JetStream and recorded per database transaction. */
  fetchBatch: number;
  /** JetStream durable consumer settings. */
  maxDeliver: number;
  ackWaitMs: number;
  maxAckPending: number;
  retry: RetryPolicy;
  /** Fallback poll for due work when nothing wakes the dispatcher (other instances, timers). */
  pollIntervalMs: number;
}

/** Reads the environment; every setting has a working local default, a bad one names its variable. */
export function loadConfig(given: Record<string, string | undefined> = process.env): ConsumerConfig {
  // Secrets from the environment or from <NAME>_FILE (never logged).
  const env = resolveSecretFiles(given, ["ADAPTER_AUTH_TOKEN", "CONSUMER_DATABASE_URL", "NATS_URL"]);
  const adapterUrl = url(env, "ADAPTER_URL", "http://127.0.0.1:50051");
  const adapterHost = new URL(adapterUrl).hostname.replace(/^\[|\]$/g, "");
  const explicitToken = optionalStr(env, "ADAPTER_AUTH_TOKEN");
  if (!explicitToken && !isLoopback(adapterHost)) {
    throw new ConfigError("ADAPTER_AUTH_TOKEN is required when ADAPTER_URL is not a loopback address");
  }
  const natsUrl = url(env, "NATS_URL", "nats://127.0.0.1:4222");
  if (!/^(nats|tls):$/.test(new URL(natsUrl).protocol)) throw new ConfigError("NATS_URL must be a nats:// or tls:// URL");
  const databaseUrl = url(env, "CONSUMER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mint_consumer");
  if (!/^postgres(ql)?:$/.test(new URL(databaseUrl).protocol)) throw new ConfigError("CONSUMER_DATABASE_URL must be a postgresql:// URL");

  const baseMs = int(env, "CONSUMER_RETRY_BASE_MS", 500, { min: 1, max: 600_000 });
  const capMs = int(env, "CONSUMER_RETRY_CAP_MS", 60_000, { min: 1, max: 3_600_000 });
  if (capMs < baseMs) throw new ConfigError(`CONSUMER_RETRY_CAP_MS (${capMs}) must not be below CONSUMER_RETRY_BASE_MS (${baseMs})`);
  const ackWaitMs = int(env, "CONSUMER_ACK_WAIT_MS", 30_000, { min: 1_000, max: 3_600_000 });
  const adapterTimeoutMs = int(env, "CONSUMER_ADAPTER_TIMEOUT_MS", 60_000, { min: 100, max: 600_000 });

  return {
    host: str(env, "CONSUMER_HOST", "127.0.0.1"),
    port: int(env, "CONSUMER_PORT", 3100, { max: 65535 }),
    databaseUrl,
    natsUrl,
    adapterUrl,
    adapterToken: explicitToken ?? DEV_ADAPTER_TOKEN,
    adapterTimeoutMs,
    // 8: with 4, calls waiting ~1 s each for their transactions capped bench:pipeline at ~290
    // cashbacks/s with a core idle (docs/benchmarks.md).
    concurrency: int(env, "CONSUMER_CONCURRENCY", 8, { min: 1, max: 64 }),
    // The adapter takes at most 200 entries per MintBatch.
    mintBatchMax: int(env, "CONSUMER_MINT_BATCH_MAX", 200, { min: 1, max: 200 }),
    fetchBatch: int(env, "CONSUMER_FETCH_BATCH", 100, { min: 1, max: 1_000 }),
    maxDeliver: int(env, "CONSUMER_MAX_DELIVER", 20, { min: 2, max: 1_000 }),
    ackWaitMs,
    maxAckPending: int(env, "CONSUMER_MAX_ACK_PENDING", 1_000, { min: 1, max: 100_000 }),
    retry: {
      maxAttempts: int(env, "CONSUMER_RETRY_MAX_ATTEMPTS", 20, { min: 1, max: 1_000 }),
      maxAgeMs: int(env, "CONSUMER_RETRY_MAX_AGE_MS", 3_600_000, { min: 1, max: 30 * 24 * 3_600_000 }),
      baseMs,
      capMs,
      reconcileMs: int(env, "CONSUMER_RECONCILE_INTERVAL_MS", 5_000, { min: 50, max: 3_600_000 }),
    },
    pollIntervalMs: int(env, "CONSUMER_POLL_INTERVAL_MS", 1_000, { min: 10, max: 60_000 }),
  };
}
