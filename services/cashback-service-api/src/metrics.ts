import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The API's Prometheus metrics, on a registry of its own (GET /metrics). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: "api_http_request_duration_seconds",
      help: "REST latency by route template, method and status",
      labelNames: ["route", "method", "status"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    purchases: new Counter({
      name: "api_purchases_total",
      help: "Purchases recorded, by whether they earned cashback",
      labelNames: ["cashback"] as const,
      registers,
    }),
    purchaseBatch: new Histogram({
      name: "api_purchase_batch_size",
      help: "Purchases written per statement (concurrent purchases share one)",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    capRetries: new Counter({
      name: "api_purchase_cap_retries_total",
      help: "Purchase writes retried because another purchase of the same user changed its cap usage first",
      registers,
    }),
    lockedWrites: new Counter({
      name: "api_purchase_locked_writes_total",
      help: "Purchases written under their user's row lock (after losing the optimistic guard too often)",
      registers,
    }),
    outboxBacklog: new Gauge({ name: "api_outbox_backlog", help: "Outbox events not yet published", registers }),
    outboxOldestAge: new Gauge({ name: "api_outbox_oldest_age_seconds", help: "Age of the oldest unpublished outbox event", registers }),
    outboxPublished: new Counter({ name: "api_outbox_published_total", help: "Outbox events published to JetStream", registers }),
    resultEvents: new Counter({
      name: "api_result_events_total",
      help: "Result events read from CASHBACK_RESULTS, by type and outcome (applied, ignored, duplicate, parked)",
      labelNames: ["type", "outcome"] as const,
      registers,
    }),
    balanceLookups: new Counter({
      name: "api_balance_lookups_total",
      help: "On-chain balance reads through the adapter, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
