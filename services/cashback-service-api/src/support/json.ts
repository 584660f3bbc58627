declare global {
  interface JSON {
    /** Node >= 21: a value JSON.stringify emits verbatim (here: a bigint as a JSON integer). */
    rawJSON(text: string): unknown;
  }
}

/** JSON.stringify that writes bigints as exact JSON integers (amount_minor), never via a float. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? JSON.rawJSON(v.toString()) : v));
}
