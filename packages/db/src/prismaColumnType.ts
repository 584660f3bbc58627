// Which Postgres column type Prisma Migrate creates for a schema field, expressed the way
// information_schema.columns reports it (udt_name plus the length/precision columns), so
// the two can be compared without parsing SQL type names.

/** Only the properties that are set are compared. */
export interface ColumnType {
  /** information_schema.columns.udt_name: int4, varchar, timestamptz, an enum's name, `_text` for text[] ... */
  udtName: string;
  /** character_maximum_length; null means unbounded (`VARCHAR` without n). */
  length?: number | null;
  /** numeric_precision / numeric_scale; null means unconstrained `NUMERIC`. */
  precision?: number | null;
  scale?: number | null;
  /** datetime_precision (Postgres reports 6 when none was written). */
  datetimePrecision?: number;
}

/** The subset of a DMMF field this mapping reads (DMMF gives `nativeType` as `[name, args]`, args as strings). */
export interface FieldTypeInfo {
  kind: string;
  type: string;
  isList: boolean;
  nativeType?: readonly [string, readonly string[]] | null;
}

// Prisma's Postgres defaults for a scalar with no @db attribute.
const DEFAULT_TYPES: Record<string, ColumnType> = {
  String: { udtName: "text" },
  Int: { udtName: "int4" },
  BigInt: { udtName: "int8" },
  Float: { udtName: "float8" },
  Decimal: { udtName: "numeric", precision: 65, scale: 30 },
  Boolean: { udtName: "bool" },
  DateTime: { udtName: "timestamp", datetimePrecision: 3 },
  Json: { udtName: "jsonb" },
  Bytes: { udtName: "bytea" },
};

type NativeMapper = (args: number[]) => ColumnType;

const POSTGRES_DEFAULT_TIME_PRECISION = 6;

// @db.* attributes of the Postgres connector. Extend when a schema needs another one:
// an unknown attribute fails loudly rather than passing unchecked.
const NATIVE_TYPES: Record<string, NativeMapper> = {
  Text: () => ({ udtName: "text" }),
  VarChar: ([n]) => ({ udtName: "varchar", length: n ?? null }),
  Char: ([n]) => ({ udtName: "bpchar", length: n ?? 1 }),
  Uuid: () => ({ udtName: "uuid" }),
  SmallInt: () => ({ udtName: "int2" }),
  Integer: () => ({ udtName: "int4" }),
  BigInt: () => ({ udtName: "int8" }),
  Real: () => ({ udtName: "float4" }),
  DoublePrecision: () => ({ udtName: "float8" }),
  Decimal: ([p, s]) => (p === undefined ? { udtName: "numeric", precision: null, scale: null } : { udtName: "numeric", precision: p, scale: s ?? 0 }),
  Boolean: () => ({ udtName: "bool" }),
  Date: () => ({ udtName: "date" }),
  Timestamp: ([p]) => ({ udtName: "timestamp", datetimePrecision: p ?? POSTGRES_DEFAULT_TIME_PRECISION }),
  Timestamptz: ([p]) => ({ udtName: "timestamptz", datetimePrecision: p ?? POSTGRES_DEFAULT_TIME_PRECISION }),
  Json: () => ({ udtName: "json" }),
  JsonB: () => ({ udtName: "jsonb" }),
  ByteA: () => ({ udtName: "bytea" }),
};

/**
 * The column type Prisma would create for a scalar or enum field. `enumDbNames` maps a Prisma
 * enum name to its Postgres type name (its @@map, else the enum name).
 */
export function expectedColumnType(field: FieldTypeInfo, enumDbNames: ReadonlyMap<string, string>): ColumnType {
  const base = baseColumnType(field, enumDbNames);
  // Postgres reports an array column as udt_name `_<element udt>`, without the element's modifiers.
  return field.isList ? { udtName: `_${base.udtName}` } : base;
}

function baseColumnType(field: FieldTypeInfo, enumDbNames: ReadonlyMap<string, string>): ColumnType {
  if (field.kind === "enum") {
    const dbName = enumDbNames.get(field.type);
    if (!dbName) throw new Error(`Enum ${field.type} is not in the schema`);
    return { udtName: dbName };
  }
  if (field.nativeType) {
    const [name, args] = field.nativeType;
    const mapper = NATIVE_TYPES[name];
    if (!mapper) throw new Error(`@db.${name} is not supported by diffSchemaWithDatabase yet (add it to prismaColumnType.ts)`);
    return mapper(args.map(Number));
  }
  const type = DEFAULT_TYPES[field.type];
  if (!type) throw new Error(`Prisma type ${field.type} is not supported by diffSchemaWithDatabase yet (add it to prismaColumnType.ts)`);
  return type;
}

/** How a type reads in a difference message: varchar(64), numeric(20,6), timestamptz(3), _text. */
export function formatColumnType(type: ColumnType): string {
  const modifiers =
    type.length !== undefined
      ? [type.length]
      : type.precision !== undefined
        ? [type.precision, type.scale]
        : type.datetimePrecision !== undefined
          ? [type.datetimePrecision]
          : [];
  const shown = modifiers.filter((m) => m !== null && m !== undefined);
  return shown.length ? `${type.udtName}(${shown.join(",")})` : type.udtName;
}

/** True when every property `expected` sets agrees with `actual`. */
export function columnTypeMatches(expected: ColumnType, actual: ColumnType): boolean {
  const keys = ["length", "precision", "scale", "datetimePrecision"] as const;
  return expected.udtName === actual.udtName && keys.every((key) => expected[key] === undefined || expected[key] === actual[key]);
}

/** A column as information_schema.columns describes it, reduced to what matters for its type. */
export interface InformationSchemaColumnType {
  udt_name: string;
  character_maximum_length: number | null;
  numeric_precision: number | null;
  numeric_scale: number | null;
  datetime_precision: number | null;
}

export function columnTypeFromInformationSchema(column: InformationSchemaColumnType): ColumnType {
  const udtName = column.udt_name;
  switch (udtName) {
    case "varchar":
    case "bpchar":
      return { udtName, length: column.character_maximum_length };
    case "numeric":
      return { udtName, precision: column.numeric_precision, scale: column.numeric_scale };
    case "timestamp":
    case "timestamptz":
    case "time":
    case "timetz":
      return column.datetime_precision === null ? { udtName } : { udtName, datetimePrecision: column.datetime_precision };
    default:
      return { udtName };
  }
}
