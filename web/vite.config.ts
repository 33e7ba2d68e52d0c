/// <reference types="vitest/config" />
// Builds the EMS web app into dist/ (served by `ems serve --web-dir` or nginx) and configures Vitest.
// `npm run dev` proxies /api and /ws to a local `ems serve` (EMS_API_URL, default port 18080).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const apiTarget = process.env.EMS_API_URL ?? 'http://127.0.0.1:18080';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: apiTarget, changeOrigin: false },
      '/ws': { target: apiTarget, ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
  },
});
