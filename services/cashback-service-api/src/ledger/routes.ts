import Type from "typebox";
import type { Db } from "../db.ts";
import { errors, IdParams, Page, page, PageQuery, Uuid, Address } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { accessibleUser } from "../users/routes.ts";
import type { BalanceReader } from "./balance.ts";
import { entryView, ledgerPage, ledgerTotals } from "./ledger-store.ts";
import { BalanceSchema, LedgerTotalsSchema } from "./schemas.ts";

export function registerLedgerRoutes(app: App, deps: { db: Db; balances: BalanceReader }) {
  const { db, balances } = deps;

  app.get("/v1/users/:id/ledger", {
    schema: {
      tags: ["ledger"],
      summary: "A user's cashback ledger: entries (newest first), totals by status, and the wallet's on-chain balance",
      description:
        "The balance is read from the chain through the blockchain adapter; when the adapter does not answer within ADAPTER_TIMEOUT_MS the ledger is still returned, with balance.available = false.",
      params: IdParams,
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: {
        200: Type.Object({ user_id: Uuid, wallet_address: Address, totals: LedgerTotalsSchema, balance: BalanceSchema, entries: Page(Type.Ref("LedgerEntry")) }),
        ...errors(403, 404),
      },
    },
    handler: async (request) => {
      const user = await accessibleUser(db, request, request.params.id);
      const limit = request.query.limit ?? 20;
      const owner = { userId: user.id };
      const [rows, totals, balance] = await Promise.all([ledgerPage(db, owner, { limit, cursor: request.query.cursor }), ledgerTotals(db, owner), balances.balanceOf(user.walletAddress)]);
      return { user_id: user.id, wallet_address: user.walletAddress, totals, balance, entries: page(rows, limit, entryView) };
    },
  });
}
