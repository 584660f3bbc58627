import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { BlockchainService, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { mintKey, newEvent } from "@cashback/events";
import { connectNats } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { startAdapterProcess, startTestChain, type AdapterProcess, type TestChain } from "@cashback/testing";
import { expectStatus, purchaseBody, startTestApi, until, WALLETS, type TestApi } from "./support/api.ts";

// The API against the real blockchain adapter (a separate process) on an in-process Hardhat chain.
let chain: TestChain;
let adapterDb: TestDatabase;
let adapter: AdapterProcess;
let t: TestApi;
let nc: NatsConnection;

beforeAll(async () => {
  chain = await startTestChain();
  adapterDb = await createTestDatabase("api_adapter");
  adapter = await startAdapterProcess({ chain, databaseUrl: adapterDb.url });
  t = await startTestApi({ env: { ADAPTER_URL: adapter.url, ADAPTER_AUTH_TOKEN: adapter.token, ADAPTER_TIMEOUT_MS: "2000" } });
  nc = await connectNats({ url: t.nats.url, name: "chain-test", logger: createLogger("chain-test", "silent") });
  await until("the API's streams", async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await t?.close();
  await adapter?.stop();
  await adapterDb?.drop();
  await chain?.close();
});

describe("the ledger and the chain", () => {
  it("shows the on-chain balance next to the ledger once the cashback is minted, and stays readable without the adapter", async () => {
    const wallet = WALLETS[2];
    const m = await t.merchant();
    const u = await t.user(m.client, { wallet });
    await t.rule(m.client, { name: "2%", kind: "percentage", basis_points: 200 });
    const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { amount_minor: 12_345 })), 201);
    const amount = p.cashback.amount_wei as string;
    const before = await chain.balanceOf(wallet);

    // What the mint consumer does with the accrued event: mint under the entry's key, report it.
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${adapter.token}`);
      return next(req);
    };
    const client = createClient(BlockchainService, createConnectTransport({ baseUrl: adapter.url, httpVersion: "1.1", interceptors: [bearer] }));
    const minted = await client.mintToken({ idempotencyKey: mintKey(p.cashback.entry_id), to: wallet, amountWei: amount });
    expect(minted.status).toBe(TransactionStatus.CONFIRMED);
    const event = newEvent(
      "cashback.minted",
      { entry_id: p.cashback.entry_id, mint_id: minted.mintId, tx_hash: minted.txHash, block_number: minted.blockNumber.toString(), wallet, amount_wei: amount },
      { correlationId: p.id },
    );
    await jetstream(nc).publish("cashback.minted", JSON.stringify(event), { msgID: event.id });
    await until("the entry to be minted", async () => expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).cashback.status === "minted");

    const ledger = expectStatus(await m.client.get(`/v1/users/${u.id}/ledger`), 200);
    expect(ledger.totals.net_minted_wei).toBe(amount);
    expect(ledger.balance).toMatchObject({ available: true, balance_wei: (before + BigInt(amount)).toString() });
    expect(BigInt(ledger.balance.block_number)).toBeGreaterThanOrEqual(minted.blockNumber);
    const trace = expectStatus(await m.client.get(`/v1/purchases/${p.id}/trace`), 200);
    expect(trace.chain).toEqual({ mint_id: minted.mintId, tx_hash: minted.txHash, block_number: minted.blockNumber.toString() });

    await adapter.stop();
    const without = expectStatus(await m.client.get(`/v1/users/${u.id}/ledger`), 200);
    expect(without.balance).toMatchObject({ available: false, balance_wei: null, reason: expect.stringMatching(/unavailable/) });
    expect(without.totals).toEqual(ledger.totals);
  });
});
