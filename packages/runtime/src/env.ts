import { readFileSync } from "node:fs";
/**
 * Typed readers for environment variables. Each returns the default when the variable is
 * unset or empty and throws a ConfigError naming the variable when it is malformed, so a
 * service refuses to start with a clear message instead of failing later.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

export function str(env: Env, name: string, fallback?: string): string {
  const value = raw(env, name) ?? fallback;
  if (value === undefined) throw new ConfigError(`${name} is required`);
  return value;
}

export function optionalStr(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function int(env: Env, name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function url(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback);
  try {
    new URL(value);
  } catch {
    throw new ConfigError(`${name} must be a URL`);
  }
  return value;
}

/** A connection URL with its password replaced, for logs. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * Secrets may come from a file instead of the environment (Docker/Kubernetes secrets): for each
 * name, `<NAME>_FILE` names a file whose contents (without the trailing newline) become `<NAME>`.
 * Setting both is refused, as is a file that can not be read; the error names the variable,
 * never the value.
 */
export function resolveSecretFiles(env: Env, names: readonly string[], read: (path: string) => string = (p) => readFileSync(p, "utf8")): Env {
  const out: Env = { ...env };
  for (const name of names) {
    const file = raw(env, `${name}_FILE`);
    if (file === undefined) continue;
    if (raw(env, name) !== undefined) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
    let value: string;
    try {
      value = read(file).replace(/\r?\n$/, "");
    } catch (err) {
      throw new ConfigError(`${name}_FILE: can not read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (!value.trim()) throw new ConfigError(`${name}_FILE: ${file} is empty`);
    out[name] = value;
  }
  return out;
}
