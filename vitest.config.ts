import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "contracts",
          include: ["test/contracts/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // Operator tools (npm run reconcile): pure logic, table tests.
        test: { name: "tools", include: ["test/reconcile/**/*.test.ts"] },
      },
      {
        // The whole system as separate processes (packages/testing startStack): npm run test:e2e.
        test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 180_000 },
      },
      {
        // Bounded chaos run over the whole system (CHAOS_PURCHASES, default 2,000): npm run test:faults.
        test: { name: "faults", include: ["test/faults/**/*.test.ts"], testTimeout: 600_000, hookTimeout: 180_000 },
      },
      {
        // The stack as shipped: docker-compose.yml against the services' config, npm run demo.
        test: { name: "stack", include: ["test/stack/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 180_000 },
      },
      "packages/*",
      "services/*",
    ],
  },
});
