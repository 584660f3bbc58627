import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "db",
    include: ["test/**/*.test.ts"],
    // Every test creates and drops a real Postgres database.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
