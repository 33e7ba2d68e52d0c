// The live features against a real `ems serve`: a chat round trip between a customer page and an
// administrator page in two browser contexts (the inbox's unread count, "Seen", the typing
// indicator, the reply arriving live); the assistant as a conversation in the customer's chat
// (an answer from a rule, the history after a reload, not seen by the administrators); a flood of
// messages that the server cuts off with rate_limited, the refused ones shown failed with the
// reason and sent again by Retry; and an over-limit reading posted with the ingest token raising
// a toast and the bell's count in the customer's open page, without a reload.
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
/** The live connection said hello and replayed its backlog of unread alerts. */
const liveSynced = (page) => page.locator('[data-testid="bell"][data-synced="true"]').waitFor();

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

test('chat: the assistant is a conversation beside the administrators and answers from its rules', async (t) => {
  const token = await adminToken();
  const customer = { username: `ask_${stamp}`, password: 'ask-secret-1' };
  await createCustomer(token, customer.username, customer.password);
  const page = await t.newPage(BROWSER);
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Chat', exact: true }).click();
  await liveOpen(page);
  const list = page.getByRole('navigation', { name: 'Conversations' });
  await list.getByRole('link', { name: /Administrators/ }).waitFor();
  await list.getByRole('link', { name: /Assistant/ }).click();
  await page.waitForURL('**/chat/assistant');
  await step('assistant: empty conversation', () => page.getByText('How can I help?').waitFor());

  // "kWh" matches the kwh rule (data/support/rules.json): an answer from a rule, not the fallback.
  await page.getByLabel('Your question').fill('What is a kWh?');
  await page.getByLabel('Your question').press('Enter');
  await step('assistant: our question', () => page.getByTestId('message-ours').filter({ hasText: 'What is a kWh?' }).waitFor());
  const answer = page.getByTestId('message-theirs').filter({ hasText: 'kilowatt-hour' });
  await step('assistant: the answer', () => answer.waitFor({ timeout: 15_000 }));
  expect((await answer.textContent()).includes('Assistant'), 'the answer is signed by the assistant');
  const source = answer.locator('xpath=..').getByTestId('answer-source');
  if ((await source.count()) > 0) expectEqual(await source.textContent(), 'Rule · kwh', 'where the answer came from');
  await list.getByRole('link', { name: /Assistant/ }).filter({ hasText: 'kilowatt-hour' }).waitFor();
  await t.screenshot(page, 'assistant');

  // History on open: after a reload both are still there, once each.
  await page.reload();
  await liveOpen(page);
  await step('assistant history: the answer', () => answer.waitFor());
  expectEqual(await page.getByTestId('message-ours').filter({ hasText: 'What is a kWh?' }).count(), 1, 'the question, once');
  expectEqual(await answer.count(), 1, 'the answer, once');

  // The administrators' conversation is a separate one, still empty.
  await list.getByRole('link', { name: /Administrators/ }).click();
  await page.waitForURL((url) => url.pathname === '/chat');
  await step('administrators: empty conversation', () => page.getByText('No messages yet').waitFor());
  expectEqual(await page.getByTestId('message-ours').count(), 0, 'no assistant messages in the administrators’ conversation');

  // The administrators do not see the customer's assistant conversation in their inbox.
  const adminPage = await t.newPage(BROWSER);
  await signIn(adminPage, ADMIN_USERNAME, ADMIN_PASSWORD);
  await adminPage.waitForURL('**/admin/users');
  await adminPage.goto(`${BASE_URL}/admin/chat`);
  await adminPage.getByTestId('inbox-assistant').waitFor();
  await adminPage.getByText('Loading conversations…').waitFor({ state: 'detached' });
  expectEqual(await adminPage.getByTestId('inbox-item').filter({ hasText: customer.username }).count(), 0, 'the inbox does not list it');
  t.use(page);
});

test('chat: messages the server refuses (a flood) stay in the conversation, failed with the reason, and Retry sends them', async (t) => {
  const token = await adminToken();
  const customer = { username: `flood_${stamp}`, password: 'flood-secret-1' };
  await createCustomer(token, customer.username, customer.password);
  const page = await t.newPage(BROWSER);
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.goto(`${BASE_URL}/chat`);
  await liveOpen(page);
  await page.getByText('No messages yet').waitFor();

  // Each message is one chat.send frame. Typed through the page's own textarea (value, input
  // event, Enter) as fast as React renders, in bursts of BURST, until the server refuses one for
  // passing its frames-a-second budget (EMS_WS_RATE: 10 in the e2e runs, 50 by default): how many
  // that takes depends on the machine's speed, so the count is what was typed, not a constant.
  // (Driving each keystroke from here would be too slow to flood.)
  const BURST = 15;
  const MAX = 150;
  const refused = page.getByTestId('failure').filter({ hasText: 'Not sent: Too many messages at once. Wait a moment, then retry.' });
  let COUNT = 0;
  while (COUNT < MAX && (await refused.count()) === 0) {
    await page.getByLabel('Your message').evaluate(async (textarea, [from, count]) => {
      const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
      const rendered = () => Promise.resolve();
      for (let i = from; i < from + count; i += 1) {
        setValue.call(textarea, `flood ${i}`);
        textarea.dispatchEvent(new Event('input', { bubbles: true }));
        await rendered();
        textarea.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
        await rendered();
      }
    }, [COUNT, BURST]);
    COUNT += BURST;
  }
  const failed = page.getByTestId('message-failed');
  // Refused by the server (rate_limited), or typed while the connection it closed was down.
  await step(`a message failed with rate_limited (${COUNT} typed)`, () => refused.first().waitFor());
  await t.screenshot(page, 'failed');

  // Reconnected, every message is there exactly once: stored, or failed with a Retry.
  await liveOpen(page);
  await page.getByRole('button', { name: 'Retry' }).first().waitFor();
  // The history read after the reconnect settles what the server stored anyway: wait until every
  // message shows once (or 10 s), then check.
  const shownNow = () =>
    page.getByTestId('chat-log').evaluate((log) =>
      [...log.querySelectorAll('[data-testid="message-ours"] p, [data-testid="message-failed"] p, [data-testid="message-sending"] p')].map((p) => p.textContent),
    );
  const everyOnce = (texts) => Array.from({ length: COUNT }, (_, i) => texts.filter((text) => text === `flood ${i}`).length === 1).every(Boolean);
  let shown = await shownNow();
  for (const until = Date.now() + 10_000; !everyOnce(shown) && Date.now() < until; shown = await shownNow()) await sleep(100);
  for (let i = 0; i < COUNT; i += 1) {
    expectEqual(shown.filter((text) => text === `flood ${i}`).length, 1, `“flood ${i}” shown once`);
  }
  const failedCount = await failed.count();
  expect(failedCount > 0 && failedCount < COUNT, `some messages failed (${failedCount} of ${COUNT})`);

  // Retry sends the first failed one: it is stored, and one fewer is failed.
  const first = (await failed.first().locator('p').textContent()).trim();
  await page.getByRole('button', { name: 'Retry' }).first().click();
  await step(`“${first}” stored after Retry`, () => page.getByTestId('message-ours').filter({ hasText: new RegExp(`^(You: )?${first}$`) }).waitFor());
  expectEqual(await failed.count(), failedCount - 1, 'failed messages after one Retry');
  // What the server stored agrees: the retried message is in the history.
  const history = await call('GET', `/api/chat/conversations/${encodeURIComponent(await userIdOf(page))}/messages?limit=100`, await tokenOf(page));
  expect(history.body.items.some((m) => m.text === first), `the history holds “${first}”`);
});

/** The signed-in user's id and token, from the page's stored session. */
async function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('ems.session')));
}
const userIdOf = async (page) => (await sessionOf(page)).user.id;
const tokenOf = async (page) => (await sessionOf(page)).token;

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
  await liveSynced(page);
  expectEqual(await page.getByTestId('bell-count').count(), 0, 'no unread alerts after a reload');
  expectEqual(await page.getByTestId('toast').count(), 0, 'no toast for an alert already read');
  await page.getByTestId('bell').click();
  await page.getByRole('region', { name: 'Notifications' }).getByText('No new alerts').waitFor();
  t.use(page);
});
