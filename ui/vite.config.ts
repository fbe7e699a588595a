/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// Tauri expects a fixed port in dev and the built files in ui/dist.
export default defineConfig({
  root: import.meta.dirname,
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  test: {
    environment: "happy-dom",
    include: ["test/**/*.test.ts"],
  },
});
