import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { getAddress, isAddress } from "viem";
import {
  BlockchainService,
  ErrorDetailSchema,
  MintTokenResponseSchema,
  TransactionStatus,
  type MintTokenRequest,
} from "@cashback/proto/blockchain/v1";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { invalidArgument } from "../errors.ts";
import type { MintService } from "../mints/mint-service.ts";
import type { MintResult } from "../mints/views.ts";
import { toConnectError } from "./errors.ts";

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

/** Thin Connect handlers: translate messages, call the services, map errors. */
export function blockchainServiceImpl(deps: { mints: MintService; chain: ChainClient; logger: Logger }): ServiceImpl<typeof BlockchainService> {
  const guard = <A, R>(name: string, fn: (req: A, ctx: HandlerContext) => Promise<R>) => async (req: A, ctx: HandlerContext): Promise<R> => {
    try {
      return await fn(req, ctx);
    } catch (err) {
      const connectErr = toConnectError(err);
      if (connectErr.code === Code.Internal) deps.logger.error({ err, rpc: name }, "rpc failed");
      throw connectErr;
    }
  };

  return {
    mintToken: guard("MintToken", async (req, ctx) => toResponse(await deps.mints.mint(toInput(req), ctx.signal))),

    mintBatch: guard("MintBatch", async (req, ctx) => ({ results: (await deps.mints.mintMany(req.mints.map(toInput), ctx.signal)).map(toResponse) })),

    // Implemented on the adapter's own branch; the contract is in the proto.
    clawback: async () => {
      throw new ConnectError("Clawback is not implemented by this build of the adapter", Code.Unimplemented);
    },

    getBalance: guard("GetBalance", async (req) => {
      if (!isAddress(req.address, { strict: true })) {
        throw invalidArgument(`address must be a 0x-prefixed 20-byte address with a valid checksum, got "${req.address}"`);
      }
      const address = getAddress(req.address);
      const { balance, blockNumber } = await deps.chain.balanceOf(address);
      return { address, balanceWei: balance.toString(), blockNumber };
    }),

    getTransaction: guard("GetTransaction", async (req) => {
      const view = await deps.mints.getTransaction({
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
