// The live connection comes back by itself after the server restarts: a second `ems serve` of
// its own (EMS_BINARY, passed by run_embedded.sh; without it the test is not registered, as
// against the distributed stack, which this runner cannot restart) on another free port and
// data dir; an administrator signs in, the server stops and starts again on the same port, and
// the page's socket reopens without a reload; a message sent then goes through.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from './harness.mjs';

const EMS = process.env.EMS_BINARY ?? '';
const WEB_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');
const PASSWORD = `restart-${Date.now().toString(36)}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The WebSocket gets a free port of its own too (by default it is PORT+1, which may be taken).
function startServer(port, wsPort, dataDir) {
  return spawn(EMS, ['serve', '--data-dir', dataDir, '--port', String(port), '--web-dir', WEB_DIST], {
    env: { ...process.env, EMS_ADMIN_USERNAME: 'admin', EMS_ADMIN_PASSWORD: PASSWORD, EMS_WS_PORT: String(wsPort), EMS_LOG_LEVEL: 'error' },
    stdio: 'ignore',
  });
}

async function waitReady(base, child) {
  for (let i = 0; i < 100 && child.exitCode === null; i += 1) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(200);
  }
  throw new Error(`the second server did not become ready on ${base}`);
}

async function stopServer(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

if (EMS) {
  test('the live connection reconnects by itself after the server restarts', async (t) => {
    const port = await freePort();
    let wsPort = await freePort();
    while (wsPort === port) wsPort = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'ems-e2e-restart-'));
    // This test's pages talk to its own server, and the browser logs the refused reconnects.
    t.allowConsole(new RegExp(`request outside the app's origin: ${base}/`));
    t.allowConsole(/WebSocket connection to .* failed/);
    t.allowConsole(/net::ERR_CONNECTION_REFUSED/);
    let server = startServer(port, wsPort, dataDir);
    try {
      await waitReady(base, server);
      const page = await t.newPage({ timezoneId: 'UTC', locale: 'en-US' });
      await page.goto(`${base}/signin`);
      await page.getByLabel('Username').fill('admin');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL('**/admin/users');
      const bell = (status) => page.locator(`[data-testid="bell"][data-live="${status}"]`);
      await bell('open').waitFor();

      await stopServer(server);
      await bell('connecting').waitFor();
      await sleep(1500);
      server = startServer(port, wsPort, dataDir);
      await waitReady(base, server);
      await bell('open').waitFor({ timeout: 20_000 });
      expect(page.url().endsWith('/admin/users'), `still on the same page, not reloaded: ${page.url()}`);
      await page.getByRole('link', { name: 'Chat', exact: true }).click();
      await page.getByText('No conversations yet').waitFor();
    } finally {
      await stopServer(server);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
