// The live alerts in the top bar: a bell with the number of unread notifications that opens a list
// of them (Escape or a click outside closes it; each can be marked read), and toasts in the corner
// for alerts that arrive while the page is open, each linking to that day's consumption.
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { formatKwh } from '../format';
import { useLive } from '../live/LiveContext';
import type { LiveNotification } from '../live/state';
import { consumptionPath } from '../pages/Consumption';
import { useUser } from '../session/SessionContext';
import { browserTimeZone, dateIn, formatHourIn } from '../time';

/** A toast stays this long unless the pointer or focus is on it. */
const TOAST_MS = 12_000;

function alertPath(admin: boolean, note: LiveNotification): string {
  const tz = browserTimeZone();
  return consumptionPath(admin, note.device_id, { date: dateIn(tz, note.hour_start), tz });
}

function AlertText({ note }: { note: LiveNotification }) {
  const hour = formatHourIn(note.hour_start, browserTimeZone());
  return (
    <>
      <strong>{note.device_name}</strong> used <strong>{formatKwh(note.total_kwh)}</strong> from {hour.hours} on{' '}
      {hour.day}, over its limit of {formatKwh(note.limit_kwh)}.
    </>
  );
}

function BellIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path
        d="M12 3a6 6 0 0 0-6 6v3.6L4.3 16a1 1 0 0 0 .9 1.5h13.6a1 1 0 0 0 .9-1.5L18 12.6V9a6 6 0 0 0-6-6Zm-2.5 16a2.5 2.5 0 0 0 5 0z"
        fill="currentColor"
      />
    </svg>
  );
}

export function NotificationBell() {
  const { state, markRead } = useLive();
  const user = useUser();
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const unread = state.notifications.filter((n) => n.read_at === null);

  useEffect(() => {
    if (!open) return undefined;
    const onPointer = (event: PointerEvent) => {
      if (root.current && !root.current.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape') {
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener('pointerdown', onPointer);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('pointerdown', onPointer);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const label = unread.length === 0 ? 'Notifications' : `Notifications, ${unread.length} unread`;
  return (
    <div className="bell" ref={root}>
      <button
        ref={button}
        type="button"
        className="bell-button"
        aria-label={label}
        title={label}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((value) => !value)}
        data-testid="bell"
        data-live={state.status}
        data-synced={state.me !== null && state.backlog === 0 ? 'true' : 'false'}
      >
        <BellIcon />
        {unread.length > 0 ? (
          <span className="bell-count" data-testid="bell-count" aria-hidden="true">
            {unread.length > 99 ? '99+' : unread.length}
          </span>
        ) : null}
      </button>
      {open ? (
        <div className="bell-panel" id={panelId} role="region" aria-label="Notifications">
          <div className="bell-head">
            <strong>Notifications</strong>
            {state.status !== 'open' ? <span className="muted">Reconnecting…</span> : null}
          </div>
          {state.notifications.length === 0 ? (
            <p className="bell-empty muted">
              No new alerts. One appears here when a device goes over its hourly limit; the Alerts page keeps them all.
            </p>
          ) : (
            <ul className="bell-list">
              {state.notifications.map((note) => (
                <li key={note.id} className={note.read_at === null ? 'bell-item bell-item-unread' : 'bell-item'}>
                  <p>
                    <AlertText note={note} />
                  </p>
                  <div className="bell-actions">
                    <Link to={alertPath(user.role === 'admin', note)} onClick={() => setOpen(false)}>
                      View that day
                    </Link>
                    {note.read_at === null ? (
                      <button type="button" className="link-button" onClick={() => markRead(note.id)}>
                        Mark as read
                      </button>
                    ) : (
                      <span className="muted">Read</span>
                    )}
                  </div>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
    </div>
  );
}

function Toast({ note }: { note: LiveNotification }) {
  const { dismissToast, markRead } = useLive();
  const user = useUser();
  const [held, setHeld] = useState(false);

  useEffect(() => {
    if (held) return undefined;
    const timer = window.setTimeout(() => dismissToast(note.id), TOAST_MS);
    return () => window.clearTimeout(timer);
  }, [held, note.id, dismissToast]);

  return (
    <div
      className="toast"
      role="alert"
      data-testid="toast"
      onPointerEnter={() => setHeld(true)}
      onPointerLeave={() => setHeld(false)}
      onFocus={() => setHeld(true)}
      onBlur={() => setHeld(false)}
    >
      <div className="toast-body">
        <p className="toast-title">Over the limit</p>
        <p>
          <AlertText note={note} />
        </p>
        <div className="toast-actions">
          <Link
            to={alertPath(user.role === 'admin', note)}
            onClick={() => {
              markRead(note.id);
              dismissToast(note.id);
            }}
          >
            View consumption
          </Link>
          <button type="button" className="link-button" onClick={() => markRead(note.id)}>
            Mark as read
          </button>
        </div>
      </div>
      <button type="button" className="toast-close" aria-label="Dismiss" onClick={() => dismissToast(note.id)}>
        ×
      </button>
    </div>
  );
}

export function Toasts() {
  const { state } = useLive();
  return (
    <div className="toasts">
      {state.toasts.map((note) => (
        <Toast key={note.id} note={note} />
      ))}
    </div>
  );
}
