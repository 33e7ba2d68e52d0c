// The inside of one line in a list of conversations (the administrators' inbox, a customer's two
// conversations): whether the other side is online, who, the last message, when, and how many
// messages are still unread. The caller wraps it in the link that opens the conversation.
import type { ReactNode } from 'react';
import { messageTime } from './ChatView';

/** "3 unread" for screen readers, the number alone on screen; nothing when there is none. */
export function UnreadCount({ count, className = 'inbox-unread', testId = 'unread' }: { count: number; className?: string; testId?: string }) {
  if (count <= 0) return null;
  return (
    <span className={className} data-testid={testId}>
      {count}
      <span className="visually-hidden"> unread</span>
    </span>
  );
}

interface InboxEntryProps {
  online: boolean;
  name: ReactNode;
  /** The last message as one line, or what to write when there is none yet. */
  last: string;
  /** When the last message was sent; null when there is none. */
  at?: number | null;
  unread?: number;
  /** The column with the time and the unread count (the pinned assistant has none). */
  side?: boolean;
}

export function InboxEntry({ online, name, last, at = null, unread = 0, side = true }: InboxEntryProps) {
  return (
    <>
      <span className={online ? 'presence-dot presence-dot-online' : 'presence-dot'} aria-hidden="true" />
      <span className="inbox-main">
        <span className="inbox-name">{name}</span>
        <span className="inbox-last muted">{last}</span>
      </span>
      {side ? (
        <span className="inbox-side">
          {at !== null ? <time className="muted">{messageTime(at)}</time> : null}
          <UnreadCount count={unread} />
        </span>
      ) : null}
    </>
  );
}
