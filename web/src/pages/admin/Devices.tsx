// Administrator: every metering device (GET /api/devices, or only the unassigned ones), with
// create, edit, delete and owner assignment. Filter and page live in the URL.
import { useCallback, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api } from '../../api';
import type { Device } from '../../api/types';
import { DataTable, RowActions } from '../../components/DataTable';
import { FormAlert } from '../../components/Field';
import { ConfirmDialog } from '../../components/Modal';
import { PageHead } from '../../components/PageHead';
import { Pager } from '../../components/Pager';
import { Empty, ResourceStates } from '../../components/States';
import { formatKwh } from '../../format';
import { offsetParam, usePageTitle } from '../../hooks/misc';
import { useAction } from '../../hooks/useAction';
import { useProfiles } from '../../hooks/useProfiles';
import { useResource } from '../../hooks/useResource';
import { AssignDialog } from './AssignDialog';
import { DeviceForm } from './DeviceForm';

const PAGE = 20;

export function Devices() {
  usePageTitle('Devices');
  const [params, setParams] = useSearchParams();
  const unassigned = params.get('filter') === 'unassigned';
  const offset = offsetParam(params);
  const [editing, setEditing] = useState<Device | 'new' | null>(null);
  const [assigning, setAssigning] = useState<Device | null>(null);
  const [deleting, setDeleting] = useState<Device | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const row = useAction();

  const devices = useResource(
    useCallback(
      (signal) => api.listDevices({ unassigned, limit: PAGE, offset }, { signal }),
      [unassigned, offset],
    ),
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
    row.setError(null);
    devices.reload();
  };

  const unassign = (device: Device) =>
    row.run(async () => {
      await api.unassignDevice(device.id);
      done(`${device.name} is unassigned.`);
    });

  return (
    <>
      <PageHead title="Devices" sub="Metering devices, their hourly limits and owners.">
        <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
          + New device
        </button>
      </PageHead>

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

      <FormAlert message={notice} tone="success" />
      <FormAlert message={row.error} />

      <ResourceStates resource={devices} loading="Loading devices…" />
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
        <DataTable actions caption="Devices" columns={['Device', 'Hourly limit', 'Class', 'Owner']} stale={devices.loading}>
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
                <RowActions name={device.name} onEdit={() => setEditing(device)} onDelete={() => setDeleting(device)} />
              </tr>
            );
          })}
        </DataTable>
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
