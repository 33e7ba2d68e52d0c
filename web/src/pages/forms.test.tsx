// Forms: local checks show their messages before any request, the server's refusal is shown
// beside the form, and a successful answer moves the session on.
import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Session } from '../api/types';
import { EXPIRED_MESSAGE, REVOKED_MESSAGE } from '../session/SessionContext';
import { emptyList, fakeFetch, jsonResponse, renderApp, session } from '../test/helpers';

const type = (label: string | RegExp, value: string) =>
  fireEvent.change(screen.getByLabelText(label), { target: { value } });

describe('register form', () => {
  it('shows a message per field and sends nothing while fields are invalid', async () => {
    const fetchMock = fakeFetch();
    renderApp('/register');
    fireEvent.click(await screen.findByRole('button', { name: 'Create account' }));
    expect(screen.getByText('Enter a first name.')).toBeTruthy();
    expect(screen.getByText('Enter a last name.')).toBeTruthy();
    expect(screen.getByText('Enter an email address.')).toBeTruthy();
    expect(screen.getByText('Enter a username.')).toBeTruthy();
    expect(screen.getByText('Enter a password.')).toBeTruthy();
    expect(screen.getByLabelText('Username').getAttribute('aria-invalid')).toBe('true');

    type('Username', 'a b');
    type('Email', 'ann.example.com');
    type('Password', 'short');
    type('Repeat password', 'other');
    expect(screen.getByText('Use only letters, digits, dot, underscore and hyphen.')).toBeTruthy();
    expect(screen.getByText('An email address has one @ with text on both sides.')).toBeTruthy();
    expect(screen.getByText('A password has at least 8 characters.')).toBeTruthy();
    expect(screen.getByText('The passwords do not match.')).toBeTruthy();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('registers, stores the session and opens the customer home', async () => {
    const answer: Session = session('client', { token: 'fresh' });
    const fetchMock = fakeFetch(
      (url) => (url === '/api/auth/register' ? jsonResponse(201, answer) : undefined),
      (url) => (url.startsWith('/api/devices') ? jsonResponse(200, emptyList) : undefined),
    );
    renderApp('/register');
    type('First name', 'Carol');
    type('Last name', 'Jones');
    type('Email', ' carol@example.com ');
    type('Username', 'carol');
    type('Password', 'correct horse');
    type('Repeat password', 'correct horse');
    fireEvent.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByRole('heading', { name: 'My devices' })).toBeTruthy();
    expect(JSON.parse(String(fetchMock.mock.calls[0][1]?.body))).toEqual({
      username: 'carol',
      password: 'correct horse',
      first_name: 'Carol',
      last_name: 'Jones',
      email: 'carol@example.com',
      address: '',
    });
    expect(JSON.parse(localStorage.getItem('ems.session') ?? '{}').token).toBe('fresh');
  });
});

describe('sign-in form', () => {
  it("shows the server's message when the credentials are refused", async () => {
    fakeFetch((url) =>
      url === '/api/auth/login'
        ? jsonResponse(401, { error: { code: 'unauthorized', message: 'wrong username or password' } })
        : undefined,
    );
    renderApp('/signin');
    type('Username', 'root');
    type('Password', 'nope');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toBe('wrong username or password');
    expect(screen.getByTestId('location').textContent).toBe('/signin');
    expect(localStorage.getItem('ems.session')).toBeNull();
  });

  it('asks for both fields before sending', async () => {
    const fetchMock = fakeFetch();
    renderApp('/signin');
    fireEvent.click(await screen.findByRole('button', { name: 'Sign in' }));
    expect(screen.getByText('Enter your username.')).toBeTruthy();
    expect(screen.getByText('Enter your password.')).toBeTruthy();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('returns to the page the visitor was headed for', async () => {
    fakeFetch(
      (url) => (url === '/api/auth/login' ? jsonResponse(200, session('admin')) : undefined),
      (url) => (url.startsWith('/api/devices') ? jsonResponse(200, emptyList) : undefined),
    );
    renderApp('/admin/devices');
    type('Username', 'root');
    type('Password', 'secret-password');
    fireEvent.click(await screen.findByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Devices' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/admin/devices');
  });
});

describe('session end', () => {
  it('goes back to sign-in with a message when the server answers 401', async () => {
    fakeFetch((url) =>
      url.startsWith('/api/devices')
        ? jsonResponse(401, { error: { code: 'unauthorized', message: 'token revoked' } })
        : undefined,
    );
    renderApp('/devices', session('client'));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    expect(screen.getByText(REVOKED_MESSAGE)).toBeTruthy();
    expect(localStorage.getItem('ems.session')).toBeNull();
  });

  it('signs out by itself when the token expires', async () => {
    fakeFetch((url) => (url.startsWith('/api/devices') ? jsonResponse(200, emptyList) : undefined));
    renderApp('/devices', session('client', { expires_at: Date.now() + 400 }));
    expect(await screen.findByRole('heading', { name: 'My devices' })).toBeTruthy();
    expect(await screen.findByText(EXPIRED_MESSAGE, undefined, { timeout: 3000 })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/signin');
  });
});

describe('device form', () => {
  it('checks the name, the hourly limit and shows the server refusal', async () => {
    const fetchMock = fakeFetch(
      (url, init) =>
        url === '/api/devices' && init.method === 'POST'
          ? jsonResponse(400, { error: { code: 'bad_request', message: 'max_hourly_kwh: must be > 0' } })
          : undefined,
      (url) => (url.startsWith('/api/devices') ? jsonResponse(200, emptyList) : undefined),
    );
    renderApp('/admin/devices', session('admin'));
    fireEvent.click(await screen.findByRole('button', { name: '+ New device' }));
    const dialog = screen.getByRole('dialog', { name: 'New device' });
    type('Hourly limit (kWh)', '0');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create device' }));
    expect(within(dialog).getByText('Enter a name.')).toBeTruthy();
    expect(within(dialog).getByText('The limit must be greater than 0.')).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByLabelText('Name'));
    const posts = () => fetchMock.mock.calls.filter(([, init]) => init?.method === 'POST');
    expect(posts()).toHaveLength(0);

    type('Name', 'Heat pump');
    type('Hourly limit (kWh)', '3.5');
    fireEvent.change(screen.getByLabelText('Energy class'), { target: { value: 'A++' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create device' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('max_hourly_kwh: must be > 0');
    expect(JSON.parse(String(posts()[0][1]?.body))).toEqual({
      name: 'Heat pump',
      max_hourly_kwh: 3.5,
      energy_class: 'A++',
      description: '',
      address: '',
    });
  });
});

describe('password change', () => {
  it('stores the new token from the answer', async () => {
    const me = {
      ...session('client').user,
      first_name: 'Carol',
      last_name: 'Jones',
      email: 'carol@example.com',
      address: '',
      created_at: 0,
      updated_at: 0,
    };
    fakeFetch(
      (url) => (url === '/api/users/me' ? jsonResponse(200, me) : undefined),
      (url) => (url === '/api/auth/password' ? jsonResponse(200, session('client', { token: 'renewed' })) : undefined),
    );
    renderApp('/profile', session('client'));
    await screen.findByRole('heading', { name: 'Carol Jones' });
    type('Current password', 'old-password');
    type('New password', 'new-password');
    type('Repeat new password', 'new-password');
    fireEvent.click(screen.getByRole('button', { name: 'Change password' }));
    await screen.findByText(/Your password is changed/);
    await waitFor(() => expect(JSON.parse(localStorage.getItem('ems.session') ?? '{}').token).toBe('renewed'));
  });
});

describe('edit forms send only what changed', () => {
  const carol = {
    id: '00000000-0000-4000-8000-0000000000c1',
    username: 'carol',
    role: 'client' as const,
    first_name: 'Carol',
    last_name: 'Jones',
    email: 'carol@example.com',
    address: '',
    created_at: 0,
    updated_at: 0,
  };

  it('user: the profile to users, the username to auth', async () => {
    let current = { ...carol };
    const fetchMock = fakeFetch(
      (url, init) => {
        if (url === `/api/users/${carol.id}` && init.method === 'PATCH') {
          current = { ...current, ...JSON.parse(String(init.body)) };
          return jsonResponse(200, current);
        }
        return undefined;
      },
      (url, init) => {
        if (url === `/api/auth/accounts/${carol.id}` && init.method === 'PATCH') {
          current = { ...current, ...JSON.parse(String(init.body)) };
          return jsonResponse(200, { id: carol.id, username: current.username, role: current.role, created_at: 0 });
        }
        return undefined;
      },
      (url) => (url.startsWith('/api/users?') ? jsonResponse(200, { ...emptyList, items: [current], total: 1 }) : undefined),
    );
    renderApp('/admin/users', session('admin'));
    fireEvent.click(await screen.findByRole('button', { name: 'Edit carol' }));
    const dialog = screen.getByRole('dialog', { name: 'Edit carol' });
    type('Last name', 'Smith');
    type('Username', 'carol.smith');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    await screen.findByText('The changes are saved.');
    const writes = fetchMock.mock.calls
      .filter(([, init]) => init?.method === 'PATCH')
      .map(([url, init]) => [url, JSON.parse(String(init?.body))]);
    expect(writes).toEqual([
      [`/api/users/${carol.id}`, { last_name: 'Smith' }],
      [`/api/auth/accounts/${carol.id}`, { username: 'carol.smith' }],
    ]);
  });

  it('device: a cleared energy class is sent as null', async () => {
    const heatPump = {
      id: '00000000-0000-4000-8000-0000000000d1',
      name: 'Heat pump',
      description: '',
      address: 'Garage',
      max_hourly_kwh: 3.5,
      energy_class: 'A' as const,
      owner_id: null,
      created_at: 0,
      updated_at: 0,
    };
    const fetchMock = fakeFetch(
      (url, init) =>
        url === `/api/devices/${heatPump.id}` && init.method === 'PATCH'
          ? jsonResponse(200, { ...heatPump, ...JSON.parse(String(init.body)) })
          : undefined,
      (url) => (url.startsWith('/api/devices?') ? jsonResponse(200, { ...emptyList, items: [heatPump], total: 1 }) : undefined),
    );
    renderApp('/admin/devices', session('admin'));
    fireEvent.click(await screen.findByRole('button', { name: 'Edit Heat pump' }));
    const dialog = screen.getByRole('dialog', { name: 'Edit Heat pump' });
    fireEvent.change(screen.getByLabelText('Energy class'), { target: { value: '' } });
    type('Hourly limit (kWh)', '4');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    await screen.findByText('Heat pump is saved.');
    const patch = fetchMock.mock.calls.find(([, init]) => init?.method === 'PATCH');
    expect(JSON.parse(String(patch?.[1]?.body))).toEqual({ max_hourly_kwh: 4, energy_class: null });
  });
});
