// Administrator: one user's profile and account, the devices they own (GET /api/devices?owner=),
// and assigning or unassigning devices (PUT/DELETE /api/devices/{id}/owner).
import { useCallback, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { api } from '../../api';
import { profileGone } from '../../api/eventually';
import type { Device } from '../../api/types';
import { FormAlert } from '../../components/Field';
import { ConfirmDialog, Modal } from '../../components/Modal';
import { Pager } from '../../components/Pager';
import { Empty, Loading, ResourceError, ResourceStates } from '../../components/States';
import { formatDate, formatKwh, fullName, roleLabel } from '../../format';
import { usePageTitle } from '../../hooks/misc';
import { useAction } from '../../hooks/useAction';
import { useResource } from '../../hooks/useResource';
import { useSession } from '../../session/SessionContext';
import { UserForm } from './UserForm';

const PAGE = 20;

export function UserDetail() {
  const { id = '' } = useParams();
  const navigate = useNavigate();
  const { session } = useSession();
  const user = useResource(useCallback((signal) => api.getUser(id, { signal }), [id]));
  const [offset, setOffset] = useState(0);
  const devices = useResource(
    useCallback((signal) => api.listDevices({ owner: id, limit: PAGE, offset }, { signal }), [id, offset]),
  );
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [picking, setPicking] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const row = useAction();
  usePageTitle(user.data ? user.data.username : 'User');

  const profile = user.data;
  const isSelf = session?.user.id === id;

  const unassign = (device: Device) =>
    row.run(async () => {
      await api.unassignDevice(device.id);
      setNotice(`${device.name} is unassigned.`);
      devices.reload();
    });

  return (
    <>
      <p className="breadcrumb">
        <Link to="/admin/users">‹ Users</Link>
      </p>
      {user.loading && !profile ? <Loading label="Loading the user…" /> : null}
      {user.error && !profile ? (
        <ResourceError error={user.error} onRetry={user.reload} notFound="This user does not exist (any more)." />
      ) : null}
      {profile ? (
        <>
          <div className="page-head">
            <div className="page-head-user">
              <span className="avatar avatar-large" aria-hidden="true">
                {(profile.first_name[0] ?? profile.username[0] ?? '?').toUpperCase()}
              </span>
              <div>
                <h1>{fullName(profile) || profile.username}</h1>
                <p className="page-sub">
                  {profile.username} · <span className={`badge badge-${profile.role}`}>{roleLabel(profile.role)}</span>
                </p>
              </div>
            </div>
            <div className="button-row">
              <button type="button" className="button" onClick={() => setEditing(true)}>
                Edit
              </button>
              <button
                type="button"
                className="button button-danger-quiet"
                onClick={() => setDeleting(true)}
                disabled={isSelf}
                title={isSelf ? 'You cannot delete yourself' : undefined}
              >
                Delete
              </button>
            </div>
          </div>

          <FormAlert message={notice} tone="success" />
          <FormAlert message={row.error} />

          <div className="grid-detail">
            <section className="card" aria-labelledby="details-title">
              <h2 id="details-title">Details</h2>
              <dl className="facts facts-stacked">
                <div>
                  <dt>Email</dt>
                  <dd className="wrap-anywhere">{profile.email}</dd>
                </div>
                <div>
                  <dt>Address</dt>
                  <dd>{profile.address || <span className="muted">Not set</span>}</dd>
                </div>
                <div>
                  <dt>Member since</dt>
                  <dd>{formatDate(profile.created_at)}</dd>
                </div>
                <div>
                  <dt>Last change</dt>
                  <dd>{formatDate(profile.updated_at)}</dd>
                </div>
              </dl>
            </section>

            <section className="card" aria-labelledby="devices-title">
              <div className="card-title-row">
                <h2 id="devices-title">Devices</h2>
                <button type="button" className="button button-small" onClick={() => setPicking(true)}>
                  + Assign a device
                </button>
              </div>
              <ResourceStates resource={devices} loading="Loading devices…" />
              {devices.data && devices.data.total === 0 ? (
                <Empty title="No devices">{profile.username} owns no device yet.</Empty>
              ) : null}
              {devices.data && devices.data.items.length > 0 ? (
                <ul className="item-list" aria-label={`Devices of ${profile.username}`}>
                  {devices.data.items.map((device) => (
                    <li key={device.id} className="item">
                      <div className="item-main">
                        <Link className="strong-link" to={`/admin/devices/${device.id}/consumption`}>
                          {device.name}
                        </Link>
                        <span className="muted">
                          {formatKwh(device.max_hourly_kwh)} an hour
                          {device.energy_class ? ` · class ${device.energy_class}` : ''}
                          {device.address ? ` · ${device.address}` : ''}
                        </span>
                      </div>
                      <button
                        type="button"
                        className="button button-small"
                        onClick={() => unassign(device)}
                        aria-label={`Unassign ${device.name}`}
                      >
                        Unassign
                      </button>
                    </li>
                  ))}
                </ul>
              ) : null}
              {devices.data ? (
                <Pager total={devices.data.total} limit={PAGE} offset={offset} onChange={setOffset} noun="devices" />
              ) : null}
            </section>
          </div>

          {editing ? (
            <UserForm
              user={profile}
              onClose={() => {
                setEditing(false);
                user.reload();
              }}
              onSaved={() => {
                setEditing(false);
                setNotice('The changes are saved.');
                user.reload();
              }}
            />
          ) : null}
          {deleting ? (
            <ConfirmDialog
              title="Delete user"
              onClose={() => setDeleting(false)}
              onConfirm={async () => {
                await api.deleteAccount(profile.id);
                await profileGone(profile);
                navigate('/admin/users', { replace: true });
              }}
            >
              <p>
                Delete <strong>{profile.username}</strong>? Their devices become unassigned. This cannot be undone.
              </p>
            </ConfirmDialog>
          ) : null}
          {picking ? (
            <PickDevice
              username={profile.username}
              onClose={() => setPicking(false)}
              onPick={async (device) => {
                await api.assignDevice(device.id, profile.id);
                setPicking(false);
                setNotice(`${device.name} is assigned to ${profile.username}.`);
                devices.reload();
              }}
            />
          ) : null}
        </>
      ) : null}
    </>
  );
}

/** Lists the unassigned devices, paged, each with an Assign button. */
function PickDevice({
  username,
  onClose,
  onPick,
}: {
  username: string;
  onClose: () => void;
  onPick: (device: Device) => Promise<void>;
}) {
  const [offset, setOffset] = useState(0);
  const [picked, setPicked] = useState<string | null>(null);
  const action = useAction();
  const free = useResource(
    useCallback((signal) => api.listDevices({ unassigned: true, limit: 10, offset }, { signal }), [offset]),
  );

  const pick = (device: Device) => {
    setPicked(device.id);
    return action.run(() => onPick(device));
  };

  return (
    <Modal title={`Assign a device to ${username}`} onClose={onClose}>
      <ResourceStates resource={free} loading="Loading unassigned devices…" />
      {free.data && free.data.total === 0 ? (
        <Empty title="No unassigned devices">
          Every device has an owner. Create one on the <Link to="/admin/devices">Devices</Link> page.
        </Empty>
      ) : null}
      {free.data && free.data.items.length > 0 ? (
        <ul className="item-list" aria-label="Unassigned devices">
          {free.data.items.map((device) => (
            <li key={device.id} className="item">
              <div className="item-main">
                <strong>{device.name}</strong>
                <span className="muted">
                  {formatKwh(device.max_hourly_kwh)} an hour{device.address ? ` · ${device.address}` : ''}
                </span>
              </div>
              <button
                type="button"
                className="button button-small button-primary"
                disabled={action.busy}
                onClick={() => pick(device)}
                aria-label={`Assign ${device.name}`}
              >
                {action.busy && picked === device.id ? 'Assigning…' : 'Assign'}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {free.data ? (
        <Pager total={free.data.total} limit={10} offset={offset} onChange={setOffset} noun="devices" />
      ) : null}
      <FormAlert message={action.error} />
    </Modal>
  );
}
