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
      "packages/*",
      "services/*",
    ],
  },
});
