import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import type { StreamSpec } from "@cashback/events";
import type { Logger } from "pino";

/**
 * Connects to NATS and stays connected: it waits for a server that is not up yet (a service may
 * start before NATS) and reconnects forever after an outage, logging each change of state.
 * Credentials in the URL (nats://user:pass@host) are used and never logged.
 */
export async function connectNats(opts: { url: string; name: string; logger: Logger }): Promise<NatsConnection> {
  const { servers, user, pass, token } = parseNatsUrl(opts.url);
  const nc = await connect({
    servers,
    name: opts.name,
    user,
    pass,
    token,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    // Otherwise every request (each JetStream publish) builds an Error up front for its stack
    // trace: ~2% of the API's CPU at a few thousand events/s.
    noAsyncTraces: true,
  });
  opts.logger.info({ nats: servers }, "connected to NATS");
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") opts.logger.warn({ nats: servers }, "NATS connection lost; reconnecting");
      else if (status.type === "reconnect") opts.logger.info({ nats: servers }, "NATS reconnected");
      else if (status.type === "error") opts.logger.warn({ err: String((status as { error?: unknown }).error ?? "") }, "NATS client error");
    }
  })().catch(() => {});
  return nc;
}

function parseNatsUrl(url: string): { servers: string; user?: string; pass?: string; token?: string } {
  const u = new URL(url);
  const servers = `${u.protocol}//${u.host}`;
  if (u.username && u.password) return { servers, user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
  if (u.username) return { servers, token: decodeURIComponent(u.username) };
  return { servers };
}

/** Creates each stream, or brings an existing one's subjects and limits to the spec. Idempotent. */
export async function ensureStreams(nc: NatsConnection, specs: readonly StreamSpec[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const spec of specs) {
    const config: Partial<StreamConfig> & { name: string } = {
      name: spec.name,
      subjects: [...spec.subjects],
      description: spec.description,
      duplicate_window: nanos(spec.duplicateWindowMs),
      max_age: nanos(spec.maxAgeMs),
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: 1,
    };
    const existing = await jsm.streams.info(spec.name).catch((err: { code?: unknown; api_error?: { err_code?: number } }) => {
      if (err?.api_error?.err_code === 10059 || /not found/i.test(String(err))) return undefined;
      throw err;
    });
    if (!existing) await jsm.streams.add(config).catch(async (err) => {
      // another instance created it in the meantime
      if (!/already in use|already exists/i.test(String(err))) throw err;
    });
    else if (
      existing.config.subjects?.join() !== config.subjects!.join() ||
      existing.config.duplicate_window !== config.duplicate_window ||
      existing.config.max_age !== config.max_age
    ) {
      await jsm.streams.update(spec.name, { ...existing.config, ...config, num_replicas: existing.config.num_replicas });
    }
  }
}
