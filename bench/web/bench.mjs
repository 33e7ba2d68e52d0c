// The web app's timings in headless Chromium, against the `ems serve` that bench/web/run.sh
// started (BASE_URL, ADMIN_USERNAME, ADMIN_PASSWORD, INGEST_TOKEN, BUNDLE_FILE, CHROMIUM,
// BENCH_REPS). Sets up a customer with one device and a month of hourly readings (the previous
// calendar month, UTC), then measures, BENCH_REPS times each, in a browser whose zone is UTC:
//
//   first render  navigation start (performance.timeOrigin) → the consumption page's hourly
//                 chart has its bars in the DOM. A MutationObserver installed before any of the
//                 page's scripts (addInitScript) notes performance.now() when
//                 `svg[data-testid=hourly-chart] rect.chart-bar` first exists, and again at the
//                 next animation frame (the frame that paints them). Cold: a new browser context
//                 each time (empty HTTP cache, fresh sign-in state from localStorage); warm: a
//                 reload in the same context.
//   draw a day    click on "Previous day" → the chart carries the new date (data-date) and its
//                 bars are in the DOM (and the next frame). Includes the API call.
//   draw a month  click on "Month" → the daily chart of the month (data-month) has its bars
//                 (and the next frame). Includes the API call. Back to "Day" between runs.
//   For both, the API call's own time (Resource Timing, request start → response end) is
//   reported apart, so what is left is React's work and the browser's.
//
// Prints a markdown report: median, min and max of each, plus the bundle sizes from BUNDLE_FILE.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const requireFromWeb = createRequire(resolve(here, '../../web/package.json'));
const { chromium } = requireFromWeb('playwright-core');

const BASE_URL = (process.env.BASE_URL ?? '').replace(/\/$/, '');
const REPS = Math.max(5, Number(process.env.BENCH_REPS ?? 7));
const TZ = 'UTC';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function call(method, path, token, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** A customer with one device and a reading every hour of the previous calendar month (UTC). */
async function setUp() {
  const admin = await call('POST', '/api/auth/login', '', { username: process.env.ADMIN_USERNAME, password: process.env.ADMIN_PASSWORD });
  const stamp = Date.now().toString(36);
  const customer = { username: `bench_${stamp}`, password: 'bench-secret-1' };
  const account = await call('POST', '/api/auth/accounts', admin.token, {
    ...customer,
    role: 'client',
    first_name: 'Bench',
    last_name: 'Mark',
    email: `bench.${stamp}@example.com`,
  });
  const device = await call('POST', '/api/devices', admin.token, { name: `Heat pump ${stamp}`, max_hourly_kwh: 1.5 });
  await call('PUT', `/api/devices/${device.id}/owner`, admin.token, { user_id: account.id });

  const now = new Date();
  const first = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
  const end = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const readings = [];
  let total = 0;
  for (let hour = first, i = 0; hour < end; hour += 3_600_000, i += 1) {
    // A daily shape (low at night, peaks morning and evening) that changes from day to day; quarter kWh steps.
    const h = new Date(hour).getUTCHours();
    const kwh = 0.25 * (1 + ((h >= 6 && h < 9) || (h >= 17 && h < 22) ? 4 : 1) + ((i * 7) % 5 === 0 ? 2 : 0));
    readings.push({ timestamp: hour + 1_800_000, device_id: device.id, measurement_value: kwh });
    total += kwh;
  }
  const month = new Date(first).toISOString().slice(0, 7);
  const lastDay = new Date(end - 86_400_000).toISOString().slice(0, 10);
  // Monitoring learns of the device from an event: post again (a reading counts once per device
  // and timestamp) until the month adds up.
  let stored = -1;
  for (let attempt = 0; attempt < 50 && Math.abs(stored - total) > 1e-6; attempt += 1) {
    for (let i = 0; i < readings.length; i += 250) await call('POST', '/api/readings', process.env.INGEST_TOKEN, readings.slice(i, i + 250));
    const days = await call('GET', `/api/consumption/${device.id}/days?from=${month}-01&to=${lastDay}&tz=${TZ}`, admin.token);
    stored = days.total_kwh;
    if (Math.abs(stored - total) > 1e-6) await sleep(200);
  }
  if (Math.abs(stored - total) > 1e-6) throw new Error(`the month did not add up: ${stored} of ${total} kWh`);
  const session = await call('POST', '/api/auth/login', '', customer);
  return { session, deviceId: device.id, month, days: Number(lastDay.slice(8, 10)), readings: readings.length, total };
}

/** Installed before the page's own scripts: notes when the hourly chart's bars first exist. */
function watchFirstBars() {
  const selector = 'svg[data-testid="hourly-chart"] rect.chart-bar';
  const observer = new MutationObserver(() => {
    if (!document.querySelector(selector)) return;
    observer.disconnect();
    window.__bench = { dom: performance.now() };
    requestAnimationFrame(() => {
      window.__bench.frame = performance.now();
    });
  });
  observer.observe(document, { childList: true, subtree: true });
}

/** In the page: click `button`, resolve when `selector` matches, with the times since the click. */
function clickAndWait([button, selector]) {
  return new Promise((resolveTimes, reject) => {
    const target = document.querySelector(button);
    if (!target) {
      reject(new Error(`no ${button}`));
      return;
    }
    const started = performance.now();
    const done = () => {
      const dom = performance.now() - started;
      // The consumption API call this click made (Resource Timing: request start → last byte).
      const call = performance
        .getEntriesByType('resource')
        .filter((e) => e.name.includes('/api/consumption/') && e.startTime >= started)
        .at(-1);
      const api = call ? call.responseEnd - call.startTime : null;
      requestAnimationFrame(() => resolveTimes({ dom, frame: performance.now() - started, api }));
    };
    const observer = new MutationObserver(() => {
      if (document.querySelector(selector)) {
        observer.disconnect();
        done();
      }
    });
    observer.observe(document, { childList: true, subtree: true, attributes: true });
    target.click();
  });
}

async function firstRender(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.__bench && window.__bench.frame !== undefined, null, { timeout: 30_000 });
  const times = await page.evaluate(() => window.__bench);
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  return { ...times, fcp };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const ms = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(1)}`);
const row = (what, xs) => `| ${what} | ${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${xs.length} |`;

async function main() {
  if (!BASE_URL) throw new Error('BASE_URL is not set (run bench/web/run.sh)');
  const setup = await setUp();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const version = browser.version();
  const day = `${setup.month}-20`;
  const url = `${BASE_URL}/consumption/${setup.deviceId}?date=${day}&tz=${TZ}`;
  const newContext = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: TZ, locale: 'en-US' });
    await context.addInitScript((session) => localStorage.setItem('ems.session', session), JSON.stringify(setup.session));
    await context.addInitScript(watchFirstBars);
    return context;
  };

  const cold = { dom: [], frame: [], fcp: [] };
  const warm = { dom: [], frame: [] };
  const dayDraw = { dom: [], frame: [], api: [] };
  const monthDraw = { dom: [], frame: [], api: [] };
  let monthBars = 0;
  try {
    // One unmeasured load first: the server's first answers (SQLite pages, the bundle read from disk).
    const warmup = await newContext();
    await firstRender(await warmup.newPage(), url);
    await warmup.close();

    for (let rep = 0; rep < REPS; rep += 1) {
      const context = await newContext();
      const page = await context.newPage();
      const times = await firstRender(page, url);
      cold.dom.push(times.dom);
      cold.frame.push(times.frame);
      if (times.fcp !== null) cold.fcp.push(times.fcp);
      await page.reload();
      await page.waitForFunction(() => window.__bench && window.__bench.frame !== undefined, null, { timeout: 30_000 });
      const again = await page.evaluate(() => window.__bench);
      warm.dom.push(again.dom);
      warm.frame.push(again.frame);
      await context.close();
    }

    // Days and months on one open page.
    const context = await newContext();
    const page = await context.newPage();
    await firstRender(page, url);
    let date = day;
    for (let rep = 0; rep < REPS; rep += 1) {
      const previous = new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
      const times = await page.evaluate(clickAndWait, [
        'button[aria-label="Previous day"]',
        `svg[data-testid="hourly-chart"][data-date="${previous}"] rect.chart-bar`,
      ]);
      dayDraw.dom.push(times.dom);
      dayDraw.frame.push(times.frame);
      if (times.api !== null) dayDraw.api.push(times.api);
      date = previous;
    }
    for (let rep = 0; rep < REPS; rep += 1) {
      const times = await page.evaluate(clickAndWait, [
        '.segmented button:nth-child(2)',
        `svg[data-testid="daily-chart"][data-month="${setup.month}"] rect.chart-bar`,
      ]);
      monthDraw.dom.push(times.dom);
      monthDraw.frame.push(times.frame);
      if (times.api !== null) monthDraw.api.push(times.api);
      monthBars = await page.locator(`svg[data-testid="daily-chart"][data-month="${setup.month}"] rect.chart-bar`).count();
      await page.evaluate(clickAndWait, ['.segmented button:nth-child(1)', 'svg[data-testid="hourly-chart"] rect.chart-bar']);
    }
    await context.close();
  } finally {
    await browser.close();
  }

  const bundle = readFileSync(process.env.BUNDLE_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .map(([file, raw, gzip]) => ({ file, raw: Number(raw), gzip: Number(gzip) }));
  const sum = (key) => bundle.reduce((a, b) => a + b[key], 0);
  const bytes = (n) => `${n.toLocaleString('en-US')} B`;

  const out = [];
  out.push(`## Web app: bundle and drawing times`);
  out.push('');
  out.push(`${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Chromium ${version} headless, ` +
    `Node ${process.versions.node}, load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end; \`ems serve\` (embedded) on loopback. Data: one device, ${setup.readings} hourly readings ` +
    `(${setup.month}, UTC, ${setup.total} kWh). ${REPS} repetitions each, after one unmeasured load.`);
  out.push('');
  out.push('| file | raw | gzip -9 |');
  out.push('|---|---:|---:|');
  for (const f of bundle) out.push(`| ${f.file} | ${bytes(f.raw)} | ${bytes(f.gzip)} |`);
  out.push(`| total | ${bytes(sum('raw'))} | ${bytes(sum('gzip'))} |`);
  out.push('');
  out.push('| what (ms) | median | min | max | runs |');
  out.push('|---|---:|---:|---:|---:|');
  out.push(row('first render, cold: navigation start → hourly bars in the DOM', cold.dom));
  out.push(row('first render, cold: navigation start → next frame after the bars', cold.frame));
  if (cold.fcp.length) out.push(row('first render, cold: first contentful paint (for reference)', cold.fcp));
  out.push(row('first render, warm (reload): navigation start → hourly bars in the DOM', warm.dom));
  out.push(row('first render, warm (reload): navigation start → next frame', warm.frame));
  out.push(row('draw a day: click “Previous day” → the new day’s 24 bars in the DOM', dayDraw.dom));
  out.push(row('draw a day: click → next frame', dayDraw.frame));
  if (dayDraw.api.length) out.push(row('draw a day: of which the API call (Resource Timing)', dayDraw.api));
  out.push(row(`draw a month: click “Month” → the month’s ${monthBars} daily bars in the DOM`, monthDraw.dom));
  out.push(row('draw a month: click → next frame', monthDraw.frame));
  if (monthDraw.api.length) out.push(row('draw a month: of which the API call (Resource Timing)', monthDraw.api));
  out.push('');
  out.push('Every time includes the API call behind it (the day: `GET /api/consumption/{id}?date=&tz=`; the month: ' +
    '`GET /api/consumption/{id}/days?from=&to=&tz=`), React\'s render and commit; "next frame" adds the ' +
    'requestAnimationFrame after the commit, i.e. up to the frame that paints the bars. Cold first render also ' +
    'includes loading and parsing the bundle (a new browser context: empty HTTP cache) and the page\'s other ' +
    'requests (device list, device).');
  console.log(out.join('\n'));
}

main().catch((error) => {
  console.error(`bench/web: ${error?.stack ?? error}`);
  process.exitCode = 1;
});
