import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "@cashback/proto/blockchain/v1";
import { isCircuitOpen, isTransportError, shortMessage } from "../chain/rpc-errors.ts";
import { isDatabaseUnavailable } from "../db.ts";
import { AdapterError, type ErrorKind } from "../errors.ts";

const CODES: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  already_exists: Code.AlreadyExists,
  not_found: Code.NotFound,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** Maps any error to a ConnectError with an ErrorDetail (retryable, reason); no stack reaches clients. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  let e: AdapterError;
  if (err instanceof AdapterError) e = err;
  else if (isCircuitOpen(err)) e = new AdapterError("unavailable", "CIRCUIT_OPEN", "the chain is unreachable (circuit breaker open); try again later");
  else if (isTransportError(err)) e = new AdapterError("unavailable", "CHAIN_UNAVAILABLE", `the chain node did not answer: ${shortMessage(err)}`);
  else if (isDatabaseUnavailable(err)) e = new AdapterError("unavailable", "DATABASE_UNAVAILABLE", "the adapter's database is unavailable; try again later");
  // Unknown: a bug, not a condition that passes; retrying would only repeat it.
  else e = new AdapterError("internal", "INTERNAL", "internal error", false);
  const detail = create(ErrorDetailSchema, { retryable: e.retryable, reason: e.reason, message: e.message });
  return new ConnectError(e.message, CODES[e.kind], undefined, [{ desc: ErrorDetailSchema, value: detail }], err);
}
