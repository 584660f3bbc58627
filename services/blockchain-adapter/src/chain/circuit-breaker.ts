import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from "cockatiel";
import type { Logger } from "@cashback/runtime";
import type { Metrics } from "../metrics.ts";
import { isTransportError } from "./rpc-errors.ts";

/**
 * One breaker for every call to the node. Only transport failures count (a revert is an
 * answer, not an outage). While open, calls fail at once with BrokenCircuitError, which the
 * service reports as a retryable UNAVAILABLE; after `halfOpenAfterMs` one call probes the node.
 */
export function createChainBreaker(
  opts: { failures: number; halfOpenAfterMs: number },
  logger: Logger,
  metrics: Metrics,
): CircuitBreakerPolicy {
  const breaker = circuitBreaker(handleWhen(isTransportError), {
    halfOpenAfter: opts.halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(opts.failures),
  });
  metrics.circuitState.set(CircuitState.Closed);
  breaker.onStateChange((state) => {
    metrics.circuitState.set(state);
    const fields = { circuit: CircuitState[state] };
    if (state === CircuitState.Open) logger.warn(fields, "chain circuit breaker opened: chain calls fail fast");
    else logger.info(fields, "chain circuit breaker state changed");
  });
  return breaker;
}

/** Whether the breaker fails chain calls at once (open, or isolated by an operator). */
export function chainDown(breaker: CircuitBreakerPolicy): boolean {
  return breaker.state === CircuitState.Open || breaker.state === CircuitState.Isolated;
}
