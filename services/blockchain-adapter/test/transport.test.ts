import { describe, expect, it } from "vitest";
import net from "node:net";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { BlockchainService } from "@cashback/proto/blockchain/v1";
import { diffSchemaWithDatabase } from "@cashback/db/testing";
import { bearer, TEST_TOKEN, useTestStack } from "./support/adapter.ts";

const stack = useTestStack();
const address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("authentication", () => {
  it("rejects a call without a bearer token or with a wrong one (UNAUTHENTICATED)", async () => {
    const anonymous = createClient(BlockchainService, createGrpcTransport({ baseUrl: stack.adapter.baseUrl }));
    const wrong = createClient(BlockchainService, createGrpcTransport({ baseUrl: stack.adapter.baseUrl, interceptors: [bearer("nope")] }));
    for (const client of [anonymous, wrong]) {
      const err = ConnectError.from(await client.getBalance({ address }).catch((e) => e));
      expect(err.code).toBe(Code.Unauthenticated);
    }
  });
});

describe("protocols on one port", () => {
  it("serves Connect JSON over HTTP/1.1 (curl-style)", async () => {
    const url = `${stack.adapter.baseUrl}/cashback.blockchain.v1.BlockchainService/GetBalance`;
    const init = { method: "POST", body: JSON.stringify({ address }) };
    const denied = await fetch(url, { ...init, headers: { "content-type": "application/json" } });
    expect(denied.status).toBe(401);
    const res = await fetch(url, { ...init, headers: { "content-type": "application/json", authorization: `Bearer ${TEST_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ address, balanceWei: "0" });
  });

  it("serves the Connect protocol over HTTP/2", async () => {
    const client = createClient(
      BlockchainService,
      createConnectTransport({ baseUrl: stack.adapter.baseUrl, httpVersion: "2", interceptors: [bearer(TEST_TOKEN)] }),
    );
    expect((await client.getBalance({ address })).address).toBe(address);
  });

  it("survives a client that resets the connection before sending anything", async () => {
    const port = Number(new URL(stack.adapter.baseUrl).port);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.resetAndDestroy();
        resolve();
      });
      socket.on("error", reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(await (await fetch(`${stack.adapter.baseUrl}/healthz`)).text()).toBe("ok\n");
  });

  it("tells HTTP/2 from HTTP/1.1 even when the first packet is a single byte", async () => {
    const port = Number(new URL(stack.adapter.baseUrl).port);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", async () => {
        // "P" could start the HTTP/2 preface ("PRI * HTTP/2.0") or an HTTP/1.1 "POST".
        socket.write("P");
        await new Promise((r) => setTimeout(r, 30));
        socket.write("OST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      });
      let data = "";
      socket.on("data", (d) => (data += d));
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 404/); // answered as HTTP/1.1 (only GET /healthz is a probe)
  });

  it("answers health, readiness and metrics probes", async () => {
    expect(await (await fetch(`${stack.adapter.baseUrl}/healthz`)).text()).toBe("ok\n");
    expect((await fetch(`${stack.adapter.baseUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${stack.adapter.baseUrl}/metrics`)).text();
    expect(metrics).toContain("adapter_chain_circuit_state 0");
    expect(metrics).toContain("adapter_chain_calls_total");
    expect((await fetch(`${stack.adapter.baseUrl}/nope`)).status).toBe(404);
  });
});

describe("database", () => {
  it("the migrated database matches the Prisma model", async () => {
    const schemaPath = path.resolve(import.meta.dirname, "../prisma/schema.prisma");
    expect(await diffSchemaWithDatabase({ schemaPath, connectionString: stack.adapter.databaseUrl })).toEqual([]);
  });
});
