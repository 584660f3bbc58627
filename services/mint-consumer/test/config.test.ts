import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";

describe("loadConfig", () => {
  it("works out of the box with local defaults", () => {
    expect(loadConfig({})).toEqual({
      host: "127.0.0.1",
      port: 3100,
      databaseUrl: "postgresql://postgres@127.0.0.1:5432/mint_consumer",
      natsUrl: "nats://127.0.0.1:4222",
      adapterUrl: "http://127.0.0.1:50051",
      adapterToken: "dev-adapter-token",
      adapterTimeoutMs: 60_000,
      concurrency: 8,
      mintBatchMax: 200,
      fetchBatch: 100,
      maxDeliver: 20,
      ackWaitMs: 30_000,
      maxAckPending: 1_000,
      retry: { maxAttempts: 20, maxAgeMs: 3_600_000, baseMs: 500, capMs: 60_000, reconcileMs: 5_000 },
      pollIntervalMs: 1_000,
    });
  });

  it("reads every variable", () => {
    const c = loadConfig({
      CONSUMER_HOST: "0.0.0.0",
      CONSUMER_PORT: "3999",
      CONSUMER_DATABASE_URL: "postgres://u:p@db.internal:5433/mc",
      NATS_URL: "nats://nats.internal:4222",
      ADAPTER_URL: "http://adapter.internal:50051",
      ADAPTER_AUTH_TOKEN: "s3cret",
      CONSUMER_ADAPTER_TIMEOUT_MS: "45000",
      CONSUMER_CONCURRENCY: "8",
      CONSUMER_MINT_BATCH_MAX: "1",
      CONSUMER_FETCH_BATCH: "250",
      CONSUMER_MAX_DELIVER: "5",
      CONSUMER_ACK_WAIT_MS: "10000",
      CONSUMER_MAX_ACK_PENDING: "500",
      CONSUMER_RETRY_MAX_ATTEMPTS: "3",
      CONSUMER_RETRY_MAX_AGE_MS: "60000",
      CONSUMER_RETRY_BASE_MS: "100",
      CONSUMER_RETRY_CAP_MS: "1000",
      CONSUMER_RECONCILE_INTERVAL_MS: "2000",
      CONSUMER_POLL_INTERVAL_MS: "250",
    });
    expect(c).toMatchObject({
      host: "0.0.0.0",
      port: 3999,
      databaseUrl: "postgres://u:p@db.internal:5433/mc",
      natsUrl: "nats://nats.internal:4222",
      adapterUrl: "http://adapter.internal:50051",
      adapterToken: "s3cret",
      adapterTimeoutMs: 45_000,
      concurrency: 8,
      mintBatchMax: 1,
      fetchBatch: 250,
      maxDeliver: 5,
      ackWaitMs: 10_000,
      maxAckPending: 500,
      retry: { maxAttempts: 3, maxAgeMs: 60_000, baseMs: 100, capMs: 1_000, reconcileMs: 2_000 },
      pollIntervalMs: 250,
    });
  });

  it("requires ADAPTER_AUTH_TOKEN when the adapter is not on loopback", () => {
    expect(() => loadConfig({ ADAPTER_URL: "http://adapter.internal:50051" })).toThrow(/ADAPTER_AUTH_TOKEN is required/);
    expect(loadConfig({ ADAPTER_URL: "http://localhost:50051" }).adapterToken).toBe("dev-adapter-token");
    expect(loadConfig({ ADAPTER_URL: "http://[::1]:50051" }).adapterToken).toBe("dev-adapter-token");
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ CONSUMER_PORT: "http" }, /CONSUMER_PORT must be a whole number/],
    [{ CONSUMER_PORT: "70000" }, /CONSUMER_PORT must be between 0 and 65535/],
    [{ CONSUMER_DATABASE_URL: "not a url" }, /CONSUMER_DATABASE_URL must be a URL/],
    [{ CONSUMER_DATABASE_URL: "mysql://x/y" }, /CONSUMER_DATABASE_URL must be a postgresql:\/\/ URL/],
    [{ NATS_URL: "http://127.0.0.1:4222" }, /NATS_URL must be a nats:\/\//],
    [{ ADAPTER_URL: "::" }, /ADAPTER_URL must be a URL/],
    [{ CONSUMER_CONCURRENCY: "0" }, /CONSUMER_CONCURRENCY must be between 1 and 64/],
    [{ CONSUMER_MINT_BATCH_MAX: "201" }, /CONSUMER_MINT_BATCH_MAX must be between 1 and 200/],
    [{ CONSUMER_FETCH_BATCH: "-1" }, /CONSUMER_FETCH_BATCH must be a whole number/],
    [{ CONSUMER_MAX_DELIVER: "1" }, /CONSUMER_MAX_DELIVER must be between 2/],
    [{ CONSUMER_ACK_WAIT_MS: "10" }, /CONSUMER_ACK_WAIT_MS must be between 1000/],
    [{ CONSUMER_RETRY_MAX_ATTEMPTS: "0" }, /CONSUMER_RETRY_MAX_ATTEMPTS must be between 1/],
    [{ CONSUMER_RETRY_MAX_AGE_MS: "1.5" }, /CONSUMER_RETRY_MAX_AGE_MS must be a whole number/],
    [{ CONSUMER_RETRY_BASE_MS: "1000", CONSUMER_RETRY_CAP_MS: "10" }, /CONSUMER_RETRY_CAP_MS \(10\) must not be below CONSUMER_RETRY_BASE_MS \(1000\)/],
    [{ CONSUMER_RECONCILE_INTERVAL_MS: "1" }, /CONSUMER_RECONCILE_INTERVAL_MS must be between 50/],
    [{ CONSUMER_ADAPTER_TIMEOUT_MS: "soon" }, /CONSUMER_ADAPTER_TIMEOUT_MS must be a whole number/],
  ];
  for (const [env, message] of bad) {
    it(`refuses ${JSON.stringify(env)}, naming the variable`, () => expect(() => loadConfig(env)).toThrow(message));
  }
});
