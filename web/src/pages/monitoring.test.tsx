// The customer's consumption, alerts and assistant pages against a fake API: the day in the
// address is asked for in the chosen zone, the figures and bars follow the answer, an empty day
// says so, alerts show their local hour, and the assistant shows where an answer came from.
import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { fakeFetch, jsonResponse, renderApp, session } from '../test/helpers';

const DEVICE = '7f0c2a4e-1b2c-4d5e-8f90-a1b2c3d4e5f6';
const device = {
  id: DEVICE,
  name: 'Heat pump',
  description: '',
  address: '',
  max_hourly_kwh: 2,
  energy_class: null,
  owner_id: '00000000-0000-4000-8000-00000000000c',
  created_at: 0,
  updated_at: 0,
};

function dayAnswer(kwh: number[], date = '2026-11-26') {
  const hours = kwh.map((v, i) => ({ start: `${date}T${String(i).padStart(2, '0')}:00:00+02:00`, kwh: v }));
  const total = kwh.reduce((a, b) => a + b, 0);
  const peak = hours.reduce((p, h) => (h.kwh > p.kwh ? h : p), hours[0]);
  return { device_id: DEVICE, date, tz: 'Europe/Bucharest', unit: 'kWh', hours, total_kwh: total, average_kwh: total / hours.length, peak, limit_kwh: 2 };
}

const deviceRoutes = (url: string) => {
  if (url.startsWith('/api/devices?')) return jsonResponse(200, { items: [device], total: 1, limit: 100, offset: 0 });
  if (url === `/api/devices/${DEVICE}`) return jsonResponse(200, device);
  return undefined;
};

describe('consumption page', () => {
  it('shows the figures, one bar per hour, the limit and the over-limit hours of the asked day', async () => {
    const kwh = Array.from({ length: 24 }, (_, i) => (i === 18 ? 2.75 : i >= 8 && i < 20 ? 1 : 0));
    const fetchMock = fakeFetch(deviceRoutes, (url) =>
      url.startsWith(`/api/consumption/${DEVICE}?`) ? jsonResponse(200, dayAnswer(kwh)) : undefined,
    );
    renderApp(`/consumption/${DEVICE}?date=2026-11-26&tz=Europe%2FBucharest`, session('client'));
    expect(await screen.findByRole('heading', { name: 'Consumption · Heat pump' })).toBeTruthy();
    expect(screen.getByTestId('stat-total').textContent).toBe('13.75 kWh');
    expect(screen.getByTestId('stat-peak').textContent).toBe('2.75 kWh');
    const chart = screen.getByRole('img', { name: /Hourly consumption of Heat pump/ });
    expect(chart.querySelectorAll('rect.chart-bar')).toHaveLength(24);
    expect(chart.querySelectorAll('rect.chart-bar-over')).toHaveLength(1);
    expect(screen.getByTestId('limit-line')).toBeTruthy();
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows).toHaveLength(25);
    expect(rows[19].textContent).toContain('18:00');
    expect(rows[19].textContent).toContain('Over');
    expect(
      fetchMock.mock.calls.some(([url]) => String(url) === `/api/consumption/${DEVICE}?date=2026-11-26&tz=Europe%2FBucharest`),
    ).toBe(true);

    fireEvent.click(screen.getByRole('button', { name: 'Previous day' }));
    await waitFor(() =>
      expect(
        fetchMock.mock.calls.some(([url]) => String(url) === `/api/consumption/${DEVICE}?date=2026-11-25&tz=Europe%2FBucharest`),
      ).toBe(true),
    );
    expect(screen.getByTestId('location').textContent).toBe(`/consumption/${DEVICE}`);
  });

  it('says so when the day has no readings', async () => {
    fakeFetch(deviceRoutes, (url) =>
      url.startsWith(`/api/consumption/${DEVICE}?`) ? jsonResponse(200, dayAnswer(new Array(23).fill(0))) : undefined,
    );
    renderApp(`/consumption/${DEVICE}?date=2026-11-26&tz=UTC`, session('client'));
    expect(await screen.findByText('No readings for this day')).toBeTruthy();
    expect(screen.queryByRole('img')).toBeNull();
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.getByRole('button', { name: 'Download CSV' })).toBeTruthy();
  });

  it('opens the first device when the address names none', async () => {
    fakeFetch(deviceRoutes, (url) =>
      url.startsWith(`/api/consumption/${DEVICE}?`) ? jsonResponse(200, dayAnswer(new Array(24).fill(0.5))) : undefined,
    );
    renderApp('/consumption', session('client'));
    expect(await screen.findByRole('heading', { name: 'Consumption · Heat pump' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe(`/consumption/${DEVICE}`);
  });
});

describe('alerts page', () => {
  it('lists each alert with its device, local hour, total and limit', async () => {
    fakeFetch(deviceRoutes, (url) =>
      url.startsWith('/api/alerts')
        ? jsonResponse(200, {
            items: [
              { device_id: DEVICE, device_name: 'Heat pump', hour_start: Date.UTC(2026, 10, 26, 16), total_kwh: 2.75, limit_kwh: 2, created_at: 0 },
            ],
            limit: 21,
            offset: 0,
          })
        : undefined,
    );
    renderApp('/alerts?tz=Europe%2FBucharest', session('client'));
    const row = (await screen.findByRole('link', { name: 'Heat pump' })).closest('tr') as HTMLElement;
    expect(row.textContent).toContain('18:00–19:00');
    expect(row.textContent).toContain('2.75 kWh');
    expect(row.textContent).toContain('0.75 kWh');
    expect(within(row).getByRole('link').getAttribute('href')).toBe(
      `/consumption/${DEVICE}?date=2026-11-26&tz=Europe%2FBucharest`,
    );
  });
});

describe('assistant page', () => {
  it('sends the question with the time zone and shows the reply and its source', async () => {
    const fetchMock = fakeFetch((url) =>
      url === '/api/support/messages'
        ? jsonResponse(200, { reply: 'Yesterday your 1 device(s) used 13.75 kWh in total.', source: 'rule', rule: 'usage_yesterday' })
        : undefined,
    );
    renderApp('/assistant', session('client'));
    fireEvent.change(await screen.findByLabelText('Your question'), { target: { value: 'how much did I use yesterday?' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByText('Yesterday your 1 device(s) used 13.75 kWh in total.')).toBeTruthy();
    expect(screen.getByTestId('answer-source').textContent).toBe('Rule · usage yesterday');
    const body = JSON.parse(String(fetchMock.mock.calls[0][1]?.body));
    expect(body.text).toBe('how much did I use yesterday?');
    expect(typeof body.tz).toBe('string');
    expect(body.tz.length).toBeGreaterThan(0);
  });

  it('sends nothing for an empty question', async () => {
    const fetchMock = fakeFetch();
    renderApp('/assistant', session('client'));
    fireEvent.click(await screen.findByRole('button', { name: 'Send' }));
    expect(screen.getByText('Write a question first.')).toBeTruthy();
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
