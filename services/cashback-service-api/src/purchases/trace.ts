import Type from "typebox";
import { traceIdOf } from "@cashback/telemetry";
import type { Db } from "../db.ts";
import type { Purchase } from "../generated/prisma/client.ts";
import { Bytes32, Nullable, Timestamp, Uuid } from "../http/schemas.ts";
import { entryView } from "../ledger/ledger-store.ts";
import { loadPurchaseView } from "./purchase-store.ts";

export const TraceSchema = Type.Object({
  purchase: Type.Ref("Purchase"),
  ledger: Type.Array(Type.Ref("LedgerEntry"), { description: "the accrual, then one clawback per refund with a share" }),
  outbox: Type.Array(
    Type.Object({
      event_id: Uuid,
      type: Type.String(),
      entry_id: Uuid,
      status: Type.Union([Type.Literal("pending"), Type.Literal("published"), Type.Literal("pruned")], {
        description: "pending: in the outbox, not yet in JetStream; published; pruned: published and removed from the outbox after API_OUTBOX_RETENTION_HOURS",
      }),
      created_at: Nullable(Timestamp),
      published_at: Nullable(Timestamp),
      attempts: Nullable(Type.Integer()),
      last_error: Nullable(Type.String()),
      trace_id: Nullable(Type.String({ description: "the OpenTelemetry trace the event was written in (its traceparent header): grep the services' logs for it" })),
    }),
    { description: "the events this purchase's entries were announced with" },
  ),
  results: Type.Array(
    Type.Object({
      event_id: Uuid,
      type: Type.String(),
      outcome: Type.String({ description: "applied, ignored (stale or repeated news)" }),
      received_at: Timestamp,
      payload: Type.Unknown(),
    }),
    { description: "result events received from CASHBACK_RESULTS for its entries" },
  ),
  chain: Nullable(Type.Object({ mint_id: Nullable(Bytes32), tx_hash: Nullable(Bytes32), block_number: Nullable(Type.String()) })),
});

/** GET /v1/purchases/{id}/trace: the purchase's whole path in one answer. */
export async function purchaseTrace(db: Db, purchase: Purchase) {
  const [view, entries] = await Promise.all([loadPurchaseView(db, purchase), db.ledgerEntry.findMany({ where: { purchaseId: purchase.id }, orderBy: { id: "asc" } })]);
  const eventIds = entries.map((e) => e.eventId);
  const accrual = entries.find((e) => e.kind === "accrual");
  const [outbox, results] = await Promise.all([
    db.outboxEvent.findMany({ where: { id: { in: eventIds } } }),
    accrual ? db.processedEvent.findMany({ where: { entryId: accrual.id }, orderBy: { receivedAt: "asc" } }) : Promise.resolve([]),
  ]);
  const outboxById = new Map(outbox.map((o) => [o.id, o]));
  return {
    purchase: view,
    ledger: entries.map(entryView),
    outbox: entries.map((e) => {
      const row = outboxById.get(e.eventId);
      return {
        event_id: e.eventId,
        type: e.kind === "accrual" ? "cashback.accrued" : "cashback.clawback_requested",
        entry_id: e.id,
        status: row ? (row.publishedAt ? "published" : "pending") : "pruned",
        created_at: row?.createdAt.toISOString() ?? null,
        published_at: row?.publishedAt?.toISOString() ?? null,
        attempts: row?.attempts ?? null,
        last_error: row?.lastError ?? null,
        trace_id: traceIdOf((row?.headers as Record<string, string> | undefined)?.traceparent) ?? null,
      } as const;
    }),
    results: results.map((r) => ({
      event_id: r.eventId,
      type: r.type,
      outcome: r.outcome,
      received_at: r.receivedAt.toISOString(),
      payload: (r.envelope as { payload?: unknown }).payload ?? null,
    })),
    chain: accrual?.status === "minted" ? { mint_id: accrual.chainRef, tx_hash: accrual.txHash, block_number: accrual.blockNumber?.toString() ?? null } : null,
  };
}
