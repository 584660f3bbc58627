import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffSchemaWithDatabase } from "@cashback/db/testing";
import { expectStatus, purchaseBody, startTestApi, WALLETS, type TestApi } from "./support/api.ts";

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi({ env: { API_BODY_LIMIT_BYTES: "2048" } });
});
afterAll(async () => t?.close());

const errorShape = { error: { code: expect.any(String), message: expect.any(String), details: expect.any(Object) } };

describe("authentication and scope", () => {
  it("answers 401 without a key, with a malformed header, with an unknown or revoked key", async () => {
    const m = await t.merchant();
    for (const c of [t.as(), t.as("cbk_nope"), t.as("not-a-key")]) {
      const a = await c.get("/v1/users");
      expect(a.status).toBe(401);
      expect(a.body).toMatchObject({ error: { code: "unauthenticated" } });
    }
    expect((await t.as().call("GET", "/v1/users", undefined, { authorization: "Basic abc" })).status).toBe(401);
    expect((await m.client.get("/v1/me")).body).toEqual({ kind: "merchant", merchant_id: m.id, key_id: expect.any(String) });
    const keys = expectStatus(await t.admin.get(`/v1/merchants/${m.id}/api-keys`), 200);
    expectStatus(await t.admin.post(`/v1/merchants/${m.id}/api-keys/${keys.data[0].id}/revoke`), 200);
    const revoked = await m.client.get("/v1/me");
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toMatch(/revoked/);
  });

  it("never shows a key twice and stores only its hash", async () => {
    const m = await t.merchant();
    const issued = expectStatus(await t.admin.post(`/v1/merchants/${m.id}/api-keys`, { name: "ci" }, { "idempotency-key": "issue-1" }), 201);
    expect(issued.key).toMatch(/^cbk_[A-Za-z0-9_-]{43}$/);
    const replay = expectStatus(await t.admin.post(`/v1/merchants/${m.id}/api-keys`, { name: "ci" }, { "idempotency-key": "issue-1" }), 201);
    expect(replay).toEqual({ ...issued, key: null });
    const listed = expectStatus(await m.client.get(`/v1/merchants/${m.id}/api-keys`), 200);
    expect(JSON.stringify(listed)).not.toContain(issued.key);
    const { rows } = await t.api.pool.query("SELECT key_hash FROM api_keys WHERE id = $1", [issued.id]);
    expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    const dump = await t.api.pool.query("SELECT response_body::text AS b FROM idempotency_keys");
    expect(dump.rows.map((r) => r.b).join("")).not.toContain(issued.key);
    expect((await t.as(issued.key).get("/v1/me")).status).toBe(200);
  });

  it("keeps merchant keys to their own merchant's data (403), admin-only routes to the admin", async () => {
    const a = await t.merchant();
    const b = await t.merchant();
    const userB = await t.user(b.client);
    await t.rule(b.client, { name: "b 5%", kind: "percentage", basis_points: 500 });
    const purchaseB = expectStatus(await b.client.post("/v1/purchases", purchaseBody(userB.id)), 201);
    const ruleB = expectStatus(await b.client.get("/v1/rules"), 200).data.find((r: { merchant_id: string }) => r.merchant_id === b.id);

    const denied = [
      await a.client.get(`/v1/users/${userB.id}`),
      await a.client.get(`/v1/users/${userB.id}/purchases`),
      await a.client.get(`/v1/users/${userB.id}/ledger`),
      await a.client.get(`/v1/purchases/${purchaseB.id}`),
      await a.client.get(`/v1/purchases/${purchaseB.id}/trace`),
      await a.client.post(`/v1/purchases/${purchaseB.id}/refunds`, { amount_minor: 1 }),
      await a.client.post("/v1/purchases", purchaseBody(userB.id)),
      await a.client.post("/v1/purchases", { ...purchaseBody(userB.id), merchant_id: b.id }),
      await a.client.post("/v1/users", { external_id: "x", email: "x@example.com", wallet_address: WALLETS[0], merchant_id: b.id }),
      await a.client.get(`/v1/rules/${ruleB.id}`),
      await a.client.patch(`/v1/rules/${ruleB.id}`, { basis_points: 9000 }),
      await a.client.post(`/v1/rules/${ruleB.id}/disable`),
      await a.client.get(`/v1/merchants/${b.id}`),
      await a.client.get(`/v1/merchants/${b.id}/api-keys`),
      await a.client.get(`/v1/users?merchant_id=${b.id}`),
      await a.client.post("/v1/merchants", { name: "rogue" }),
      await a.client.get("/v1/merchants"),
      await a.client.post(`/v1/merchants/${a.id}/api-keys`),
    ];
    for (const d of denied) {
      expect(d.status).toBe(403);
      expect(d.body).toMatchObject({ error: { code: "forbidden" } });
    }
    // nothing leaked into a's data, nothing changed in b's
    expect(expectStatus(await a.client.get("/v1/users"), 200).data).toEqual([]);
    expect(expectStatus(await b.client.get(`/v1/rules/${ruleB.id}`), 200)).toMatchObject({ basis_points: 500, enabled: true });
    expect(expectStatus(await b.client.get(`/v1/purchases/${purchaseB.id}`), 200).refunded_minor).toBe(0);
    // the admin sees both
    expect((await t.admin.get(`/v1/purchases/${purchaseB.id}`)).status).toBe(200);
  });

  it("lets merchants read but not change platform-wide rules", async () => {
    const m = await t.merchant();
    const platform = expectStatus(await t.admin.post("/v1/rules", { name: "platform 0.01%", kind: "percentage", basis_points: 1, priority: -100 }), 201);
    expect(platform.merchant_id).toBeNull();
    expect((await m.client.get(`/v1/rules/${platform.id}`)).status).toBe(200);
    expect(expectStatus(await m.client.get("/v1/rules"), 200).data.map((r: { id: string }) => r.id)).toContain(platform.id);
    expect((await m.client.patch(`/v1/rules/${platform.id}`, { basis_points: 10 })).status).toBe(403);
    expect((await m.client.post(`/v1/rules/${platform.id}/disable`)).status).toBe(403);
  });
});

describe("users", () => {
  it("creates with a checksummed wallet, 409 on a duplicate external id, 400 on a bad wallet", async () => {
    const m = await t.merchant();
    const u = expectStatus(await m.client.post("/v1/users", { external_id: "alice", email: "alice@example.com", wallet_address: WALLETS[1].toLowerCase() }), 201);
    expect(u).toMatchObject({ merchant_id: m.id, external_id: "alice", wallet_address: WALLETS[1] });
    expect(expectStatus(await m.client.get(`/v1/users/${u.id}`), 200)).toEqual(u);
    const dup = await m.client.post("/v1/users", { external_id: "alice", email: "other@example.com", wallet_address: WALLETS[0] });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error: { code: "conflict" } });
    // the same external id at another merchant is fine
    const other = await t.merchant();
    expect((await other.client.post("/v1/users", { external_id: "alice", email: "a@example.com", wallet_address: WALLETS[0] })).status).toBe(201);
    const badChecksum = WALLETS[1].replace("C44", "c44");
    for (const wallet of ["0x123", badChecksum, "70997970C51812dc3A010C7d01b50e0d17dc79C8"]) {
      const a = await m.client.post("/v1/users", { external_id: `w-${wallet}`, email: "w@example.com", wallet_address: wallet });
      expect(a.status).toBe(400);
    }
    expect((await m.client.post("/v1/users", { external_id: "e", email: "not-an-email", wallet_address: WALLETS[0] })).status).toBe(400);
    expect((await t.admin.post("/v1/users", { external_id: "e", email: "e@example.com", wallet_address: WALLETS[0] })).status).toBe(400); // admin must name the merchant
    expect((await m.client.get("/v1/users/01a2203d-0000-7000-8000-000000000000")).status).toBe(404);
  });

  it("lists with cursor pagination, newest first", async () => {
    const m = await t.merchant();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await t.user(m.client, { externalId: `p${i}` }));
    const page1 = expectStatus(await m.client.get("/v1/users?limit=2"), 200);
    expect(page1.data.map((u: { id: string }) => u.id)).toEqual([made[4]!.id, made[3]!.id]);
    const page2 = expectStatus(await m.client.get(`/v1/users?limit=2&cursor=${page1.next_cursor}`), 200);
    expect(page2.data.map((u: { id: string }) => u.id)).toEqual([made[2]!.id, made[1]!.id]);
    const page3 = expectStatus(await m.client.get(`/v1/users?limit=2&cursor=${page2.next_cursor}`), 200);
    expect(page3.data.map((u: { id: string }) => u.id)).toEqual([made[0]!.id]);
    expect(page3.next_cursor).toBeNull();
    expect((await m.client.get("/v1/users?limit=0")).status).toBe(400);
    expect((await m.client.get("/v1/users?limit=101")).status).toBe(400);
    expect((await m.client.get("/v1/users?cursor=nope")).status).toBe(400);
  });
});

describe("errors", () => {
  it("answers bad input with 400 and one error body, never a 500", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    const bad = [
      await m.client.post("/v1/purchases", "{not json"),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), amount_minor: 12.5 }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), amount_minor: "1000" }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), amount_minor: -1 }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), amount_minor: 1e16 }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), currency: "usd" }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), occurred_at: "yesterday" }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), user_id: "not-a-uuid" }),
      await m.client.post("/v1/purchases", { ...purchaseBody(u.id), surprise: true }),
      await m.client.post("/v1/purchases", { user_id: u.id }),
      await m.client.post("/v1/rules", { name: "x", kind: "percentage" }),
      await m.client.post("/v1/rules", { name: "x", kind: "fixed", fixed_amount_wei: "1.5" }),
      await m.client.post("/v1/rules", { name: "x", kind: "fixed", fixed_amount_wei: 1000 }),
      await m.client.post("/v1/rules", { name: "x", kind: "percentage", basis_points: 100, fixed_amount_wei: "1" }),
      await m.client.post("/v1/rules", { name: "x", kind: "percentage", basis_points: 100, starts_at: "2027-01-02T00:00:00Z", ends_at: "2027-01-01T00:00:00Z" }),
      await m.client.post("/v1/rules", { name: "x", kind: "fixed", fixed_amount_wei: (10n ** 37n).toString() }),
      await m.client.get("/v1/purchases/not-a-uuid"),
    ];
    for (const a of bad) {
      expect(a.status, JSON.stringify(a.body)).toBe(400);
      expect(a.body).toMatchObject({ error: { code: "invalid_request" } });
    }
    expect(bad[1]!.body.error.details.problems[0]).toMatchObject({ path: "body/amount_minor" });
  });

  it("answers 404, 413, 415 and 422 where they belong", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    const notFound = await m.client.get("/v1/purchases/01a2203d-0000-7000-8000-000000000000");
    expect(notFound.status).toBe(404);
    expect(notFound.body).toMatchObject({ error: { code: "not_found" } });
    expect((await m.client.get("/v1/nowhere")).status).toBe(404);
    expect((await m.client.post("/v1/purchases", purchaseBody("01a2203d-0000-7000-8000-000000000000"))).status).toBe(404);

    const huge = await m.client.post("/v1/users", { external_id: "x".repeat(4000), email: "a@example.com", wallet_address: WALLETS[0] });
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ error: { code: "payload_too_large" } });

    const text = await m.client.call("POST", "/v1/purchases", "x", { "content-type": "text/plain" });
    expect(text.status).toBe(415);
    expect(text.body).toMatchObject(errorShape);

    const currency = await m.client.post("/v1/purchases", purchaseBody(u.id, { currency: "CHF" }));
    expect(currency.status).toBe(422);
    expect(currency.body.error.message).toMatch(/CHF/);
    const future = await m.client.post("/v1/purchases", purchaseBody(u.id, { occurred_at: new Date(Date.now() + 3_600_000).toISOString() }));
    expect(future.status).toBe(422);
  });

  it("limits requests per key with 429 and Retry-After", async () => {
    const limited = await startTestApi({ env: { API_RATE_LIMIT_MAX: "5", API_RATE_LIMIT_WINDOW_MS: "60000" } });
    try {
      const m = await limited.merchant();
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await m.client.get("/v1/me"));
      expect(answers.slice(0, 5).every((a) => a.status === 200)).toBe(true);
      const last = answers[6]!;
      expect(last.status).toBe(429);
      expect(last.body).toMatchObject({ error: { code: "rate_limited" } });
      expect(Number(last.headers.get("retry-after"))).toBeGreaterThan(0);
      // another key has its own budget; probes are never limited
      const other = await limited.merchant();
      expect((await other.client.get("/v1/me")).status).toBe(200);
      for (let i = 0; i < 8; i++) expect((await limited.as().get("/healthz")).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe("operations", () => {
  it("serves health, readiness, metrics, the OpenAPI 3.1 document and the docs UI (no CDN)", async () => {
    const anon = t.as();
    expect(await (await fetch(`${t.baseUrl}/healthz`)).text()).toBe("ok\n");
    expect(expectStatus(await anon.get("/readyz"), 200)).toEqual({ database: true, nats: true });
    const m = await t.merchant();
    await m.client.get("/v1/me");
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/api_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/me"[^}]*status="200"/);
    expect(metrics).toMatch(/^api_outbox_backlog \d+$/m);
    const doc = expectStatus(await anon.get("/openapi.json"), 200);
    expect(doc.openapi).toBe("3.1.0");
    for (const p of ["/v1/purchases", "/v1/purchases/{id}", "/v1/purchases/{id}/trace", "/v1/purchases/{id}/refunds", "/v1/users", "/v1/users/{id}/ledger", "/v1/rules", "/v1/merchants", "/v1/merchants/{id}/api-keys"]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    expect(doc.paths["/v1/purchases"].post.requestBody.content["application/json"].schema.properties.amount_minor.type).toBe("integer");
    expect(doc.components.schemas).toHaveProperty("Purchase");
    const html = await (await fetch(`${t.baseUrl}/docs/`)).text();
    expect(html).toContain("swagger-ui");
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"']*\.(js|css)/);
    const js = await fetch(`${t.baseUrl}/docs/static/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
  });

  it("migrates a database that matches the Prisma model", async () => {
    const schemaPath = path.resolve(import.meta.dirname, "../prisma/schema.prisma");
    expect(await diffSchemaWithDatabase({ schemaPath, connectionString: t.db.url })).toEqual([]);
  });
});
