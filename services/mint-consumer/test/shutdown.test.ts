import { expect, it } from "vitest";
import pg from "pg";
import { mintKey } from "@cashback/events";
import { accruedEvent, chainIdOf, mintedEvents, publishEvent, waitFor } from "@cashback/testing";
import { useConsumerStack } from "./support/stack.ts";

const stack = useConsumerStack();

it("stopped while an adapter call hangs: the call is cut short and its request handed back at once, not after its lease; the next consumer mints it once", async () => {
  await stack.adapterProxy.hang(); // the adapter takes the call and never answers
  const first = await stack.startConsumer({ CONSUMER_ADAPTER_TIMEOUT_MS: "60000" }, { viaProxy: true }); // lease: 65 s
  const event = accruedEvent();
  await publishEvent(stack.nc, event);
  const entryId = event.payload.entry_id;
  await waitFor("the request claimed under a lease", async () => {
    const row = await first.db.mintRequest.findUnique({ where: { entryId } });
    return row !== null && row.nextAttemptAt.getTime() > Date.now() + 30_000;
  });

  await first.stop();
  const db = new pg.Client({ connectionString: first.config.databaseUrl });
  await db.connect();
  const { rows } = await db.query<{ status: string; due: boolean }>("SELECT status::text, next_attempt_at <= now() AS due FROM mint_requests WHERE entry_id = $1", [entryId]);
  await db.end();
  expect(rows).toEqual([{ status: "PENDING", due: true }]);

  await stack.adapterProxy.up();
  const second = await stack.startConsumer({ CONSUMER_DATABASE_URL: first.config.databaseUrl }, { viaProxy: true });
  await waitFor("CONFIRMED by the next consumer", async () => (await second.db.mintRequest.findUnique({ where: { entryId } }))?.status === "CONFIRMED", { timeoutMs: 30_000 });
  expect(await mintedEvents(stack.chain, chainIdOf(mintKey(entryId)))).toHaveLength(1);
});
