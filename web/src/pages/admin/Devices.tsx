// Administrator: every metering device (GET /api/devices, or only the unassigned ones), with
// create, edit, delete and owner assignment. Filter and page live in the URL.
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api } from '../../api';
import type { Device } from '../../api/types';
import { ConfirmDialog } from '../../components/Modal';
import { Pager } from '../../components/Pager';
import { Empty, LoadError, Loading } from '../../components/States';
import { formatKwh } from '../../format';
import { usePageTitle } from '../../hooks/misc';
import { useProfiles } from '../../hooks/useProfiles';
import { useResource } from '../../hooks/useResource';
import { AssignDialog } from './AssignDialog';
import { DeviceForm } from './DeviceForm';

const PAGE = 20;

export function Devices() {
  usePageTitle('Devices');
  const [params, setParams] = useSearchParams();
  const unassigned = params.get('filter') === 'unassigned';
  const offset = Math.max(0, Number.parseInt(params.get('offset') ?? '0', 10) || 0);
  const [editing, setEditing] = useState<Device | 'new' | null>(null);
  const [assigning, setAssigning] = useState<Device | null>(null);
  const [deleting, setDeleting] = useState<Device | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [rowError, setRowError] = useState<string | null>(null);

  const devices = useResource(
    (signal) => api.listDevices({ unassigned, limit: PAGE, offset }, { signal }),
    [unassigned, offset],
  );
  const list = devices.data;
  const { profiles, remember } = useProfiles(list ? list.items.map((d) => d.owner_id) : []);

  const show = (next: { unassigned?: boolean; offset?: number }) => {
    const nextParams: Record<string, string> = {};
    if (next.unassigned ?? unassigned) nextParams.filter = 'unassigned';
    if (next.offset) nextParams.offset = String(next.offset);
    setParams(nextParams);
  };

  const done = (message: string) => {
    setNotice(message);
    setRowError(null);
    devices.reload();
  };

  const unassign = async (device: Device) => {
    setRowError(null);
    try {
      await api.unassignDevice(device.id);
      done(`${device.name} is unassigned.`);
    } catch (reason) {
      setRowError(reason instanceof Error ? reason.message : String(reason));
    }
  };

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Devices</h1>
          <p className="page-sub">Metering devices, their hourly limits and owners.</p>
        </div>
        <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
          + New device
        </button>
      </div>

      <div className="toolbar">
        <div className="segmented" role="group" aria-label="Show">
          <button
            type="button"
            aria-pressed={!unassigned}
            onClick={() => show({ unassigned: false, offset: 0 })}
          >
            All devices
          </button>
          <button type="button" aria-pressed={unassigned} onClick={() => show({ unassigned: true, offset: 0 })}>
            Unassigned
          </button>
        </div>
      </div>

      {notice ? (
        <div className="alert alert-success" role="status">
          {notice}
        </div>
      ) : null}
      {rowError ? (
        <div className="alert alert-error" role="alert">
          {rowError}
        </div>
      ) : null}

      {devices.loading && !list ? <Loading label="Loading devices…" /> : null}
      {devices.error ? <LoadError message={devices.error.message} onRetry={devices.reload} /> : null}
      {list && list.items.length === 0 ? (
        unassigned ? (
          <Empty title="Every device has an owner" />
        ) : (
          <Empty
            title="No devices yet"
            action={
              <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
                Add the first device
              </button>
            }
          >
            Add a metering device, then assign it to a customer.
          </Empty>
        )
      ) : null}

      {list && list.items.length > 0 ? (
        <div className={`table-wrap ${devices.loading ? 'is-stale' : ''}`}>
          <table className="table">
            <caption className="visually-hidden">Devices</caption>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Hourly limit</th>
                <th scope="col">Class</th>
                <th scope="col">Owner</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((device) => {
                const owner = device.owner_id ? profiles[device.owner_id] : undefined;
                return (
                  <tr key={device.id}>
                    <td data-label="Device">
                      <Link
                        className="strong-link"
                        to={`/admin/devices/${device.id}/consumption`}
                        title={`Consumption of ${device.name}`}
                      >
                        {device.name}
                      </Link>
                      {device.address || device.description ? (
                        <div className="muted clamp">{device.address || device.description}</div>
                      ) : null}
                    </td>
                    <td data-label="Hourly limit" className="num">
                      {formatKwh(device.max_hourly_kwh)}
                    </td>
                    <td data-label="Class">
                      {device.energy_class ? (
                        <span className="energy-class">{device.energy_class}</span>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td data-label="Owner">
                      {device.owner_id ? (
                        <span className="owner">
                          {owner ? (
                            <Link to={`/admin/users/${owner.id}`}>{owner.username}</Link>
                          ) : owner === null ? (
                            <span className="muted">Unknown user</span>
                          ) : (
                            <span className="muted">…</span>
                          )}
                          <span className="owner-actions">
                            <button
                              type="button"
                              className="link-button"
                              onClick={() => setAssigning(device)}
                              aria-label={`Change the owner of ${device.name}`}
                            >
                              Change
                            </button>
                            <button
                              type="button"
                              className="link-button"
                              onClick={() => unassign(device)}
                              aria-label={`Unassign ${device.name}`}
                            >
                              Unassign
                            </button>
                          </span>
                        </span>
                      ) : (
                        <button
                          type="button"
                          className="button button-small"
                          onClick={() => setAssigning(device)}
                          aria-label={`Assign ${device.name}`}
                        >
                          Assign…
                        </button>
                      )}
                    </td>
                    <td className="actions">
                      <button
                        type="button"
                        className="button button-small"
                        onClick={() => setEditing(device)}
                        aria-label={`Edit ${device.name}`}
                      >
                        Edit
                      </button>
                      <button
                        type="button"
                        className="button button-small button-danger-quiet"
                        onClick={() => setDeleting(device)}
                        aria-label={`Delete ${device.name}`}
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {list ? (
        <Pager total={list.total} limit={PAGE} offset={offset} onChange={(o) => show({ offset: o })} noun="devices" />
      ) : null}

      {editing ? (
        <DeviceForm
          device={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(null)}
          onSaved={(device) => {
            setEditing(null);
            done(editing === 'new' ? `${device.name} is created.` : `${device.name} is saved.`);
          }}
        />
      ) : null}
      {assigning ? (
        <AssignDialog
          device={assigning}
          onClose={() => setAssigning(null)}
          onAssigned={(device, owner) => {
            remember(owner);
            setAssigning(null);
            done(`${device.name} is assigned to ${owner.username}.`);
          }}
        />
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title="Delete device"
          confirmLabel="Delete device"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.deleteDevice(deleting.id);
            setDeleting(null);
            if (list && list.items.length === 1 && offset > 0) {
              setNotice(`${deleting.name} is deleted.`);
              show({ offset: Math.max(0, offset - PAGE) });
            } else {
              done(`${deleting.name} is deleted.`);
            }
          }}
        >
          <p>
            Delete <strong>{deleting.name}</strong>? It disappears from its owner’s devices.
            This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
