// One device's consumption, by day or by month. The day view (GET /api/consumption/{id}?date=&tz=):
// the hourly chart with the device's limit, total / average / peak, the hourly table. The month
// view (GET /api/consumption/{id}/days?from=&to=&tz=): one bar per day of the month (up to today),
// total / average / peak day, the daily table; a day's bar or row opens that day. Both offer a
// CSV export of a range of days (the .csv route, fetched with the token and saved through a Blob
// URL). The day, the zone and the view live in the address (?date=&tz=&view=month), so a reload
// or a shared link shows the same thing. Customers reach it from their devices (and pick among
// them here); administrators from a device.
import { useCallback, useState, type FormEvent, type ReactNode } from 'react';
import { Link, Navigate, useNavigate, useParams, useSearchParams } from 'react-router-dom';
import { api } from '../api';
import type { DayConsumption, DaysConsumption, Device } from '../api/types';
import { DailyChart } from '../components/DailyChart';
import { DataTable } from '../components/DataTable';
import { DayPicker, MonthPicker, TimeZoneSelect, ViewSwitch } from '../components/DayControls';
import { FormAlert } from '../components/Field';
import { HourlyChart } from '../components/HourlyChart';
import { PageHead } from '../components/PageHead';
import { Empty, LoadError, Loading, ResourceError } from '../components/States';
import { formatKwh } from '../format';
import { usePageTitle } from '../hooks/misc';
import { useResource, type Resource } from '../hooks/useResource';
import { errorMessage } from '../lib/errors';
import {
  addDays,
  browserTimeZone,
  clockOf,
  dateIn,
  daysBetween,
  formatDay,
  formatDayShort,
  formatMonth,
  hourLabels,
  isDate,
  isValidTimeZone,
  monthDays,
  monthOf,
  zoneLabel,
} from '../time';

const CSV_MAX_DAYS = 366;
const DEVICE_GONE = 'This device does not exist (any more).';
const share = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });

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

type View = 'day' | 'month';

/** The day, zone and view of the address, defaulting to today in the browser's zone, by day. */
function useDay() {
  const [params, setParams] = useSearchParams();
  const browserZone = browserTimeZone();
  const asked = params.get('tz') ?? '';
  const tz = isValidTimeZone(asked) ? asked : browserZone;
  const today = dateIn(tz);
  const date = isDate(params.get('date')) ? (params.get('date') as string) : today;
  const view: View = params.get('view') === 'month' ? 'month' : 'day';
  const show = (next: { date?: string; tz?: string; view?: View }) => {
    const nextView = next.view ?? view;
    setParams({ date: next.date ?? date, tz: next.tz ?? tz, ...(nextView === 'month' ? { view: 'month' } : {}) });
  };
  return { date, tz, today, view, browserZone, show };
}

/** The day to keep when moving to `month`: the same day of the month where it exists, never after today. */
export function dayInMonth(date: string, month: string, today: string): string {
  const { last } = monthDays(month);
  const wanted = `${month}-${date.slice(8, 10)}`;
  const day = wanted > last ? last : wanted;
  return day > today ? today : day;
}

export function Consumption({ admin = false }: { admin?: boolean }) {
  const { id } = useParams();
  const day = useDay();
  // Customers choose among their own devices here; with no device in the address, the first one.
  const mine = useResource(
    useCallback(
      (signal) => (admin ? Promise.resolve(null) : api.listDevices({ limit: 100 }, { signal })),
      [admin],
    ),
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
  return <PageHead title={title} sub={sub ?? 'Hourly energy use of a device on one day, against its hourly limit.'} />;
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
  const device = useResource(useCallback((signal) => api.getDevice(deviceId, { signal }), [deviceId]));
  const name = device.data?.name ?? '';
  const month = monthOf(day.date);
  const side = (
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
  );

  return (
    <>
      {admin ? (
        <p className="breadcrumb">
          <Link to="/admin/devices">‹ Devices</Link>
        </p>
      ) : null}
      <ConsumptionHead
        title={name ? `Consumption · ${name}` : 'Consumption'}
        sub={day.view === 'month' ? 'Daily energy use of a device over one month.' : undefined}
      />

      <div className="toolbar consumption-toolbar">
        {!admin && devices.length > 0 ? <DevicePicker devices={devices} value={deviceId} day={day} /> : null}
        <ViewSwitch view={day.view} onChange={(view) => day.show({ view })} />
        {day.view === 'month' ? (
          <MonthPicker
            month={month}
            max={monthOf(day.today)}
            onChange={(next) => day.show({ date: dayInMonth(day.date, next, day.today) })}
          />
        ) : (
          <DayPicker date={day.date} max={day.today} onChange={(date) => day.show({ date })} />
        )}
        <TimeZoneSelect value={day.tz} browserZone={day.browserZone} onChange={(tz) => day.show({ tz })} />
      </div>

      {device.error ? (
        <ResourceError error={device.error} onRetry={device.reload} notFound={DEVICE_GONE} />
      ) : day.view === 'month' ? (
        <MonthPanel
          admin={admin}
          deviceId={deviceId}
          deviceName={name}
          month={month}
          tz={day.tz}
          today={day.today}
          onOpenDay={(date) => day.show({ date, view: 'day' })}
          side={side}
        />
      ) : (
        <DayPanel deviceId={deviceId} deviceName={name} date={day.date} tz={day.tz} side={side} />
      )}
    </>
  );
}

function DayPanel({
  deviceId,
  deviceName,
  date,
  tz,
  side,
}: {
  deviceId: string;
  deviceName: string;
  date: string;
  tz: string;
  side: ReactNode;
}) {
  const consumption = useResource(
    useCallback((signal) => api.consumption(deviceId, date, tz, { signal }), [deviceId, date, tz]),
  );
  return (
    <Panel resource={consumption} loading="Loading consumption…" side={side}>
      {(data) => ({
        view: <DayView data={data} deviceName={deviceName} />,
        table: measuredDay(data) ? <HourTable data={data} /> : null,
      })}
    </Panel>
  );
}

function MonthPanel({
  admin,
  deviceId,
  deviceName,
  month,
  tz,
  today,
  onOpenDay,
  side,
}: {
  admin: boolean;
  deviceId: string;
  deviceName: string;
  month: string;
  tz: string;
  today: string;
  onOpenDay: (date: string) => void;
  side: ReactNode;
}) {
  const { first, last } = monthDays(month);
  const to = last < today ? last : today;
  const started = first <= today;
  const days = useResource(
    useCallback(
      (signal) => (started ? api.consumptionDays(deviceId, { from: first, to, tz }, { signal }) : Promise.resolve(null)),
      [deviceId, first, to, tz, started],
    ),
  );
  if (!started) {
    return <Empty title="This month has not started yet">Pick this month or an earlier one.</Empty>;
  }
  return (
    <Panel resource={days} loading="Loading the month…" side={side}>
      {(data) => ({
        // The month of the data shown: while the next month loads, the last one stays (dimmed).
        view: <MonthView data={data} month={monthOf(data.from)} deviceName={deviceName} onOpenDay={onOpenDay} />,
        table: data.days.some((d) => d.kwh > 0) ? <DayTable data={data} admin={admin} deviceId={deviceId} /> : null,
      })}
    </Panel>
  );
}

/**
 * A day's or a month's figures once loaded: the view, then its table (null when nothing was
 * measured) beside the side cards. While newer figures load, the older ones stay, dimmed.
 */
function Panel<T>({
  resource,
  loading,
  side,
  children,
}: {
  resource: Omit<Resource<T | null>, 'setData'>;
  loading: string;
  side: ReactNode;
  children: (data: T) => { view: ReactNode; table: ReactNode };
}) {
  const data = resource.data;
  if (resource.error) return <ResourceError error={resource.error} onRetry={resource.reload} notFound={DEVICE_GONE} />;
  if (!data) return resource.loading ? <Loading label={loading} /> : null;
  const { view, table } = children(data);
  return (
    <div className={resource.loading ? 'is-stale' : ''} aria-busy={resource.loading}>
      {view}
      <div className={table ? 'grid-2 consumption-more' : 'consumption-more-empty'}>
        {table}
        {side}
      </div>
    </div>
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

/** One figure of a day or a month, over a note on what it covers. */
function Stat({
  label,
  testId,
  value,
  note,
  over,
}: {
  label: string;
  testId: string;
  value: ReactNode;
  note: string;
  over?: boolean;
}) {
  return (
    <div className={over ? 'stat stat-over' : 'stat'}>
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
      <span className="stat-note">{note}</span>
    </div>
  );
}

/** The card of a day's or a month's chart, titled, with a note on what it spans. */
function ChartCard({ title, note, children }: { title: string; note: string; children: ReactNode }) {
  return (
    <section className="card chart-card" aria-labelledby="chart-title">
      <div className="card-title-row">
        <h2 id="chart-title">{title}</h2>
        <span className="muted small">{note}</span>
      </div>
      {children}
    </section>
  );
}

/** The table beside a chart: a first column naming the hour or day, then two columns of numbers. */
function FiguresTable({
  title,
  caption,
  columns,
  children,
}: {
  title: string;
  caption: string;
  columns: [string, string, string];
  children: ReactNode;
}) {
  const [name, ...numbers] = columns;
  return (
    <section className="card card-flush" aria-labelledby="table-title">
      <h2 id="table-title" className="card-flush-title">
        {title}
      </h2>
      <DataTable compact caption={caption} columns={[name, ...numbers.map((label) => ({ label, numeric: true as const }))]}>
        {children}
      </DataTable>
    </section>
  );
}

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
        <Stat label="Total" testId="stat-total" value={formatKwh(data.total_kwh)} note={`${dayText} · ${zoneLabel(data.tz)}`} />
        <Stat
          label="Average"
          testId="stat-average"
          value={formatKwh(data.average_kwh)}
          note={`per hour, over ${data.hours.length} hours`}
        />
        <Stat
          label="Peak"
          testId="stat-peak"
          value={measured ? formatKwh(data.peak.kwh) : '—'}
          note={measured ? `at ${peakLabel}` : 'no readings'}
        />
        <Stat
          label="Hourly limit"
          testId="stat-limit"
          value={formatKwh(data.limit_kwh)}
          note={over === 0 ? 'never passed' : over === 1 ? 'passed in 1 hour' : `passed in ${over} hours`}
          over={over > 0}
        />
      </dl>
      <ChartCard title="Hourly consumption" note={`${data.hours.length} hours`}>
        {measured ? (
          <HourlyChart
            hours={data.hours.map((h, i) => ({ label: labels[i], kwh: h.kwh }))}
            limit={data.limit_kwh}
            label={summary}
            date={data.date}
          />
        ) : (
          <Empty title="No readings for this day">
            This device sent no readings on {dayText}. Pick another day, or check that the meter is sending.
          </Empty>
        )}
      </ChartCard>
    </>
  );
}

function HourTable({ data }: { data: DayConsumption }) {
  const labels = hourLabels(data.hours.map((h) => h.start));
  return (
    <FiguresTable title="Hour by hour" caption={`Consumption per hour on ${data.date}`} columns={['Hour', 'Energy', 'Of the limit']}>
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
    </FiguresTable>
  );
}

/** The month's chart and figures, or the empty state when nothing was measured. */
function MonthView({
  data,
  month,
  deviceName,
  onOpenDay,
}: {
  data: DaysConsumption;
  month: string;
  deviceName: string;
  onOpenDay: (date: string) => void;
}) {
  const measured = data.days.some((d) => d.kwh > 0);
  const withReadings = data.days.filter((d) => d.kwh > 0).length;
  const peak = measured && data.peak ? data.peak : null;
  const monthText = formatMonth(month);
  const through = data.to < monthDays(month).last ? ` (through ${formatDayShort(data.to)})` : '';
  const summary =
    `Daily consumption${deviceName ? ` of ${deviceName}` : ''} in ${monthText}${through} (${data.tz}): ` +
    `${data.days.length} days, total ${formatKwh(data.total_kwh)}` +
    (peak ? `, peak ${formatKwh(peak.kwh)} on ${formatDay(peak.date)}.` : '.');
  return (
    <>
      <dl className="stats" aria-label="The month in figures">
        <Stat
          label="Total"
          testId="stat-total"
          value={formatKwh(data.total_kwh)}
          note={`${monthText}${through} · ${zoneLabel(data.tz)}`}
        />
        <Stat
          label="Average"
          testId="stat-average"
          value={formatKwh(data.average_kwh)}
          note={`per day, over ${data.days.length === 1 ? '1 day' : `${data.days.length} days`}`}
        />
        <Stat
          label="Peak day"
          testId="stat-peak"
          value={peak ? formatKwh(peak.kwh) : '—'}
          note={peak ? `on ${formatDayShort(peak.date)}` : 'no readings'}
        />
        <Stat label="Days with readings" testId="stat-days" value={withReadings} note={`of ${data.days.length}`} />
      </dl>
      <ChartCard title="Daily consumption" note={monthText}>
        {measured ? (
          <DailyChart
            days={data.days.map((d) => ({ date: d.date, kwh: d.kwh, title: `${formatDayShort(d.date)}: ${formatKwh(d.kwh)}` }))}
            month={month}
            label={summary}
            peak={peak?.date}
            onOpenDay={onOpenDay}
          />
        ) : (
          <Empty title="No readings in this month">
            This device sent no readings in {monthText}. Pick another month, or check that the meter is sending.
          </Empty>
        )}
      </ChartCard>
    </>
  );
}

function DayTable({ data, admin, deviceId }: { data: DaysConsumption; admin: boolean; deviceId: string }) {
  return (
    <FiguresTable
      title="Day by day"
      caption={`Consumption per day from ${data.from} to ${data.to}`}
      columns={['Day', 'Energy', 'Of the month']}
    >
      {data.days.map((day) => (
        <tr key={day.date} className={data.peak?.date === day.date && day.kwh > 0 ? 'row-peak' : undefined}>
          <td data-label="Day">
            <Link to={consumptionPath(admin, deviceId, { date: day.date, tz: data.tz })} aria-label={`${formatDay(day.date)}: open the day`}>
              {formatDayShort(day.date)}
            </Link>
          </td>
          <td data-label="Energy" className="num">
            {formatKwh(day.kwh)}
          </td>
          <td data-label="Of the month" className="num">
            {data.total_kwh > 0 ? share.format(day.kwh / data.total_kwh) : '—'}
          </td>
        </tr>
      ))}
    </FiguresTable>
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
      setError(errorMessage(reason));
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
