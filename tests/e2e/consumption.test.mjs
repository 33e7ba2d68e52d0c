// Consumption, alerts and the assistant against a real `ems serve`: the administrator sets up a
// customer with a metered device (through the API: the UI for that is app.test.mjs's), meter
// readings for yesterday arrive with the ingest token, one hour over the device's limit; then
// the customer, in a browser whose zone is Europe/Bucharest, sees that day's total, one bar per
// local hour, the limit line and the one bar over it, downloads the CSV, sees the month of that
// day (its total is the day's, its bar opens the day), finds the alert, and asks the assistant
// in the chat; the administrator reaches the same day from the device.
import { readFileSync } from 'node:fs';
import { ADMIN_PASSWORD, ADMIN_USERNAME, BASE_URL, INGEST_TOKEN, expect, expectEqual, test } from './harness.mjs';

const TZ = 'Europe/Bucharest';
const BROWSER = { timezoneId: TZ, locale: 'en-US', acceptDownloads: true };
const stamp = Date.now().toString(36);
const customer = { username: `erin_${stamp}`, password: 'erin-secret-1' };
const device = { name: `Boiler ${stamp}`, limit: 2.5 };
const OVER_HOUR = 18;

// Local hours 07:00–20:59 of yesterday, four readings an hour: well inside the day in any season.
// Multiples of 0.25 keep every sum exact, in JSON, in SQLite and in the assistant's "%.2f".
const PLAN = Array.from({ length: 14 }, (_, i) => 7 + i).map((hour) => ({
  hour,
  values: hour === OVER_HOUR ? [0.75, 0.75, 0.75, 0.75] : hour === 12 ? [0.5, 0.5, 0.5, 0.5] : hour === 9 ? [0.25, 0.25, 0.25] : [0.25, 0.25, 0.25, 0.25],
}));
const TOTAL = PLAN.reduce((sum, h) => sum + h.values.reduce((a, b) => a + b, 0), 0);
const kwhText = (kwh) => `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 }).format(kwh)} kWh`;

let deviceId = '';
let yesterday = '';
let hoursInDay = 0;
let customerPage = null;

/**
 * The local date "YYYY-MM-DD" in tz at instant ms, built from the formatter's parts: a locale's
 * display format is not a machine format (en-CA gives 2026-12-04 with one ICU, 12/4/2026 with
 * another), so nothing here depends on the host's Node.js, ICU or locale.
 */
function dateIn(tz, ms) {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(new Date(ms));
  const get = (type) => parts.find((p) => p.type === type).value.padStart(type === 'year' ? 4 : 2, '0');
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** tz's offset from UTC at instant ms, in ms. */
function offsetAt(tz, ms) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return local - Math.floor(ms / 1000) * 1000;
}

/** The instant of local wall time date hour:minute in tz (outside DST gaps). */
function zoned(date, hour, minute, tz) {
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d, hour, minute);
  const first = wall - offsetAt(tz, wall);
  return wall - offsetAt(tz, first);
}

function nextDate(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

async function call(method, path, token, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function signIn(page, username, password) {
  await page.goto(`${BASE_URL}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('readings for yesterday reach a customer’s device, one hour over its limit', async (t) => {
  expect(INGEST_TOKEN, 'INGEST_TOKEN is set (run_embedded.sh passes the server’s)');
  const admin = await call('POST', '/api/auth/login', '', { username: ADMIN_USERNAME, password: ADMIN_PASSWORD });
  expectEqual(admin.status, 200, 'admin login');
  const token = admin.body.token;
  const account = await call('POST', '/api/auth/accounts', token, {
    username: customer.username,
    password: customer.password,
    role: 'client',
    first_name: 'Erin',
    last_name: 'Popa',
    email: `erin.${stamp}@example.com`,
  });
  expectEqual(account.status, 201, 'customer created');
  const created = await call('POST', '/api/devices', token, { name: device.name, max_hourly_kwh: device.limit });
  expectEqual(created.status, 201, 'device created');
  deviceId = created.body.id;
  const assigned = await call('PUT', `/api/devices/${deviceId}/owner`, token, { user_id: account.body.id });
  expectEqual(assigned.status, 200, 'device assigned');

  yesterday = dateIn(TZ, Date.now() - 86_400_000);
  if (yesterday === dateIn(TZ, Date.now())) yesterday = dateIn(TZ, Date.now() - 2 * 86_400_000);
  hoursInDay = (zoned(nextDate(yesterday), 0, 0, TZ) - zoned(yesterday, 0, 0, TZ)) / 3_600_000;
  const readings = PLAN.flatMap(({ hour, values }) =>
    values.map((value, i) => ({
      timestamp: zoned(yesterday, hour, 5 + 15 * i, TZ),
      device_id: deviceId,
      measurement_value: value,
    })),
  );

  // Monitoring learns of the device from an event; until then its readings are set aside, so
  // post again (a reading counts once per device and timestamp) until the day adds up.
  let total = -1;
  for (let attempt = 0; attempt < 30 && total !== TOTAL; attempt += 1) {
    const posted = await call('POST', '/api/readings', INGEST_TOKEN, readings);
    expectEqual(posted.status, 202, 'readings accepted');
    const day = await call('GET', `/api/consumption/${deviceId}?date=${yesterday}&tz=${encodeURIComponent(TZ)}`, token);
    total = day.body?.total_kwh ?? -1;
    if (total !== TOTAL) await sleep(200);
  }
  expectEqual(total, TOTAL, 'total of the day as stored');

  // The administrator reaches the device's day from the devices list.
  const page = await t.newPage(BROWSER);
  await signIn(page, ADMIN_USERNAME, ADMIN_PASSWORD);
  await page.waitForURL('**/admin/users');
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.getByRole('link', { name: device.name }).click();
  await page.getByRole('heading', { name: `Consumption · ${device.name}` }).waitFor();
  await page.getByRole('button', { name: 'Previous day' }).click();
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
  await page.getByRole('link', { name: 'Alert history' }).click();
  await page.getByRole('heading', { name: `Alerts · ${device.name}` }).waitFor();
  await page.getByRole('row').filter({ hasText: device.name }).waitFor();
});

test('the customer sees yesterday’s hourly chart with the total, the bars and the limit', async (t) => {
  const page = (customerPage = await t.newPage(BROWSER));
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.getByRole('link', { name: `Consumption of ${device.name}` }).click();
  await page.getByRole('heading', { name: `Consumption · ${device.name}` }).waitFor();
  const day = page.getByLabel('Day', { exact: true });
  expectEqual(await day.inputValue(), dateIn(TZ, Date.now()), 'the page opens on today');
  expectEqual(await page.getByLabel('Time zone', { exact: true }).inputValue(), TZ, "the browser's time zone is the default");

  await page.getByRole('button', { name: 'Previous day' }).click();
  await page.waitForURL(`**date=${yesterday}**`);
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
  const chart = page.getByRole('img', { name: /Hourly consumption of/ });
  await chart.waitFor();
  expectEqual(await chart.locator('rect.chart-bar').count(), hoursInDay, 'bars (one per local hour)');
  expectEqual(await chart.locator('rect.chart-bar-over').count(), 1, 'bars over the limit');
  expectEqual(await page.getByTestId('stat-peak').textContent(), kwhText(3), 'peak');
  expect((await page.getByTestId('limit-line').textContent()).includes(kwhText(device.limit)), 'limit line label');

  // The over-limit bar is the 18:00 one, and the limit line runs between it and the others.
  const geometry = await chart.evaluate((svg) => {
    const bars = [...svg.querySelectorAll('rect.chart-bar')];
    const over = svg.querySelector('rect.chart-bar-over');
    const line = svg.querySelector('[data-testid="limit-line"] line');
    return { overIndex: bars.indexOf(over), overTop: Number(over.getAttribute('y')), lineY: Number(line.getAttribute('y1')), noonTop: Number(bars[12].getAttribute('y')) };
  });
  expectEqual(geometry.overIndex, OVER_HOUR, 'index of the over-limit bar');
  expect(geometry.overTop < geometry.lineY && geometry.noonTop > geometry.lineY, `limit line at y=${geometry.lineY} between the bars`);

  const row = page.getByRole('row').filter({ hasText: `${OVER_HOUR}:00` });
  expect((await row.textContent()).includes('Over'), 'the hourly table marks the hour over the limit');
  expectEqual(await page.getByRole('table').getByRole('row').count(), hoursInDay + 1, 'table rows');
  await t.screenshot(page, 'day');

  // The CSV of that day: one row per local hour, adding up to the same total.
  await page.getByLabel('From', { exact: true }).fill(yesterday);
  await page.getByLabel('To', { exact: true }).fill(yesterday);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
  expect(download.suggestedFilename().endsWith('.csv'), `file name ${download.suggestedFilename()}`);
  const lines = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  expectEqual(lines[0], 'start,kwh', 'CSV header');
  expectEqual(lines.length - 1, hoursInDay, 'CSV rows');
  const csvTotal = lines.slice(1).reduce((sum, line) => sum + Number(line.split(',')[1]), 0);
  expect(Math.abs(csvTotal - TOTAL) < 1e-9, `CSV total ${csvTotal}`);
  await page.getByText(/^Downloaded /).waitFor();

  // A day without readings says so.
  await page.getByRole('button', { name: 'Previous day' }).click();
  await page.getByText('No readings for this day').waitFor();
  await t.screenshot(page, 'empty-day');
  await page.getByRole('button', { name: 'Next day' }).click();
  await chart.waitFor();
});

test('the alerts page lists the hour over the limit', async (t) => {
  const page = t.use(customerPage);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
  await page.getByRole('heading', { name: 'Alerts' }).waitFor();
  const row = page.getByRole('row').filter({ hasText: device.name });
  await row.waitFor();
  const text = await row.textContent();
  expect(text.includes(`${OVER_HOUR}:00–${OVER_HOUR + 1}:00`), `alert row shows the local hour: ${text}`);
  expect(text.includes(kwhText(3)) && text.includes(kwhText(device.limit)), `alert row shows total and limit: ${text}`);
  expectEqual(await page.getByRole('row').count(), 2, 'rows (header and one alert)');
  await row.getByRole('link', { name: device.name }).click();
  await page.waitForURL(`**date=${yesterday}**`);
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
  await row.waitFor();
});

test('the month view shows one bar per day, the month’s total is what was posted, and a bar opens its day', async (t) => {
  const page = t.use(customerPage);
  await page.goto(`${BASE_URL}/consumption/${deviceId}?date=${yesterday}&tz=${encodeURIComponent(TZ)}`);
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
  await page.getByRole('button', { name: 'Month', exact: true }).click();
  await page.waitForURL('**view=month**');
  const month = yesterday.slice(0, 7);
  const chart = page.locator(`svg[data-testid="daily-chart"][data-month="${month}"]`);
  await chart.waitFor();
  expectEqual(await page.getByLabel('Month', { exact: true }).inputValue(), month, 'the month picker shows the month of the day');
  // Up to today when the month is this one, else every day of it.
  const [y, m] = month.split('-').map(Number);
  const lastOfMonth = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
  const today = dateIn(TZ, Date.now());
  const until = lastOfMonth < today ? lastOfMonth : today;
  expectEqual(await chart.locator('rect.chart-bar').count(), Number(until.slice(8, 10)), 'bars (one per day of the month)');
  expectEqual(await page.getByTestId('stat-total').textContent(), kwhText(TOTAL), 'the month’s total is the readings posted');
  expectEqual(await page.getByTestId('stat-peak').textContent(), kwhText(TOTAL), 'the peak day is the one day with readings');
  expectEqual(await page.getByTestId('stat-days').textContent(), '1', 'days with readings');
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: new RegExp(`open the day`) }) }).filter({ hasText: kwhText(TOTAL) });
  expectEqual(await row.count(), 1, 'one row of the daily table holds the total');
  await t.screenshot(page, 'month');

  // The day's bar opens the day.
  await chart.locator(`[data-date="${yesterday}"]`).click();
  await page.waitForURL((url) => !url.search.includes('view=month') && url.search.includes(`date=${yesterday}`));
  await page.locator(`svg[data-testid="hourly-chart"][data-date="${yesterday}"]`).waitFor();
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
});

test('the assistant answers in the chat, from its rules', async (t) => {
  const page = t.use(customerPage);
  // The old Assistant address leads to the assistant's conversation in the chat.
  await page.goto(`${BASE_URL}/assistant`);
  await page.waitForURL('**/chat/assistant');
  await page.getByRole('heading', { name: 'Chat' }).waitFor();
  await page.locator('[data-testid="bell"][data-live="open"]').waitFor();
  await page.getByText('How can I help?').waitFor();
  await page.getByRole('button', { name: 'How much did I use yesterday?' }).click();
  const answer = page.getByTestId('message-theirs').first();
  await answer.waitFor({ timeout: 15_000 });
  const text = await answer.textContent();
  // The chat asks support without a zone, so "yesterday" is the server's (UTC) yesterday.
  const utcYesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  expect(text.includes(utcYesterday), `the reply names yesterday (${utcYesterday}): ${text}`);
  if (utcYesterday === yesterday) expect(text.includes(`${TOTAL.toFixed(2)} kWh`), `the reply gives yesterday's total: ${text}`);
  const source = answer.locator('xpath=..').getByTestId('answer-source');
  if ((await source.count()) > 0) expectEqual(await source.textContent(), 'Rule · usage yesterday', 'source');
});

test('on a phone the consumption page fits the screen', async (t) => {
  const page = await t.newPage({ ...BROWSER, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.goto(`${BASE_URL}/consumption/${deviceId}?date=${yesterday}&tz=${encodeURIComponent(TZ)}`);
  await page.getByTestId('stat-total').filter({ hasText: kwhText(TOTAL) }).waitFor();
  await page.getByRole('img', { name: /Hourly consumption of/ }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `consumption page is ${overflow}px wider than the screen`);
});
