import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig as adapterConfig } from "../../services/blockchain-adapter/src/config.ts";
import { loadConfig as apiConfig } from "../../services/cashback-service-api/src/config.ts";
import { loadConfig as consumerConfig } from "../../services/mint-consumer/src/config.ts";
import { composeProblems, interpolate, type ServiceCode } from "./compose-check.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const text = readFileSync(path.join(repoRoot, "docker-compose.yml"), "utf8");
type Service = { environment: Record<string, string>; ports: string[]; healthcheck: { test: string[] } };
type Ours = "blockchain-adapter" | "cashback-service-api" | "mint-consumer";
/** A new copy of the file each time (`merge`: the `<<: *app` keys, as compose reads them). */
const fresh = () => parse(text, { merge: true }) as { services: Record<Ours, Service> & Record<string, Service> };

// Service name in the file = directory under services/; LOG_LEVEL is read by the logger.
const code: Record<string, ServiceCode> = {
  "blockchain-adapter": { loadConfig: adapterConfig, alsoReads: ["LOG_LEVEL"] },
  "cashback-service-api": { loadConfig: apiConfig, alsoReads: ["LOG_LEVEL"] },
  "mint-consumer": { loadConfig: consumerConfig, alsoReads: ["LOG_LEVEL"] },
};

describe("docker-compose.yml matches the services' config", () => {
  it("has every service, and each variable, port, host, URL and health check agrees with its loadConfig", () => {
    const doc = fresh();
    expect(Object.keys(doc.services).sort()).toEqual(["blockchain-adapter", "cashback-service-api", "chain", "mint-consumer", "nats", "postgres"]);
    expect(composeProblems(doc, code)).toEqual([]);
    // with the user's own settings too (an .env file)
    expect(composeProblems(doc, code, { API_ADMIN_KEY: "a-long-enough-admin-key", ADAPTER_AUTH_TOKEN: "secret-token", API_PORT: "8080" })).toEqual([]);
  });

  it("gives the API what the browser and the chain need", () => {
    const env = fresh().services["cashback-service-api"].environment;
    const api = apiConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))])));
    expect(api.shopper.chainRpcUrl).toBe("http://chain:8545");
    expect(api.shopper.walletRpcUrl).toBe("http://127.0.0.1:8545");
    expect(api.shopper.publicOrigins).toEqual(["http://127.0.0.1:3000", "http://localhost:3000"]);
    expect(api.usingDevAdminKey).toBe(false);
  });

  it("catches a misspelt variable, a wrong port, a URL to nowhere and a config that does not load", () => {
    const typo = fresh();
    const env = typo.services["mint-consumer"].environment;
    env.CONSUMER_CONCURENCY = "8";
    expect(composeProblems(typo, code)).toEqual(["mint-consumer: CONSUMER_CONCURENCY is not read by its loadConfig (a typo?)"]);

    const port = fresh();
    port.services["cashback-service-api"].environment.API_PORT = "3001";
    expect(composeProblems(port, code)).toEqual(["cashback-service-api: listens on 3001 but publishes 3000", "cashback-service-api: its healthcheck does not ask :3001/readyz"]);

    const url = fresh();
    url.services["mint-consumer"].environment.ADAPTER_URL = "http://blockchain-adaptor:50051";
    expect(composeProblems(url, code)).toEqual(["mint-consumer: ADAPTER_URL names blockchain-adaptor, which is not a service of the file"]);

    const key = fresh();
    delete key.services["cashback-service-api"].environment.API_ADMIN_KEY;
    expect(composeProblems(key, code)).toEqual([expect.stringMatching(/^cashback-service-api: its config does not load .*API_ADMIN_KEY/)]);
  });

  it("interpolates as compose does", () => {
    expect(interpolate("127.0.0.1:${API_PORT:-3000}:3000")).toBe("127.0.0.1:3000:3000");
    expect(interpolate("${A:-x}/${A-y}/${A}", { A: "" })).toBe("x//");
    expect(interpolate("${A:-x}", { A: "v" })).toBe("v");
  });
});
