// Keeps the session (token, expiry, user) in localStorage so it survives a reload, and refuses
// anything malformed or already expired rather than starting a page with a dead token.
import type { Session } from '../api/types';

export const SESSION_KEY = 'ems.session';

function isSession(value: unknown): value is Session {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  const user = s.user as Record<string, unknown> | undefined;
  return (
    typeof s.token === 'string' &&
    s.token.length > 0 &&
    typeof s.expires_at === 'number' &&
    typeof user === 'object' &&
    user !== null &&
    typeof user.id === 'string' &&
    typeof user.username === 'string' &&
    (user.role === 'admin' || user.role === 'client')
  );
}

export function loadSession(now: number = Date.now()): Session | null {
  let raw: string | null = null;
  try {
    raw = localStorage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
  if (!raw) return null;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (isSession(parsed) && parsed.expires_at > now) return parsed;
  } catch {
    /* a corrupt entry is treated as no session and removed below */
  }
  clearSession();
  return null;
}

export function saveSession(session: Session): void {
  try {
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    /* storage full or disabled: the session still lives in memory for this tab */
  }
}

export function clearSession(): void {
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch {
    /* nothing stored, nothing to remove */
  }
}
