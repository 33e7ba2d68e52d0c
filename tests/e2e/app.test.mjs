// The web app against a real `ems serve`: an administrator creates a customer and a device and
// assigns it; the customer, in a second browser context, sees it; roles stay on their own pages;
// sessions end cleanly; a refused sign-in shows the server's own words; phones get cards.
import { ADMIN_PASSWORD, ADMIN_USERNAME, BASE_URL, expect, expectEqual, test } from './harness.mjs';

const stamp = Date.now().toString(36);
const customer = {
  username: `carol_${stamp}`,
  password: 'carol-secret-1',
  first: 'Carol',
  last: 'Jones',
  email: `carol.${stamp}@example.com`,
  address: '7 Willow Road, Cluj',
};
const device = { name: `Heat pump ${stamp}`, kwh: '3.5', energyClass: 'A++', address: '7 Willow Road, garage' };

let adminPage = null;
let customerPage = null;

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function signIn(page, username, password) {
  await page.goto(`${BASE_URL}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function storedSession(page) {
  return page.evaluate(() => localStorage.getItem('ems.session'));
}

test("a refused sign-in shows the server's message", async (t) => {
  t.allowConsole(/status of 401/);
  const page = await t.newPage();
  await signIn(page, `nobody_${stamp}`, 'not-the-password');
  const alert = page.getByRole('alert');
  await alert.waitFor();
  const shown = (await alert.textContent()).trim();

  const answer = await fetch(`${BASE_URL}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: `nobody_${stamp}`, password: 'not-the-password' }),
  });
  const body = await answer.json();
  expectEqual(answer.status, 401, 'status of the same login');
  expectEqual(shown, body.error.message, "message shown beside the form");
  expect(new URL(page.url()).pathname === '/signin', `stayed on sign-in, at ${page.url()}`);
  expectEqual(await storedSession(page), null, 'stored session');
});

test('the administrator creates a customer and a device and assigns it', async (t) => {
  const page = (adminPage = await t.newPage());
  await signIn(page, ADMIN_USERNAME, ADMIN_PASSWORD);
  await page.waitForURL('**/admin/users');
  await page.getByRole('heading', { name: 'Users' }).waitFor();
  expect((await page.getByTestId('whoami').textContent()).includes(ADMIN_USERNAME), 'top bar names the admin');

  await page.getByRole('button', { name: '+ New user' }).click();
  const form = page.getByRole('dialog', { name: 'New user' });
  await form.getByLabel('First name').fill(customer.first);
  await form.getByLabel('Last name').fill(customer.last);
  await form.getByLabel('Email').fill(customer.email);
  await form.getByLabel('Address').fill(customer.address);
  await form.getByLabel('Username').fill(customer.username);
  await form.getByLabel('Role').selectOption('client');
  await form.getByLabel('Password').fill(customer.password);
  await t.screenshot(page, 'new-user');
  await form.getByRole('button', { name: 'Create user' }).click();
  await form.waitFor({ state: 'detached' });
  await page.getByRole('link', { name: customer.username }).waitFor();

  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.getByRole('heading', { name: 'Devices' }).waitFor();
  await page.getByRole('button', { name: '+ New device' }).click();
  const deviceForm = page.getByRole('dialog', { name: 'New device' });
  await deviceForm.getByLabel('Name').fill(device.name);
  await deviceForm.getByLabel('Hourly limit (kWh)').fill(device.kwh);
  await deviceForm.getByLabel('Energy class').selectOption(device.energyClass);
  await deviceForm.getByLabel('Address').fill(device.address);
  await deviceForm.getByRole('button', { name: 'Create device' }).click();
  await deviceForm.waitFor({ state: 'detached' });

  const row = page.getByRole('row').filter({ hasText: device.name });
  await row.getByRole('button', { name: `Assign ${device.name}` }).click();
  const picker = page.getByRole('dialog', { name: `Assign ${device.name}` });
  await picker.getByLabel('Find a user').fill(customer.username);
  await picker.getByRole('button', { name: new RegExp(`^${escape(customer.username)}`) }).click();
  await t.screenshot(page, 'assign');
  await picker.getByRole('button', { name: `Assign to ${customer.username}` }).click();
  await picker.waitFor({ state: 'detached' });
  await row.getByRole('link', { name: customer.username }).waitFor();
  await page.getByText(`${device.name} is assigned to ${customer.username}.`).waitFor();
  await t.screenshot(page, 'devices');

  await row.getByRole('link', { name: customer.username }).click();
  await page.getByRole('heading', { name: `${customer.first} ${customer.last}` }).waitFor();
  const owned = page.getByRole('list', { name: `Devices of ${customer.username}` });
  await owned.getByText(device.name).waitFor();
});

test('the customer, in a second browser context, sees the device and their profile', async (t) => {
  const page = (customerPage = await t.newPage());
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.getByRole('heading', { name: 'My devices' }).waitFor();
  const card = page.getByRole('listitem').filter({ hasText: device.name });
  await card.waitFor();
  const text = await card.textContent();
  expect(text.includes('3.5 kWh'), `device card shows the limit: ${text}`);
  expect(text.includes(device.energyClass), `device card shows the class: ${text}`);
  expect(text.includes(device.address), `device card shows the address: ${text}`);
  const whoami = await page.getByTestId('whoami').textContent();
  expect(whoami.includes(customer.username) && whoami.includes('Customer'), `top bar: ${whoami}`);
  expectEqual(await page.getByRole('link', { name: 'Users' }).count(), 0, 'admin links for a customer');
  await t.screenshot(page, 'my-devices');

  await page.getByRole('link', { name: 'My profile' }).click();
  await page.getByRole('heading', { name: `${customer.first} ${customer.last}` }).waitFor();
  expectEqual(await page.getByLabel('Email').inputValue(), customer.email, 'email on the profile');
  expectEqual(await page.getByLabel('Address').inputValue(), customer.address, 'address on the profile');
  expectEqual(await page.getByTestId('profile-username').textContent(), customer.username, 'username');
});

test('a customer who opens an admin address lands on their own home', async (t) => {
  const page = t.use(customerPage);
  for (const path of ['/admin/users', '/admin/devices', '/admin/users/00000000-0000-4000-8000-000000000000']) {
    await page.goto(`${BASE_URL}${path}`);
    await page.waitForURL('**/devices');
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    expectEqual(new URL(page.url()).pathname, '/devices', `after opening ${path}`);
  }
});

test('the session survives a reload and sign out ends it', async (t) => {
  const page = t.use(customerPage);
  await page.reload();
  await page.getByRole('heading', { name: 'My devices' }).waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  await page.getByText('You signed out.').waitFor();
  expectEqual(await storedSession(page), null, 'stored session after sign out');
  await page.goto(`${BASE_URL}/devices`);
  await page.waitForURL('**/signin');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
});

test('changing one\'s own password keeps this session, live included', async (t) => {
  const page = t.use(customerPage);
  await signIn(page, customer.username, customer.password);
  await page.waitForURL('**/devices');
  await page.locator('[data-testid="bell"][data-live="open"]').waitFor();
  await page.getByRole('link', { name: 'My profile' }).click();
  await page.waitForURL('**/profile');
  await page.getByLabel('Current password').fill(customer.password);
  customer.password = 'carol-secret-1b';
  await page.getByLabel('New password', { exact: true }).fill(customer.password);
  await page.getByLabel('Repeat new password').fill(customer.password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your password is changed.').waitFor();
  // The old token's socket is closed by the server (4001); the page must not sign out for that,
  // but reconnect with the new token. Past the grace the page waits for a new token:
  await page.waitForTimeout(3000);
  expectEqual(new URL(page.url()).pathname, '/profile', 'still signed in after the password change');
  await page.locator('[data-testid="bell"][data-live="open"]').waitFor();
});

test('a revoked token sends the open page back to sign in with a message', async (t) => {
  const page = t.use(customerPage);
  t.allowConsole(/status of 401/);
  await page.goto(`${BASE_URL}/devices`);
  await page.locator('[data-testid="bell"][data-live="open"]').waitFor();
  // Changing the password elsewhere (here: the administrator) revokes this session's token.
  const login = await fetch(`${BASE_URL}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: ADMIN_USERNAME, password: ADMIN_PASSWORD }),
  }).then((r) => r.json());
  const id = JSON.parse(await storedSession(page)).user.id;
  customer.password = 'carol-secret-2';
  const patched = await fetch(`${BASE_URL}/api/auth/accounts/${id}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${login.token}` },
    body: JSON.stringify({ password: customer.password }),
  });
  expectEqual(patched.status, 200, 'password reset by the administrator');
  // No click: the server closes the page's WebSocket (4001) and the page signs out by itself.
  await page.waitForURL('**/signin');
  await page.getByText('Your session is no longer valid. Please sign in again.').waitFor();
  expectEqual(await storedSession(page), null, 'stored session after the 401');
});

test('a visitor registers and gets an empty device list', async (t) => {
  const page = await t.newPage();
  await page.goto(`${BASE_URL}/signin`);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL('**/register');
  await page.getByLabel('First name').fill('Dan');
  await page.getByLabel('Last name').fill('Pop');
  await page.getByLabel('Email').fill(`dan.${stamp}@example.com`);
  await page.getByLabel('Username').fill(`dan_${stamp}`);
  await page.getByLabel('Password', { exact: true }).fill('dan-secret-1');
  await page.getByLabel('Repeat password').fill('dan-secret-2');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('The passwords do not match.').waitFor();
  await page.getByLabel('Repeat password').fill('dan-secret-1');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/devices');
  await page.getByText('No devices yet').waitFor();
});

test('on a phone the users list becomes cards without sideways scrolling', async (t) => {
  const page = await t.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await signIn(page, ADMIN_USERNAME, ADMIN_PASSWORD);
  await page.waitForURL('**/admin/users');
  await page.getByRole('link', { name: customer.username }).waitFor();
  const layout = await page.evaluate(() => ({
    head: getComputedStyle(document.querySelector('.table thead')).display,
    row: getComputedStyle(document.querySelector('.table tbody tr')).display,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  }));
  expectEqual(layout.head, 'none', 'table header on a phone');
  expectEqual(layout.row, 'block', 'table rows on a phone');
  expect(layout.overflow <= 0, `users page is ${layout.overflow}px wider than the screen`);
  await t.screenshot(page, 'users');

  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.getByRole('row').filter({ hasText: device.name }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `devices page is ${overflow}px wider than the screen`);
  await t.screenshot(page, 'devices');
  await page.getByRole('button', { name: '+ New device' }).click();
  await page.getByRole('dialog', { name: 'New device' }).getByRole('button', { name: 'Create device' }).click();
  await page.getByText('Enter a name.').waitFor();
});

test('the administrator deletes a device only after confirming', async (t) => {
  const page = t.use(adminPage);
  await page.goto(`${BASE_URL}/admin/devices`);
  const row = page.getByRole('row').filter({ hasText: device.name });
  await row.getByRole('button', { name: `Delete ${device.name}` }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete device' });
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  expectEqual(await row.count(), 1, 'rows after Cancel');

  await row.getByRole('button', { name: `Delete ${device.name}` }).click();
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await row.getByRole('button', { name: `Delete ${device.name}` }).click();
  await t.screenshot(page, 'confirm');
  await confirm.getByRole('button', { name: 'Delete device' }).click();
  await confirm.waitFor({ state: 'detached' });
  await page.getByText(`${device.name} is deleted.`).waitFor();
  await row.waitFor({ state: 'detached' });
  await page.getByText('No devices yet').waitFor();
});
