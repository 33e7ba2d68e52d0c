// Runs every tests/e2e/*.test.mjs in name order with the shared harness; exits 0 when all pass.
// Environment: BASE_URL (required), ADMIN_USERNAME, ADMIN_PASSWORD, INGEST_TOKEN, CHROMIUM.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
for (const file of readdirSync(here).filter((name) => name.endsWith('.test.mjs')).sort()) {
  await import(pathToFileURL(`${here}/${file}`).href);
}
process.exitCode = await run();
