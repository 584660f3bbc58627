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
        // The stack as shipped: docker-compose.yml against the services' config, npm run demo.
        test: { name: "stack", include: ["test/stack/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 180_000 },
      },
      "packages/*",
      "services/*",
    ],
  },
});
