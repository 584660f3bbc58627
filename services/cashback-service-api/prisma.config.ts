import { defineConfig } from "prisma/config";

// Only `prisma generate` is used: migrations are SQL files applied by @cashback/db (see DESIGN.md).
export default defineConfig({
  schema: "prisma/schema.prisma",
});
