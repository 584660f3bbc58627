import { randomUUID } from "node:crypto";
import Type, { type Static } from "typebox";
import Compile from "typebox/compile";
import { EVENT_VERSION, isEventType, payloads, type EventType, type PayloadOf } from "./catalog.ts";
import { Uuid } from "./fields.ts";

/**
 * Every event on the wire is a JSON envelope (snake_case, like the REST API):
 *   { id, type, version, occurred_at, correlation_id, causation_id?, payload }
 * `id` is also the JetStream msgID, so a re-published event is dropped by the stream's duplicate
 * window, and readers de-duplicate on it for good.
 */
const EnvelopeSchema = Type.Object({
  id: Uuid,
  type: Type.String({ maxLength: 100 }),
  version: Type.Integer({ minimum: 1 }),
  occurred_at: Type.String({ format: "date-time" }),
  /** Ties together everything done for one request (e.g. the purchase's id). */
  correlation_id: Type.String({ minLength: 1, maxLength: 200 }),
  /** The id of the event that caused this one, when there is one. */
  causation_id: Type.Optional(Type.String({ maxLength: 200 })),
  payload: Type.Unknown(),
});

export type Envelope<T extends EventType = EventType> = Omit<Static<typeof EnvelopeSchema>, "type" | "payload"> & {
  type: T;
  payload: PayloadOf<T>;
};

/** Any event, narrowed by `type`. */
export type AnyEvent = { [T in EventType]: Envelope<T> }[EventType];

const envelopeValidator = Compile(EnvelopeSchema);
const payloadValidators = Object.fromEntries(Object.entries(payloads).map(([type, schema]) => [type, Compile(schema)])) as {
  [T in EventType]: ReturnType<typeof Compile<(typeof payloads)[T]>>;
};

/** Builds an event, validating its payload (a producer bug must not reach the stream). */
export function newEvent<T extends EventType>(
  type: T,
  payload: PayloadOf<T>,
  opts: { correlationId: string; causationId?: string; id?: string; occurredAt?: Date },
): Envelope<T> {
  const problem = firstError(payloadValidators[type] as never, payload);
  if (problem) throw new TypeError(`invalid ${type} payload: ${problem}`);
  return {
    id: opts.id ?? randomUUID(),
    type,
    version: EVENT_VERSION,
    occurred_at: (opts.occurredAt ?? new Date()).toISOString(),
    correlation_id: opts.correlationId,
    ...(opts.causationId ? { causation_id: opts.causationId } : {}),
    payload,
  };
}

export function encodeEvent(event: Envelope): Uint8Array {
  return Buffer.from(JSON.stringify(event));
}

export type DecodeResult = { ok: true; event: AnyEvent } | { ok: false; reason: DecodeFailure; message: string };
export type DecodeFailure = "MALFORMED_JSON" | "INVALID_ENVELOPE" | "UNKNOWN_TYPE" | "UNSUPPORTED_VERSION" | "INVALID_PAYLOAD";

/** The largest message a reader accepts; anything bigger is dead-lettered unread. */
export const MAX_EVENT_BYTES = 64 * 1024;

/**
 * Reads an event from the wire. Never throws: a message that is not a valid event of a known
 * type and version comes back as a reason (readers dead-letter it with that reason).
 */
export function decodeEvent(data: Uint8Array | string): DecodeResult {
  const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  if (size > MAX_EVENT_BYTES) return fail("INVALID_ENVELOPE", `message of ${size} bytes is over ${MAX_EVENT_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch {
    return fail("MALFORMED_JSON", "not JSON");
  }
  const envelopeProblem = firstError(envelopeValidator, value);
  if (envelopeProblem) return fail("INVALID_ENVELOPE", envelopeProblem);
  const envelope = value as Static<typeof EnvelopeSchema>;
  if (!isEventType(envelope.type)) return fail("UNKNOWN_TYPE", `unknown event type "${envelope.type.slice(0, 100)}"`);
  if (envelope.version !== EVENT_VERSION) return fail("UNSUPPORTED_VERSION", `${envelope.type} version ${envelope.version} (this reader knows ${EVENT_VERSION})`);
  const payloadProblem = firstError(payloadValidators[envelope.type] as never, envelope.payload);
  if (payloadProblem) return fail("INVALID_PAYLOAD", `${envelope.type}: ${payloadProblem}`);
  return { ok: true, event: envelope as AnyEvent };
}

function fail(reason: DecodeFailure, message: string): DecodeResult {
  return { ok: false, reason, message };
}

function firstError(validator: { Check(v: unknown): boolean; Errors(v: unknown): { instancePath: string; message: string }[] }, value: unknown): string | undefined {
  if (validator.Check(value)) return undefined;
  const [error] = validator.Errors(value);
  return error ? `${error.instancePath || "/"} ${error.message}`.slice(0, 300) : "invalid";
}
