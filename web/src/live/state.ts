// What the live connection knows, as one reducer: the connection status, the user the server
// greeted, the notifications (the bell) and which of them just arrived (the toasts), the chat
// messages per conversation, who is typing, who of the other side is online, and — for the
// administrators' inbox — each conversation's unread count and last message. Frames follow
// docs/ws.md; the server may send a message twice (backlog racing a live push), so everything is
// kept by id.
//
// Messages being sent wait in `outbox` until the server says what became of them. Each chat.send
// carries a `ref` of its own (LiveContext's sendChat); the server answers the sending session with
// the stored message carrying that ref, or with an error frame carrying it, and the entry goes or
// is marked failed with the error. rate_limited and too_large come before the server reads the
// frame, carry no ref, and end the connection: every send still waiting failed with them. A
// connection lost before the answer fails the send as well; if the server had stored it after
// all, the history read on reconnect finds it (same text, a newer id) and the failed copy goes.
import type { LiveStatus } from './socket';

export type Role = 'admin' | 'client';

/** The conversation of each user with the support assistant, as the server names it on the wire. */
export const ASSISTANT = 'assistant';

export type AnswerSource = 'rule' | 'data' | 'llm' | 'fallback' | 'unavailable';

export interface ChatMessage {
  id: number;
  conversation: string;
  sender_id: string;
  sender_role: Role | 'assistant';
  sender_name: string;
  text: string;
  created_at: number;
  seen_at: number | null;
  /** Assistant answers: where the answer came from (live frames; history once the server stores it). */
  source?: AnswerSource | string;
  rule?: string;
}

/** The error frame of the ws role ({type:"error", code, message}). */
export interface ServerError {
  code: string;
  message: string;
}

/** A message of ours not yet known to be stored. */
export interface OutgoingMessage {
  /** Local id (not a server id). */
  key: number;
  /** The `ref` of the chat.send that sent it last (a retry sends a new one). */
  ref: string;
  conversation: string;
  /** The chat.send `to` (absent: the client's administrators). */
  to?: string;
  text: string;
  status: 'sending' | 'failed';
  error: ServerError | null;
  /** The newest message id of the conversation when it was sent: its stored copy has a higher one. */
  afterId: number;
}

export interface LiveNotification {
  id: number;
  kind: string;
  created_at: number;
  read_at: number | null;
  device_id: string;
  device_name: string;
  hour_start: number;
  total_kwh: number;
  limit_kwh: number;
}

export interface ConversationSummary {
  conversation: string;
  /** "assistant" for the caller's conversation with the assistant. */
  peer?: string;
  client: { id: string; username: string };
  unread: number;
  last_message: ChatMessage | null;
}

export interface Typing {
  user_id: string;
  username: string;
  role: Role;
  at: number;
}

export interface Presence {
  user_id: string;
  username: string;
  role: Role;
  online: boolean;
}

export interface LiveState {
  status: LiveStatus;
  me: { id: string; username: string; role: Role } | null;
  notifications: LiveNotification[];
  /** Notifications that arrived live (not the backlog replayed on connect), to show as toasts. */
  toasts: LiveNotification[];
  /** Backlog notifications still expected after hello; they go to the bell without a toast. */
  backlog: number;
  messages: Record<string, ChatMessage[]>;
  /** Whether a conversation's history has been loaded over REST. */
  loaded: Record<string, boolean>;
  typing: Record<string, Typing>;
  presence: Record<string, Presence>;
  conversations: Record<string, ConversationSummary>;
  /** Per conversation, the highest message id each side has marked seen (from chat.seen frames). */
  seenUpTo: Record<string, Partial<Record<Role, number>>>;
  /** Our messages on their way, per conversation, oldest first. */
  outbox: Record<string, OutgoingMessage[]>;
  /** Questions to the assistant waiting for the answer: the question's id and when its echo came. */
  asking: { id: number; at: number } | null;
}

/** A typing indicator disappears this long after the last chat.typing frame. */
export const TYPING_TTL_MS = 5000;

export const initialLiveState: LiveState = {
  status: 'closed',
  me: null,
  notifications: [],
  toasts: [],
  backlog: 0,
  messages: {},
  loaded: {},
  typing: {},
  presence: {},
  conversations: {},
  seenUpTo: {},
  outbox: {},
  asking: null,
};

/** Error codes after which the server closes the connection (docs/ws.md, "Abuse"). */
const CLOSING_ERRORS = new Set(['rate_limited', 'too_large']);

/** Why a message was not sent, in the user's words, and whether sending it again may work. */
const FAILURES: Record<string, { text: string; retry: boolean }> = {
  rate_limited: { text: 'Too many messages at once. Wait a moment, then retry.', retry: true },
  too_large: { text: 'The message is too large for the server.', retry: false },
  forbidden: { text: 'You may not write to this conversation.', retry: false },
  bad_request: { text: 'The server refused this message.', retry: false },
  unavailable: { text: 'The server could not store the message.', retry: true },
  internal: { text: 'The server could not store the message.', retry: true },
  offline: { text: 'The connection dropped before the server took it.', retry: true },
};

export function failureOf(error: ServerError | null): { text: string; retry: boolean } {
  if (!error) return { text: 'Not sent.', retry: true };
  return FAILURES[error.code] ?? { text: error.message || 'The server refused this message.', retry: true };
}

export const OFFLINE_ERROR: ServerError = { code: 'offline', message: 'the connection dropped' };

export type LiveAction =
  | { type: 'status'; status: LiveStatus }
  | { type: 'frame'; frame: { type: string } & Record<string, unknown>; now: number }
  | { type: 'history'; conversation: string; items: ChatMessage[] }
  | { type: 'conversations'; items: ConversationSummary[] }
  | { type: 'dismissToast'; id: number }
  | { type: 'tick'; now: number }
  /** A chat.send went out with `ref` (`sent` false: the socket was closed, so it failed at once). */
  | { type: 'send'; key: number; ref: string; conversation: string; to?: string; text: string; sent: boolean }
  | { type: 'discard'; key: number };

/**
 * Adds messages to a sorted list, replacing any with the same id. A copy read before a chat.seen
 * (a REST page answered late) does not take a known seen_at away.
 */
export function mergeMessages(list: ChatMessage[], more: ChatMessage[]): ChatMessage[] {
  const byId = new Map(list.map((message) => [message.id, message]));
  for (const message of more) {
    const old = byId.get(message.id);
    byId.set(message.id, { ...old, ...message, seen_at: message.seen_at ?? old?.seen_at ?? null });
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** The newest message id known in a conversation (0 for none). */
function lastIdOf(state: LiveState, conv: string): number {
  return state.messages[conv]?.at(-1)?.id ?? 0;
}

/**
 * Takes out of the outbox the entries that these stored messages of ours are, as a history page
 * tells: same conversation, same text, stored after the entry was sent. Entries still sending go
 * first. (A live copy names its entry by ref instead: see onMessage.)
 */
function settleOutbox(state: LiveState, conv: string, stored: ChatMessage[]): Record<string, OutgoingMessage[]> {
  let list = state.outbox[conv];
  if (!list || list.length === 0 || !state.me) return state.outbox;
  for (const message of stored) {
    if (message.sender_id !== state.me.id) continue;
    const fits = (o: OutgoingMessage) => o.text === message.text && message.id > o.afterId;
    const match = list.find((o) => o.status === 'sending' && fits(o)) ?? list.find(fits);
    if (match) list = list.filter((o) => o !== match);
  }
  if (list === state.outbox[conv]) return state.outbox;
  const outbox = { ...state.outbox };
  if (list.length > 0) outbox[conv] = list;
  else delete outbox[conv];
  return outbox;
}

/** Changes the outbox entry that `which` picks, wherever it is. */
function updateOutgoing(
  state: LiveState,
  which: (o: OutgoingMessage) => boolean,
  change: (o: OutgoingMessage) => OutgoingMessage | null,
): LiveState {
  for (const [conv, list] of Object.entries(state.outbox)) {
    const i = list.findIndex(which);
    if (i < 0) continue;
    const next = change(list[i]);
    const updated = next ? list.map((o, j) => (j === i ? next : o)) : list.filter((_, j) => j !== i);
    const outbox = { ...state.outbox };
    if (updated.length > 0) outbox[conv] = updated;
    else delete outbox[conv];
    return { ...state, outbox };
  }
  return state;
}

/** Every send still waiting failed with `error`: the connection ends before their answers. */
function failSending(state: LiveState, error: ServerError): LiveState {
  let changed = false;
  const outbox: Record<string, OutgoingMessage[]> = {};
  for (const [conv, list] of Object.entries(state.outbox)) {
    outbox[conv] = list.map((o) => {
      if (o.status !== 'sending') return o;
      changed = true;
      return { ...o, status: 'failed', error };
    });
  }
  return changed ? { ...state, outbox } : state;
}

const isSending = (ref: unknown) => (o: OutgoingMessage) => o.status === 'sending' && o.ref === ref;

function onError(state: LiveState, frame: Record<string, unknown>): LiveState {
  const error: ServerError = {
    code: typeof frame.code === 'string' ? frame.code : 'error',
    message: typeof frame.message === 'string' ? frame.message : '',
  };
  if (CLOSING_ERRORS.has(error.code)) return failSending(state, error);
  // An error about a frame of ours that is no chat.send, or about none, leaves the outbox alone.
  if (typeof frame.ref !== 'string') return state;
  return updateOutgoing(state, isSending(frame.ref), (o) => ({ ...o, status: 'failed', error }));
}

function onMessage(state: LiveState, frame: ChatMessage & { ref?: unknown }, now: number): LiveState {
  const { ref, ...message } = frame;
  const conv = message.conversation;
  const known = (state.messages[conv] ?? []).some((m) => m.id === message.id);
  const messages = { ...state.messages, [conv]: mergeMessages(state.messages[conv] ?? [], [message]) };
  // The sender's own copy names its send; every other copy (another tab's, everyone's) names none.
  const outbox = typeof ref === 'string' ? updateOutgoing(state, (o) => o.ref === ref, () => null).outbox : state.outbox;
  // A question to the assistant waits for an answer with a higher id; the answer ends the wait.
  let asking = state.asking;
  if (conv === ASSISTANT && !known) {
    if (message.sender_role === 'assistant') {
      if (asking && message.id > asking.id) asking = null;
    } else if (message.sender_id === state.me?.id && (!asking || message.id > asking.id)) {
      asking = { id: message.id, at: now };
    }
  }
  // A message from the typist's side ends their typing indicator.
  const typing = { ...state.typing };
  if (typing[conv] && typing[conv].role === message.sender_role) delete typing[conv];
  const summary = state.conversations[conv];
  let conversations = state.conversations;
  // The assistant's conversation has no unread count (docs/ws.md: seen does not apply to it).
  const fromOtherSide = state.me !== null && message.sender_role !== state.me.role && conv !== ASSISTANT;
  if (summary) {
    const newer = !summary.last_message || message.id > summary.last_message.id;
    conversations = {
      ...conversations,
      [conv]: {
        ...summary,
        last_message: newer ? message : summary.last_message,
        unread: summary.unread + (newer && !known && fromOtherSide && message.seen_at === null ? 1 : 0),
      },
    };
  } else if (state.me?.role === 'admin' && message.sender_role === 'client') {
    // A client writing for the first time: the inbox learns of the conversation from the message.
    conversations = {
      ...conversations,
      [conv]: {
        conversation: conv,
        client: { id: message.sender_id, username: message.sender_name },
        unread: message.seen_at === null ? 1 : 0,
        last_message: message,
      },
    };
  }
  return { ...state, messages, typing, conversations, outbox, asking };
}

function onSeen(state: LiveState, conv: string, upTo: number, role: Role, seenAt: number): LiveState {
  // Seen by `role`'s side: the other side's messages up to upTo are now seen.
  const list = state.messages[conv];
  const messages = list
    ? {
        ...state.messages,
        [conv]: list.map((m) => (m.id <= upTo && m.sender_role !== role && m.seen_at === null ? { ...m, seen_at: seenAt } : m)),
      }
    : state.messages;
  let conversations = state.conversations;
  const summary = conversations[conv];
  if (summary && state.me?.role === role) {
    const rest = (messages[conv] ?? []).filter((m) => m.sender_role !== role && m.seen_at === null && m.id > upTo);
    const lastId = summary.last_message?.id ?? 0;
    conversations = { ...conversations, [conv]: { ...summary, unread: upTo >= lastId ? 0 : Math.max(rest.length, 0) } };
  }
  if (summary?.last_message && summary.last_message.id <= upTo && summary.last_message.sender_role !== role) {
    const updated = conversations[conv];
    conversations = {
      ...conversations,
      [conv]: { ...updated, last_message: { ...summary.last_message, seen_at: summary.last_message.seen_at ?? seenAt } },
    };
  }
  const seen = state.seenUpTo[conv] ?? {};
  const seenUpTo = { ...state.seenUpTo, [conv]: { ...seen, [role]: Math.max(seen[role] ?? 0, upTo) } };
  return { ...state, messages, conversations, seenUpTo };
}

type FrameHandler = (state: LiveState, frame: Record<string, unknown>, now: number) => LiveState;

function onPresence(state: LiveState, frames: Record<string, unknown>[]): LiveState {
  const presence = { ...state.presence };
  for (const frame of frames) {
    const p = frame as unknown as Presence;
    if (typeof p.user_id !== 'string') continue;
    presence[p.user_id] = { user_id: p.user_id, username: p.username, role: p.role, online: p.online };
  }
  return { ...state, presence };
}

const FRAMES: Record<string, FrameHandler> = {
  hello: (state, frame) => ({
    ...state,
    me: frame.user as LiveState['me'],
    backlog: typeof frame.unread_notifications === 'number' ? frame.unread_notifications : 0,
    // The server replays what is unread and who is online: start presence afresh.
    presence: {},
    typing: {},
  }),
  notification: (state, frame) => {
    const note = frame as unknown as LiveNotification;
    const known = state.notifications.some((n) => n.id === note.id);
    const notifications = known
      ? state.notifications.map((n) => (n.id === note.id ? { ...n, ...note } : n))
      : [...state.notifications, note].sort((a, b) => b.id - a.id);
    const live = state.backlog === 0 && !known && note.read_at === null;
    return {
      ...state,
      notifications,
      backlog: Math.max(0, state.backlog - 1),
      toasts: live ? [...state.toasts, note] : state.toasts,
    };
  },
  'notification.read': (state, frame) => {
    const id = frame.id as number;
    const readAt = typeof frame.read_at === 'number' ? frame.read_at : Date.now();
    return {
      ...state,
      notifications: state.notifications.map((n) => (n.id === id ? { ...n, read_at: n.read_at ?? readAt } : n)),
      toasts: state.toasts.filter((n) => n.id !== id),
    };
  },
  'chat.message': (state, frame, now) => onMessage(state, frame as unknown as ChatMessage, now),
  error: (state, frame) => onError(state, frame),
  'chat.typing': (state, frame, now) => {
    if (frame.user_id === state.me?.id) return state;
    const conv = frame.conversation as string;
    return {
      ...state,
      typing: {
        ...state.typing,
        [conv]: { user_id: frame.user_id as string, username: frame.username as string, role: frame.role as Role, at: now },
      },
    };
  },
  'chat.seen': (state, frame) =>
    onSeen(state, frame.conversation as string, frame.up_to as number, frame.role as Role, frame.seen_at as number),
  presence: (state, frame) => onPresence(state, [frame]),
  // Several presence frames at once (a snapshot of who is online, a burst of reconnections), in order.
  'presence.batch': (state, frame) => onPresence(state, Array.isArray(frame.users) ? (frame.users as Record<string, unknown>[]) : []),
};

export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case 'status':
      // Presence and typing are only true while connected; the next hello replays them. Sends
      // without their answer are lost with the connection.
      return action.status === 'open'
        ? { ...state, status: action.status }
        : failSending({ ...state, status: action.status, presence: {}, typing: {} }, OFFLINE_ERROR);
    case 'frame': {
      const handler = FRAMES[action.frame.type];
      return handler ? handler(state, action.frame, action.now) : state;
    }
    case 'history': {
      let next: LiveState = {
        ...state,
        messages: { ...state.messages, [action.conversation]: mergeMessages(state.messages[action.conversation] ?? [], action.items) },
        loaded: { ...state.loaded, [action.conversation]: true },
        outbox: settleOutbox(state, action.conversation, action.items),
      };
      const summary = next.conversations[action.conversation];
      const last = next.messages[action.conversation].at(-1);
      if (summary && last && (!summary.last_message || last.id > summary.last_message.id)) {
        next = { ...next, conversations: { ...next.conversations, [action.conversation]: { ...summary, last_message: last } } };
      }
      return next;
    }
    case 'conversations': {
      const conversations: Record<string, ConversationSummary> = {};
      const myRole = state.me?.role;
      for (const item of action.items) {
        // A list read before this side's latest chat.seen still counts those messages: drop them.
        const seen = myRole ? (state.seenUpTo[item.conversation]?.[myRole] ?? 0) : 0;
        const settled = item.last_message !== null && item.last_message.id <= seen;
        conversations[item.conversation] = settled ? { ...item, unread: 0 } : item;
      }
      return { ...state, conversations };
    }
    case 'dismissToast':
      return { ...state, toasts: state.toasts.filter((n) => n.id !== action.id) };
    case 'send': {
      const entry: OutgoingMessage = {
        key: action.key,
        ref: action.ref,
        conversation: action.conversation,
        ...(action.to !== undefined ? { to: action.to } : {}),
        text: action.text,
        status: action.sent ? 'sending' : 'failed',
        error: action.sent ? null : OFFLINE_ERROR,
        afterId: lastIdOf(state, action.conversation),
      };
      // A retry sends an entry again: it moves to the end, as the newest message.
      const others = (state.outbox[action.conversation] ?? []).filter((o) => o.key !== action.key);
      return { ...state, outbox: { ...state.outbox, [action.conversation]: [...others, entry] } };
    }
    case 'discard':
      return updateOutgoing(state, (o) => o.key === action.key, () => null);
    case 'tick': {
      const expired = Object.entries(state.typing).filter(([, t]) => action.now - t.at >= TYPING_TTL_MS);
      if (expired.length === 0) return state;
      const typing = { ...state.typing };
      for (const [conv] of expired) delete typing[conv];
      return { ...state, typing };
    }
    default:
      return state;
  }
}

/** The newest message of the other side in a conversation that this side has not seen yet. */
export function lastUnseenFromOther(list: ChatMessage[] | undefined, myRole: Role): ChatMessage | null {
  if (!list) return null;
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i];
    if (m.sender_role !== myRole && m.seen_at === null) return m;
  }
  return null;
}
