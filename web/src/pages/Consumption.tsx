// One device's consumption on one local day (GET /api/consumption/{id}?date=&tz=): the hourly
// chart with the device's limit, total / average / peak, the hourly table, and a CSV export of a
// range of days (the .csv route, fetched with the token and saved through a Blob URL). The day
// and zone live in the address, so a reload or a shared link shows the same day. Customers reach
// it from their devices (and pick among them here); administrators from a device.
import { useState, type FormEvent } from 'react';
import { Link, Navigate, useNavigate, useParams, useSearchParams } from 'react-router-dom';
import { api } from '../api';
import type { DayConsumption, Device } from '../api/types';
import { DayPicker, TimeZoneSelect } from '../components/DayControls';
import { FormAlert } from '../components/Field';
import { HourlyChart } from '../components/HourlyChart';
import { Empty, LoadError, Loading } from '../components/States';
import { formatKwh } from '../format';
import { usePageTitle } from '../hooks/misc';
import { useResource } from '../hooks/useResource';
import { addDays, browserTimeZone, clockOf, dateIn, daysBetween, formatDay, hourLabels, isDate, isValidTimeZone, zoneLabel } from '../time';

const CSV_MAX_DAYS = 366;

/** The address of a device's consumption page for either role. */
export function consumptionPath(admin: boolean, deviceId: string, day?: { date: string; tz: string }): string {
  const base = admin ? `/admin/devices/${deviceId}/consumption` : `/consumption/${deviceId}`;
  return day ? `${base}?${new URLSearchParams(day).toString()}` : base;
}

/** The address of the alert history, for one device or (customers) all of theirs. */
export function alertsPath(admin: boolean, deviceId?: string): string {
  if (admin) return `/admin/devices/${deviceId}/alerts`;
  return deviceId ? `/alerts?device=${deviceId}` : '/alerts';
}

/** Hands a downloaded file to the browser as if a link to it had been clicked. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The day and zone of the address, defaulting to today in the browser's zone. */
function useDay() {
  const [params, setParams] = useSearchParams();
  const browserZone = browserTimeZone();
  const asked = params.get('tz') ?? '';
  const tz = isValidTimeZone(asked) ? asked : browserZone;
  const today = dateIn(tz);
  const date = isDate(params.get('date')) ? (params.get('date') as string) : today;
  const show = (next: { date?: string; tz?: string }) => setParams({ date: next.date ?? date, tz: next.tz ?? tz });
  return { date, tz, today, browserZone, show };
}

export function Consumption({ admin = false }: { admin?: boolean }) {
  const { id } = useParams();
  const day = useDay();
  // Customers choose among their own devices here; with no device in the address, the first one.
  const mine = useResource(
    (signal) => (admin ? Promise.resolve(null) : api.listDevices({ limit: 100 }, { signal })),
    [admin],
  );
  const first = mine.data?.items[0];
  if (!admin && !id) {
    if (first) return <Navigate to={consumptionPath(false, first.id, { date: day.date, tz: day.tz })} replace />;
    return (
      <>
        <ConsumptionHead title="Consumption" />
        {mine.loading ? <Loading label="Loading your devices…" /> : null}
        {mine.error ? <LoadError message={mine.error.message} onRetry={mine.reload} /> : null}
        {mine.data && mine.data.items.length === 0 ? (
          <Empty title="No devices yet">
            When an administrator assigns a metering device to your account, its consumption appears here.
          </Empty>
        ) : null}
      </>
    );
  }
  return <DeviceConsumption admin={admin} deviceId={id ?? ''} devices={mine.data?.items ?? []} day={day} />;
}

function ConsumptionHead({ title, sub }: { title: string; sub?: string }) {
  usePageTitle(title);
  return (
    <div className="page-head">
      <div>
        <h1>{title}</h1>
        <p className="page-sub">{sub ?? 'Hourly energy use of a device on one day, against its hourly limit.'}</p>
      </div>
    </div>
  );
}

function DeviceConsumption({
  admin,
  deviceId,
  devices,
  day,
}: {
  admin: boolean;
  deviceId: string;
  devices: Device[];
  day: ReturnType<typeof useDay>;
}) {
  const device = useResource((signal) => api.getDevice(deviceId, { signal }), [deviceId]);
  const consumption = useResource(
    (signal) => api.consumption(deviceId, day.date, day.tz, { signal }),
    [deviceId, day.date, day.tz],
  );
  const name = device.data?.name ?? '';
  const data = consumption.data;
  const error = device.error ?? consumption.error;

  return (
    <>
      {admin ? (
        <p className="breadcrumb">
          <Link to="/admin/devices">‹ Devices</Link>
        </p>
      ) : null}
      <ConsumptionHead title={name ? `Consumption · ${name}` : 'Consumption'} />

      <div className="toolbar consumption-toolbar">
        {!admin && devices.length > 0 ? (
          <DevicePicker devices={devices} value={deviceId} day={day} />
        ) : null}
        <DayPicker date={day.date} max={day.today} onChange={(date) => day.show({ date })} />
        <TimeZoneSelect value={day.tz} browserZone={day.browserZone} onChange={(tz) => day.show({ tz })} />
      </div>

      {error ? (
        <LoadError
          message={error.code === 'not_found' ? 'This device does not exist (any more).' : error.message}
          onRetry={error.code === 'not_found' ? undefined : () => (device.error ? device.reload() : consumption.reload())}
        />
      ) : null}
      {!error && consumption.loading && !data ? <Loading label="Loading consumption…" /> : null}
      {!error && data ? (
        <div className={consumption.loading ? 'is-stale' : ''} aria-busy={consumption.loading}>
          <DayView data={data} deviceName={name} />
          <div className={measuredDay(data) ? 'grid-2 consumption-more' : 'consumption-more-empty'}>
            {measuredDay(data) ? <HourTable data={data} /> : null}
            <div className="side-stack">
              <CsvExport key={deviceId} deviceId={deviceId} date={day.date} tz={day.tz} />
              <section className="card" aria-labelledby="alerts-link-title">
                <h2 id="alerts-link-title">Alerts</h2>
                <p className="muted">Every hour this device went over its limit.</p>
                <p className="card-action">
                  <Link className="button" to={alertsPath(admin, deviceId)}>
                    Alert history
                  </Link>
                </p>
              </section>
            </div>
          </div>
        </div>
      ) : null}
    </>
  );
}

function DevicePicker({ devices, value, day }: { devices: Device[]; value: string; day: ReturnType<typeof useDay> }) {
  const navigate = useNavigate();
  return (
    <div className="field">
      <label htmlFor="consumption-device">Device</label>
      <select
        id="consumption-device"
        value={value}
        onChange={(event) => navigate(consumptionPath(false, event.target.value, { date: day.date, tz: day.tz }))}
      >
        {devices.some((d) => d.id === value) ? null : <option value={value}>This device</option>}
        {devices.map((d) => (
          <option key={d.id} value={d.id}>
            {d.name}
          </option>
        ))}
      </select>
    </div>
  );
}

/** Whether any hour of the day has consumption; the API answers zeros for a day without readings. */
const measuredDay = (data: DayConsumption) => data.hours.some((h) => h.kwh > 0);

/** The chart and the day's figures, or the empty state when nothing was measured. */
function DayView({ data, deviceName }: { data: DayConsumption; deviceName: string }) {
  const labels = hourLabels(data.hours.map((h) => h.start));
  const over = data.hours.filter((h) => h.kwh > data.limit_kwh).length;
  const measured = measuredDay(data);
  const peakIndex = data.hours.findIndex((h) => h.start === data.peak.start);
  const peakLabel = peakIndex >= 0 ? labels[peakIndex] : clockOf(data.peak.start);
  const dayText = formatDay(data.date);
  const summary =
    `Hourly consumption${deviceName ? ` of ${deviceName}` : ''} on ${dayText} (${data.tz}): ` +
    `${data.hours.length} hours, total ${formatKwh(data.total_kwh)}, peak ${formatKwh(data.peak.kwh)} at ${peakLabel}, ` +
    `hourly limit ${formatKwh(data.limit_kwh)}, ${over === 1 ? '1 hour' : `${over} hours`} over the limit.`;

  return (
    <>
      <dl className="stats" aria-label="The day in figures">
        <div className="stat">
          <dt>Total</dt>
          <dd data-testid="stat-total">{formatKwh(data.total_kwh)}</dd>
          <span className="stat-note">
            {dayText} · {zoneLabel(data.tz)}
          </span>
        </div>
        <div className="stat">
          <dt>Average</dt>
          <dd data-testid="stat-average">{formatKwh(data.average_kwh)}</dd>
          <span className="stat-note">per hour, over {data.hours.length} hours</span>
        </div>
        <div className="stat">
          <dt>Peak</dt>
          <dd data-testid="stat-peak">{measured ? formatKwh(data.peak.kwh) : '—'}</dd>
          <span className="stat-note">{measured ? `at ${peakLabel}` : 'no readings'}</span>
        </div>
        <div className={`stat ${over > 0 ? 'stat-over' : ''}`}>
          <dt>Hourly limit</dt>
          <dd data-testid="stat-limit">{formatKwh(data.limit_kwh)}</dd>
          <span className="stat-note">{over === 0 ? 'never passed' : over === 1 ? 'passed in 1 hour' : `passed in ${over} hours`}</span>
        </div>
      </dl>
      <section className="card chart-card" aria-labelledby="chart-title">
        <div className="card-title-row">
          <h2 id="chart-title">Hourly consumption</h2>
          <span className="muted small">{data.hours.length} hours</span>
        </div>
        {measured ? (
          <HourlyChart
            hours={data.hours.map((h, i) => ({ label: labels[i], kwh: h.kwh }))}
            limit={data.limit_kwh}
            label={summary}
          />
        ) : (
          <Empty title="No readings for this day">
            This device sent no readings on {dayText}. Pick another day, or check that the meter is sending.
          </Empty>
        )}
      </section>
    </>
  );
}

function HourTable({ data }: { data: DayConsumption }) {
  const labels = hourLabels(data.hours.map((h) => h.start));
  const share = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });
  return (
    <section className="card card-flush" aria-labelledby="table-title">
      <h2 id="table-title" className="card-flush-title">
        Hour by hour
      </h2>
      <div className="table-wrap table-wrap-flat">
        <table className="table table-compact">
          <caption className="visually-hidden">Consumption per hour on {data.date}</caption>
          <thead>
            <tr>
              <th scope="col">Hour</th>
              <th scope="col" className="num-head">
                Energy
              </th>
              <th scope="col" className="num-head">
                Of the limit
              </th>
            </tr>
          </thead>
          <tbody>
            {data.hours.map((hour, i) => {
              const over = hour.kwh > data.limit_kwh;
              return (
                <tr key={hour.start} className={over ? 'row-over' : undefined}>
                  <td data-label="Hour">{labels[i]}</td>
                  <td data-label="Energy" className="num">
                    {formatKwh(hour.kwh)}
                  </td>
                  <td data-label="Of the limit" className="num">
                    {over ? (
                      <span className="badge badge-over">Over · {share.format(hour.kwh / data.limit_kwh)}</span>
                    ) : data.limit_kwh > 0 ? (
                      share.format(hour.kwh / data.limit_kwh)
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** Export of a range of days as CSV, one row per local hour. */
function CsvExport({ deviceId, date, tz }: { deviceId: string; date: string; tz: string }) {
  const [from, setFrom] = useState(() => addDays(date, -6));
  const [to, setTo] = useState(date);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const check = (): string | null => {
    if (!isDate(from) || !isDate(to)) return 'Pick both days.';
    const span = daysBetween(from, to) + 1;
    if (span < 1) return 'The last day cannot be before the first.';
    if (span > CSV_MAX_DAYS) return `Export at most ${CSV_MAX_DAYS} days at a time.`;
    return null;
  };

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const problem = check();
    setError(problem);
    setDone(null);
    if (problem || busy) return;
    setBusy(true);
    try {
      const file = await api.consumptionCsv(deviceId, { from, to, tz });
      saveBlob(file.blob, file.filename ?? `consumption-${from}-${to}.csv`);
      setDone(from === to ? `Downloaded the hours of ${from}.` : `Downloaded the hours from ${from} to ${to}.`);
    } catch (reason) {
      setError(reason instanceof Error ? reason.message : String(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="csv-title">
      <h2 id="csv-title">Download CSV</h2>
      <form className="form" onSubmit={submit} noValidate>
        <p className="muted small">One row per hour, times in {zoneLabel(tz)}.</p>
        <div className="form-row">
          <div className="field">
            <label htmlFor="csv-from">From</label>
            <input id="csv-from" type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="csv-to">To</label>
            <input id="csv-to" type="date" value={to} onChange={(e) => setTo(e.target.value)} />
          </div>
        </div>
        <FormAlert message={error} />
        <FormAlert message={done} tone="success" />
        <div>
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? 'Preparing…' : 'Download CSV'}
          </button>
        </div>
      </form>
    </section>
  );
}
