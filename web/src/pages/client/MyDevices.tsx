// A customer's own devices (GET /api/devices answers only theirs), each with its consumption and alerts.
import { useCallback, useState } from 'react';
import { Link } from 'react-router-dom';
import { api } from '../../api';
import { PageHead } from '../../components/PageHead';
import { Empty, ResourceStates } from '../../components/States';
import { Pager } from '../../components/Pager';
import { formatKwh } from '../../format';
import { usePageTitle } from '../../hooks/misc';
import { useResource } from '../../hooks/useResource';

const PAGE = 24;

export function MyDevices() {
  usePageTitle('My devices');
  const [offset, setOffset] = useState(0);
  const devices = useResource(
    useCallback((signal) => api.listDevices({ limit: PAGE, offset }, { signal }), [offset]),
  );
  const list = devices.data;

  return (
    <>
      <PageHead title="My devices" sub="The meters registered to your account and their hourly limits." />
      <ResourceStates resource={devices} loading="Loading your devices…" />
      {list && list.total === 0 ? (
        <Empty title="No devices yet">
          When an administrator assigns a metering device to your account, it appears here.
        </Empty>
      ) : null}
      {list && list.items.length > 0 ? (
        <>
          <ul className="device-grid" aria-label="Devices">
            {list.items.map((device) => (
              <li key={device.id} className="card device-card">
                <div className="device-card-head">
                  <h2>{device.name}</h2>
                  {device.energy_class ? (
                    <span className="energy-class" title="Energy class">
                      {device.energy_class}
                    </span>
                  ) : null}
                </div>
                {device.description ? <p className="device-desc">{device.description}</p> : null}
                <dl className="facts">
                  <div>
                    <dt>Hourly limit</dt>
                    <dd>{formatKwh(device.max_hourly_kwh)}</dd>
                  </div>
                  <div>
                    <dt>Address</dt>
                    <dd>{device.address || <span className="muted">Not set</span>}</dd>
                  </div>
                </dl>
                <div className="device-card-actions">
                  <Link
                    className="button button-small button-primary"
                    to={`/consumption/${device.id}`}
                    aria-label={`Consumption of ${device.name}`}
                  >
                    Consumption
                  </Link>
                  <Link className="button button-small" to={`/alerts?device=${device.id}`} aria-label={`Alerts of ${device.name}`}>
                    Alerts
                  </Link>
                </div>
              </li>
            ))}
          </ul>
          <Pager total={list.total} limit={PAGE} offset={offset} onChange={setOffset} noun="devices" />
        </>
      ) : null}
    </>
  );
}
