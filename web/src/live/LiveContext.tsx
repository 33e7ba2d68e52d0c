// The live connection as React sees it: the signed-in frame (Layout) mounts <LiveProvider> with
// the session token, which opens the WebSocket, keeps the live state (state.ts) and closes the
// socket when the session ends. When the server ends the socket's session (its token expired or
// was revoked), the app signs out, unless a new token came meanwhile: a password change made
// here revokes the old token too, and that close may arrive before the answer with the new one. Pages read the state with useLive() and send frames through it.
import { createContext, useCallback, useContext, useEffect, useMemo, useReducer, useRef, type ReactNode } from 'react';
import { api } from '../api';
import { EXPIRED_MESSAGE, REVOKED_MESSAGE, useSession } from '../session/SessionContext';
import { browserTimeZone } from '../time';
import { absoluteWsUrl, LiveSocket, type Frame } from './socket';
import { initialLiveState, liveReducer, TYPING_TTL_MS, type LiveState } from './state';

export interface Live {
  state: LiveState;
  /** Sends a frame; false when the socket is not open. */
  send: (frame: Frame) => boolean;
  /**
   * Sends a chat message (`to`: a client's id, "assistant", or nothing for a client's
   * administrators). It waits in the outbox until stored, or fails there with the reason.
   */
  sendChat: (conversation: string, text: string, to?: string) => void;
  /** Sends a failed message again. */
  retryChat: (key: number) => void;
  /** Forgets a failed message. */
  discardChat: (key: number) => void;
  markRead: (id: number) => void;
  dismissToast: (id: number) => void;
  /** Loads a conversation's latest history over REST (the peer is the client's id, or an admin's). */
  loadHistory: (peerId: string, conversation: string, signal?: AbortSignal) => Promise<void>;
  /** Loads the conversation list (the administrators' inbox, or a client's one conversation). */
  loadConversations: (signal?: AbortSignal) => Promise<void>;
}

const LiveContext = createContext<Live | null>(null);

const HISTORY_LIMIT = 100;
/** How long a session ended by the server waits for a new token before it signs out. */
const SIGN_OUT_GRACE_MS = 2000;

export function LiveProvider({ token, children }: { token: string; children: ReactNode }) {
  const [state, dispatch] = useReducer(liveReducer, initialLiveState);
  const socketRef = useRef<LiveSocket | null>(null);
  const wsUrl = useRef<string | null>(null);
  const stateRef = useRef(state);
  stateRef.current = state;
  const { session, signOut } = useSession();
  const sessionRef = useRef(session);
  sessionRef.current = session;
  const signOutTimer = useRef<number | null>(null);
  const endSession = useCallback(
    (token: string) => {
      if (signOutTimer.current !== null) window.clearTimeout(signOutTimer.current);
      signOutTimer.current = window.setTimeout(() => {
        signOutTimer.current = null;
        const now = sessionRef.current;
        if (now?.token !== token) return; // a new token came: the provider reconnects with it
        signOut(now.expires_at <= Date.now() + 2000 ? EXPIRED_MESSAGE : REVOKED_MESSAGE);
      }, SIGN_OUT_GRACE_MS);
    },
    [signOut],
  );
  const endSessionRef = useRef(endSession);
  endSessionRef.current = endSession;
  useEffect(
    () => () => {
      if (signOutTimer.current !== null) window.clearTimeout(signOutTimer.current);
    },
    [],
  );
  const nextKey = useRef(1);
  /** Numbers the refs of chat.send frames (see the outbox in state.ts); a retry takes a new one. */
  const nextRef = useRef(1);

  if (socketRef.current === null && typeof WebSocket !== 'undefined') {
    socketRef.current = new LiveSocket({
      resolveUrl: async () => {
        if (!wsUrl.current) wsUrl.current = absoluteWsUrl((await api.config()).ws_url, window.location);
        return wsUrl.current;
      },
      onFrame: (frame) => dispatch({ type: 'frame', frame, now: Date.now() }),
      onStatus: (status) => dispatch({ type: 'status', status }),
      onSignedOut: (token) => endSessionRef.current(token),
    });
  }

  // Open with the current token; a refreshed token reconnects, sign-out (unmount) closes.
  useEffect(() => {
    const socket = socketRef.current;
    if (!socket) return undefined;
    socket.start(token);
    return () => socket.stop();
  }, [token]);

  useEffect(() => {
    const socket = socketRef.current;
    if (!socket) return undefined;
    const online = () => socket.nudge();
    window.addEventListener('online', online);
    return () => window.removeEventListener('online', online);
  }, []);

  const typingCount = Object.keys(state.typing).length;
  useEffect(() => {
    if (typingCount === 0) return undefined;
    const timer = window.setInterval(() => dispatch({ type: 'tick', now: Date.now() }), TYPING_TTL_MS / 5);
    return () => window.clearInterval(timer);
  }, [typingCount]);

  const send = useCallback((frame: Frame) => socketRef.current?.send(frame) ?? false, []);
  const sendChatAs = useCallback((key: number, conversation: string, text: string, to?: string) => {
    // The server answers with this ref: the stored message, or the error that refused it.
    const ref = `c${nextRef.current++}`;
    // The assistant answers "yesterday" in the asker's zone: the browser's, as on the consumption page.
    const frame: Frame =
      to === 'assistant'
        ? { type: 'chat.send', to, text, tz: browserTimeZone(), ref }
        : to !== undefined
          ? { type: 'chat.send', to, text, ref }
          : { type: 'chat.send', text, ref };
    const sent = socketRef.current?.send(frame) ?? false;
    dispatch({ type: 'send', key, ref, conversation, ...(to !== undefined ? { to } : {}), text, sent });
  }, []);
  const sendChat = useCallback(
    (conversation: string, text: string, to?: string) => sendChatAs(nextKey.current++, conversation, text, to),
    [sendChatAs],
  );
  const retryChat = useCallback(
    (key: number) => {
      const entry = Object.values(stateRef.current.outbox)
        .flat()
        .find((o) => o.key === key);
      if (entry && entry.status === 'failed') sendChatAs(key, entry.conversation, entry.text, entry.to);
    },
    [sendChatAs],
  );
  const discardChat = useCallback((key: number) => dispatch({ type: 'discard', key }), []);
  const markRead = useCallback((id: number) => {
    socketRef.current?.send({ type: 'notification.read', id });
  }, []);
  const dismissToast = useCallback((id: number) => dispatch({ type: 'dismissToast', id }), []);
  const loadHistory = useCallback(async (peerId: string, conversation: string, signal?: AbortSignal) => {
    const page = await api.chatMessages(peerId, { limit: HISTORY_LIMIT }, { signal });
    dispatch({ type: 'history', conversation: page.conversation || conversation, items: page.items });
  }, []);
  const loadConversations = useCallback(async (signal?: AbortSignal) => {
    const list = await api.chatConversations({ signal });
    dispatch({ type: 'conversations', items: list.items });
  }, []);

  const value = useMemo(
    () => ({ state, send, sendChat, retryChat, discardChat, markRead, dismissToast, loadHistory, loadConversations }),
    [state, send, sendChat, retryChat, discardChat, markRead, dismissToast, loadHistory, loadConversations],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  const value = useContext(LiveContext);
  if (!value) throw new Error('useLive must be used inside <LiveProvider>');
  return value;
}
