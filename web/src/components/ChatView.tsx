// One chat conversation (docs/ws.md): a client with the administrators, or a user with the support
// assistant. Its history over REST when it opens (and again after a reconnect), live messages,
// our messages on their way ("Sending…", or failed with the server's reason and Retry / Discard),
// who is typing, whether the other side is online, and "Seen" under our side's last message once
// the other side has read it; opening the conversation marks the other side's messages as seen.
// With the assistant there is no typing, presence or "seen": the answer follows the question, and
// each answer says, when the server tells, whether a rule, the user's data or the language model
// gave it. Used by the client's Chat page and by an administrator's conversations.
import { useEffect, useEffectEvent, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { isAbort } from '../api';
import { useLive } from '../live/LiveContext';
import { ASSISTANT, failureOf, lastUnseenFromOther, type ChatMessage, type OutgoingMessage } from '../live/state';
import { useUser } from '../session/SessionContext';
import { FormAlert } from './Field';
import { Loading } from './States';
import { errorMessage } from '../lib/errors';

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

/** Who is on the other side: a client's administrators, a client (for an administrator), or the assistant. */
export type ChatPeer = { kind: 'team' } | { kind: 'client'; id: string; username: string } | { kind: 'assistant' };

/** An answer stops being awaited after this long (the server's own timeout is 10 s by default). */
export const ANSWER_WAIT_MS = 20_000;

/** Questions offered in an empty assistant conversation. */
export const ASSISTANT_SUGGESTIONS = ['What is a kWh?', 'How much did I use yesterday?', 'Which of my devices uses most?', 'Did I go over my limit?'];

const SOURCE_LABELS: Record<string, { label: string; title: string }> = {
  rule: { label: 'Rule', title: 'Answered by one of the assistant’s rules' },
  data: { label: 'Your data', title: 'Answered from your own consumption data' },
  llm: { label: 'AI', title: 'Answered by the language model' },
  fallback: { label: 'Fallback', title: 'No rule matched; the standard answer' },
  unavailable: { label: 'Unavailable', title: 'The assistant could not be reached' },
};

/** The conversation id and the REST peer of a conversation with `peer`, for the user `userId`. */
export function conversationOf(peer: ChatPeer, userId: string): { conversation: string; restPeer: string; to?: string } {
  if (peer.kind === 'assistant') return { conversation: ASSISTANT, restPeer: ASSISTANT, to: ASSISTANT };
  if (peer.kind === 'client') return { conversation: peer.id, restPeer: peer.id, to: peer.id };
  return { conversation: userId, restPeer: userId };
}

export function ChatView({ peer }: { peer: ChatPeer }) {
  const user = useUser();
  const { state, send, sendChat, retryChat, discardChat, loadHistory } = useLive();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const log = useRef<HTMLOListElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);
  const lastSeenSent = useRef(0);
  const admin = user.role === 'admin';
  const assistant = peer.kind === 'assistant';
  const { conversation, restPeer, to } = conversationOf(peer, user.id);
  const messages = state.messages[conversation] ?? [];
  const outgoing = state.outbox[conversation] ?? [];
  const loaded = state.loaded[conversation] ?? false;
  const connected = state.status === 'open';

  // History when the conversation opens, and again after each reconnect (messages may have come).
  // Whether it is loaded already is read when the effect runs; its change is no reason to load.
  const loadedNow = useEffectEvent(() => loaded);
  useEffect(() => {
    if (!connected && loadedNow()) return undefined;
    const controller = new AbortController();
    setLoadError(null);
    loadHistory(restPeer, conversation, controller.signal).catch((reason: unknown) => {
      if (!isAbort(reason) && !controller.signal.aborted) {
        setLoadError(errorMessage(reason));
      }
    });
    return () => controller.abort();
  }, [restPeer, conversation, connected, loadHistory]);

  // The assistant is answering while a question waits, for at most ANSWER_WAIT_MS.
  const asking = assistant ? state.asking : null;
  const [, setWaited] = useState(0);
  useEffect(() => {
    if (!asking) return undefined;
    const timer = window.setTimeout(() => setWaited((n) => n + 1), Math.max(0, asking.at + ANSWER_WAIT_MS - Date.now()) + 10);
    return () => window.clearTimeout(timer);
  }, [asking]);
  const answering = asking !== null && Date.now() - asking.at < ANSWER_WAIT_MS;

  // Keep the newest message in view.
  const typing = state.typing[conversation];
  useEffect(() => {
    const list = log.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [messages.length, outgoing.length, answering, typing]);

  // Reading the conversation: tell the other side up to which message we have seen.
  const unseen = assistant ? null : lastUnseenFromOther(messages, user.role);
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

  const submit = (value: string = text) => {
    const problem = chatTextProblem(value);
    if (problem) {
      setError(problem);
      input.current?.focus();
      return;
    }
    // Sent or not, the message shows in the conversation: a failed one offers Retry there.
    sendChat(conversation, value, to);
    setError(null);
    if (value === text) setText('');
    lastTyping.current = 0;
    input.current?.focus();
  };

  const onChange = (value: string) => {
    setText(value);
    const now = Date.now();
    if (!assistant && value.trim() !== '' && now - lastTyping.current >= TYPING_EVERY_MS) {
      if (send(to !== undefined ? { type: 'chat.typing', to } : { type: 'chat.typing' })) lastTyping.current = now;
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  const otherTyping = !assistant && typing && typing.user_id !== user.id ? typing : null;
  const online =
    peer.kind === 'client'
      ? Object.values(state.presence).some((p) => p.user_id === peer.id && p.online)
      : Object.values(state.presence).some((p) => p.role === 'admin' && p.online);
  const lastOurs = [...messages].reverse().find((m) => m.sender_role === user.role) ?? null;
  const peerName = peer.kind === 'client' ? peer.username : peer.kind === 'assistant' ? 'Assistant' : 'Administrators';

  return (
    <section className="card assistant chat" aria-label={`Conversation with ${peerName}`} data-conversation={assistant ? 'assistant' : 'people'}>
      <div className="chat-head">
        {assistant ? (
          <span className="presence presence-online" data-testid="assistant-head">
            <span className="presence-dot" aria-hidden="true" />
            Assistant · answers at once, day and night
          </span>
        ) : (
          <span className={online ? 'presence presence-online' : 'presence'} data-testid="presence">
            <span className="presence-dot" aria-hidden="true" />
            {peerName} {peer.kind === 'client' ? (online ? 'is online' : 'is offline') : online ? 'online' : 'offline'}
          </span>
        )}
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
        {loaded && messages.length === 0 && outgoing.length === 0 ? (
          <li className="assistant-intro">
            <p className="state-title">{assistant ? 'How can I help?' : 'No messages yet'}</p>
            <p className="muted">
              {assistant
                ? 'Ask about your consumption, limits and alerts, your devices or your account. Try one of the questions below.'
                : admin
                  ? 'Write to this customer below.'
                  : 'Write to the administrators below; any of them may answer.'}
            </p>
          </li>
        ) : null}
        {messages.map((message) => (
          <Bubble key={message.id} message={message} ours={message.sender_role === user.role} mine={message.sender_id === user.id}>
            {!assistant && message.id === lastOurs?.id ? (
              <span className="chat-receipt" data-testid="receipt">
                {message.seen_at !== null ? 'Seen' : 'Sent'}
              </span>
            ) : null}
          </Bubble>
        ))}
        {outgoing.map((entry) => (
          <Outgoing
            key={`out-${entry.key}`}
            entry={entry}
            connected={connected}
            onRetry={() => retryChat(entry.key)}
            onDiscard={() => discardChat(entry.key)}
            onEdit={() => {
              discardChat(entry.key);
              setText(entry.text);
              input.current?.focus();
            }}
          />
        ))}
        {answering ? <Typing testId="answering">The assistant is answering</Typing> : null}
        {otherTyping ? <Typing testId="typing">{`${otherTyping.username} is typing`}</Typing> : null}
      </ol>
      {assistant && loaded && messages.length === 0 && outgoing.length === 0 ? (
        <div className="assistant-suggestions" role="group" aria-label="Suggested questions">
          {ASSISTANT_SUGGESTIONS.map((suggestion) => (
            <button key={suggestion} type="button" className="chip" onClick={() => submit(suggestion)}>
              {suggestion}
            </button>
          ))}
        </div>
      ) : null}
      <form
        className="assistant-form"
        onSubmit={(event: FormEvent<HTMLFormElement>) => {
          event.preventDefault();
          submit();
        }}
        noValidate
      >
        <label htmlFor="chat-text" className="visually-hidden">
          {assistant ? 'Your question' : 'Your message'}
        </label>
        <textarea
          id="chat-text"
          ref={input}
          rows={2}
          value={text}
          placeholder={assistant ? 'Ask a question… (Enter sends, Shift+Enter for a new line)' : 'Write a message… (Enter sends, Shift+Enter for a new line)'}
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

/** The other side at work on an answer: who, and three moving dots. */
function Typing({ testId, children }: { testId: string; children: string }) {
  return (
    <li className="bubble-row bubble-row-assistant">
      <div className="bubble bubble-assistant bubble-typing" role="status" data-testid={testId}>
        <span className="chat-typing-name">{children}</span>
        <span className="dots" aria-hidden="true">
          <i />
          <i />
          <i />
        </span>
      </div>
    </li>
  );
}

/** One of our messages on its way, or failed: why, and what can be done. */
function Outgoing({
  entry,
  connected,
  onRetry,
  onDiscard,
  onEdit,
}: {
  entry: OutgoingMessage;
  connected: boolean;
  onRetry: () => void;
  onDiscard: () => void;
  onEdit: () => void;
}) {
  const failed = entry.status === 'failed';
  const failure = failureOf(entry.error);
  return (
    <li className="bubble-row bubble-row-you">
      <div className="chat-bubble-wrap">
        <div
          className={failed ? 'bubble bubble-you bubble-failed' : 'bubble bubble-you bubble-sending'}
          data-testid={failed ? 'message-failed' : 'message-sending'}
        >
          <span className="visually-hidden">You: </span>
          <p>{entry.text}</p>
        </div>
        {failed ? (
          <span className="chat-meta chat-failed" role="alert">
            <span data-testid="failure" title={entry.error?.message || undefined}>
              Not sent: {failure.text}
            </span>{' '}
            {failure.retry ? (
              <button type="button" className="link-button" onClick={onRetry} disabled={!connected} title={connected ? undefined : 'Waiting for the connection'}>
                Retry
              </button>
            ) : (
              <button type="button" className="link-button" onClick={onEdit}>
                Edit
              </button>
            )}
            {' · '}
            <button type="button" className="link-button" onClick={onDiscard}>
              Discard
            </button>
          </span>
        ) : (
          <span className="chat-meta">Sending…</span>
        )}
      </div>
    </li>
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
  const who = mine
    ? 'You'
    : message.sender_role === 'admin'
      ? `${message.sender_name} (administrator)`
      : message.sender_role === 'assistant'
        ? 'Assistant'
        : message.sender_name;
  const source = message.sender_role === 'assistant' && message.source ? (SOURCE_LABELS[message.source] ?? { label: message.source, title: '' }) : null;
  return (
    <li className={`bubble-row bubble-row-${side}`}>
      <div className="chat-bubble-wrap">
        <div className={`bubble bubble-${side}`} data-testid={ours ? 'message-ours' : 'message-theirs'}>
          {!mine ? <span className="chat-sender">{who}</span> : <span className="visually-hidden">You: </span>}
          <p>{message.text}</p>
        </div>
        <span className="chat-meta">
          <time dateTime={new Date(message.created_at).toISOString()}>{messageTime(message.created_at)}</time>
          {source ? (
            <>
              {' · '}
              <span className={`source-note source-note-${message.source}`} title={source.title || undefined} data-testid="answer-source">
                {source.label}
                {message.rule ? ` · ${message.rule.replace(/_/g, ' ')}` : ''}
              </span>
            </>
          ) : null}
          {children ? ' · ' : null}
          {children}
        </span>
      </div>
    </li>
  );
}
