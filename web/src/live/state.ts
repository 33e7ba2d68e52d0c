// What the live connection knows, as one reducer: the connection status, the user the server
// greeted, the notifications (the bell) and which of them just arrived (the toasts), the chat
// messages per conversation, who is typing, who of the other side is online, and — for the
// administrators' inbox — each conversation's unread count and last message. Frames follow
// docs/ws.md; the server may send a message twice (backlog racing a live push), so everything is
// kept by id.
import type { LiveStatus } from './socket';

export type Role = 'admin' | 'client';

export interface ChatMessage {
  id: number;
  conversation: string;
  sender_id: string;
  sender_role: Role;
  sender_name: string;
  text: string;
  created_at: number;
  seen_at: number | null;
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
};

export type LiveAction =
  | { type: 'status'; status: LiveStatus }
  | { type: 'frame'; frame: { type: string } & Record<string, unknown>; now: number }
  | { type: 'history'; conversation: string; items: ChatMessage[] }
  | { type: 'conversations'; items: ConversationSummary[] }
  | { type: 'dismissToast'; id: number }
  | { type: 'tick'; now: number };

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

function onMessage(state: LiveState, message: ChatMessage): LiveState {
  const conv = message.conversation;
  const known = (state.messages[conv] ?? []).some((m) => m.id === message.id);
  const messages = { ...state.messages, [conv]: mergeMessages(state.messages[conv] ?? [], [message]) };
  // A message from the typist's side ends their typing indicator.
  const typing = { ...state.typing };
  if (typing[conv] && typing[conv].role === message.sender_role) delete typing[conv];
  const summary = state.conversations[conv];
  let conversations = state.conversations;
  const fromOtherSide = state.me !== null && message.sender_role !== state.me.role;
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
  return { ...state, messages, typing, conversations };
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
  'chat.message': (state, frame) => onMessage(state, frame as unknown as ChatMessage),
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
  presence: (state, frame) => {
    const p = frame as unknown as Presence;
    return {
      ...state,
      presence: { ...state.presence, [p.user_id]: { user_id: p.user_id, username: p.username, role: p.role, online: p.online } },
    };
  },
};

export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case 'status':
      // Presence and typing are only true while connected; the next hello replays them.
      return action.status === 'open'
        ? { ...state, status: action.status }
        : { ...state, status: action.status, presence: {}, typing: {} };
    case 'frame': {
      const handler = FRAMES[action.frame.type];
      return handler ? handler(state, action.frame, action.now) : state;
    }
    case 'history': {
      let next: LiveState = {
        ...state,
        messages: { ...state.messages, [action.conversation]: mergeMessages(state.messages[action.conversation] ?? [], action.items) },
        loaded: { ...state.loaded, [action.conversation]: true },
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
