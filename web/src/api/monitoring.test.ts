// The monitoring and support functions of the API client: the consumption of a day, the CSV
// export as a file, the alert history and the assistant's question, with their URLs, token,
// bodies and errors. fetch is a fake here; the e2e suite talks to a real server.
import { describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '../test/helpers';
import { ApiError, createApiClient, filenameOf } from './client';
import { createApi } from './endpoints';

type FetchFn = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

function setup(response: Response) {
  const fetchMock = vi.fn<FetchFn>(async () => response);
  const onUnauthorized = vi.fn();
  const api = createApi(createApiClient({ fetch: fetchMock, getToken: () => 'tok', onUnauthorized }));
  const call = (i = 0) => ({
    url: String(fetchMock.mock.calls[i][0]),
    init: fetchMock.mock.calls[i][1] as RequestInit,
    headers: (fetchMock.mock.calls[i][1] as RequestInit).headers as Record<string, string>,
  });
  return { api, fetchMock, onUnauthorized, call };
}

const DEVICE = '7f0c2a4e-1b2c-4d5e-8f90-a1b2c3d4e5f6';

describe('consumption', () => {
  it('asks for one day in one zone with the token and returns the answer', async () => {
    const day = {
      device_id: DEVICE,
      date: '2026-03-29',
      tz: 'Europe/Bucharest',
      unit: 'kWh',
      hours: [{ start: '2026-03-29T00:00:00+02:00', kwh: 1.5 }],
      total_kwh: 1.5,
      average_kwh: 1.5,
      peak: { start: '2026-03-29T00:00:00+02:00', kwh: 1.5 },
      limit_kwh: 2,
    };
    const { api, call } = setup(jsonResponse(200, day));
    await expect(api.consumption(DEVICE, '2026-03-29', 'Europe/Bucharest')).resolves.toEqual(day);
    expect(call().url).toBe(`/api/consumption/${DEVICE}?date=2026-03-29&tz=Europe%2FBucharest`);
    expect(call().init.method).toBe('GET');
    expect(call().headers.Authorization).toBe('Bearer tok');
  });

  it("passes on the server's refusal of another customer's device", async () => {
    const { api } = setup(jsonResponse(403, { error: { code: 'forbidden', message: `device ${DEVICE} is not yours` } }));
    await expect(api.consumption(DEVICE, '2026-03-29', 'UTC')).rejects.toMatchObject({
      status: 403,
      code: 'forbidden',
      message: `device ${DEVICE} is not yours`,
    });
  });
});

describe('CSV export', () => {
  it('fetches the range with the token and keeps the body and the suggested file name', async () => {
    const csv = 'start,kwh\r\n2026-11-26T00:00:00+02:00,0.500000\r\n';
    const { api, call } = setup(
      new Response(csv, {
        status: 200,
        headers: {
          'Content-Type': 'text/csv; charset=utf-8',
          'Content-Disposition': `attachment; filename="consumption-${DEVICE}-2026-11-20-2026-11-26.csv"`,
        },
      }),
    );
    const file = await api.consumptionCsv(DEVICE, { from: '2026-11-20', to: '2026-11-26', tz: 'Asia/Kathmandu' });
    expect(call().url).toBe(`/api/consumption/${DEVICE}.csv?from=2026-11-20&to=2026-11-26&tz=Asia%2FKathmandu`);
    expect(call().headers.Authorization).toBe('Bearer tok');
    expect(file.filename).toBe(`consumption-${DEVICE}-2026-11-20-2026-11-26.csv`);
    expect(await file.blob.text()).toBe(csv);
  });

  it('turns an error answer into an ApiError, and a 401 into the end of the session', async () => {
    const bad = setup(jsonResponse(400, { error: { code: 'bad_request', message: 'at most 366 days per export' } }));
    const error = await bad.api.consumptionCsv(DEVICE, { from: '2024-01-01', to: '2026-01-01', tz: 'UTC' }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, message: 'at most 366 days per export' });

    const gone = setup(jsonResponse(401, { error: { code: 'unauthorized', message: 'token expired' } }));
    await expect(gone.api.consumptionCsv(DEVICE, { from: '2026-01-01', to: '2026-01-01', tz: 'UTC' })).rejects.toMatchObject({ status: 401 });
    expect(gone.onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('reads the file name of a Content-Disposition header', () => {
    expect(filenameOf('attachment; filename="a b.csv"')).toBe('a b.csv');
    expect(filenameOf('attachment; filename=plain.csv')).toBe('plain.csv');
    expect(filenameOf('attachment')).toBeNull();
    expect(filenameOf(null)).toBeNull();
  });
});

describe('alerts', () => {
  it('lists all alerts, or one device’s, with paging in the query', async () => {
    const list = { items: [], limit: 21, offset: 0 };
    const all = setup(jsonResponse(200, list));
    await expect(all.api.listAlerts()).resolves.toEqual(list);
    expect(all.call().url).toBe('/api/alerts');

    const one = setup(jsonResponse(200, list));
    await one.api.listAlerts({ device_id: DEVICE, limit: 21, offset: 20 });
    expect(one.call().url).toBe(`/api/alerts?device_id=${DEVICE}&limit=21&offset=20`);
  });
});

describe('support', () => {
  it('posts the question and the time zone and returns the reply with its source', async () => {
    const answer = { reply: 'Yesterday you used 12.50 kWh.', source: 'rule', rule: 'usage_yesterday' };
    const { api, call } = setup(jsonResponse(200, answer));
    await expect(api.askSupport('how much did I use yesterday?', 'Europe/Bucharest')).resolves.toEqual(answer);
    expect(call().url).toBe('/api/support/messages');
    expect(call().init.method).toBe('POST');
    expect(JSON.parse(String(call().init.body))).toEqual({ text: 'how much did I use yesterday?', tz: 'Europe/Bucharest' });
    expect(call().headers['Content-Type']).toBe('application/json');
  });

  it('leaves tz out when there is none (the server then uses UTC)', async () => {
    const { api, call } = setup(jsonResponse(200, { reply: 'Hello!', source: 'fallback' }));
    await api.askSupport('hello');
    expect(JSON.parse(String(call().init.body))).toEqual({ text: 'hello' });
  });
});
