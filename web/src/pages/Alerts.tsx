// The overconsumption alert history (GET /api/alerts), newest first: which device, which local
// hour, what it used against its limit. Customers see all their devices' alerts or one device's
// (?device=); administrators open it from a device. The API gives no total, so paging asks for
// one row more than it shows to know whether there is a next page.
import { useCallback, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import { api } from '../api';
import type { Alert } from '../api/types';
import { DataTable } from '../components/DataTable';
import { TimeZoneSelect } from '../components/DayControls';
import { PageHead } from '../components/PageHead';
import { Empty, ResourceStates } from '../components/States';
import { formatKwh } from '../format';
import { usePageTitle } from '../hooks/misc';
import { useResource } from '../hooks/useResource';
import { browserTimeZone, dateIn, formatHourIn, isValidTimeZone } from '../time';
import { consumptionPath } from './Consumption';

const PAGE = 20;

export function Alerts({ admin = false }: { admin?: boolean }) {
  const params = useParams();
  const [search, setSearch] = useSearchParams();
  const deviceId = admin ? params.id : (search.get('device') ?? undefined);
  const browserZone = browserTimeZone();
  const asked = search.get('tz') ?? '';
  const tz = isValidTimeZone(asked) ? asked : browserZone;
  const [offset, setOffset] = useState(0);
  usePageTitle('Alerts');

  const alerts = useResource(
    useCallback(
      (signal) => api.listAlerts({ device_id: deviceId, limit: PAGE + 1, offset }, { signal }),
      [deviceId, offset],
    ),
  );
  const devices = useResource(
    useCallback(
      (signal) => (admin ? Promise.resolve(null) : api.listDevices({ limit: 100 }, { signal })),
      [admin],
    ),
  );
  const device = useResource(
    useCallback(
      (signal) => (admin && deviceId ? api.getDevice(deviceId, { signal }) : Promise.resolve(null)),
      [admin, deviceId],
    ),
  );

  const items = alerts.data ? alerts.data.items.slice(0, PAGE) : null;
  const hasNext = alerts.data ? alerts.data.items.length > PAGE : false;
  const setQuery = (next: { device?: string; tz?: string }) => {
    const query: Record<string, string> = {};
    const d = next.device ?? deviceId ?? '';
    if (d && !admin) query.device = d;
    query.tz = next.tz ?? tz;
    setSearch(query);
  };

  return (
    <>
      {admin ? (
        <p className="breadcrumb">
          <Link to="/admin/devices">‹ Devices</Link>
          {deviceId ? (
            <>
              {' · '}
              <Link to={consumptionPath(true, deviceId)}>Consumption</Link>
            </>
          ) : null}
        </p>
      ) : null}
      <PageHead
        title={admin && device.data ? `Alerts · ${device.data.name}` : 'Alerts'}
        sub="Hours in which a device used more than its hourly limit, newest first."
      />

      <div className="toolbar">
        {!admin && devices.data && devices.data.items.length > 0 ? (
          <div className="field">
            <label htmlFor="alerts-device">Device</label>
            <select
              id="alerts-device"
              value={deviceId ?? ''}
              onChange={(event) => {
                setOffset(0);
                setQuery({ device: event.target.value });
              }}
            >
              <option value="">All my devices</option>
              {devices.data.items.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        <TimeZoneSelect value={tz} browserZone={browserZone} onChange={(next) => setQuery({ tz: next })} />
      </div>

      <ResourceStates resource={alerts} loading="Loading alerts…" notFound="This device does not exist (any more)." />
      {items && items.length === 0 && offset === 0 ? (
        <Empty title="No alerts">
          {deviceId
            ? 'This device has never gone over its hourly limit.'
            : 'None of your devices has gone over its hourly limit.'}
        </Empty>
      ) : null}
      {items && items.length > 0 ? (
        <DataTable
          caption="Overconsumption alerts"
          columns={[
            'Device',
            'Day',
            'Hour',
            { label: 'Used', numeric: true },
            { label: 'Limit', numeric: true },
            { label: 'Over by', numeric: true },
          ]}
          stale={alerts.loading}
        >
          {items.map((alert) => (
            <AlertRow key={`${alert.device_id}-${alert.hour_start}`} alert={alert} tz={tz} admin={admin} />
          ))}
        </DataTable>
      ) : null}
      {items && (offset > 0 || hasNext) ? (
        <nav className="pager" aria-label="alerts pages">
          <p className="pager-text" aria-live="polite">
            Alerts {offset + 1}–{offset + items.length}
          </p>
          <div className="pager-buttons">
            <button
              type="button"
              className="button"
              disabled={offset === 0}
              onClick={() => setOffset(Math.max(0, offset - PAGE))}
            >
              ‹ Newer
            </button>
            <button type="button" className="button" disabled={!hasNext} onClick={() => setOffset(offset + PAGE)}>
              Older ›
            </button>
          </div>
        </nav>
      ) : null}
    </>
  );
}

function AlertRow({ alert, tz, admin }: { alert: Alert; tz: string; admin: boolean }) {
  const when = formatHourIn(alert.hour_start, tz);
  const name = alert.device_name ?? 'Deleted device';
  return (
    <tr>
      <td data-label="Device">
        <Link
          className="strong-link"
          to={consumptionPath(admin, alert.device_id, { date: dateIn(tz, alert.hour_start), tz })}
          title="The consumption of that day"
        >
          {name}
        </Link>
      </td>
      <td data-label="Day">{when.day}</td>
      <td data-label="Hour" className="tabular">
        {when.hours}
      </td>
      <td data-label="Used" className="num">
        <span className="badge badge-over">{formatKwh(alert.total_kwh)}</span>
      </td>
      <td data-label="Limit" className="num">
        {formatKwh(alert.limit_kwh)}
      </td>
      <td data-label="Over by" className="num">
        {formatKwh(Math.max(0, alert.total_kwh - alert.limit_kwh))}
      </td>
    </tr>
  );
}
