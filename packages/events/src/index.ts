export { EVENT_TYPES, EVENT_VERSION, isEventType, payloads, type EventType, type PayloadOf } from "./catalog.ts";
export { decodeEvent, encodeEvent, MAX_EVENT_BYTES, newEvent, type AnyEvent, type DecodeFailure, type DecodeResult, type Envelope } from "./envelope.ts";
export { clawbackKey, mintKey } from "./keys.ts";
export { deadLetterSubject, DLQ_HEADERS, REPLAY_HEADER, STREAMS, subjectOf, type StreamSpec } from "./streams.ts";
