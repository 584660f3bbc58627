import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "mint-consumer",
    include: ["test/**/*.test.ts"],
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
});
