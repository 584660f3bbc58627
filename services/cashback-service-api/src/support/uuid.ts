import { randomUUID } from "node:crypto";

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids sort by creation
 * time, so cursor pagination is `id < cursor` on the primary key, and B-tree inserts stay at
 * the right edge of the index instead of splitting pages at random.
 *
 * Built from randomUUID() (a v4 from Node's pooled entropy, much cheaper than randomBytes per
 * id): its first 48 bits become the timestamp, its version nibble 7; the variant and the other
 * 74 random bits stay as they are.
 */
export function uuidv7(now = Date.now()): string {
  const v4 = randomUUID(); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
  const ts = now.toString(16).padStart(12, "0");
  return `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${v4.slice(15)}`;
}
