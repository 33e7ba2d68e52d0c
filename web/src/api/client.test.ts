// The API client: error envelope mapping, the bearer token, 401 handling and the query strings
// the typed functions build. fetch is a fake here; the e2e suite talks to a real server.
import { describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '../test/helpers';
import { ApiError, createApiClient, errorFromResponse, NETWORK_ERROR_MESSAGE, queryString } from './client';
import { createApi } from './endpoints';

type FetchFn = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
type FetchMock = ReturnType<typeof vi.fn<FetchFn>>;

function setup(response: Response | (() => Promise<Response>), token: string | null = 'tok') {
  const fetchMock = vi.fn<FetchFn>(typeof response === 'function' ? response : async () => response);
  const onUnauthorized = vi.fn();
  const client = createApiClient({ fetch: fetchMock, getToken: () => token, onUnauthorized });
  return { fetchMock, onUnauthorized, client, api: createApi(client) };
}

const init = (mock: FetchMock, call = 0) => mock.mock.calls[call][1] as RequestInit;
const headers = (mock: FetchMock, call = 0) => init(mock, call).headers as Record<string, string>;

describe('error envelope', () => {
  it('becomes an ApiError with the status, code and message of the server', async () => {
    const { api } = setup(jsonResponse(409, { error: { code: 'conflict', message: 'username alice is taken' } }));
    const error = await api
      .createAccount({ username: 'alice', password: 'password1', role: 'client', first_name: 'A', last_name: 'B', email: 'a@b' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: 'conflict', message: 'username alice is taken' });
  });

  it('falls back to a code and a readable message when the body is not an envelope', async () => {
    const html = new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'Content-Type': 'text/html' } });
    const error = await errorFromResponse(html);
    expect(error).toMatchObject({ status: 502, code: 'unavailable' });
    expect(error.message).toMatch(/unavailable/i);

    const odd = await errorFromResponse(jsonResponse(418, { error: 'teapot' }));
    expect(odd).toMatchObject({ status: 418, code: 'http_418', message: 'The server answered 418.' });
  });

  it('reports a network failure as an ApiError with status 0', async () => {
    const { api } = setup(() => Promise.reject(new TypeError('Failed to fetch')));
    await expect(api.me()).rejects.toMatchObject({ status: 0, code: 'network', message: NETWORK_ERROR_MESSAGE });
  });

  it('lets an abort through untouched', async () => {
    const { api } = setup(() => Promise.reject(new DOMException('aborted', 'AbortError')));
    await expect(api.me()).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('authorization header', () => {
  it('sends the bearer token on signed-in calls', async () => {
    const { api, fetchMock } = setup(jsonResponse(200, { id: 'x' }), 'secret-token');
    await api.me();
    expect(fetchMock.mock.calls[0][0]).toBe('/api/users/me');
    expect(headers(fetchMock).Authorization).toBe('Bearer secret-token');
    expect(headers(fetchMock)['Content-Type']).toBeUndefined();
  });

  it('does not send a token to login or register', async () => {
    const { api, fetchMock } = setup(
      () => Promise.resolve(jsonResponse(200, { token: 't', expires_at: 1, user: {} })),
      'old-token',
    );
    await api.login({ username: 'alice', password: 'password1' });
    await api.register({ username: 'bob', password: 'password1', first_name: 'B', last_name: 'C', email: 'b@c' });
    expect(headers(fetchMock, 0).Authorization).toBeUndefined();
    expect(headers(fetchMock, 1).Authorization).toBeUndefined();
    expect(init(fetchMock, 0)).toMatchObject({ method: 'POST', body: '{"username":"alice","password":"password1"}' });
    expect(headers(fetchMock, 0)['Content-Type']).toBe('application/json');
  });

  it('sends no header when signed out', async () => {
    const { api, fetchMock } = setup(jsonResponse(200, { id: 'x' }), null);
    await api.me();
    expect(headers(fetchMock).Authorization).toBeUndefined();
  });
});

describe('401 handling', () => {
  const expired = () => jsonResponse(401, { error: { code: 'unauthorized', message: 'token expired' } });

  it('ends the session when a signed-in call is refused', async () => {
    const { api, onUnauthorized } = setup(expired(), 'stale');
    await expect(api.listDevices()).rejects.toMatchObject({ status: 401, message: 'token expired' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(onUnauthorized.mock.calls[0][0]).toBeInstanceOf(ApiError);
  });

  it('does not end anything when a sign-in is refused', async () => {
    const { api, onUnauthorized } = setup(
      jsonResponse(401, { error: { code: 'unauthorized', message: 'wrong username or password' } }),
      'stale',
    );
    await expect(api.login({ username: 'a', password: 'b' })).rejects.toMatchObject({
      message: 'wrong username or password',
    });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('does not treat 403 as the end of the session', async () => {
    const { api, onUnauthorized } = setup(
      jsonResponse(403, { error: { code: 'forbidden', message: 'old password is wrong' } }),
    );
    await expect(api.changePassword('x', 'y')).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });
});

describe('requests', () => {
  it('builds list queries without empty values', async () => {
    const { api, fetchMock } = setup(() => Promise.resolve(jsonResponse(200, { items: [], total: 0 })));
    await api.listUsers({ q: 'ann smith', limit: 20, offset: 40 });
    await api.listUsers({ q: '' });
    await api.listDevices({ unassigned: true, limit: 10 });
    await api.listDevices({ owner: 'u-1', unassigned: false });
    expect(fetchMock.mock.calls.map((call) => call[0])).toEqual([
      '/api/users?q=ann+smith&limit=20&offset=40',
      '/api/users',
      '/api/devices?unassigned=true&limit=10',
      '/api/devices?owner=u-1',
    ]);
  });

  it('uses the documented method, path and body for writes', async () => {
    const { api, fetchMock } = setup(() => Promise.resolve(jsonResponse(200, {})));
    await api.assignDevice('d-1', 'u-2');
    await api.unassignDevice('d-1');
    await api.updateAccount('u-2', { role: 'admin' });
    await api.changePassword('old-pass', 'new-pass1');
    const calls = fetchMock.mock.calls.map(([url, options]) => {
      const { method, body } = options as RequestInit;
      return [url, method, body];
    });
    expect(calls).toEqual([
      ['/api/devices/d-1/owner', 'PUT', '{"user_id":"u-2"}'],
      ['/api/devices/d-1/owner', 'DELETE', undefined],
      ['/api/auth/accounts/u-2', 'PATCH', '{"role":"admin"}'],
      ['/api/auth/password', 'PUT', '{"old_password":"old-pass","new_password":"new-pass1"}'],
    ]);
  });

  it('answers undefined for 204', async () => {
    const { api } = setup(new Response(null, { status: 204 }));
    await expect(api.deleteDevice('d-1')).resolves.toBeUndefined();
  });

  it('escapes ids in paths', async () => {
    const { api, fetchMock } = setup(jsonResponse(200, {}));
    await api.getUser('../auth/accounts');
    expect(fetchMock.mock.calls[0][0]).toBe('/api/users/..%2Fauth%2Faccounts');
  });

  it('queryString skips undefined, null and empty values', () => {
    expect(queryString({ a: 1, b: undefined, c: null, d: '', e: false })).toBe('?a=1&e=false');
    expect(queryString({})).toBe('');
  });
});
