/** Deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = 32;

/**
 * How deeply `text` (JSON) nests, counted without parsing (brackets inside strings do not count).
 * Stops counting once past `limit`. A body nested thousands deep parses fine, but every recursive
 * walk over it afterwards (validation, the idempotency hash) overflows the stack: a 500 for input
 * that is simply wrong. Rejected before parsing instead.
 */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > limit) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}
