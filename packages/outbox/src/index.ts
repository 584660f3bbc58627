export { connectNats, ensureStreams } from "./nats.ts";
export { insertOutboxSql, outboxRecord, type OutboxRecord } from "./record.ts";
export { backoffMs, OutboxRelay, type OutboxRelayDeps } from "./relay.ts";
