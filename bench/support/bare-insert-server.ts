// The ceiling for bench/api.ts: bare fastify (no validation, no auth, no rules) answering
// POST /purchases with ONE INSERT of a purchase-sized row on a node-postgres pool, against the
// same Postgres. Whatever the API does beyond this is what its figure pays for.
// Env: PORT, DATABASE_URL, POOL_SIZE (10).
import { randomUUID } from "node:crypto";
import Fastify from "fastify";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 10) });
await pool.query(`CREATE TABLE IF NOT EXISTS bare_purchases (
  id UUID PRIMARY KEY, user_id UUID NOT NULL, category VARCHAR(64) NOT NULL, amount_minor BIGINT NOT NULL,
  currency CHAR(3) NOT NULL, occurred_at TIMESTAMPTZ(3) NOT NULL, created_at TIMESTAMPTZ(3) NOT NULL DEFAULT now())`);
const app = Fastify({ logger: false });
app.post("/purchases", async (request, reply) => {
  const b = request.body as { user_id: string; category: string; amount_minor: number; currency: string; occurred_at: string };
  const id = randomUUID();
  await pool.query({
    name: "bare_insert",
    text: "INSERT INTO bare_purchases (id, user_id, category, amount_minor, currency, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)",
    values: [id, b.user_id, b.category, b.amount_minor, b.currency, b.occurred_at],
  });
  return reply.status(201).send({ id, ...b });
});
app.get("/readyz", async () => "ok");
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT) });
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
}
