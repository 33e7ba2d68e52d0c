// One chat conversation between a client and the administrators (docs/ws.md): its history over
// REST when it opens (and again after a reconnect), live messages, who is typing, whether the
// other side is online, and "Seen" under our side's last message once the other side has read it.
// Opening the conversation marks the other side's messages as seen. Used by the client's Chat page
// and by an administrator's view of one conversation.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { isAbort } from '../api';
import { useLive } from '../live/LiveContext';
import { lastUnseenFromOther, type ChatMessage } from '../live/state';
import { useUser } from '../session/SessionContext';
import { FormAlert } from './Field';
import { Loading } from './States';

/** The server's limit on a message, in UTF-8 bytes. */
export const MAX_CHAT_BYTES = 4000;
/** A chat.typing frame goes out at most this often while the user keeps typing. */
const TYPING_EVERY_MS = 2000;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

export function messageTime(ms: number, now: number = Date.now()): string {
  const sameDay = new Date(ms).toDateString() === new Date(now).toDateString();
  return (sameDay ? timeFormat : dayTimeFormat).format(new Date(ms));
}

/** Why a text cannot be sent, or null when it can. */
export function chatTextProblem(text: string): string | null {
  if (text.trim() === '') return 'Write a message first.';
  if (new TextEncoder().encode(text).length > MAX_CHAT_BYTES) return `A message has at most ${MAX_CHAT_BYTES} bytes.`;
  return null;
}

interface ChatViewProps {
  /** The conversation's id: the client's id. */
  conversation: string;
  /** The peer in REST and in `to`: for an administrator the client, for a client null (the team). */
  client: { id: string; username: string } | null;
}

export function ChatView({ conversation, client }: ChatViewProps) {
  const user = useUser();
  const { state, send, loadHistory } = useLive();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const log = useRef<HTMLOListElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);
  const lastSeenSent = useRef(0);
  const admin = user.role === 'admin';
  const messages = state.messages[conversation] ?? [];
  const loaded = state.loaded[conversation] ?? false;
  const connected = state.status === 'open';

  // History when the conversation opens, and again after each reconnect (messages may have come).
  useEffect(() => {
    if (!connected && loaded) return undefined;
    const controller = new AbortController();
    setLoadError(null);
    loadHistory(conversation, conversation, controller.signal).catch((reason: unknown) => {
      if (!isAbort(reason) && !controller.signal.aborted) {
        setLoadError(reason instanceof Error ? reason.message : String(reason));
      }
    });
    return () => controller.abort();
  }, [conversation, connected, loadHistory]);

  // Keep the newest message in view.
  useEffect(() => {
    const list = log.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [messages.length, state.typing[conversation]]);

  // Reading the conversation: tell the other side up to which message we have seen.
  const unseen = lastUnseenFromOther(messages, user.role);
  useEffect(() => {
    if (!unseen || !connected || unseen.id <= lastSeenSent.current) return undefined;
    const mark = () => {
      if (document.visibilityState !== 'visible' || unseen.id <= lastSeenSent.current) return;
      if (send(admin ? { type: 'chat.seen', conversation, up_to: unseen.id } : { type: 'chat.seen', up_to: unseen.id })) {
        lastSeenSent.current = unseen.id;
      }
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [unseen, connected, admin, conversation, send]);

  const submit = () => {
    const problem = chatTextProblem(text);
    if (problem) {
      setError(problem);
      input.current?.focus();
      return;
    }
    const frame = admin && client ? { type: 'chat.send', to: client.id, text } : { type: 'chat.send', text };
    if (!send(frame)) {
      setError('You are offline. The message was not sent; try again when the connection is back.');
      return;
    }
    setError(null);
    setText('');
    lastTyping.current = 0;
    input.current?.focus();
  };

  const onChange = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value.trim() !== '' && now - lastTyping.current >= TYPING_EVERY_MS) {
      if (send(admin && client ? { type: 'chat.typing', to: client.id } : { type: 'chat.typing' })) lastTyping.current = now;
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  const typing = state.typing[conversation];
  const otherTyping = typing && typing.user_id !== user.id ? typing : null;
  const online = admin
    ? client !== null && Object.values(state.presence).some((p) => p.user_id === client.id && p.online)
    : Object.values(state.presence).some((p) => p.role === 'admin' && p.online);
  const lastOurs = [...messages].reverse().find((m) => m.sender_role === user.role) ?? null;
  const peerName = admin ? (client?.username ?? 'the client') : 'Administrators';

  return (
    <section className="card assistant chat" aria-label={`Conversation with ${peerName}`}>
      <div className="chat-head">
        <span className={online ? 'presence presence-online' : 'presence'} data-testid="presence">
          <span className="presence-dot" aria-hidden="true" />
          {peerName} {admin ? (online ? 'is online' : 'is offline') : online ? 'online' : 'offline'}
        </span>
        {!connected ? (
          <span className="chat-offline" role="status">
            Reconnecting…
          </span>
        ) : null}
      </div>
      <ol className="assistant-log" ref={log} role="log" aria-live="polite" aria-label="Messages" data-testid="chat-log">
        {!loaded && !loadError ? (
          <li>
            <Loading label="Loading messages…" />
          </li>
        ) : null}
        {loaded && messages.length === 0 ? (
          <li className="assistant-intro">
            <p className="state-title">No messages yet</p>
            <p className="muted">
              {admin ? 'Write to this customer below.' : 'Write to the administrators below; any of them may answer.'}
            </p>
          </li>
        ) : null}
        {messages.map((message) => (
          <Bubble key={message.id} message={message} ours={message.sender_role === user.role} mine={message.sender_id === user.id}>
            {message.id === lastOurs?.id ? (
              <span className="chat-receipt" data-testid="receipt">
                {message.seen_at !== null ? 'Seen' : 'Sent'}
              </span>
            ) : null}
          </Bubble>
        ))}
        {otherTyping ? (
          <li className="bubble-row bubble-row-assistant">
            <div className="bubble bubble-assistant bubble-typing" role="status" data-testid="typing">
              <span className="chat-typing-name">{otherTyping.username} is typing</span>
              <span className="dots" aria-hidden="true">
                <i />
                <i />
                <i />
              </span>
            </div>
          </li>
        ) : null}
      </ol>
      <form
        className="assistant-form"
        onSubmit={(event: FormEvent<HTMLFormElement>) => {
          event.preventDefault();
          submit();
        }}
        noValidate
      >
        <label htmlFor="chat-text" className="visually-hidden">
          Your message
        </label>
        <textarea
          id="chat-text"
          ref={input}
          rows={2}
          value={text}
          placeholder="Write a message… (Enter sends, Shift+Enter for a new line)"
          onChange={(event) => onChange(event.target.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" className="button button-primary">
          Send
        </button>
      </form>
      <FormAlert message={error ?? loadError} />
    </section>
  );
}

function Bubble({
  message,
  ours,
  mine,
  children,
}: {
  message: ChatMessage;
  ours: boolean;
  mine: boolean;
  children?: ReactNode;
}) {
  const side = ours ? 'you' : 'assistant';
  const who = mine ? 'You' : message.sender_role === 'admin' ? `${message.sender_name} (administrator)` : message.sender_name;
  return (
    <li className={`bubble-row bubble-row-${side}`}>
      <div className="chat-bubble-wrap">
        <div className={`bubble bubble-${side}`} data-testid={ours ? 'message-ours' : 'message-theirs'}>
          {!mine ? <span className="chat-sender">{who}</span> : <span className="visually-hidden">You: </span>}
          <p>{message.text}</p>
        </div>
        <span className="chat-meta">
          <time dateTime={new Date(message.created_at).toISOString()}>{messageTime(message.created_at)}</time>
          {children ? ' · ' : null}
          {children}
        </span>
      </div>
    </li>
  );
}
