import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrate } from "../src/index.ts";
import { createTestDatabase, diffSchemaWithDatabase, type TestDatabase } from "../src/testing.ts";
import { query } from "./pg.ts";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const schemaPath = path.join(fixtures, "schema.prisma");

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase("db_diff");
  await migrate({ connectionString: db.url, migrationsDir: path.join(fixtures, "migrations") });
});
afterEach(() => db.drop());

const diff = (ignore?: string[]) => diffSchemaWithDatabase({ schemaPath, connectionString: db.url, ignore });

describe("diffSchemaWithDatabase", () => {
  it("finds no difference between the fixture schema and its migration", async () => {
    expect(await diff()).toEqual([]);
  });

  it("reports each kind of difference when the database drifts", async () => {
    await query(
      db.url,
      `ALTER TABLE purchases DROP COLUMN title;
       ALTER TABLE purchases ALTER COLUMN external_id TYPE VARCHAR(32);
       ALTER TABLE purchases ALTER COLUMN amount TYPE DECIMAL(20,2);
       ALTER TABLE purchases ALTER COLUMN created_at TYPE TIMESTAMPTZ(3);
       ALTER TABLE purchases ALTER COLUMN quantity TYPE BIGINT;
       ALTER TABLE purchases ALTER COLUMN note SET NOT NULL;
       ALTER TABLE purchases ALTER COLUMN currency DROP NOT NULL;
       ALTER TABLE purchases ADD COLUMN legacy TEXT;
       ALTER TABLE rewards ALTER COLUMN tags SET DATA TYPE INTEGER[] USING NULL;
       DROP TABLE "OutboxEvent";
       CREATE TABLE stray (id INT);
       CREATE TYPE leftover AS ENUM ('A');
       ALTER TYPE purchase_status ADD VALUE 'REFUNDED';`,
    );

    expect(await diff()).toEqual([
      'type mismatch on "purchases.external_id": schema expects varchar(64), database has varchar(32)',
      'nullability mismatch on "purchases.currency": schema expects NOT NULL, database has NULL',
      'nullability mismatch on "purchases.note": schema expects NULL, database has NOT NULL',
      'missing column "purchases.title" (field Purchase.title)',
      'type mismatch on "purchases.amount": schema expects numeric(20,6), database has numeric(20,2)',
      'type mismatch on "purchases.quantity": schema expects int4, database has int8',
      'type mismatch on "purchases.created_at": schema expects timestamp(3), database has timestamptz(3)',
      'extra column "purchases.legacy" (no field of model Purchase maps to it)',
      'type mismatch on "rewards.tags": schema expects _text, database has _int4',
      'missing table "OutboxEvent" (model OutboxEvent)',
      'extra table "stray" (no model maps to it)',
      'enum "purchase_status" values differ: schema has [PENDING, CONFIRMED, FAILED], database has [PENDING, CONFIRMED, FAILED, REFUNDED]',
      'extra enum type "leftover"',
    ]);
  });

  it("reports primary keys and unique indexes that differ from the model", async () => {
    const [{ primary, unique }] = (await query<{ primary: string; unique: string | null }>(
      db.url,
      `SELECT (SELECT conname FROM pg_constraint WHERE conrelid = 'purchases'::regclass AND contype = 'p') AS primary,
              (SELECT indexname FROM pg_indexes WHERE tablename = 'purchases' AND indexdef LIKE 'CREATE UNIQUE%' AND indexname NOT LIKE '%pkey' LIMIT 1) AS unique`,
    )) as [{ primary: string; unique: string | null }];
    await query(db.url, `ALTER TABLE purchases DROP CONSTRAINT "${primary}" CASCADE; ${unique ? `DROP INDEX "${unique}";` : ""} CREATE UNIQUE INDEX stray_unique ON purchases (currency);`);
    const found = await diff();
    expect(found).toContain('primary key mismatch on "purchases": schema expects (id), database has none');
    expect(found).toContain('extra unique index on "purchases" (currency) (no @unique / @@unique in the model)');
    if (unique) expect(found.some((d) => d.startsWith('missing unique index on "purchases"'))).toBe(true);
  });

  it("leaves out tables and columns listed in ignore", async () => {
    await query(db.url, "CREATE TABLE audit_log (id INT); ALTER TABLE purchases ADD COLUMN search tsvector;");
    expect(await diff()).toHaveLength(2);
    expect(await diff(["audit_log", "purchases.search"])).toEqual([]);
  });

  it("uses model, field and enum names when nothing is mapped", async () => {
    const plain = await createTestDatabase("db_diff_plain");
    try {
      const compare = () => diffSchemaWithDatabase({ schemaPath: path.join(fixtures, "unmapped.prisma"), connectionString: plain.url });
      await query(plain.url, `CREATE TYPE "Color" AS ENUM ('RED', 'GREEN');
        CREATE TABLE "Widget" ("id" SERIAL PRIMARY KEY, "color" "Color", "labels" "Color"[]);`);
      expect(await compare()).toEqual([]);

      await query(plain.url, `ALTER TABLE "Widget" ALTER COLUMN "color" TYPE TEXT`);
      expect(await compare()).toEqual(['type mismatch on "Widget.color": schema expects Color, database has text']);
    } finally {
      await plain.drop();
    }
  });
});
