import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, resolveSecretFiles } from "../src/index.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "secret-files-"));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("secrets from <NAME>_FILE", () => {
  it("reads the file (without its trailing newline) into the variable, and leaves other variables alone", () => {
    const env = resolveSecretFiles({ API_ADMIN_KEY_FILE: file("admin", "s3cret-admin-key-value\n"), OTHER: "x" }, ["API_ADMIN_KEY"]);
    expect(env).toMatchObject({ API_ADMIN_KEY: "s3cret-admin-key-value", OTHER: "x" });
    expect(resolveSecretFiles({ API_ADMIN_KEY: "direct" }, ["API_ADMIN_KEY"]).API_ADMIN_KEY).toBe("direct");
  });

  it("refuses both at once, an unreadable file and an empty one, naming the variable and never the value", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ API_ADMIN_KEY: "value-in-env", API_ADMIN_KEY_FILE: file("a", "value-in-file") }, /^set API_ADMIN_KEY or API_ADMIN_KEY_FILE, not both$/],
      [{ API_ADMIN_KEY_FILE: path.join(dir, "missing") }, /^API_ADMIN_KEY_FILE: can not read .*missing \(ENOENT\)$/],
      [{ API_ADMIN_KEY_FILE: file("empty", "\n") }, /^API_ADMIN_KEY_FILE: .* is empty$/],
    ];
    for (const [env, message] of cases) {
      const err = (() => {
        try {
          resolveSecretFiles(env, ["API_ADMIN_KEY"]);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(err!.message).toMatch(message);
      expect(err!.message).not.toContain("value-in");
    }
  });
});
