import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { Hex } from "viem";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import {
  repoRoot,
  startAdapterProcess,
  startConsumerProcess,
  startNatsServer,
  startTcpProxy,
  startTestChain,
  type AdapterProcess,
  type ConsumerProcess,
  type NatsServer,
  type TcpProxy,
  type TestChain,
} from "@cashback/testing";
import { buildWeb } from "../web/build.ts";
import { expectStatus, purchaseBody, startTestApi, until, type TestApi } from "./support/api.ts";
import { SHOPPER_A, SHOPPER_B, type Signer } from "./support/shopper.ts";

// The shopper page in a real headless Chromium (Debian's, driven by playwright-core) against the
// real stack: a Hardhat chain, the blockchain adapter and the mint consumer as processes, the API,
// a throwaway nats-server, fresh databases. The wallet is an injected EIP-1193 provider whose
// requests are answered here: it signs with Hardhat development keys and forwards reads to the
// chain, and records what the page asked for. scripts/ensure-chromium.sh installs Chromium.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT = path.join(repoRoot, "test-results/shopper-page.png");
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let chain: TestChain;
let nats: NatsServer;
let adapterDb: TestDatabase;
let consumerDb: TestDatabase;
let adapter: AdapterProcess;
let consumer: ConsumerProcess;
let adapterProxy: TcpProxy;
let t: TestApi;
let webDir: string;
let profileDir: string;
let context: BrowserContext;

/** The test's wallet: what a MetaMask would answer, with the account the test selects. */
const wallet = {
  account: SHOPPER_A as Signer,
  chainId: "0x1", // the shopper's wallet starts on another network, as a real one would
  requests: [] as { method: string; params: unknown }[],
};

async function answerWallet(method: string, params: any): Promise<{ result?: unknown; error?: { code: number; message: string } }> {
  wallet.requests.push({ method, params });
  switch (method) {
    case "eth_requestAccounts":
    case "eth_accounts":
      return { result: [wallet.account.address] };
    case "eth_chainId":
      return { result: wallet.chainId };
    case "personal_sign": {
      const [data, address] = params as [Hex, string];
      if (address.toLowerCase() !== wallet.account.address.toLowerCase()) return { error: { code: 4100, message: "not this wallet's account" } };
      return { result: await wallet.account.signMessage({ message: { raw: data } }) };
    }
    case "wallet_addEthereumChain":
      wallet.chainId = params[0].chainId; // MetaMask adds the chain and offers to switch to it: accepted
      return { result: null };
    case "wallet_switchEthereumChain":
      if (params[0].chainId !== "0x7a69") return { error: { code: 4902, message: "Unrecognized chain ID" } };
      wallet.chainId = params[0].chainId;
      return { result: null };
    case "wallet_watchAsset":
      return { result: true };
    default: {
      if (wallet.chainId !== "0x7a69") return { error: { code: -32603, message: `this test wallet only reaches chain 31337, not ${wallet.chainId}` } };
      const res = await fetch(chain.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params ?? [] }) });
      const body = (await res.json()) as { result?: unknown; error?: { code: number; message: string } };
      return body.error ? { error: body.error } : { result: body.result };
    }
  }
}

// Runs in the page before its own scripts: window.ethereum, answered by answerWallet above.
const INJECTED_PROVIDER = `(() => {
  const listeners = {};
  window.ethereum = {
    async request({ method, params }) {
      const answer = await window.__testWallet(method, params ?? null);
      if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
      return answer.result;
    },
    on(event, fn) { (listeners[event] ??= []).push(fn); },
    removeListener(event, fn) { listeners[event] = (listeners[event] ?? []).filter((f) => f !== fn); },
  };
  window.__testWalletEmit = (event, value) => (listeners[event] ?? []).forEach((fn) => fn(value));
})();`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run bash scripts/ensure-chromium.sh (npm test does), or set CHROMIUM_PATH`);
  [webDir, profileDir] = await Promise.all([mkdtemp(path.join(os.tmpdir(), "shopper-web-")), mkdtemp(path.join(os.tmpdir(), "shopper-chromium-"))]);
  const launched = (async () => {
    // a fresh profile (--user-data-dir) each run
    const c = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1200, height: 900 } });
    await c.exposeFunction("__testWallet", answerWallet);
    await c.addInitScript(INJECTED_PROVIDER);
    c.setDefaultTimeout(60_000); // a busy machine: generous waits, no timing thresholds
    return c;
  })();
  [chain, nats, adapterDb, consumerDb] = await Promise.all([startTestChain(), startNatsServer(), createTestDatabase("page_adapter"), createTestDatabase("page_consumer"), buildWeb(webDir)]);
  adapter = await startAdapterProcess({ chain, databaseUrl: adapterDb.url });
  // The consumer reaches the adapter through a proxy the test cuts, to hold a mint pending.
  adapterProxy = await startTcpProxy(adapter.port);
  [t, consumer, context] = await Promise.all([
    startTestApi({ nats, env: { ADAPTER_URL: adapter.url, ADAPTER_AUTH_TOKEN: adapter.token, CHAIN_RPC_URL: chain.rpcUrl }, startOptions: { deploymentsDir: chain.deploymentsDir, webDir } }),
    startConsumerProcess({
      natsUrl: nats.url,
      adapterUrl: adapterProxy.url,
      adapterToken: adapter.token,
      databaseUrl: consumerDb.url,
      env: { CONSUMER_RETRY_BASE_MS: "200", CONSUMER_RETRY_CAP_MS: "1000", CONSUMER_RETRY_MAX_ATTEMPTS: "1000" },
    }),
    launched,
  ]);
  await until("the API's streams", async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  await consumer?.stop();
  await adapterProxy?.close();
  await t?.close();
  await adapter?.stop();
  await Promise.all([adapterDb?.drop(), consumerDb?.drop()]);
  await nats?.close();
  await chain?.close();
  for (const dir of [webDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

const text = (page: Page, selector: string) => page.locator(selector).innerText();
const lastRequest = (method: string) => wallet.requests.filter((r) => r.method === method).at(-1);

describe("the shopper page in Chromium", () => {
  it("signs in with the wallet, sets the wallet up, and shows the balance and the history of that wallet only, live", { timeout: 240_000 }, async () => {
    // Two merchants; shopper B bought first, at the other one: A must never see it.
    const shop = await t.merchant({ name: "Corner Shop" });
    const other = await t.merchant({ name: "Other Shop" });
    for (const m of [shop, other]) await t.rule(m.client, { name: "10%", kind: "percentage", basis_points: 1000 });
    const userA = await t.user(shop.client, { wallet: SHOPPER_A.address });
    const userB = await t.user(other.client, { wallet: SHOPPER_B.address });
    const purchaseB = expectStatus(await other.client.post("/v1/purchases", purchaseBody(userB.id, { amount_minor: 77_700, category: "garden" })), 201);
    const balanceBefore = await chain.balanceOf(SHOPPER_A.address);
    expect(balanceBefore).toBe(0n); // a fresh chain

    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    // (the browser logs every 401 as an error: the page asks for its session before signing in)
    page.on("console", (msg) => msg.type() === "error" && !/status of 401/.test(msg.text()) && problems.push(msg.text()));
    await page.goto(`${t.baseUrl}/app`);
    await page.locator("#status", { hasText: "Connect your wallet" }).waitFor();

    // One click: the chain and the token, with the parameters the wallet needs.
    await page.click("#set-up");
    await page.locator("#status", { hasText: "CBK added to your tokens" }).waitFor();
    expect(lastRequest("wallet_addEthereumChain")?.params).toEqual([
      { chainId: "0x7a69", chainName: "Hardhat local", rpcUrls: [chain.rpcUrl], nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 } },
    ]);
    expect(lastRequest("wallet_watchAsset")?.params).toEqual({ type: "ERC20", options: { address: chain.token, symbol: "CBK", decimals: 18 } });
    expect(wallet.chainId).toBe("0x7a69");

    // Sign-in with Ethereum: the message names this site, our chain and the API's nonce.
    await page.click("#sign-in");
    await page.locator("#sign-out").waitFor({ state: "visible" });
    expect(await text(page, "#wallet")).toBe(SHOPPER_A.address);
    const signed = Buffer.from((lastRequest("personal_sign")!.params as [string])[0].slice(2), "hex").toString("utf8");
    expect(signed).toMatch(new RegExp(`^${new URL(t.baseUrl).host} wants you to sign in with your Ethereum account:\\n${SHOPPER_A.address}\\n`));
    expect(signed).toMatch(/\nURI: http:\/\/127\.0\.0\.1:\d+\nVersion: 1\nChain ID: 31337\nNonce: [0-9a-f]{32}\n/);
    const [cookie] = await context.cookies(t.baseUrl + "/v1/shopper/session");
    expect(cookie).toMatchObject({ name: "cbk_shopper", httpOnly: true, sameSite: "Strict", path: "/v1/shopper" });
    expect(await page.evaluate(() => document.cookie)).toBe(""); // the page's scripts never see the token
    await page.locator("#history-empty").waitFor({ state: "visible" });
    await page.locator(`#balance[data-wei="${balanceBefore}"]`).waitFor();

    // A purchase over REST shows up by itself, pending while the consumer can not reach the adapter...
    await adapterProxy.down();
    const purchase = expectStatus(await shop.client.post("/v1/purchases", purchaseBody(userA.id, { amount_minor: 12_999 })), 201);
    expect(purchase.cashback.amount_wei).toBe("12999000000000000000");
    const row = page.locator(`tr[data-entry-id="${purchase.cashback.entry_id}"]`);
    await row.and(page.locator('[data-status="pending"]')).waitFor({ timeout: 60_000 });
    expect(await row.innerText()).toMatch(/Corner Shop\s+129\.99 USD · groceries\s+\+12\.999 CBK\s+minting…/);
    expect(await text(page, "#pending")).toBe("12.999 CBK on its way");

    // ...then minted (tx hash and block), and the balance read from the chain through the wallet.
    await adapterProxy.up();
    await row.and(page.locator('[data-status="minted"]')).waitFor({ timeout: 90_000 });
    const minted = expectStatus(await shop.client.get(`/v1/purchases/${purchase.id}`), 200).cashback;
    expect(minted).toMatchObject({ status: "minted", tx_hash: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
    expect(await row.locator("a.tx").getAttribute("title")).toContain(minted.tx_hash);
    expect(await row.innerText()).toContain(`block ${minted.block_number}`);
    const expected = balanceBefore + 12_999_000_000_000_000_000n;
    await page.locator(`#balance[data-wei="${expected}"]`).waitFor({ timeout: 30_000 });
    expect(await chain.balanceOf(SHOPPER_A.address)).toBe(expected);
    expect(await text(page, "#balance")).toBe("12.999 CBK");
    expect(lastRequest("eth_call")?.params).toMatchObject([{ to: chain.token, data: expect.stringMatching(new RegExp(`^0x70a082310{24}${SHOPPER_A.address.slice(2).toLowerCase()}$`)) }, "latest"]);

    // Only A's history: nothing of B's purchase, merchant or wallet.
    const content = await page.content();
    for (const foreign of [purchaseB.cashback.entry_id, "Other Shop", "777.00", SHOPPER_B.address]) expect(content).not.toContain(foreign);
    expect(await page.locator("#history-rows tr").count()).toBe(1);
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The wallet switches to B: A's history goes at once, and B must sign in to see B's own.
    wallet.account = SHOPPER_B;
    await page.evaluate((address) => (window as any).__testWalletEmit("accountsChanged", [address]), SHOPPER_B.address);
    await page.locator("#sign-in").waitFor({ state: "visible" });
    expect(await page.locator("#history-rows tr").count()).toBe(0);
    expect(await page.locator("#history-section").isHidden()).toBe(true);
    await page.locator("#status", { hasText: `switched to ${SHOPPER_B.address}` }).waitFor();
    const oldSession = { cookie: `cbk_shopper=${cookie!.value}` };
    await until("A's session to be closed", async () => (await fetch(`${t.baseUrl}/v1/shopper/history`, { headers: oldSession })).status === 401);
    await page.click("#sign-in");
    await page.locator(`tr[data-entry-id="${purchaseB.cashback.entry_id}"]`).waitFor();
    const contentB = await page.content();
    expect(contentB).toContain("Other Shop");
    expect(contentB).not.toContain(purchase.cashback.entry_id);
    expect(contentB).not.toContain("Corner Shop");

    // A reload keeps the session while the wallet still shows that account.
    await page.reload();
    await page.locator(`tr[data-entry-id="${purchaseB.cashback.entry_id}"]`).waitFor();
    expect(await text(page, "#wallet")).toBe(SHOPPER_B.address);
    expect(problems).toEqual([]);
  });
});
