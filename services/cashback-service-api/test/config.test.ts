import { describe, expect, it } from "vitest";
import { ConfigError } from "@cashback/runtime";
import { DEV_ADAPTER_TOKEN, DEV_ADMIN_KEY, loadConfig, parseRates } from "../src/config.ts";

describe("loadConfig", () => {
  it("works out of the box on loopback with development defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: "127.0.0.1",
      port: 3000,
      databaseUrl: "postgresql://postgres@127.0.0.1:5432/cashback_api",
      adminKey: DEV_ADMIN_KEY,
      usingDevAdminKey: true,
      natsUrl: "nats://127.0.0.1:4222",
      adapterUrl: "http://127.0.0.1:50051",
      adapterAuthToken: DEV_ADAPTER_TOKEN,
      idempotencyTtlMs: 24 * 3_600_000,
      bodyLimitBytes: 65_536,
      relayEnabled: true,
      relayLingerMs: 20,
      writeStatements: 2,
      writeBatchMax: 64,
      capOptimisticAttempts: 4,
    });
    expect(c.rates.get("USD")).toBe(10n ** 16n);
  });

  it.each([
    [{ API_PORT: "70000" }, "API_PORT"],
    [{ API_PORT: "abc" }, "API_PORT"],
    [{ API_DATABASE_URL: "not a url" }, "API_DATABASE_URL"],
    [{ API_DATABASE_URL: "mysql://x/y" }, "API_DATABASE_URL"],
    [{ NATS_URL: "http://127.0.0.1:4222" }, "NATS_URL"],
    [{ ADAPTER_URL: "::" }, "ADAPTER_URL"],
    [{ API_ADMIN_KEY: "short" }, "API_ADMIN_KEY"],
    [{ API_HOST: "0.0.0.0" }, "API_ADMIN_KEY"],
    [{ API_HOST: "0.0.0.0", API_ADMIN_KEY: "dev-admin-key" }, "API_ADMIN_KEY"],
    [{ ADAPTER_URL: "http://adapter.internal:50051" }, "ADAPTER_AUTH_TOKEN"],
    [{ API_CASHBACK_RATES: "usd:1" }, "API_CASHBACK_RATES"],
    [{ API_CASHBACK_RATES: "USD:1.5" }, "API_CASHBACK_RATES"],
    [{ API_CASHBACK_RATES: "USD:0" }, "API_CASHBACK_RATES"],
    [{ API_CASHBACK_RATES: "USD:1,USD:2" }, "API_CASHBACK_RATES"],
    [{ API_CASHBACK_RATES: `USD:${10n ** 22n}` }, "API_CASHBACK_RATES"],
    [{ API_IDEMPOTENCY_TTL_HOURS: "0" }, "API_IDEMPOTENCY_TTL_HOURS"],
    [{ API_RATE_LIMIT_MAX: "-1" }, "API_RATE_LIMIT_MAX"],
    [{ API_BODY_LIMIT_BYTES: "10" }, "API_BODY_LIMIT_BYTES"],
    [{ API_RELAY_ENABLED: "maybe" }, "API_RELAY_ENABLED"],
    [{ API_WRITE_STATEMENTS: "0" }, "API_WRITE_STATEMENTS"],
    [{ API_WRITE_BATCH_MAX: "5000" }, "API_WRITE_BATCH_MAX"],
    [{ API_RELAY_LINGER_MS: "x" }, "API_RELAY_LINGER_MS"],
    [{ API_DB_POOL_SIZE: "1" }, "API_DB_POOL_SIZE"],
    [{ CHAIN_ID: "0" }, "CHAIN_ID"],
    [{ CHAIN_ID: "0x7a69" }, "CHAIN_ID"],
    [{ CHAIN_RPC_URL: "ws://127.0.0.1:8545" }, "CHAIN_RPC_URL"],
    [{ SHOPPER_RPC_URL: "nope" }, "SHOPPER_RPC_URL"],
    // A provider key in CHAIN_RPC_URL must not reach every shopper's browser.
    [{ CHAIN_RPC_URL: "https://eth.example.com/v3/secret-project-key" }, "SHOPPER_RPC_URL"],
    [{ CHAIN_RPC_URL: "https://user:pass@eth.example.com" }, "SHOPPER_RPC_URL"],
    [{ CHAIN_RPC_URL: "https://eth.example.com/?apikey=secret" }, "SHOPPER_RPC_URL"],
    [{ SHOPPER_EXPLORER_URL: "ftp://x" }, "SHOPPER_EXPLORER_URL"],
    [{ TOKEN_ADDRESS: "0x123" }, "TOKEN_ADDRESS"],
    [{ API_PUBLIC_ORIGINS: "https://cashback.example.com/app" }, "API_PUBLIC_ORIGINS"],
    [{ API_PUBLIC_ORIGINS: "cashback.example.com" }, "API_PUBLIC_ORIGINS"],
    [{ API_PUBLIC_ORIGINS: " , " }, "API_PUBLIC_ORIGINS"],
    [{ API_SHOPPER_NONCE_TTL_SECONDS: "1" }, "API_SHOPPER_NONCE_TTL_SECONDS"],
    [{ API_SHOPPER_SESSION_TTL_MINUTES: "0" }, "API_SHOPPER_SESSION_TTL_MINUTES"],
  ])("refuses %j naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("takes the development admin key named explicitly on loopback (as npm start passes it)", () => {
    expect(loadConfig({ API_ADMIN_KEY: DEV_ADMIN_KEY })).toMatchObject({ adminKey: DEV_ADMIN_KEY, usingDevAdminKey: true });
  });

  it("needs explicit secrets off loopback, and takes them", () => {
    const c = loadConfig({ API_HOST: "0.0.0.0", API_ADMIN_KEY: "a-long-enough-admin-key", ADAPTER_URL: "http://adapter:50051", ADAPTER_AUTH_TOKEN: "t0ken" });
    expect(c).toMatchObject({ adminKey: "a-long-enough-admin-key", usingDevAdminKey: false, adapterAuthToken: "t0ken" });
  });

  it("has shopper page defaults for the local chain, and takes other values", () => {
    expect(loadConfig({}).shopper).toEqual({
      chainId: 31337,
      chainName: "Hardhat local",
      chainRpcUrl: "http://127.0.0.1:8545",
      walletRpcUrl: "http://127.0.0.1:8545",
      explorerUrl: undefined,
      tokenAddress: undefined,
      publicOrigins: undefined,
      nonceTtlMs: 300_000,
      sessionTtlMs: 30 * 60_000,
    });
    const c = loadConfig({
      CHAIN_ID: "11155111",
      CHAIN_RPC_URL: "http://geth.internal:8545",
      SHOPPER_RPC_URL: "https://rpc.example.org",
      SHOPPER_EXPLORER_URL: "https://explorer.example.org/",
      TOKEN_ADDRESS: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      API_PUBLIC_ORIGINS: "https://cashback.example.com, http://localhost:3000",
      API_SHOPPER_NONCE_TTL_SECONDS: "120",
      API_SHOPPER_SESSION_TTL_MINUTES: "15",
    }).shopper;
    expect(c).toEqual({
      chainId: 11155111,
      chainName: "Chain 11155111",
      chainRpcUrl: "http://geth.internal:8545",
      walletRpcUrl: "https://rpc.example.org",
      explorerUrl: "https://explorer.example.org",
      tokenAddress: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      publicOrigins: ["https://cashback.example.com", "http://localhost:3000"],
      nonceTtlMs: 120_000,
      sessionTtlMs: 15 * 60_000,
    });
  });

  it("parses rates as exact wei per minor unit", () => {
    expect([...parseRates("USD:10000000000000000, JPY:66666666666666")]).toEqual([
      ["USD", 10_000_000_000_000_000n],
      ["JPY", 66_666_666_666_666n],
    ]);
  });
});
