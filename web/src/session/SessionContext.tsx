// The signed-in state of the app: who is signed in, until when, and the message to show on the
// sign-in page when a session ends by itself (expiry, a revoked token, another tab signing out).
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { setSessionHooks } from '../api';
import type { Role, Session, SessionUser } from '../api/types';
import { clearSession, loadSession, saveSession, SESSION_KEY } from './storage';

export const EXPIRED_MESSAGE = 'Your session has expired. Please sign in again.';
export const REVOKED_MESSAGE = 'Your session is no longer valid. Please sign in again.';

/** setTimeout's longest delay (about 24.8 days); longer sessions re-arm the timer. */
const MAX_TIMER_MS = 2_147_483_647;

interface SessionState {
  session: Session | null;
  /** Shown once on the sign-in page, then cleared by it. */
  notice: string | null;
  signIn: (session: Session) => void;
  signOut: (notice?: string) => void;
  updateUser: (user: Partial<SessionUser>) => void;
  clearNotice: () => void;
}

const SessionContext = createContext<SessionState | null>(null);

export function homeFor(role: Role): string {
  return role === 'admin' ? '/admin/users' : '/devices';
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);
  const current = useRef(session);
  current.current = session;

  const signIn = useCallback((next: Session) => {
    saveSession(next);
    current.current = next;
    setSession(next);
    setNotice(null);
  }, []);

  const signOut = useCallback((message?: string) => {
    clearSession();
    current.current = null;
    setSession(null);
    setNotice(message ?? null);
  }, []);

  const updateUser = useCallback((user: Partial<SessionUser>) => {
    const prev = current.current;
    if (!prev) return;
    const next = { ...prev, user: { ...prev.user, ...user } };
    saveSession(next);
    current.current = next;
    setSession(next);
  }, []);

  const clearNotice = useCallback(() => setNotice(null), []);

  // Plugged in during the first render, not in an effect: children's effects run before their
  // parent's, and their first requests must already carry the token.
  useState(() =>
    setSessionHooks({
      getToken: () => current.current?.token ?? null,
      onUnauthorized: () => {
        if (current.current) signOut(REVOKED_MESSAGE);
      },
    }),
  );

  // End the session when its token expires, even if the page makes no request.
  useEffect(() => {
    if (!session) return undefined;
    const left = session.expires_at - Date.now();
    if (left <= 0) {
      signOut(EXPIRED_MESSAGE);
      return undefined;
    }
    const timer = window.setTimeout(() => {
      if (session.expires_at <= Date.now()) signOut(EXPIRED_MESSAGE);
      else setSession({ ...session });
    }, Math.min(left + 250, MAX_TIMER_MS));
    return () => window.clearTimeout(timer);
  }, [session, signOut]);

  // Follow other tabs: signing in or out there changes this tab too.
  useEffect(() => {
    const onStorage = (event: StorageEvent) => {
      if (event.key !== SESSION_KEY && event.key !== null) return;
      const stored = loadSession();
      if (stored?.token === current.current?.token) return;
      current.current = stored;
      setSession(stored);
      if (!stored) setNotice('You signed out in another window.');
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  const value = useMemo(
    () => ({ session, notice, signIn, signOut, updateUser, clearNotice }),
    [session, notice, signIn, signOut, updateUser, clearNotice],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession must be used inside <SessionProvider>');
  return value;
}

/** The signed-in user; only for pages behind a guard, which guarantees there is one. */
export function useUser(): SessionUser {
  const { session } = useSession();
  if (!session) throw new Error('useUser needs a signed-in session');
  return session.user;
}
