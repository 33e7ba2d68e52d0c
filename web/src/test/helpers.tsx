// Test helpers: a fake fetch that answers from a table, and the app rendered at a given address.
import { render } from '@testing-library/react';
import { MemoryRouter, useLocation } from 'react-router-dom';
import { vi } from 'vitest';
import type { Role, Session } from '../api/types';
import { AppRoutes } from '../App';
import { saveSession } from '../session/storage';
import { SessionProvider } from '../session/SessionContext';

export function jsonResponse(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
  });
}

export type Route = (url: string, init: RequestInit) => Response | undefined;

/** Replaces global fetch; each call goes to the first route that answers, else 404. */
export function fakeFetch(...routes: Route[]) {
  const mock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    for (const route of routes) {
      const response = route(url, init);
      if (response) return response;
    }
    return jsonResponse(404, { error: { code: 'not_found', message: `no fake route for ${url}` } });
  });
  vi.stubGlobal('fetch', mock);
  return mock;
}

export function session(role: Role, overrides: Partial<Session> = {}): Session {
  return {
    token: `token-${role}`,
    expires_at: Date.now() + 3_600_000,
    user: {
      id: role === 'admin' ? '00000000-0000-4000-8000-00000000000a' : '00000000-0000-4000-8000-00000000000c',
      username: role === 'admin' ? 'root' : 'carol',
      role,
    },
    ...overrides,
  };
}

function Where() {
  const location = useLocation();
  return <output data-testid="location">{location.pathname}</output>;
}

export function renderApp(path: string, signedIn?: Session) {
  if (signedIn) saveSession(signedIn);
  return render(
    <SessionProvider>
      <MemoryRouter initialEntries={[path]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <AppRoutes />
        <Where />
      </MemoryRouter>
    </SessionProvider>,
  );
}

export const emptyList = { items: [], total: 0, limit: 20, offset: 0 };
