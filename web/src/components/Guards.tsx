// Route guards: signed-out visitors go to the sign-in page (and come back after it); a signed-in
// user who opens another role's page lands on their own home instead of a page that would fail.
import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import type { Role } from '../api/types';
import { homeFor, useSession } from '../session/SessionContext';

export interface FromState {
  from?: string;
}

export function RequireRole({ role, children }: { role?: Role; children: ReactNode }) {
  const { session } = useSession();
  const location = useLocation();
  if (!session) {
    const state: FromState = { from: location.pathname + location.search };
    return <Navigate to="/signin" replace state={state} />;
  }
  if (role && session.user.role !== role) return <Navigate to={homeFor(session.user.role)} replace />;
  return <>{children}</>;
}

/** Where to go after signing in: back where the visitor was headed, if that page is for them. */
export function destinationAfterSignIn(role: Role, from: string | undefined): string {
  if (!from || !from.startsWith('/') || from.startsWith('//') || from === '/signin' || from === '/register') {
    return homeFor(role);
  }
  if (role !== 'admin' && from.startsWith('/admin')) return homeFor(role);
  return from;
}

/**
 * Sign-in and registration: a signed-in user moves on, to the page they were headed for or home.
 * This is also how those pages leave after success, so there is one redirect, not two racing.
 */
export function PublicOnly({ children }: { children: ReactNode }) {
  const { session } = useSession();
  const location = useLocation();
  if (session) {
    const from = (location.state as FromState | null)?.from;
    return <Navigate to={destinationAfterSignIn(session.user.role, from)} replace />;
  }
  return <>{children}</>;
}

export function HomeRedirect() {
  const { session } = useSession();
  return <Navigate to={session ? homeFor(session.user.role) : '/signin'} replace />;
}
