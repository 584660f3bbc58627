import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
// @prisma/internals is CommonJS whose named exports Node's ESM loader can not detect.
import internals from "@prisma/internals";
import pg from "pg";
import {
  type ColumnType,
  columnTypeFromInformationSchema,
  columnTypeMatches,
  expectedColumnType,
  formatColumnType,
  type InformationSchemaColumnType,
} from "./prismaColumnType.ts";

export interface DiffSchemaOptions {
  /** A schema.prisma file, or a folder of .prisma files (multi-file schema). */
  schemaPath: string;
  /** A database that has been migrated; only its `public` schema is compared. */
  connectionString: string;
  /**
   * "table" or "table.column" entries to leave out. getDMMF omits @@ignore models, @ignore
   * fields and Unsupported(...) fields entirely, so their tables/columns would look extra.
   */
  ignore?: string[];
  /** Compare primary keys and unique indexes too (default true): idempotency rests on them. */
  keys?: boolean;
}

interface ExpectedColumn {
  field: string;
  type: ColumnType;
  nullable: boolean;
}

interface ExpectedTable {
  model: string;
  columns: Map<string, ExpectedColumn>;
}

interface ActualColumn {
  type: ColumnType;
  nullable: boolean;
}

type Dmmf = Awaited<ReturnType<typeof internals.getDMMF>>;

/**
 * Compares the tables, columns, column types, nullability and enums the Prisma schema
 * describes with what the database actually has. Returns one readable line per difference;
 * an empty list means they match. This stands in for `prisma migrate diff`, which needs the
 * native schema engine we can not install.
 */
export async function diffSchemaWithDatabase({ schemaPath, connectionString, ignore = [], keys = true }: DiffSchemaOptions): Promise<string[]> {
  const dmmf = await internals.getDMMF({ datamodel: await readSchema(schemaPath) });
  const ignored = new Set(ignore);
  const expectedTables = expectedTablesOf(dmmf);
  const expectedEnums = new Map(dmmf.datamodel.enums.map((e) => [e.dbName ?? e.name, e.values.map((v) => v.dbName ?? v.name)]));

  const client = new pg.Client({ connectionString });
  client.on("error", () => {});
  await client.connect();
  try {
    const actualTables = await readTables(client);
    const actualEnums = await readEnums(client);
    return [
      ...diffTables(expectedTables, actualTables, ignored),
      ...diffEnums(expectedEnums, actualEnums),
      // Tables already reported missing have no keys to compare.
      ...(keys ? diffKeys(expectedKeysOf(dmmf), await readKeys(client), new Set([...ignored, ...[...expectedTables.keys()].filter((t) => !actualTables.has(t))])) : []),
    ];
  } finally {
    await client.end();
  }
}

async function readSchema(schemaPath: string): Promise<string | [string, string][]> {
  if (!(await stat(schemaPath)).isDirectory()) return readFile(schemaPath, "utf8");
  const files = (await readdir(schemaPath, { recursive: true })).filter((f) => f.endsWith(".prisma")).sort();
  return Promise.all(files.map(async (f): Promise<[string, string]> => [f, await readFile(path.join(schemaPath, f), "utf8")]));
}

// DMMF facts this relies on (checked against 7.10.0): model.dbName and field.dbName are null
// unless @@map / @map is written; nativeType is `[name, string[]]` or null; relation fields
// have kind "object" and no column; enum.dbName is its @@map or null.
function expectedTablesOf(dmmf: Dmmf): Map<string, ExpectedTable> {
  const enumDbNames = new Map(dmmf.datamodel.enums.map((e) => [e.name, e.dbName ?? e.name]));
  const tables = new Map<string, ExpectedTable>();
  for (const model of dmmf.datamodel.models) {
    if (model.schema && model.schema !== "public") {
      throw new Error(`Model ${model.name} lives in schema "${model.schema}"; only "public" is compared`);
    }
    const columns = new Map<string, ExpectedColumn>();
    for (const field of model.fields) {
      if (field.kind !== "scalar" && field.kind !== "enum") continue;
      columns.set(field.dbName ?? field.name, {
        field: `${model.name}.${field.name}`,
        type: expectedColumnType(field, enumDbNames),
        // Prisma creates list columns without NOT NULL even though the field is "required".
        nullable: !field.isRequired || field.isList,
      });
    }
    tables.set(model.dbName ?? model.name, { model: model.name, columns });
  }
  return tables;
}

async function readTables(client: pg.Client): Promise<Map<string, Map<string, ActualColumn>>> {
  const { rows: tableRows } = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'`,
  );
  const tables = new Map<string, Map<string, ActualColumn>>(tableRows.map((row) => [row.table_name, new Map()]));
  const { rows } = await client.query<InformationSchemaColumnType & { table_name: string; column_name: string; is_nullable: "YES" | "NO" }>(
    `SELECT table_name, column_name, is_nullable, udt_name,
            character_maximum_length, numeric_precision, numeric_scale, datetime_precision
       FROM information_schema.columns
      WHERE table_schema = 'public'
      ORDER BY table_name, ordinal_position`,
  );
  for (const row of rows) {
    tables.get(row.table_name)?.set(row.column_name, { type: columnTypeFromInformationSchema(row), nullable: row.is_nullable === "YES" });
  }
  return tables;
}

async function readEnums(client: pg.Client): Promise<Map<string, string[]>> {
  const { rows } = await client.query<{ name: string; labels: string[] }>(
    `SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
       FROM pg_type t
       JOIN pg_enum e ON e.enumtypid = t.oid
       JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public'
      GROUP BY t.typname`,
  );
  return new Map(rows.map((row) => [row.name, row.labels]));
}

function diffTables(
  expected: Map<string, ExpectedTable>,
  actual: Map<string, Map<string, ActualColumn>>,
  ignored: Set<string>,
): string[] {
  const differences: string[] = [];
  for (const [table, { model, columns }] of expected) {
    const actualColumns = actual.get(table);
    if (!actualColumns) {
      differences.push(`missing table "${table}" (model ${model})`);
      continue;
    }
    for (const [column, want] of columns) {
      const have = actualColumns.get(column);
      const where = `${table}.${column}`;
      if (!have) {
        differences.push(`missing column "${where}" (field ${want.field})`);
        continue;
      }
      if (!columnTypeMatches(want.type, have.type)) {
        differences.push(`type mismatch on "${where}": schema expects ${formatColumnType(want.type)}, database has ${formatColumnType(have.type)}`);
      }
      if (want.nullable !== have.nullable) {
        differences.push(`nullability mismatch on "${where}": schema expects ${nullability(want.nullable)}, database has ${nullability(have.nullable)}`);
      }
    }
    for (const column of actualColumns.keys()) {
      if (!columns.has(column) && !ignored.has(`${table}.${column}`)) {
        differences.push(`extra column "${table}.${column}" (no field of model ${model} maps to it)`);
      }
    }
  }
  for (const table of [...actual.keys()].sort()) {
    if (!expected.has(table) && !ignored.has(table)) differences.push(`extra table "${table}" (no model maps to it)`);
  }
  return differences;
}

function diffEnums(expected: Map<string, string[]>, actual: Map<string, string[]>): string[] {
  const differences: string[] = [];
  for (const [name, values] of expected) {
    const labels = actual.get(name);
    if (!labels) differences.push(`missing enum type "${name}"`);
    // Compared as sets, like Prisma: ALTER TYPE ... ADD VALUE appends, so a value added in the
    // middle of a Prisma enum legitimately sits at the end in Postgres.
    else if ([...values].sort().join("\u0000") !== [...labels].sort().join("\u0000")) {
      differences.push(`enum "${name}" values differ: schema has [${values.join(", ")}], database has [${labels.join(", ")}]`);
    }
  }
  for (const name of [...actual.keys()].sort()) {
    if (!expected.has(name)) differences.push(`extra enum type "${name}"`);
  }
  return differences;
}

interface TableKeys {
  /** Columns of the primary key, in order; undefined for none. */
  primary?: string[];
  /** Each unique constraint or index (other than the primary key) as its ordered columns. */
  unique: string[][];
}

// DMMF: field.isId / model.primaryKey.fields (@@id), field.isUnique / model.uniqueFields
// (@@unique, lists of field names); fields map to columns through field.dbName.
function expectedKeysOf(dmmf: Dmmf): Map<string, TableKeys> {
  const keys = new Map<string, TableKeys>();
  for (const model of dmmf.datamodel.models) {
    const column = new Map(model.fields.map((f) => [f.name, f.dbName ?? f.name]));
    const columns = (fields: readonly string[]) => fields.map((f) => column.get(f) ?? f);
    const idField = model.fields.find((f) => f.isId);
    const primary = model.primaryKey ? columns(model.primaryKey.fields) : idField ? [idField.dbName ?? idField.name] : undefined;
    const unique = [...model.fields.filter((f) => f.isUnique).map((f) => [f.dbName ?? f.name]), ...model.uniqueFields.map((u) => columns(u))];
    keys.set(model.dbName ?? model.name, { primary, unique });
  }
  return keys;
}

/**
 * Primary keys and unique indexes (unique constraints are backed by one) of `public`, leaving out
 * what a Prisma model can not express and a migration may add by hand: partial and expression
 * indexes, and NULLS NOT DISTINCT (Postgres 15).
 */
async function readKeys(client: pg.Client): Promise<Map<string, TableKeys>> {
  const { rows } = await client.query<{ table_name: string; primary: boolean; columns: string[] }>(
    `SELECT t.relname AS table_name, ix.indisprimary AS primary,
            array_agg(a.attname::text ORDER BY k.ord)::text[] AS columns
       FROM pg_index ix
       JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      WHERE n.nspname = 'public' AND ix.indisunique AND ix.indpred IS NULL AND ix.indexprs IS NULL AND NOT ix.indnullsnotdistinct
        AND t.relname <> '_prisma_migrations'
      GROUP BY t.relname, ix.indexrelid, ix.indisprimary`,
  );
  const keys = new Map<string, TableKeys>();
  for (const row of rows) {
    const entry = keys.get(row.table_name) ?? { unique: [] };
    if (row.primary) entry.primary = row.columns;
    else entry.unique.push(row.columns);
    keys.set(row.table_name, entry);
  }
  return keys;
}

function diffKeys(expected: Map<string, TableKeys>, actual: Map<string, TableKeys>, ignored: Set<string>): string[] {
  const differences: string[] = [];
  const show = (cols: readonly string[] | undefined) => (cols ? `(${cols.join(", ")})` : "none");
  const same = (a: readonly string[], b: readonly string[]) => a.join("\u0000") === b.join("\u0000");
  for (const [table, want] of expected) {
    if (ignored.has(table)) continue;
    const have = actual.get(table) ?? { unique: [] };
    if (show(want.primary) !== show(have.primary)) {
      differences.push(`primary key mismatch on "${table}": schema expects ${show(want.primary)}, database has ${show(have.primary)}`);
    }
    for (const cols of want.unique) {
      if (!have.unique.some((h) => same(h, cols))) differences.push(`missing unique index on "${table}" ${show(cols)}`);
    }
    for (const cols of have.unique) {
      if (!want.unique.some((w) => same(w, cols))) differences.push(`extra unique index on "${table}" ${show(cols)} (no @unique / @@unique in the model)`);
    }
  }
  return differences;
}

function nullability(nullable: boolean): string {
  return nullable ? "NULL" : "NOT NULL";
}
