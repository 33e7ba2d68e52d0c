// The live features against a real `ems serve`: a chat round trip between a customer page and an
// administrator page in two browser contexts (the inbox's unread count, "Seen", the typing
// indicator, the reply arriving live), and an over-limit reading posted with the ingest token
// raising a toast and the bell's count in the customer's open page, without a reload.
import { ADMIN_PASSWORD, ADMIN_USERNAME, BASE_URL, INGEST_TOKEN, expect, expectEqual, test } from './harness.mjs';

const stamp = Date.now().toString(36);
const BROWSER = { timezoneId: 'UTC', locale: 'en-US' };

async function call(method, path, token, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function adminToken() {
  const admin = await call('POST', '/api/auth/login', '', { username: ADMIN_USERNAME, password: ADMIN_PASSWORD });
  expectEqual(admin.status, 200, 'admin login');
  return admin.body.token;
}

async function createCustomer(token, username, password) {
  const account = await call('POST', '/api/auth/accounts', token, {
    username,
    password,
    role: 'client',
    first_name: 'Live',
    last_name: 'Tester',
    email: `${username}@example.com`,
  });
  expectEqual(account.status, 201, 'customer created');
  return account.body.id;
}

async function signIn(page, username, password) {
  await page.goto(`${BASE_URL}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the page's WebSocket is open (the bell says so). */
const liveOpen = (page) => page.locator('[data-testid="bell"][data-live="open"]').waitFor();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one step of a scenario, naming it in the failure. */
async function step(what, action) {
  try {
    return await action();
  } catch (error) {
    throw new Error(`${what}: ${(error?.message ?? String(error)).split('\n')[0]}`);
  }
}

test('chat: a customer writes, an administrator reads, types and answers, all live', async (t) => {
  const token = await adminToken();
  const customer = { username: `chat_${stamp}`, password: 'chat-secret-1' };
  await createCustomer(token, customer.username, customer.password);
  const text = `Hello, my meter shows odd numbers (${stamp})`;
  const reply = `We are looking at it, ${customer.username}.`;

  const customerPage = await t.newPage(BROWSER);
  await signIn(customerPage, customer.username, customer.password);
  await customerPage.waitForURL('**/devices');
  await customerPage.getByRole('link', { name: 'Chat', exact: true }).click();
  await step('customer page: heading, Chat', () => customerPage.getByRole('heading', { name: 'Chat' }).waitFor());
  await liveOpen(customerPage);
  await step('customer page: text No messages yet', () => customerPage.getByText('No messages yet').waitFor());

  const adminPage = await t.newPage(BROWSER);
  await signIn(adminPage, ADMIN_USERNAME, ADMIN_PASSWORD);
  await adminPage.waitForURL('**/admin/users');
  await liveOpen(adminPage);
  // The administrators come online for the customer.
  await step('customer page: presence with Administrators online', () => customerPage.getByTestId('presence').filter({ hasText: 'Administrators online' }).waitFor());

  // The customer writes (Enter sends) and sees the message as sent, not yet seen.
  await customerPage.getByLabel('Your message').fill(text);
  await customerPage.getByLabel('Your message').press('Enter');
  await step('customer page: message-ours with text', () => customerPage.getByTestId('message-ours').filter({ hasText: text }).waitFor());
  await step('customer page: receipt with Sent', () => customerPage.getByTestId('receipt').filter({ hasText: 'Sent' }).waitFor());

  // The administrator's top bar and inbox count it as unread.
  await step('admin page: chat-unread with 1', () => adminPage.getByTestId('chat-unread').filter({ hasText: '1' }).waitFor());
  await adminPage.getByRole('link', { name: /^Chat/ }).click();
  const item = adminPage.getByTestId('inbox-item').filter({ hasText: customer.username });
  await item.filter({ hasText: text }).waitFor();
  expectEqual((await item.getByTestId('unread').innerText()).replace(/\s+unread$/, '').trim(), '1', 'unread count in the inbox');
  await item.click();
  await step(`admin page: heading, Chat with ${customer.username}`, () => adminPage.getByRole('heading', { name: `Chat with ${customer.username}` }).waitFor());
  await step('admin page: message-theirs with text', () => adminPage.getByTestId('message-theirs').filter({ hasText: text }).waitFor());
  await step(`admin page: presence with ${customer.username} is online`, () => adminPage.getByTestId('presence').filter({ hasText: `${customer.username} is online` }).waitFor());

  // Opening it marks it seen: the customer sees "Seen", the admin's unread count goes.
  await step('customer page: receipt with Seen', () => customerPage.getByTestId('receipt').filter({ hasText: 'Seen' }).waitFor());
  await step('admin page: chat-unread gone', () => adminPage.getByTestId('chat-unread').waitFor({ state: 'detached' }));

  // The administrator types: the customer sees who is typing.
  await adminPage.getByLabel('Your message').pressSequentially('We are', { delay: 30 });
  await step(`customer page: typing with ${ADMIN_USERNAME} is typing`, () => customerPage.getByTestId('typing').filter({ hasText: `${ADMIN_USERNAME} is typing` }).waitFor());

  // The reply arrives live; the typing indicator ends with it, and the admin sees "Seen" in turn.
  await adminPage.getByLabel('Your message').fill(reply);
  await adminPage.getByRole('button', { name: 'Send' }).click();
  await step('customer page: message-theirs with reply', () => customerPage.getByTestId('message-theirs').filter({ hasText: reply }).waitFor());
  await step('customer page: typing gone', () => customerPage.getByTestId('typing').waitFor({ state: 'detached' }));
  await step('admin page: receipt with Seen', () => adminPage.getByTestId('receipt').filter({ hasText: 'Seen' }).waitFor());
  expectEqual(await customerPage.getByTestId('message-ours').count(), 1, 'the customer’s messages, once each');

  await t.screenshot(adminPage, 'admin');

  // On a phone the conversation fits the screen, without sideways scrolling.
  await customerPage.setViewportSize({ width: 390, height: 780 });
  await step('customer page: message-theirs with reply', () => customerPage.getByTestId('message-theirs').filter({ hasText: reply }).waitFor());
  const overflow = await customerPage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  t.use(customerPage);
});

test('an over-limit reading raises a toast in the customer’s open page without a reload', async (t) => {
  expect(INGEST_TOKEN, 'INGEST_TOKEN is set (run_embedded.sh passes the server’s)');
  const token = await adminToken();
  const customer = { username: `toast_${stamp}`, password: 'toast-secret-1' };
  const userId = await createCustomer(token, customer.username, customer.password);
  const name = `Kettle ${stamp}`;
  const created = await call('POST', '/api/devices', token, { name, max_hourly_kwh: 1 });
  expectEqual(created.status, 201, 'device created');
  const deviceId = created.body.id;
  expectEqual((await call('PUT', `/api/devices/${deviceId}/owner`, token, { user_id: userId })).status, 200, 'device assigned');

  // The previous UTC hour: a small reading first, until monitoring knows the device.
  const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
  const date = new Date(hourStart).toISOString().slice(0, 10);
  let total = -1;
  for (let attempt = 0; attempt < 30 && total !== 0.25; attempt += 1) {
    const posted = await call('POST', '/api/readings', INGEST_TOKEN, [
      { timestamp: hourStart + 60_000, device_id: deviceId, measurement_value: 0.25 },
    ]);
    expectEqual(posted.status, 202, 'reading accepted');
    const day = await call('GET', `/api/consumption/${deviceId}?date=${date}&tz=UTC`, token);
    total = day.body?.total_kwh ?? -1;
    if (total !== 0.25) await sleep(200);
  }
  expectEqual(total, 0.25, 'the first reading is counted');

  const page = await t.newPage(BROWSER);
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.getByRole('cell', { name }).or(page.getByText(name)).first().waitFor();
  await liveOpen(page);
  expectEqual(await page.getByTestId('bell-count').count(), 0, 'no unread alerts before');

  // Over the limit in the same hour: 0.25 + 2.5 = 2.75 kWh against 1 kWh.
  const posted = await call('POST', '/api/readings', INGEST_TOKEN, [
    { timestamp: hourStart + 20 * 60_000, device_id: deviceId, measurement_value: 2.5 },
  ]);
  expectEqual(posted.status, 202, 'over-limit reading accepted');

  const toast = page.getByTestId('toast');
  await toast.filter({ hasText: name }).waitFor({ timeout: 20_000 });
  const words = await toast.innerText();
  expect(/2\.75 kWh/.test(words) && /limit of 1 kWh/.test(words), `toast shows total and limit: ${words}`);
  const hour = new Date(hourStart).toISOString().slice(11, 16);
  expect(words.includes(hour), `toast shows the hour ${hour}: ${words}`);
  const href = await toast.getByRole('link', { name: 'View consumption' }).getAttribute('href');
  expectEqual(href, `/consumption/${deviceId}?date=${date}&tz=UTC`, 'toast links to that day');
  await page.getByTestId('bell-count').filter({ hasText: '1' }).waitFor();
  await t.screenshot(page, 'toast');

  // The bell lists it; marking it read there (notification.read) clears the count.
  await page.getByTestId('bell').click();
  const panel = page.getByRole('region', { name: 'Notifications' });
  await panel.getByText(name).waitFor();
  await panel.getByRole('button', { name: 'Mark as read' }).click();
  await page.getByTestId('bell-count').waitFor({ state: 'detached' });
  await panel.getByText('Read', { exact: true }).waitFor();
  // The server kept the read mark: after a reload the unread backlog is empty.
  await page.reload();
  await liveOpen(page);
  await sleep(300);
  expectEqual(await page.getByTestId('bell-count').count(), 0, 'no unread alerts after a reload');
  expectEqual(await page.getByTestId('toast').count(), 0, 'no toast for an alert already read');
  await page.getByTestId('bell').click();
  await page.getByRole('region', { name: 'Notifications' }).getByText('No new alerts').waitFor();
  t.use(page);
});
