import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  BlockchainService,
  ClawbackResponseSchema,
  ErrorDetailSchema,
  MintTokenResponseSchema,
  TransactionStatus,
  type MintTokenRequest,
} from "@cashback/proto/blockchain/v1";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { shortMessage } from "../chain/rpc-errors.ts";
import type { ClawbackService } from "../clawbacks/clawback-service.ts";
import type { MintService } from "../mints/mint-service.ts";
import type { ClawbackResult, MintResult } from "../mints/views.ts";
import type { TransactionLookup } from "../transactions/transaction-lookup.ts";
import { parseAddress } from "../validation.ts";
import { toConnectError } from "./errors.ts";
import { inRpcSpan, logAnswer } from "./tracing.ts";

const STATUS = {
  SUBMITTED: TransactionStatus.SUBMITTED,
  CONFIRMED: TransactionStatus.CONFIRMED,
  FAILED: TransactionStatus.FAILED,
} as const;

const toInput = (m: MintTokenRequest) => ({ idempotencyKey: m.idempotencyKey, to: m.to, amountWei: m.amountWei, metadata: m.metadata });

function toResponse(r: MintResult) {
  return create(MintTokenResponseSchema, {
    idempotencyKey: r.idempotencyKey,
    status: STATUS[r.status],
    txHash: r.txHash,
    blockNumber: r.blockNumber,
    mintId: r.mintId,
    replayed: r.replayed,
    error: r.error && create(ErrorDetailSchema, r.error),
  });
}

function toClawbackResponse(r: ClawbackResult) {
  return create(ClawbackResponseSchema, {
    idempotencyKey: r.idempotencyKey,
    status: STATUS[r.status],
    txHash: r.txHash,
    blockNumber: r.blockNumber,
    refId: r.refId,
    replayed: r.replayed,
    error: r.error && create(ErrorDetailSchema, r.error),
  });
}

/** What the handlers call; not there while the adapter is starting (see app.ts). */
export interface Services {
  mints: MintService;
  clawbacks: ClawbackService;
  transactions: TransactionLookup;
  chain: ChainClient;
}

/**
 * Thin Connect handlers: translate messages, call the services, map errors. `services()` throws
 * a retryable UNAVAILABLE while start-up still waits for the database or the chain.
 */
export function blockchainServiceImpl(services: () => Services, logger: Logger): ServiceImpl<typeof BlockchainService> {
  const guard = <A, R>(name: string, fn: (req: A, ctx: HandlerContext, deps: Services) => Promise<R>) => (req: A, ctx: HandlerContext): Promise<R> =>
    inRpcSpan(name, ctx, async () => {
      try {
        return await fn(req, ctx, services());
      } catch (err) {
        const connectErr = toConnectError(err);
        if (connectErr.code === Code.Internal) logger.error({ err, rpc: name }, "rpc failed");
        else if (connectErr.code === Code.Unavailable) logger.debug({ err: shortMessage(err), rpc: name }, "rpc answered UNAVAILABLE");
        throw connectErr;
      }
    });

  return {
    mintToken: guard("MintToken", async (req, ctx, deps) => {
      const r = await deps.mints.mint(toInput(req), ctx.signal);
      logAnswer(logger, "MintToken", { idempotencyKey: r.idempotencyKey, status: r.status, txHash: r.txHash || undefined, replayed: r.replayed }, "debug");
      return toResponse(r);
    }),

    mintBatch: guard("MintBatch", async (req, ctx, deps) => {
      const results = await deps.mints.mintMany(req.mints.map(toInput), ctx.signal);
      logAnswer(logger, "MintBatch", { mints: results.length, confirmed: results.filter((r) => r.status === "CONFIRMED").length });
      return { results: results.map(toResponse) };
    }),

    clawback: guard("Clawback", async (req, ctx, deps) => {
      const r = await deps.clawbacks.clawback({ idempotencyKey: req.idempotencyKey, from: req.from, amountWei: req.amountWei, metadata: req.metadata }, ctx.signal);
      logAnswer(logger, "Clawback", { idempotencyKey: r.idempotencyKey, status: r.status, txHash: r.txHash || undefined, replayed: r.replayed });
      return toClawbackResponse(r);
    }),

    getBalance: guard("GetBalance", async (req, _ctx, deps) => {
      const address = parseAddress(req.address, "address");
      const { balance, blockNumber } = await deps.chain.balanceOf(address);
      return { address, balanceWei: balance.toString(), blockNumber };
    }),

    getTransaction: guard("GetTransaction", async (req, _ctx, deps) => {
      const view = await deps.transactions.get({
        idempotencyKey: req.lookup.case === "idempotencyKey" ? req.lookup.value : undefined,
        txHash: req.lookup.case === "txHash" ? req.lookup.value : undefined,
      });
      return {
        status: STATUS[view.status],
        txHash: view.txHash,
        blockNumber: view.blockNumber,
        confirmations: view.confirmations,
        gasUsed: view.gasUsed,
        idempotencyKeys: view.idempotencyKeys,
        error: view.error && create(ErrorDetailSchema, view.error),
      };
    }),
  };
}
