import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestChain, type TestChain } from "@cashback/testing";
import { loadConfig } from "../src/config.ts";
import type { App } from "../src/http/server.ts";
import { registerPageRoutes } from "../src/shopper/page.ts";
import { pageConfig } from "../src/shopper/page-config.ts";
import { buildWeb } from "../web/build.ts";
import { expectStatus, purchaseBody, startTestApi, type TestApi } from "./support/api.ts";
import { SHOPPER_A, SHOPPER_B, shopperClient } from "./support/shopper.ts";

// The shopper page's API: sign-in with Ethereum against a real chain (signature checks), sessions,
// the wallet-scoped history; and the page itself at /app.
let chain: TestChain;
let t: TestApi;
let webDir: string;

beforeAll(async () => {
  chain = await startTestChain();
  webDir = await mkdtemp(path.join(os.tmpdir(), "shopper-web-"));
  await buildWeb(webDir);
  t = await startTestApi({ env: { CHAIN_RPC_URL: chain.rpcUrl }, startOptions: { deploymentsDir: chain.deploymentsDir, webDir } });
}, 120_000);
afterAll(async () => {
  await t?.close();
  await chain?.close();
  if (webDir) await rm(webDir, { recursive: true, force: true });
});

const reasonOf = (a: { body: any }) => a.body?.error?.details?.reason;

describe("the page's configuration", () => {
  it("names the chain for the wallet and the token from the deployment record", async () => {
    const config = expectStatus(await t.as().get("/v1/shopper/config"), 200);
    expect(config).toEqual({
      chain: { id: 31337, id_hex: "0x7a69", name: "Hardhat local", rpc_url: chain.rpcUrl, native_currency: { name: "Ether", symbol: "ETH", decimals: 18 }, explorer_url: null },
      token: { address: chain.token, name: "Cashback Token", symbol: "CBK", decimals: 18 },
      token_unavailable: null,
      sign_in: { statement: expect.any(String), nonce_ttl_seconds: 300, session_ttl_seconds: 1800 },
    });
  });

  it("says why there is no token without a record or TOKEN_ADDRESS, and prefers TOKEN_ADDRESS", async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), "no-deployments-"));
    try {
      const none = await pageConfig(loadConfig({}).shopper, empty);
      expect(none.token).toBeNull();
      expect(none.token_unavailable).toMatch(/deployments\/31337\.json.*TOKEN_ADDRESS/);
      const named = await pageConfig(loadConfig({ TOKEN_ADDRESS: "0x5fbdb2315678afecb367f032d93f642f64180aa3", SHOPPER_RPC_URL: "http://127.0.0.1:18545" }).shopper, empty);
      expect(named.token?.address).toBe("0x5FbDB2315678afecb367f032d93F642f64180aa3");
      expect(named.chain.rpc_url).toBe("http://127.0.0.1:18545");
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe("sign-in with Ethereum", () => {
  it("opens a short session for the signing wallet in an HttpOnly, SameSite=Strict cookie; only the token's hash is stored", async () => {
    const s = shopperClient(t.baseUrl);
    expect((await s.call("GET", "/v1/shopper/session")).status).toBe(401);
    const signed = expectStatus(await s.signIn(SHOPPER_A), 200);
    expect(signed).toEqual({ wallet_address: SHOPPER_A.address, chain_id: 31337, expires_at: expect.any(String) });
    const minutes = (Date.parse(signed.expires_at) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(29);
    expect(minutes).toBeLessThanOrEqual(30);
    const setCookie = s.lastSetCookie!;
    expect(setCookie).toMatch(/^cbk_shopper=[A-Za-z0-9_-]{43}; Path=\/v1\/shopper; Max-Age=1[78]\d\d; HttpOnly; SameSite=Strict$/);
    expect(expectStatus(await s.call("GET", "/v1/shopper/session"), 200)).toEqual(signed);

    const token = s.cookie!.split("=")[1]!;
    const { rows } = await t.api.pool.query("SELECT token_hash, wallet_address FROM shopper_sessions");
    expect(rows.map((r) => r.wallet_address)).toContain(SHOPPER_A.address);
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it("ends the session at sign-out and when it expires, and never outlives the signed message", async () => {
    const s = shopperClient(t.baseUrl);
    expectStatus(await s.signIn(SHOPPER_A), 200);
    const cookie = s.cookie;
    expect((await s.call("POST", "/v1/shopper/sign-out")).status).toBe(204);
    expect(s.lastSetCookie).toMatch(/^cbk_shopper=; Path=\/v1\/shopper; Max-Age=0; HttpOnly; SameSite=Strict$/);
    s.cookie = cookie; // a copy kept from before does not work either
    const after = await s.call("GET", "/v1/shopper/history");
    expect(after.status).toBe(401);
    expect(after.body.error.message).toMatch(/expired or was closed/);

    const short = await s.signInWith(await s.signedMessage(SHOPPER_A, { expirationTime: new Date(Date.now() + 90_000) }));
    expect(Date.parse(expectStatus(short, 200).expires_at)).toBeLessThanOrEqual(Date.now() + 90_000);
    await t.api.pool.query("UPDATE shopper_sessions SET expires_at = now() - interval '1 second' WHERE wallet_address = $1", [SHOPPER_A.address]);
    expect((await s.call("GET", "/v1/shopper/session")).status).toBe(401);
  });

  it("refuses replayed, expired, unknown-nonce, foreign-domain, foreign-URI, wrong-chain and badly signed messages", async () => {
    const s = shopperClient(t.baseUrl);
    const refusals: [string, Promise<{ status: number; body: any }>, number, string][] = [];
    const expectRefused = async (what: string, answer: Promise<{ status: number; body: any }>, status: number, reason: string) => {
      const a = await answer;
      expect(a.status, `${what}: ${JSON.stringify(a.body)}`).toBe(status);
      expect(reasonOf(a), what).toBe(reason);
      expect(a.body.error.code).toBe(status === 400 ? "invalid_request" : "unauthenticated");
      refusals.push([what, answer, status, reason]);
    };

    // a replay: the same signed message twice
    const once = await s.signedMessage(SHOPPER_A);
    expectStatus(await s.signInWith(once), 200);
    await expectRefused("replayed", s.signInWith(once), 401, "nonce_used");

    // a nonce that expired before it was used
    const late = await s.signedMessage(SHOPPER_A);
    await t.api.pool.query("UPDATE siwe_nonces SET expires_at = now() - interval '1 second' WHERE nonce = $1", [late.nonce]);
    await expectRefused("expired nonce", s.signInWith(late), 401, "nonce_expired");

    // a nonce the API never issued, with a perfectly good signature
    const made = await s.signedMessage(SHOPPER_A, { nonce: "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0" });
    await expectRefused("unknown nonce", s.signInWith(made), 401, "nonce_unknown");

    // signed for another site (phished), another URI, another chain; an expired message
    await expectRefused("foreign domain", s.signInWith(await s.signedMessage(SHOPPER_A, { domain: "shop.evil.example", uri: "https://shop.evil.example/" })), 401, "foreign_domain");
    await expectRefused("foreign URI", s.signInWith(await s.signedMessage(SHOPPER_A, { uri: "https://shop.evil.example/" })), 401, "foreign_uri");
    await expectRefused("wrong chain", s.signInWith(await s.signedMessage(SHOPPER_A, { chainId: 1 })), 401, "wrong_chain");
    await expectRefused("expired message", s.signInWith(await s.signedMessage(SHOPPER_A, { issuedAt: new Date(Date.now() - 120_000), expirationTime: new Date(Date.now() - 60_000) })), 401, "message_expired");

    // A's message signed by B; then the same nonce, properly signed, still works: a bad signature burns nothing
    const forged = await s.signedMessage(SHOPPER_A, { signer: SHOPPER_B });
    await expectRefused("signed by another wallet", s.signInWith(forged), 401, "bad_signature");
    const genuine = await SHOPPER_A.signMessage({ message: forged.message });
    expect(expectStatus(await s.signInWith({ message: forged.message, signature: genuine }), 200).wallet_address).toBe(SHOPPER_A.address);

    await expectRefused("not a sign-in message", s.call("POST", "/v1/shopper/sign-in", { message: "please let me in", signature: genuine }), 400, "malformed_message");
    const notHex = await s.call("POST", "/v1/shopper/sign-in", { message: forged.message, signature: "0xnothex" });
    expect(notHex.status).toBe(400);
    expect(refusals).toHaveLength(9);
  });

  it("opens one session for one signed message, however many times it is sent at once", async () => {
    const s = shopperClient(t.baseUrl);
    const signed = await s.signedMessage(SHOPPER_B);
    const answers = await Promise.all(Array.from({ length: 6 }, () => s.signInWith(signed)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 401 && reasonOf(a) === "nonce_used")).toHaveLength(5);
    const { rows } = await t.api.pool.query("SELECT count(*)::int AS n FROM shopper_sessions WHERE nonce = $1", [signed.nonce]);
    expect(rows[0].n).toBe(1);
  });

  it("checks signatures on the chain (contract wallets), and still signs ordinary wallets in while the chain is down", async () => {
    const s = shopperClient(t.baseUrl);
    await chain.proxy.down();
    try {
      expectStatus(await s.signIn(SHOPPER_A), 200);
      const forged = await s.signedMessage(SHOPPER_A, { signer: SHOPPER_B });
      const unsure = await s.signInWith(forged);
      expect(unsure.status).toBe(503);
      expect(reasonOf(unsure)).toBe("chain_unavailable");
    } finally {
      await chain.proxy.up();
    }
  });
});

describe("history", () => {
  it("shows the session's own wallet's cashback only, across merchants, newest first", async () => {
    const shopA = await t.merchant({ name: "Shop A" });
    const shopB = await t.merchant({ name: "Shop B" });
    for (const m of [shopA, shopB]) await t.rule(m.client, { name: "10%", kind: "percentage", basis_points: 1000 });
    const aAtShopA = await t.user(shopA.client, { wallet: SHOPPER_A.address });
    const aAtShopB = await t.user(shopB.client, { wallet: SHOPPER_A.address.toLowerCase() });
    const bAtShopA = await t.user(shopA.client, { wallet: SHOPPER_B.address });
    const p1 = expectStatus(await shopA.client.post("/v1/purchases", purchaseBody(aAtShopA.id, { amount_minor: 12_999 })), 201);
    const p2 = expectStatus(await shopB.client.post("/v1/purchases", purchaseBody(aAtShopB.id, { amount_minor: 2_000, category: "books" })), 201);
    const pb = expectStatus(await shopA.client.post("/v1/purchases", purchaseBody(bAtShopA.id, { amount_minor: 77_700 })), 201);
    const refund = expectStatus(await shopA.client.post(`/v1/purchases/${p1.id}/refunds`, { amount_minor: 2_999 }), 201);

    const a = shopperClient(t.baseUrl);
    expectStatus(await a.signIn(SHOPPER_A), 200);
    const historyA = expectStatus(await a.call("GET", "/v1/shopper/history"), 200);
    expect(historyA.wallet_address).toBe(SHOPPER_A.address);
    expect(historyA.entries.data.map((e: any) => [e.kind, e.purchase.id, e.merchant.name, e.amount_wei])).toEqual([
      ["clawback", p1.id, "Shop A", ((BigInt(p1.cashback.amount_wei) * 2_999n) / 12_999n).toString()],
      ["accrual", p2.id, "Shop B", "2000000000000000000"],
      ["accrual", p1.id, "Shop A", "12999000000000000000"],
    ]);
    expect(historyA.entries.data[0]).toMatchObject({ status: "clawback_pending", refund: { id: refund.id, amount_minor: 2_999 }, purchase: { amount_minor: 12_999, currency: "USD" } });
    expect(historyA.entries.data[2]).toMatchObject({ status: "pending", tx_hash: null, block_number: null, purchase: { category: "groceries" } });
    expect(historyA.totals).toMatchObject({ pending_wei: "14999000000000000000", entries: 3 });
    expect(JSON.stringify(historyA)).not.toContain(pb.id);
    expect(JSON.stringify(historyA)).not.toContain(SHOPPER_B.address);

    const b = shopperClient(t.baseUrl);
    expectStatus(await b.signIn(SHOPPER_B), 200);
    const historyB = expectStatus(await b.call("GET", "/v1/shopper/history"), 200);
    expect(historyB.entries.data.map((e: any) => e.purchase.id)).toEqual([pb.id]);

    // no way to name another wallet, and no history without a session
    expect((await a.call("GET", `/v1/shopper/history?wallet=${SHOPPER_B.address}`)).status).toBe(400);
    expect((await shopperClient(t.baseUrl).call("GET", "/v1/shopper/history")).status).toBe(401);
    const forgedCookie = shopperClient(t.baseUrl);
    forgedCookie.cookie = `cbk_shopper=${"A".repeat(43)}`;
    expect((await forgedCookie.call("GET", "/v1/shopper/history")).status).toBe(401);
    // pages
    const page1 = expectStatus(await a.call("GET", "/v1/shopper/history?limit=2"), 200);
    expect(page1.entries.data).toHaveLength(2);
    const page2 = expectStatus(await a.call("GET", `/v1/shopper/history?limit=2&cursor=${page1.entries.next_cursor}`), 200);
    expect(page2.entries.data.map((e: any) => e.purchase.id)).toEqual([p1.id]);
    expect(page2.entries.next_cursor).toBeNull();
  });

  it("keeps the merchant API behind its keys", async () => {
    expect((await t.as().get("/v1/users")).status).toBe(401);
    expect((await fetch(`${t.baseUrl}/v1/shopperx/users`)).status).toBe(401);
    const doc = expectStatus(await t.as().get("/openapi.json"), 200);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/shopper/config", "/v1/shopper/nonce", "/v1/shopper/sign-in", "/v1/shopper/session", "/v1/shopper/sign-out", "/v1/shopper/history"]));
  });
});

describe("the page", () => {
  it("is served at /app from this origin only (strict CSP), with its script and style", async () => {
    for (const p of ["/app", "/app/"]) {
      const res = await fetch(`${t.baseUrl}${p}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'; .*connect-src 'self'/);
      const html = await res.text();
      expect(html).toContain('src="/app/app.js"');
      expect(html).not.toMatch(/https?:\/\//);
    }
    const js = await fetch(`${t.baseUrl}/app/app.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    const code = await js.text();
    expect(code).toContain("/v1/shopper/sign-in");
    expect(code).not.toMatch(/import\s*["'(]https?:/);
    expect((await fetch(`${t.baseUrl}/app/app.css`)).status).toBe(200);
    for (const bad of ["/app/nope.js", "/app/..%2Fpackage.json", "/app/.env", "/app/app.ts"]) expect((await fetch(`${t.baseUrl}${bad}`)).status, bad).toBe(404);
  });

  it("answers 503 with the command to run when the page was not built", async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), "no-web-"));
    const app = Fastify() as unknown as App;
    try {
      registerPageRoutes(app, { dir: empty });
      const res = await app.inject({ method: "GET", url: "/app" });
      expect(res.statusCode).toBe(503);
      expect(res.body).toMatch(/npm run generate/);
    } finally {
      await app.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe("rate limit", () => {
  it("limits sign-in nonces per client address", async () => {
    const s = shopperClient(t.baseUrl);
    let limited: { status: number; body: any; headers: Headers } | undefined;
    for (let i = 0; i < 70 && !limited; i++) {
      const a = await s.call("POST", "/v1/shopper/nonce");
      if (a.status === 429) limited = a;
      else expect(a.status).toBe(201);
    }
    expect(limited?.body).toMatchObject({ error: { code: "rate_limited" } });
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
