import { expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { waitFor } from "@cashback/testing";
import { useTestStack } from "./support/adapter.ts";

const stack = useTestStack({ BREAKER_FAILURES: "3", BREAKER_HALF_OPEN_AFTER_MS: "5000", RPC_TIMEOUT_MS: "500", TX_MONITOR_INTERVAL_MS: "3600000" });
const to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const circuitState = async () => Number(/adapter_chain_circuit_state (\d)/.exec(await (await fetch(`${stack.adapter.baseUrl}/metrics`)).text())?.[1]);
const failure = async (call: Promise<unknown>) => {
  const err = ConnectError.from(await call.then(() => undefined, (e) => e));
  return { code: err.code, detail: err.findDetails(ErrorDetailSchema)[0] };
};

it("RPC down: calls fail retryable, the breaker opens and fails fast, then recovers", async () => {
  await stack.chain.proxy.down();

  // Failures reach the node's (closed) port until the breaker has seen 3 in a row.
  for (let i = 0; i < 3; i++) {
    const { code, detail } = await failure(stack.adapter.client.getBalance({ address: to }));
    expect(code).toBe(Code.Unavailable);
    expect(detail?.retryable).toBe(true);
  }
  expect(await circuitState()).toBe(1); // open

  // Fails fast: a stalled node would hold any request that reached it, and none does.
  await stack.chain.proxy.hang();
  const reached = stack.chain.proxy.accepted;
  const { code, detail } = await failure(stack.adapter.client.mintToken({ idempotencyKey: "while-open", to, amountWei: "1" }));
  expect(stack.chain.proxy.accepted).toBe(reached); // nothing waited on the node
  expect(code).toBe(Code.Unavailable);
  expect(detail).toMatchObject({ retryable: true, reason: "CIRCUIT_OPEN" });

  await stack.chain.proxy.up();
  // Half-open after BREAKER_HALF_OPEN_AFTER_MS: the first call that gets through closes it.
  const balance = await waitFor("the breaker to let a call through", () => stack.adapter.client.getBalance({ address: to }).catch(() => undefined), { timeoutMs: 30_000 });
  expect(balance.blockNumber).toBeGreaterThan(0n);
  expect(await circuitState()).toBe(0); // closed

  const minted = await stack.adapter.client.mintToken({ idempotencyKey: "after-recovery", to, amountWei: "1" });
  expect(minted.status).toBe(TransactionStatus.CONFIRMED);
});

it("/metrics scrapes while the node is down never count toward opening the breaker", async () => {
  await stack.chain.proxy.down();
  try {
    // Three failed chain calls open it; a scrape reads the last balances, it does not ask the node.
    for (let i = 0; i < 5; i++) expect(await circuitState()).toBe(0);
  } finally {
    await stack.chain.proxy.up();
  }
});
