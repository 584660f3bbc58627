import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { initialState, next, RETRIES_EXHAUSTED, type Effect, type Kind, type MachineContext, type RequestEvent, type RequestState } from "../src/requests/machine.ts";
import { backoffCeilingMs, backoffMs, exhausted, type RetryPolicy } from "../src/requests/retry-policy.ts";

const now = 1_000_000;
const policy: RetryPolicy = { maxAttempts: 3, maxAgeMs: 60_000, baseMs: 100, capMs: 1_000, reconcileMs: 500 };
const ctx = (kind: Kind): MachineContext => ({ kind, now, jitter: 0.5, policy });
const progress = { attempts: 0, retrySince: now - 1_000, dueAt: now, adapterMayKnow: false, lastError: null };
const TX_A = `0x${"a".repeat(64)}`;
const TX_B = `0x${"b".repeat(64)}`;

const states = {
  waiting: { status: "WAITING", ...progress },
  pending: { status: "PENDING", ...progress },
  submitted: { status: "SUBMITTED", txHash: TX_A, ...progress, adapterMayKnow: true },
  confirmed: { status: "CONFIRMED", attempts: 1, txHash: TX_A, blockNumber: 7n },
  failedReverted: { status: "FAILED", attempts: 0, adapterMayKnow: true, reason: "REVERTED", message: "AccessControlUnauthorizedAccount" },
  failedMintFailed: { status: "FAILED", attempts: 0, adapterMayKnow: false, reason: "MINT_FAILED", message: "no mint" },
} satisfies Record<string, RequestState>;

const events = {
  confirmed: { type: "CONFIRMED", txHash: TX_B, blockNumber: 9n },
  submitted: { type: "SUBMITTED", txHash: TX_B },
  submittedNoHash: { type: "SUBMITTED", txHash: null },
  refused: { type: "REFUSED", reason: "REVERTED", message: "reverted" },
  insufficient: { type: "REFUSED", reason: "INSUFFICIENT_BALANCE", message: "holds 1, asked 2" },
  transientUnreached: { type: "TRANSIENT", reason: "ADAPTER_UNREACHABLE", message: "ECONNREFUSED", mayHaveReached: false },
  transientReached: { type: "TRANSIENT", reason: "CHAIN_UNAVAILABLE", message: "node down", mayHaveReached: true },
  notFound: { type: "NOT_FOUND" },
  mintConfirmed: { type: "MINT_CONFIRMED" },
  mintFailed: { type: "MINT_FAILED" },
  replayed: { type: "REPLAYED" },
} satisfies Record<string, RequestEvent>;

type StateName = keyof typeof states;
type EventName = keyof typeof events;
const FAILED_DLQ = (reason: string): Effect["type"][] => (reason ? ["EMIT_FAILED", "DEAD_LETTER"] : []);

/**
 * Every transition that changes something: [kinds, state, event, expected state (partial), effects].
 * Any (kind, state, event) not listed must leave the state as it is with no effects.
 */
const TABLE: [Kind[], StateName, EventName, Partial<Record<string, unknown>>, Effect["type"][]][] = [
  // A clawback waits for its mint.
  [["clawback"], "waiting", "mintConfirmed", { status: "PENDING", dueAt: now, attempts: 0 }, []],
  [["clawback"], "waiting", "mintFailed", { status: "FAILED", reason: "MINT_FAILED" }, ["EMIT_FAILED"]],

  // Sending.
  [["mint", "clawback"], "pending", "confirmed", { status: "CONFIRMED", txHash: TX_B, blockNumber: 9n }, ["EMIT_SUCCEEDED"]],
  [["mint", "clawback"], "pending", "submitted", { status: "SUBMITTED", txHash: TX_B, dueAt: now + 500, adapterMayKnow: true }, []],
  [["mint", "clawback"], "pending", "submittedNoHash", { status: "SUBMITTED", txHash: null, dueAt: now + 500, adapterMayKnow: true }, []],
  [["mint", "clawback"], "pending", "refused", { status: "FAILED", reason: "REVERTED", message: "reverted" }, FAILED_DLQ("REVERTED")],
  [["mint"], "pending", "insufficient", { status: "FAILED", reason: "INSUFFICIENT_BALANCE" }, ["EMIT_FAILED", "DEAD_LETTER"]],
  // A holder who spent the cashback is an answer about the shopper, not an operator's problem.
  [["clawback"], "pending", "insufficient", { status: "FAILED", reason: "INSUFFICIENT_BALANCE" }, ["EMIT_FAILED"]],
  [["mint", "clawback"], "pending", "transientUnreached", { status: "PENDING", attempts: 1, dueAt: now + 50, adapterMayKnow: false, lastError: { reason: "ADAPTER_UNREACHABLE", message: "ECONNREFUSED" } }, []],
  [["mint", "clawback"], "pending", "transientReached", { status: "PENDING", attempts: 1, dueAt: now + 50, adapterMayKnow: true }, []],

  // Settling what the adapter holds.
  [["mint", "clawback"], "submitted", "confirmed", { status: "CONFIRMED", txHash: TX_B, blockNumber: 9n }, ["EMIT_SUCCEEDED"]],
  [["mint", "clawback"], "submitted", "submitted", { status: "SUBMITTED", txHash: TX_B, dueAt: now + 500 }, []],
  [["mint", "clawback"], "submitted", "submittedNoHash", { status: "SUBMITTED", txHash: TX_A, dueAt: now + 500 }, []],
  [["mint", "clawback"], "submitted", "refused", { status: "FAILED", reason: "REVERTED" }, ["EMIT_FAILED", "DEAD_LETTER"]],
  [["mint"], "submitted", "insufficient", { status: "FAILED", reason: "INSUFFICIENT_BALANCE" }, ["EMIT_FAILED", "DEAD_LETTER"]],
  [["clawback"], "submitted", "insufficient", { status: "FAILED", reason: "INSUFFICIENT_BALANCE" }, ["EMIT_FAILED"]],
  [["mint", "clawback"], "submitted", "transientUnreached", { status: "SUBMITTED", attempts: 1, dueAt: now + 50, txHash: TX_A }, []],
  [["mint", "clawback"], "submitted", "transientReached", { status: "SUBMITTED", attempts: 1, dueAt: now + 50 }, []],
  [["mint", "clawback"], "submitted", "notFound", { status: "PENDING", dueAt: now, adapterMayKnow: false }, []],

  // Replays from the dead-letter stream.
  [["mint"], "failedReverted", "replayed", { status: "PENDING", attempts: 0, retrySince: now, dueAt: now, adapterMayKnow: true }, []],
  [["clawback"], "failedReverted", "replayed", { status: "WAITING", attempts: 0, retrySince: now, dueAt: now }, []],
  [["mint"], "failedMintFailed", "replayed", { status: "PENDING", attempts: 0, retrySince: now }, []],
  [["clawback"], "failedMintFailed", "replayed", { status: "WAITING", attempts: 0, retrySince: now }, []],
  // A clawback that failed for want of a mint goes ahead once the mint is replayed and confirmed.
  [["clawback"], "failedMintFailed", "mintConfirmed", { status: "PENDING", attempts: 0, dueAt: now }, []],
];

describe("state machine: every transition", () => {
  for (const [kinds, stateName, eventName, expected, effects] of TABLE) {
    for (const kind of kinds) {
      it(`${kind}: ${stateName} + ${eventName} -> ${String(expected.status)} [${effects.join(", ")}]`, () => {
        const t = next(states[stateName], events[eventName], ctx(kind));
        expect(t.state).toMatchObject(expected);
        expect(t.effects.map((e) => e.type)).toEqual(effects);
        for (const e of t.effects) if (e.type !== "EMIT_SUCCEEDED") expect(e).toMatchObject({ reason: (t.state as { reason: string }).reason });
      });
    }
  }

  it("every other (kind, state, event) leaves the state as it is, with no effects", () => {
    const listed = new Set(TABLE.flatMap(([kinds, s, e]) => kinds.map((k) => `${k}/${s}/${e}`)));
    let checked = 0;
    for (const kind of ["mint", "clawback"] as const) {
      for (const s of Object.keys(states) as StateName[]) {
        if (kind === "mint" && s === "waiting") continue; // a mint is never WAITING
        for (const e of Object.keys(events) as EventName[]) {
          if (listed.has(`${kind}/${s}/${e}`)) continue;
          const t = next(states[s], events[e], ctx(kind));
          expect(t.state, `${kind}/${s}/${e}`).toBe(states[s]);
          expect(t.effects, `${kind}/${s}/${e}`).toEqual([]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(60);
  });

  it("a new mint is PENDING and due now; a new clawback WAITS for its mint", () => {
    expect(initialState("mint", now)).toEqual({ status: "PENDING", attempts: 0, retrySince: now, dueAt: now, adapterMayKnow: false, lastError: null });
    expect(initialState("clawback", now)).toMatchObject({ status: "WAITING", attempts: 0, retrySince: now });
  });
});

describe("state machine: running out of retries", () => {
  const last = { status: "PENDING", ...progress, attempts: 2 } satisfies RequestState; // the next failure is the 3rd
  const cases: [string, RequestState, RequestEvent, Partial<Record<string, unknown>>, Effect["type"][]][] = [
    ["the adapter never saw it: FAILED, reported and dead-lettered", last, events.transientUnreached, { status: "FAILED", reason: RETRIES_EXHAUSTED, attempts: 3 }, ["EMIT_FAILED", "DEAD_LETTER"]],
    ["a call may have reached it: asked first (SUBMITTED, due now)", last, events.transientReached, { status: "SUBMITTED", attempts: 3, dueAt: now, adapterMayKnow: true, txHash: null }, []],
    ["an earlier call may have reached it: asked first", { ...last, adapterMayKnow: true }, events.transientUnreached, { status: "SUBMITTED", dueAt: now }, []],
    ["too old, whatever the count: FAILED", { ...last, attempts: 0, retrySince: now - 60_000 }, events.transientUnreached, { status: "FAILED", reason: RETRIES_EXHAUSTED, attempts: 1 }, ["EMIT_FAILED", "DEAD_LETTER"]],
    ["the adapter says it does not hold it: FAILED", { status: "SUBMITTED", ...progress, attempts: 3, txHash: null, adapterMayKnow: true }, events.notFound, { status: "FAILED", reason: RETRIES_EXHAUSTED, adapterMayKnow: false }, ["EMIT_FAILED", "DEAD_LETTER"]],
    ["the adapter holds it: never given up, whatever the count", { status: "SUBMITTED", ...progress, attempts: 30, txHash: null, adapterMayKnow: true }, events.transientReached, { status: "SUBMITTED", attempts: 31 }, []],
  ];
  for (const [name, state, event, expected, effects] of cases) {
    it(name, () => {
      const t = next(state, event, ctx("mint"));
      expect(t.state).toMatchObject(expected);
      expect(t.effects.map((e) => e.type)).toEqual(effects);
    });
  }

  it("the exhausted message names the attempts, the age and the last error", () => {
    const t = next(last, events.transientUnreached, ctx("mint"));
    expect(t.effects[0]).toEqual({ type: "EMIT_FAILED", reason: RETRIES_EXHAUSTED, message: "gave up after 3 attempts over 1 s; last error ADAPTER_UNREACHABLE: ECONNREFUSED" });
  });
});

describe("state machine: properties over any sequence of events", () => {
  const anyEvent = fc.constantFrom(...(Object.values(events) as RequestEvent[]));
  const run = (kind: Kind, seq: RequestEvent[], jitters: number[]) => {
    let state = initialState(kind, now);
    let t = now;
    const log: { state: RequestState; effects: Effect[]; event: RequestEvent; before: RequestState }[] = [];
    seq.forEach((event, i) => {
      t += 10_000;
      const r = next(state, event, { kind, now: t, jitter: jitters[i % jitters.length]!, policy });
      log.push({ ...r, event, before: state });
      state = r.state;
    });
    return log;
  };

  it("never gives up on a request the adapter may hold (no RETRIES_EXHAUSTED while adapterMayKnow)", () => {
    fc.assert(
      fc.property(fc.constantFrom<Kind>("mint", "clawback"), fc.array(anyEvent, { maxLength: 40 }), fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 1 }), (kind, seq, jitters) => {
        for (const step of run(kind, seq, jitters)) {
          if (step.effects.some((e) => e.type === "EMIT_FAILED" && e.reason === RETRIES_EXHAUSTED)) {
            expect(step.state).toMatchObject({ status: "FAILED", adapterMayKnow: false });
            expect(step.before.status === "SUBMITTED" ? step.event.type : "not-from-submitted").toMatch(/NOT_FOUND|not-from-submitted/);
          }
        }
      }),
    );
  });

  it("reports at most one outcome per life (between replays), and a confirmed request stays confirmed", () => {
    fc.assert(
      fc.property(fc.constantFrom<Kind>("mint", "clawback"), fc.array(anyEvent, { maxLength: 40 }), (kind, seq) => {
        let outcomes = 0;
        let confirmed = false;
        for (const step of run(kind, seq, [0.3])) {
          // A failed request revived (a replay, or its missing mint confirmed) starts a new life.
          if (step.before.status === "FAILED" && step.state.status !== "FAILED") outcomes = 0;
          outcomes += step.effects.filter((e) => e.type === "EMIT_SUCCEEDED" || e.type === "EMIT_FAILED").length;
          expect(outcomes).toBeLessThanOrEqual(1);
          if (confirmed) expect(step.state.status).toBe("CONFIRMED");
          confirmed ||= step.state.status === "CONFIRMED";
          // A result is emitted exactly when a final state is entered.
          const entered = step.state !== step.before && (step.state.status === "CONFIRMED" || step.state.status === "FAILED");
          expect(step.effects.some((e) => e.type.startsWith("EMIT"))).toBe(entered);
        }
      }),
    );
  });

  it("schedules retries within the backoff ceiling of their attempt", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.boolean(), (attempts, jitter, reached) => {
        const state: RequestState = { status: "PENDING", ...progress, attempts, retrySince: now, adapterMayKnow: false };
        const t = next(state, { ...events.transientReached, mayHaveReached: reached }, { kind: "mint", now, jitter, policy: { ...policy, maxAttempts: 1_000 } });
        expect(t.state).toMatchObject({ status: "PENDING", attempts: attempts + 1, dueAt: now + backoffMs(attempts + 1, jitter, policy) });
      }),
    );
  });
});

describe("retry policy", () => {
  const p = { baseMs: 500, capMs: 60_000 };

  it("backoff ceilings double from the base up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 1_000].map((n) => backoffCeilingMs(n, p))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it("full jitter: a uniform draw below the ceiling (jitter 0 -> 0, 0.5 -> half)", () => {
    expect(backoffMs(3, 0, p)).toBe(0);
    expect(backoffMs(3, 0.5, p)).toBe(1_000);
    expect(backoffMs(3, 0.999_999, p)).toBe(1_999);
    expect(backoffMs(20, 0.25, p)).toBe(15_000);
  });

  it("for any attempt and draw: floor(draw * ceiling), and each ceiling doubles the last until the cap", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 0.999_999, noNaN: true }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 1_000_000 }), (n, j, base, extra) => {
        const q = { baseMs: base, capMs: base + extra };
        const ceiling = backoffCeilingMs(n, q);
        expect(backoffMs(n, j, q)).toBe(Math.floor(j * ceiling));
        expect(backoffCeilingMs(n + 1, q)).toBe(Math.min(q.capMs, ceiling * 2));
      }),
    );
  });

  it("is exhausted at the attempt limit or the age limit, whichever comes first", () => {
    const limits = { maxAttempts: 5, maxAgeMs: 1_000 };
    expect(exhausted(4, 0, 999, limits)).toBe(false);
    expect(exhausted(5, 0, 0, limits)).toBe(true);
    expect(exhausted(0, 0, 1_000, limits)).toBe(true);
    expect(exhausted(0, 500, 1_499, limits)).toBe(false);
  });
});
