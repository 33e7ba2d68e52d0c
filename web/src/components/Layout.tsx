// The frame of every signed-in page: the top bar with the role's pages, who is signed in, and
// Sign out; the page itself below it.
import type { ReactNode } from 'react';
import { NavLink, Outlet } from 'react-router-dom';
import type { Role } from '../api/types';
import { roleLabel } from '../format';
import { useSession } from '../session/SessionContext';

const NAV: Record<Role, { to: string; label: string }[]> = {
  admin: [
    { to: '/admin/users', label: 'Users' },
    { to: '/admin/devices', label: 'Devices' },
    { to: '/profile', label: 'My profile' },
  ],
  client: [
    { to: '/devices', label: 'My devices' },
    { to: '/consumption', label: 'Consumption' },
    { to: '/alerts', label: 'Alerts' },
    { to: '/assistant', label: 'Assistant' },
    { to: '/profile', label: 'My profile' },
  ],
};

/** The logo: a lightning bolt on the brand colour, drawn inline so it needs no request. */
function BrandMark() {
  return (
    <svg className="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <rect width="32" height="32" rx="8" />
      <path d="M18 5 8.5 18H15l-2 9 10.5-14H17z" />
    </svg>
  );
}

export function Layout() {
  const { session, signOut } = useSession();
  if (!session) return <Outlet />;
  const { user } = session;
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <span className="brand">
            <BrandMark />
            EMS
          </span>
          <nav className="mainnav" aria-label="Main">
            {NAV[user.role].map((item) => (
              <NavLink key={item.to} to={item.to} className="mainnav-link">
                {item.label}
              </NavLink>
            ))}
          </nav>
          <div className="whoami">
            <span className="whoami-name" data-testid="whoami">
              <span className="whoami-user">{user.username}</span>
              <span className={`badge badge-${user.role}`}>{roleLabel(user.role)}</span>
            </span>
            <button type="button" className="button button-quiet" onClick={() => signOut('You signed out.')}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

/** The frame of the sign-in and registration pages. */
export function AuthFrame({ children }: { children: ReactNode }) {
  return (
    <main id="main" className="auth-page">
      <div className="auth-card">
        <div className="auth-brand">
          <BrandMark />
          <span>
            <strong>EMS</strong>
            <small>Energy Management System</small>
          </span>
        </div>
        {children}
      </div>
    </main>
  );
}
