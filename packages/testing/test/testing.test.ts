import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { startChainProcess, startNatsServer, startPgCluster, startTcpProxy, type NatsServer, type PgCluster } from "../src/index.ts";

/** Sends "ping" through the proxy; resolves with what came back, "refused", or "silent" after 300 ms. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const timer = setTimeout(() => (socket.destroy(), resolve("silent")), 300);
    socket.once("connect", () => socket.write("ping"));
    socket.once("data", (d) => (clearTimeout(timer), socket.destroy(), resolve(d.toString())));
    socket.once("error", () => (clearTimeout(timer), resolve("refused")));
  });
}

describe("startTcpProxy", () => {
  it("forwards, refuses, hangs and forwards again on the same port", async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const proxy = await startTcpProxy((echo.address() as net.AddressInfo).port);
    try {
      expect(await probe(proxy.port)).toBe("ping");
      await proxy.down();
      expect(await probe(proxy.port)).toBe("refused");
      await proxy.hang();
      expect(await probe(proxy.port)).toBe("silent");
      await proxy.up();
      expect(await probe(proxy.port)).toBe("ping");
    } finally {
      await proxy.close();
      echo.close();
    }
  });
});

describe("startNatsServer", () => {
  let nats: NatsServer | undefined;
  afterAll(() => nats?.close());

  it("runs JetStream on its own port and keeps streams across a restart", async () => {
    nats = await startNatsServer();
    expect(nats.port).not.toBe(4222);
    let nc = await connect({ servers: nats.url });
    await (await jetstreamManager(nc)).streams.add({ name: "PROBE", subjects: ["probe.>"] });
    await nc.close();

    await nats.restart();
    nc = await connect({ servers: nats.url });
    const info = await (await jetstreamManager(nc)).streams.info("PROBE");
    expect(info.config.subjects).toEqual(["probe.>"]);
    await nc.close();
  });
});

describe("startPgCluster", () => {
  let cluster: PgCluster | undefined;
  afterAll(() => cluster?.close());

  const query = async (text: string) => {
    const client = new pg.Client({ connectionString: cluster!.url() });
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  };

  it("runs its own Postgres that a test can restart and kill, keeping committed data", async () => {
    cluster = await startPgCluster();
    expect(cluster.port).not.toBe(5432);
    await query("CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)");

    // A connected client sees its connection end when the server restarts.
    const client = new pg.Client({ connectionString: cluster.url() });
    const ended = new Promise<Error>((resolve) => client.on("error", resolve));
    await client.connect();
    await cluster.restart();
    expect(String(await ended)).toMatch(/terminat/i);
    await client.end().catch(() => {});
    expect(await query("SELECT v FROM kept")).toEqual([{ v: 1 }]);

    await query("INSERT INTO kept VALUES (2)");
    await cluster.kill();
    await expect(query("SELECT 1")).rejects.toThrow(/ECONNREFUSED/);
    await cluster.start(); // crash recovery
    expect(await query("SELECT v FROM kept ORDER BY v")).toEqual([{ v: 1 }, { v: 2 }]);
    expect(await cluster.log()).toMatch(/not properly shut down|automatic recovery/);
  });
});

describe("startChainProcess", () => {
  it("runs hardhat node as a process with the token deployed, reachable through its proxy", async () => {
    const chain = await startChainProcess();
    try {
      expect(chain.chainId).toBe(31337);
      expect(await chain.reader.getCode({ address: chain.token })).toMatch(/^0x[0-9a-f]{100,}/);
      expect(await chain.balanceOf(chain.minter)).toBe(0n);
      await chain.proxy.down();
      await expect(fetch(chain.rpcUrl, { method: "POST", body: "{}" })).rejects.toThrow();
    } finally {
      await chain.close();
    }
  });
});
