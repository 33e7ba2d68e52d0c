// A small browser-test runner over playwright-core and Debian's Chromium (never a downloaded
// browser). Tests run in order and may share state; each gets fresh pages whose console errors,
// uncaught exceptions and requests to other origins fail it, and leaves a screenshot of its last
// screen in tests/out/e2e/. Prints one line per test and ends with "N passed, N failed".
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// playwright-core is a devDependency of the web app: resolve it from web/.
const requireFromWeb = createRequire(resolve(here, '../../web/package.json'));
const { chromium } = requireFromWeb('playwright-core');

export const BASE_URL = (process.env.BASE_URL ?? '').replace(/\/$/, '');
export const ADMIN_USERNAME = process.env.ADMIN_USERNAME ?? 'admin';
export const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? '';
/** The bearer secret of POST /api/readings (EMS_INGEST_TOKEN of the server under test). */
export const INGEST_TOKEN = process.env.INGEST_TOKEN ?? '';
export const OUT_DIR = resolve(here, '../out/e2e');

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TEST_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

const tests = [];

/** Registers a test; fn receives a TestContext. */
export function test(name, fn) {
  tests.push({ name, fn });
}

export class AssertionError extends Error {}

export function expect(condition, message) {
  if (!condition) throw new AssertionError(message);
}

export function expectEqual(actual, wanted, what) {
  if (actual !== wanted) {
    throw new AssertionError(`${what}: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(actual)}`);
  }
}

let current = null;

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

class TestContext {
  constructor(browser, index, name) {
    this.browser = browser;
    this.prefix = String(index).padStart(2, '0');
    this.name = name;
    this.problems = [];
    this.allowed = [];
    this.lastPage = null;
  }

  /** Console errors matching `pattern` are expected in this test (a refused sign-in logs a 401). */
  allowConsole(pattern) {
    this.allowed.push(pattern);
  }

  /** A page in a new browser context (its own storage: a second user). */
  async newPage(options = {}) {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    return watch(await context.newPage());
  }

  /** Marks a page as this test's current screen (pages shared between tests call this). */
  use(page) {
    this.lastPage = page;
    return page;
  }

  async screenshot(page, suffix) {
    const file = join(OUT_DIR, `${this.prefix}-${slug(this.name)}${suffix ? `-${slug(suffix)}` : ''}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }
}

/** Reports a page's console errors, crashes and foreign requests to the test running now. */
function watch(page) {
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (message) => {
    if (message.type() === 'error' && current) current.problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    if (current) current.problems.push(`uncaught exception: ${error.message}`);
  });
  page.on('request', (request) => {
    const url = request.url();
    // blob: URLs of the app's own origin are files it made itself (the CSV download).
    if (current && !url.startsWith(`${BASE_URL}/`) && !url.startsWith(`blob:${BASE_URL}/`) && !url.startsWith('data:')) {
      current.problems.push(`request outside the app's origin: ${url}`);
    }
  });
  if (process.env.E2E_TRACE) {
    page.on('response', async (response) => {
      if (!response.url().includes('/api/')) return;
      const body = await response.text().catch(() => '');
      console.log(`  trace ${response.request().method()} ${response.url()} ${response.status()} ${body.slice(0, 300)}`);
    });
  }
  if (current) current.lastPage = page;
  return page;
}

function withTimeout(promise, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function run() {
  if (!BASE_URL) {
    console.log('e2e: BASE_URL is not set');
    console.log('0 passed, 1 failed');
    return 1;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (error) {
    console.log(`e2e: cannot start ${CHROMIUM}: ${error.message.split('\n')[0]}`);
    console.log(`0 passed, ${tests.length} failed`);
    return 1;
  }

  let passed = 0;
  let failed = 0;
  for (const [i, { name, fn }] of tests.entries()) {
    const t = new TestContext(browser, i + 1, name);
    current = t;
    const started = Date.now();
    let failure = null;
    try {
      await withTimeout(fn(t), TEST_TIMEOUT_MS);
    } catch (error) {
      failure = error instanceof AssertionError ? error.message : (error?.message ?? String(error)).split('\n')[0];
    }
    if (t.lastPage && !t.lastPage.isClosed()) {
      await t.screenshot(t.lastPage).catch((error) => {
        failure ??= `screenshot failed: ${error.message}`;
      });
    }
    const unexpected = t.problems.filter((p) => !t.allowed.some((pattern) => pattern.test(p)));
    if (!failure && unexpected.length > 0) failure = unexpected.join('; ');
    current = null;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (failure) {
      failed += 1;
      console.log(`FAIL ${t.prefix} ${name} (${seconds} s): ${failure}`);
    } else {
      passed += 1;
      console.log(`ok   ${t.prefix} ${name} (${seconds} s)`);
    }
  }
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
