// Each role reaches only its own pages: the guard sends the others home, and signed-out visitors
// to the sign-in page.
import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { emptyList, fakeFetch, jsonResponse, renderApp, session } from '../test/helpers';

const devicesAnswer = (url: string) => (url.startsWith('/api/devices') ? jsonResponse(200, emptyList) : undefined);
const usersAnswer = (url: string) => (url.startsWith('/api/users') ? jsonResponse(200, emptyList) : undefined);

describe('role guard', () => {
  it('sends a customer who opens an admin page to their own devices', async () => {
    const fetchMock = fakeFetch(devicesAnswer);
    renderApp('/admin/users', session('client'));
    expect(await screen.findByRole('heading', { name: 'My devices' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/devices');
    expect(screen.queryByRole('link', { name: 'Users' })).toBeNull();
    expect(fetchMock.mock.calls.some(([url]) => String(url).startsWith('/api/users'))).toBe(false);
  });

  it('sends an administrator who opens the customer page to the users list', async () => {
    fakeFetch(usersAnswer);
    renderApp('/devices', session('admin'));
    expect(await screen.findByRole('heading', { name: 'Users' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/admin/users');
  });

  it('sends a signed-out visitor to sign in', async () => {
    const fetchMock = fakeFetch();
    renderApp('/admin/devices');
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/signin');
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('does not trust an expired stored session', async () => {
    fakeFetch(devicesAnswer);
    renderApp('/devices', session('client', { expires_at: Date.now() - 1000 }));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    expect(localStorage.getItem('ems.session')).toBeNull();
  });

  it('shows the administrator the admin navigation and who is signed in', async () => {
    fakeFetch(usersAnswer);
    renderApp('/admin/users', session('admin'));
    await screen.findByRole('heading', { name: 'Users' });
    expect(screen.getByRole('link', { name: 'Devices' })).toBeTruthy();
    expect(screen.getByTestId('whoami').textContent).toBe('rootAdministrator');
    expect(screen.getByRole('button', { name: 'Sign out' })).toBeTruthy();
  });
});
