// Checks docker-compose.yml against the code: each of our services' environment names must be
// ones its loadConfig reads (judged by effect: see reads()) (a typo would otherwise be ignored silently: every setting has a
// default), its config must load from that environment, it must listen on 0.0.0.0 on the port it
// publishes and health-checks, and every URL it is given must name a compose service on the port
// that service listens on, with a depends_on on it. Pure: the caller gives the parsed file.

type Env = Record<string, string | undefined>;
type Loaded = { host: string; port: number };

export interface ServiceCode {
  /** The service's loadConfig (src/config.ts). */
  loadConfig: (env: Env) => Loaded;
  /** Names read outside loadConfig (e.g. LOG_LEVEL by the logger). */
  alsoReads?: string[];
}

interface ComposeService {
  image?: string;
  command?: string[] | string;
  working_dir?: string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number)[];
  depends_on?: string[] | Record<string, unknown>;
  healthcheck?: { test?: string[] | string };
}

/** Ports our infrastructure services listen on inside the compose network. */
const INFRA_PORTS: Record<string, number> = { postgres: 5432, nats: 4222 };

/** `${NAME:-default}` / `${NAME-default}` / `${NAME}` with `vars` (compose's interpolation, enough for our file). */
export function interpolate(value: string, vars: Env = {}): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}/g, (_m, name: string, colon: string, fallback: string | undefined) => {
    const v = vars[name];
    if (fallback === undefined) return v ?? "";
    return v === undefined || (colon && v === "") ? fallback : v;
  });
}

export function environmentOf(service: ComposeService, vars: Env = {}): Record<string, string> {
  const env = service.environment ?? {};
  const entries = Array.isArray(env) ? env.map((e) => e.split(/=(.*)/s, 2) as [string, string]) : Object.entries(env).map(([k, v]) => [k, v == null ? "" : String(v)] as [string, string]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v ?? "", vars)]));
}

/**
 * Whether `load` reads `name`: the result (or the error) changes when only that variable is given
 * a value no setting accepts unchanged. By effect rather than by watching reads, because a config
 * may copy the whole environment first (e.g. to resolve <NAME>_FILE secrets).
 */
export function reads(load: (env: Env) => unknown, env: Env, name: string): boolean {
  const run = (e: Env) => {
    try {
      return `ok ${stable(load(e))}`;
    } catch (err) {
      return `error ${(err as Error).message}`;
    }
  };
  return run(env) !== run({ ...env, [name]: "\u0001unusable" });
}

/** JSON of a config with its bigints, Maps and Sets. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Map ? [...v] : v instanceof Set ? [...v] : v));
}

/** "127.0.0.1:${API_PORT:-3000}:3000" -> 3000 (the container side). */
function containerPorts(service: ComposeService, vars: Env): number[] {
  return (service.ports ?? []).map((p) => Number(interpolate(String(p), vars).split(":").at(-1)!.split("/")[0]));
}

function dependsOn(service: ComposeService): string[] {
  const d = service.depends_on ?? [];
  return Array.isArray(d) ? d : Object.keys(d);
}

/**
 * Problems found, as sentences naming the service and variable; [] when the file matches.
 * `code`: our services by compose service name (= directory under services/).
 */
export function composeProblems(doc: { services?: Record<string, ComposeService> }, code: Record<string, ServiceCode>, vars: Env = {}): string[] {
  const problems: string[] = [];
  const services = doc.services ?? {};
  const listening = new Map<string, number>(Object.entries(INFRA_PORTS).filter(([name]) => name in services));
  const chain = services.chain;
  if (chain) listening.set("chain", Number(environmentOf(chain, vars).CHAIN_PORT ?? 8545));

  for (const name of Object.keys(code)) if (!services[name]) problems.push(`service ${name} is missing`);
  for (const [name, service] of Object.entries(services)) {
    if (code[name] || name === "chain" || INFRA_PORTS[name] !== undefined) continue;
    problems.push(`service ${name} is not one of ours (${Object.keys(code).join(", ")}) nor postgres, nats, chain`);
  }

  // Ports first: URLs between services are checked against them.
  const loaded = new Map<string, { env: Record<string, string>; config?: Loaded }>();
  for (const [name, svc] of Object.entries(code)) {
    const service = services[name];
    if (!service) continue;
    const env = environmentOf(service, vars);
    let config: Loaded;
    try {
      config = svc.loadConfig(env);
    } catch (error) {
      problems.push(`${name}: its config does not load from the compose environment: ${(error as Error).message}`);
      loaded.set(name, { env });
      continue;
    }
    for (const key of Object.keys(env)) {
      if (!svc.alsoReads?.includes(key) && !reads(svc.loadConfig, env, key)) problems.push(`${name}: ${key} is not read by its loadConfig (a typo?)`);
    }
    loaded.set(name, { env, config });
    listening.set(name, config.port);
    if (service.working_dir !== `/app/services/${name}`) problems.push(`${name}: working_dir is ${service.working_dir}, not /app/services/${name}`);
    if (config.host !== "0.0.0.0") problems.push(`${name}: listens on ${config.host}: unreachable from the other containers and the published port`);
    const ports = containerPorts(service, vars);
    if (!ports.includes(config.port)) problems.push(`${name}: listens on ${config.port} but publishes ${ports.join(", ") || "nothing"}`);
    const check = [service.healthcheck?.test ?? []].flat().join(" ");
    if (!check.includes(`:${config.port}/readyz`)) problems.push(`${name}: its healthcheck does not ask :${config.port}/readyz`);
  }

  for (const [name, { env }] of loaded) {
    const service = services[name]!;
    for (const [key, value] of Object.entries(env)) {
      if (!/_URL$/.test(key) || !/^[a-z]+:\/\//.test(value)) continue;
      const url = new URL(value);
      const host = url.hostname;
      if (host === "127.0.0.1" || host === "localhost") continue; // for the user's browser (e.g. SHOPPER_RPC_URL)
      const port = Number(url.port || { "postgresql:": 5432, "postgres:": 5432, "nats:": 4222, "http:": 80, "https:": 443 }[url.protocol]);
      if (!services[host]) problems.push(`${name}: ${key} names ${host}, which is not a service of the file`);
      else if (listening.get(host) !== port) problems.push(`${name}: ${key} names ${host}:${port}, but ${host} listens on ${listening.get(host)}`);
      if (services[host] && !dependsOn(service).includes(host)) problems.push(`${name}: ${key} names ${host}, which is not in its depends_on`);
    }
  }
  return problems;
}
