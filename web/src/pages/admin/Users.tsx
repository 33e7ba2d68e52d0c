// Administrator: every account with its profile, searchable and paged (GET /api/users?q&limit&offset);
// create, edit and delete from here. The search and page live in the URL, so Back works.
import { useCallback, useEffect, useEffectEvent, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api } from '../../api';
import { profileGone } from '../../api/eventually';
import type { Profile } from '../../api/types';
import { DataTable, RowActions } from '../../components/DataTable';
import { FormAlert } from '../../components/Field';
import { ConfirmDialog } from '../../components/Modal';
import { PageHead } from '../../components/PageHead';
import { Pager } from '../../components/Pager';
import { Empty, ResourceStates } from '../../components/States';
import { formatDate, fullName, roleLabel } from '../../format';
import { offsetParam, useDebounced, usePageTitle } from '../../hooks/misc';
import { useResource } from '../../hooks/useResource';
import { useSession } from '../../session/SessionContext';
import { UserForm } from './UserForm';

const PAGE = 20;

export function Users() {
  usePageTitle('Users');
  const { session } = useSession();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const offset = offsetParam(params);
  const [search, setSearch] = useState(q);
  const settled = useDebounced(search.trim(), 300);
  const [editing, setEditing] = useState<Profile | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Profile | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  // The box follows the URL when the URL changes from outside (the Users link, Back)...
  const shownQ = useRef(q);
  useEffect(() => {
    if (q === shownQ.current) return;
    shownQ.current = q;
    setSearch(q);
  }, [q]);
  // ...and the URL follows the box once typing pauses; a new search starts at the first page. Only
  // a pause does that: the URL changing under a box that has not settled yet must not be undone.
  const searchFor = useEffectEvent((value: string) => {
    if (value === q) return;
    shownQ.current = value;
    setParams(value ? { q: value } : {}, { replace: true });
  });
  useEffect(() => {
    searchFor(settled);
  }, [settled]);

  const users = useResource(
    useCallback((signal) => api.listUsers({ q, limit: PAGE, offset }, { signal }), [q, offset]),
  );
  const list = users.data;

  const goTo = (next: number) => {
    const nextParams: Record<string, string> = {};
    if (q) nextParams.q = q;
    if (next > 0) nextParams.offset = String(next);
    setParams(nextParams);
  };

  return (
    <>
      <PageHead title="Users" sub="Customer and administrator accounts.">
        <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
          + New user
        </button>
      </PageHead>

      <form className="toolbar" role="search" onSubmit={(event) => event.preventDefault()}>
        <div className="field field-inline">
          <label htmlFor="user-search">Search</label>
          <input
            id="user-search"
            type="search"
            value={search}
            placeholder="Username, name or email"
            onChange={(event) => setSearch(event.target.value)}
          />
        </div>
      </form>

      <FormAlert message={notice} tone="success" />

      <ResourceStates resource={users} loading="Loading users…" />
      {list && list.items.length === 0 ? (
        q ? (
          <Empty title={`No user matches “${q}”`}>Try part of a username, a name or an email address.</Empty>
        ) : (
          <Empty
            title="No users yet"
            action={
              <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
                Create the first user
              </button>
            }
          />
        )
      ) : null}

      {list && list.items.length > 0 ? (
        <DataTable actions caption="Users" columns={['User', 'Email', 'Role', 'Joined']} stale={users.loading}>
          {list.items.map((user) => (
            <tr key={user.id}>
              <td data-label="User">
                <Link to={`/admin/users/${user.id}`} className="strong-link">
                  {user.username}
                </Link>
                <div className="muted">{fullName(user)}</div>
              </td>
              <td data-label="Email" className="wrap-anywhere">
                {user.email}
              </td>
              <td data-label="Role">
                <span className={`badge badge-${user.role}`}>{roleLabel(user.role)}</span>
              </td>
              <td data-label="Joined">{formatDate(user.created_at)}</td>
              <RowActions
                name={user.username}
                onEdit={() => setEditing(user)}
                onDelete={() => setDeleting(user)}
                cannotDelete={user.id === session?.user.id ? 'You cannot delete yourself' : undefined}
              />
            </tr>
          ))}
        </DataTable>
      ) : null}
      {list ? <Pager total={list.total} limit={PAGE} offset={offset} onChange={goTo} noun="users" /> : null}

      {editing ? (
        <UserForm
          user={editing === 'new' ? undefined : editing}
          onClose={() => {
            setEditing(null);
            users.reload();
          }}
          onSaved={() => {
            setNotice(editing === 'new' ? 'The user is created.' : 'The changes are saved.');
            setEditing(null);
            users.reload();
          }}
        />
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title="Delete user"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.deleteAccount(deleting.id);
            await profileGone(deleting);
            setNotice(`${deleting.username} is deleted.`);
            setDeleting(null);
            if (list && list.items.length === 1 && offset > 0) goTo(Math.max(0, offset - PAGE));
            else users.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.username}</strong> ({fullName(deleting) || 'no name'})? Their devices become
            unassigned. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
