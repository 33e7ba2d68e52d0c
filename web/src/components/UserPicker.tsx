// Finds a user by name, username or email (GET /api/users?q=) and lets the admin pick one.
import { useCallback, useState } from 'react';
import { api } from '../api';
import type { Profile } from '../api/types';
import { fullName, roleLabel } from '../format';
import { useDebounced } from '../hooks/misc';
import { useResource } from '../hooks/useResource';
import { Loading } from './States';

interface UserPickerProps {
  selected: Profile | null;
  onSelect: (user: Profile) => void;
}

export function UserPicker({ selected, onSelect }: UserPickerProps) {
  const [query, setQuery] = useState('');
  const q = useDebounced(query.trim(), 250);
  const users = useResource(useCallback((signal) => api.listUsers({ q, limit: 8 }, { signal }), [q]));

  return (
    <div className="picker">
      <div className="field">
        <label htmlFor="user-picker-search">Find a user</label>
        <input
          id="user-picker-search"
          type="search"
          value={query}
          placeholder="Username, name or email"
          autoComplete="off"
          onChange={(event) => setQuery(event.target.value)}
        />
      </div>
      <div className="picker-results" aria-live="polite">
        {users.loading && !users.data ? <Loading label="Searching…" /> : null}
        {users.error ? <p className="field-error">{users.error.message}</p> : null}
        {users.data && users.data.items.length === 0 ? <p className="muted">No user matches “{q}”.</p> : null}
        {users.data && users.data.items.length > 0 ? (
          <ul className="picker-list" aria-label="Users">
            {users.data.items.map((user) => {
              const isSelected = selected?.id === user.id;
              return (
                <li key={user.id}>
                  <button
                    type="button"
                    className={`picker-option ${isSelected ? 'is-selected' : ''}`}
                    aria-pressed={isSelected}
                    onClick={() => onSelect(user)}
                  >
                    <span className="picker-main">
                      <strong>{user.username}</strong>
                      <span className="muted">{fullName(user)}</span>
                    </span>
                    <span className={`badge badge-${user.role}`}>{roleLabel(user.role)}</span>
                  </button>
                </li>
              );
            })}
          </ul>
        ) : null}
        {users.data && users.data.total > users.data.items.length ? (
          <p className="muted small">Showing the first {users.data.items.length}; type more to narrow.</p>
        ) : null}
      </div>
    </div>
  );
}
