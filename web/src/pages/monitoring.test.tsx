// The customer's consumption and alerts pages against a fake API: the day in the address is asked
// for in the chosen zone, the figures and bars follow the answer, an empty day says so, alerts
// show their local hour. (The assistant is a chat conversation now: chat.test.tsx.)
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

function monthAnswer(kwh: number[], month = '2026-10', to?: string) {
  const days = kwh.map((v, i) => ({ date: `${month}-${String(i + 1).padStart(2, '0')}`, kwh: v }));
  const total = kwh.reduce((a, b) => a + b, 0);
  const peak = days.reduce((p, d) => (d.kwh > p.kwh ? d : p), days[0]);
  return { device_id: DEVICE, from: `${month}-01`, to: to ?? days.at(-1)?.date, tz: 'Europe/Bucharest', unit: 'kWh', days, total_kwh: total, average_kwh: total / days.length, peak, limit_kwh: 2 };
}

describe('consumption page, month view', () => {
  const octoberKwh = Array.from({ length: 31 }, (_, i) => (i === 9 ? 30 : i < 20 ? 12 : 0));

  it('switches from the day to its month: one bar per day, total, average and peak, and the daily table', async () => {
    const fetchMock = fakeFetch(deviceRoutes, (url) => {
      if (url.startsWith(`/api/consumption/${DEVICE}/days?`)) return jsonResponse(200, monthAnswer(octoberKwh));
      if (url.startsWith(`/api/consumption/${DEVICE}?`)) return jsonResponse(200, dayAnswer(new Array(24).fill(0.5), '2026-10-14'));
      return undefined;
    });
    renderApp(`/consumption/${DEVICE}?date=2026-10-14&tz=Europe%2FBucharest`, session('client'));
    await screen.findByRole('img', { name: /Hourly consumption of Heat pump/ });
    expect(screen.getByRole('button', { name: 'Day' }).getAttribute('aria-pressed')).toBe('true');

    fireEvent.click(screen.getByRole('button', { name: 'Month' }));
    const chart = await screen.findByRole('img', { name: /Daily consumption of Heat pump in October 2026/ });
    expect(
      fetchMock.mock.calls.some(
        ([url]) => String(url) === `/api/consumption/${DEVICE}/days?from=2026-10-01&to=2026-10-31&tz=Europe%2FBucharest`,
      ),
    ).toBe(true);
    expect(screen.getByRole('button', { name: 'Month' }).getAttribute('aria-pressed')).toBe('true');
    expect(chart.getAttribute('data-month')).toBe('2026-10');
    expect(chart.querySelectorAll('rect.chart-bar')).toHaveLength(31);
    expect(chart.querySelectorAll('rect.chart-bar-peak')).toHaveLength(1);
    expect(screen.getByTestId('stat-total').textContent).toBe('258 kWh');
    expect(screen.getByTestId('stat-average').textContent).toBe('8.323 kWh');
    expect(screen.getByTestId('stat-peak').textContent).toBe('30 kWh');
    expect(screen.getByTestId('stat-days').textContent).toBe('20');
    expect((screen.getByLabelText('Month') as HTMLInputElement).value).toBe('2026-10');
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows).toHaveLength(32);
    expect(rows[10].className).toBe('row-peak');
    expect(within(rows[10]).getByRole('link').getAttribute('href')).toBe(`/consumption/${DEVICE}?date=2026-10-10&tz=Europe%2FBucharest`);
    expect(screen.getByTestId('location').textContent).toBe(`/consumption/${DEVICE}`);
  });

  it('opens a day from its bar, and moves by month', async () => {
    const fetchMock = fakeFetch(deviceRoutes, (url) => {
      if (url.startsWith(`/api/consumption/${DEVICE}/days?from=2026-09-01`)) return jsonResponse(200, monthAnswer(new Array(30).fill(1), '2026-09'));
      if (url.startsWith(`/api/consumption/${DEVICE}/days?`)) return jsonResponse(200, monthAnswer(octoberKwh));
      if (url.startsWith(`/api/consumption/${DEVICE}?`)) return jsonResponse(200, dayAnswer(new Array(24).fill(0.5), '2026-10-10'));
      return undefined;
    });
    renderApp(`/consumption/${DEVICE}?date=2026-10-31&tz=Europe%2FBucharest&view=month`, session('client'));
    const chart = await screen.findByRole('img', { name: /Daily consumption/ });
    fireEvent.click(screen.getByRole('button', { name: 'Previous month' }));
    await waitFor(() => expect(screen.getByRole('img', { name: /Daily consumption/ }).getAttribute('data-month')).toBe('2026-09'));
    expect(screen.getByTestId('stat-total').textContent).toBe('30 kWh');
    // 31 October has no 31 September: the last day of September is kept.
    fireEvent.click(screen.getByRole('button', { name: 'Next month' }));
    await waitFor(() => expect(screen.getByRole('img', { name: /Daily consumption/ }).getAttribute('data-month')).toBe('2026-10'));
    expect(fetchMock.mock.calls.filter(([url]) => String(url).includes('/days?from=2026-10-01')).length).toBeGreaterThan(1);

    const bar = screen.getByRole('img', { name: /Daily consumption/ }).querySelector('[data-date="2026-10-10"]') as Element;
    fireEvent.click(bar);
    const day = await screen.findByRole('img', { name: /Hourly consumption of Heat pump/ });
    expect(day.getAttribute('data-date')).toBe('2026-10-10');
    expect(screen.getByRole('button', { name: 'Day' }).getAttribute('aria-pressed')).toBe('true');
    expect((screen.getByLabelText('Day') as HTMLInputElement).value).toBe('2026-10-10');
    expect(chart.isConnected).toBe(false);
  });

  it('asks only up to today in the current month, and says so when nothing was measured', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const month = today.slice(0, 7);
    const fetchMock = fakeFetch(deviceRoutes, (url) =>
      url.startsWith(`/api/consumption/${DEVICE}/days?`) ? jsonResponse(200, monthAnswer(new Array(Number(today.slice(8))).fill(0), month, today)) : undefined,
    );
    renderApp(`/consumption/${DEVICE}?date=${today}&tz=UTC&view=month`, session('client'));
    expect(await screen.findByText('No readings in this month')).toBeTruthy();
    expect(fetchMock.mock.calls.some(([url]) => String(url) === `/api/consumption/${DEVICE}/days?from=${month}-01&to=${today}&tz=UTC`)).toBe(true);
    expect((screen.getByRole('button', { name: 'Next month' }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId('stat-peak').textContent).toBe('—');
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
