// The frame of every signed-in page: the top bar with the role's pages, the notification bell, who
// is signed in, and Sign out; the page itself below it; live alerts as toasts. The live connection
// (LiveProvider) lives as long as this frame, so it opens on sign-in and closes on sign-out.
import type { ReactNode } from 'react';
import { NavLink, Outlet } from 'react-router-dom';
import type { Role } from '../api/types';
import { roleLabel } from '../format';
import { LiveProvider, useLive } from '../live/LiveContext';
import { unreadOf } from '../pages/admin/Inbox';
import { useSession, useUser } from '../session/SessionContext';
import { UnreadCount } from './InboxEntry';
import { NotificationBell, Toasts } from './LiveAlerts';

const NAV: Record<Role, { to: string; label: string }[]> = {
  admin: [
    { to: '/admin/users', label: 'Users' },
    { to: '/admin/devices', label: 'Devices' },
    { to: '/admin/chat', label: 'Chat' },
    { to: '/profile', label: 'My profile' },
  ],
  client: [
    { to: '/devices', label: 'My devices' },
    { to: '/consumption', label: 'Consumption' },
    { to: '/alerts', label: 'Alerts' },
    { to: '/chat', label: 'Chat' },
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

/** Chat messages from the other side that nobody on this side has seen yet. */
function useChatUnread(role: Role, userId: string): number {
  const { state } = useLive();
  if (role === 'client') {
    return (state.messages[userId] ?? []).filter((m) => m.sender_role === 'admin' && m.seen_at === null).length;
  }
  const conversations = new Set([...Object.keys(state.conversations), ...Object.keys(state.messages)]);
  let total = 0;
  for (const conv of conversations) {
    const summary = state.conversations[conv] ?? { conversation: conv, client: { id: conv, username: '' }, unread: 0, last_message: null };
    total += unreadOf(summary, state.messages[conv]);
  }
  return total;
}

export function Layout() {
  const { session } = useSession();
  if (!session) return <Outlet />;
  return (
    <LiveProvider token={session.token}>
      <Frame />
    </LiveProvider>
  );
}

function Frame() {
  const { signOut } = useSession();
  const user = useUser();
  const chatUnread = useChatUnread(user.role, user.id);
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
                {item.label === 'Chat' ? <UnreadCount count={chatUnread} className="nav-count" testId="chat-unread" /> : null}
              </NavLink>
            ))}
          </nav>
          <div className="whoami">
            <NotificationBell />
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
      <Toasts />
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
