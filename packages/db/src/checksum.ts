import { createHash } from "node:crypto";

/** What Prisma stores in `_prisma_migrations.checksum`: sha256 hex of the migration.sql bytes. */
export function migrationChecksum(script: Buffer): string {
  return createHash("sha256").update(script).digest("hex");
}

/**
 * Prisma accepts a stored checksum when it matches the script as-is, with CRLF turned into LF,
 * or with LF turned into CRLF (git may rewrite line endings on checkout). We accept the same
 * three forms (not the unpadded checksums very early Prisma 2 versions wrote), so a database
 * this runner accepts is one `prisma migrate deploy` accepts too.
 */
export function scriptMatchesChecksum(script: Buffer, checksum: string): boolean {
  const text = script.toString("utf8");
  const variants = [script, Buffer.from(text.replaceAll("\r\n", "\n")), Buffer.from(text.replaceAll("\n", "\r\n"))];
  return variants.some((variant) => migrationChecksum(variant) === checksum);
}
