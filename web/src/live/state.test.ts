// The live state reducer: notifications (backlog without toasts, live ones with), read marks,
// chat messages kept once each in order, typing that ends with a message or after a while, seen
// receipts per side, presence, and the administrators' inbox counts.
import { describe, expect, it } from 'vitest';
import { ASSISTANT, failureOf, initialLiveState, lastUnseenFromOther, liveReducer, TYPING_TTL_MS, type ChatMessage, type LiveAction, type LiveState } from './state';

const CLIENT = 'c1';
const ADMIN = 'a1';

const frame = (f: Record<string, unknown>, now = 1000): LiveAction => ({ type: 'frame', frame: f as never, now });
const run = (state: LiveState, ...actions: LiveAction[]) => actions.reduce(liveReducer, state);

const hello = (role: 'admin' | 'client', unread = 0) =>
  frame({
    type: 'hello',
    user: role === 'admin' ? { id: ADMIN, username: 'root', role } : { id: CLIENT, username: 'carol', role },
    unread_notifications: unread,
    unseen_messages: 0,
  });

const note = (id: number, read_at: number | null = null) =>
  frame({
    type: 'notification',
    id,
    kind: 'alert',
    created_at: id,
    read_at,
    device_id: 'd1',
    device_name: 'Heater',
    hour_start: 0,
    total_kwh: 3.5,
    limit_kwh: 2,
  });

const msg = (id: number, sender_role: 'admin' | 'client', extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  conversation: CLIENT,
  sender_id: sender_role === 'admin' ? ADMIN : CLIENT,
  sender_role,
  sender_name: sender_role === 'admin' ? 'root' : 'carol',
  text: `m${id}`,
  created_at: id * 1000,
  seen_at: null,
  ...extra,
});

describe('notifications', () => {
  it('puts the backlog in the bell without toasts, and toasts the ones that arrive live', () => {
    const s = run(initialLiveState, hello('client', 2), note(1), note(2), note(3));
    expect(s.notifications.map((n) => n.id)).toEqual([3, 2, 1]);
    expect(s.toasts.map((n) => n.id)).toEqual([3]);
  });

  it('keeps a notification sent twice once, and toasts it once', () => {
    const s = run(initialLiveState, hello('client'), note(4), note(4));
    expect(s.notifications).toHaveLength(1);
    expect(s.toasts).toHaveLength(1);
  });

  it('marks read from notification.read, which also takes the toast away; unknown ids change nothing', () => {
    let s = run(initialLiveState, hello('client'), note(5), note(6));
    s = run(s, frame({ type: 'notification.read', id: 5, read_at: 77 }), frame({ type: 'notification.read', id: 99, read_at: 1 }));
    expect(s.notifications.find((n) => n.id === 5)?.read_at).toBe(77);
    expect(s.notifications.find((n) => n.id === 6)?.read_at).toBeNull();
    expect(s.toasts.map((n) => n.id)).toEqual([6]);
    s = liveReducer(s, { type: 'dismissToast', id: 6 });
    expect(s.toasts).toEqual([]);
    expect(s.notifications.find((n) => n.id === 6)?.read_at).toBeNull();
  });
});

describe('chat', () => {
  it('keeps messages in id order, once each, merging history and live pushes', () => {
    let s = run(initialLiveState, hello('client'), frame({ type: 'chat.message', ...msg(3, 'admin') }));
    s = run(s, { type: 'history', conversation: CLIENT, items: [msg(1, 'client'), msg(2, 'admin'), msg(3, 'admin')] });
    s = run(s, frame({ type: 'chat.message', ...msg(2, 'admin') }), frame({ type: 'chat.message', ...msg(4, 'client') }));
    expect(s.messages[CLIENT].map((m) => m.id)).toEqual([1, 2, 3, 4]);
    expect(s.loaded[CLIENT]).toBe(true);
  });

  it('shows the other side typing until their message arrives or the indicator times out', () => {
    let s = run(initialLiveState, hello('client'));
    s = run(s, frame({ type: 'chat.typing', conversation: CLIENT, user_id: ADMIN, username: 'root', role: 'admin' }, 1000));
    expect(s.typing[CLIENT]?.username).toBe('root');
    s = run(s, { type: 'tick', now: 1000 + TYPING_TTL_MS - 1 });
    expect(s.typing[CLIENT]).toBeDefined();
    s = run(s, frame({ type: 'chat.message', ...msg(1, 'admin') }));
    expect(s.typing[CLIENT]).toBeUndefined();
    s = run(s, frame({ type: 'chat.typing', conversation: CLIENT, user_id: ADMIN, username: 'root', role: 'admin' }, 2000));
    s = run(s, { type: 'tick', now: 2000 + TYPING_TTL_MS });
    expect(s.typing[CLIENT]).toBeUndefined();
  });

  it('ignores its own typing echoed back', () => {
    const s = run(initialLiveState, hello('client'), frame({ type: 'chat.typing', conversation: CLIENT, user_id: CLIENT, username: 'carol', role: 'client' }));
    expect(s.typing).toEqual({});
  });

  it('marks the other side’s messages seen up to up_to, and only those', () => {
    let s = run(initialLiveState, hello('client'));
    s = run(s, { type: 'history', conversation: CLIENT, items: [msg(1, 'client'), msg(2, 'admin'), msg(3, 'client'), msg(4, 'client')] });
    s = run(s, frame({ type: 'chat.seen', conversation: CLIENT, up_to: 3, by: ADMIN, role: 'admin', seen_at: 50 }));
    expect(s.messages[CLIENT].map((m) => m.seen_at)).toEqual([50, null, 50, null]);
    expect(lastUnseenFromOther(s.messages[CLIENT], 'client')?.id).toBe(2);
    s = run(s, frame({ type: 'chat.seen', conversation: CLIENT, up_to: 2, by: CLIENT, role: 'client', seen_at: 60 }));
    expect(lastUnseenFromOther(s.messages[CLIENT], 'client')).toBeNull();
  });

  it('tracks presence, and forgets it when the connection drops (the next hello replays it)', () => {
    let s = run(initialLiveState, hello('client'), frame({ type: 'presence', user_id: ADMIN, username: 'root', role: 'admin', online: true }));
    expect(s.presence[ADMIN].online).toBe(true);
    s = run(s, frame({ type: 'presence', user_id: ADMIN, username: 'root', role: 'admin', online: false }));
    expect(s.presence[ADMIN].online).toBe(false);
    s = run(s, frame({ type: 'presence', user_id: ADMIN, username: 'root', role: 'admin', online: true }), { type: 'status', status: 'connecting' });
    expect(s.presence).toEqual({});
  });

  it('applies a presence.batch entry by entry, in order', () => {
    const entry = (user_id: string, online: boolean) => ({ type: 'presence', user_id, username: user_id, role: 'client', online });
    const s = run(
      initialLiveState,
      hello('admin'),
      frame({ type: 'presence', user_id: 'gone', username: 'gone', role: 'client', online: true }),
      frame({ type: 'presence.batch', users: [entry('a', true), entry('b', true), entry('gone', false), entry('b', false)] }),
    );
    expect(Object.fromEntries(Object.entries(s.presence).map(([id, p]) => [id, p.online]))).toEqual({ gone: false, a: true, b: false });
  });
});

describe('the administrators’ inbox', () => {
  const summary = { conversation: CLIENT, client: { id: CLIENT, username: 'carol' }, unread: 1, last_message: msg(1, 'client') };

  it('counts a new client message as unread and makes it the last message, once even if sent twice', () => {
    let s = run(initialLiveState, hello('admin'), { type: 'conversations', items: [summary] });
    s = run(s, frame({ type: 'chat.message', ...msg(2, 'client') }), frame({ type: 'chat.message', ...msg(2, 'client') }));
    expect(s.conversations[CLIENT].unread).toBe(2);
    expect(s.conversations[CLIENT].last_message?.id).toBe(2);
    s = run(s, frame({ type: 'chat.message', ...msg(3, 'admin') }));
    expect(s.conversations[CLIENT].unread).toBe(2);
    expect(s.conversations[CLIENT].last_message?.id).toBe(3);
  });

  it('clears the unread count when the team marks the conversation seen', () => {
    let s = run(initialLiveState, hello('admin'), { type: 'conversations', items: [summary] });
    s = run(s, frame({ type: 'chat.seen', conversation: CLIENT, up_to: 1, by: ADMIN, role: 'admin', seen_at: 9 }));
    expect(s.conversations[CLIENT].unread).toBe(0);
    expect(s.conversations[CLIENT].last_message?.seen_at).toBe(9);
  });

  it('learns of a new conversation from a client’s first message', () => {
    const s = run(initialLiveState, hello('admin'), { type: 'conversations', items: [] }, frame({ type: 'chat.message', ...msg(7, 'client') }));
    expect(s.conversations[CLIENT]).toMatchObject({ client: { id: CLIENT, username: 'carol' }, unread: 1 });
  });
});

describe('answers that race a chat.seen', () => {
  it('a conversation list read before the team’s chat.seen does not bring the unread count back', () => {
    const stale = { conversation: CLIENT, client: { id: CLIENT, username: 'carol' }, unread: 1, last_message: msg(1, 'client') };
    let s = run(initialLiveState, hello('admin'), frame({ type: 'chat.seen', conversation: CLIENT, up_to: 1, by: ADMIN, role: 'admin', seen_at: 9 }));
    s = run(s, { type: 'conversations', items: [stale] });
    expect(s.conversations[CLIENT].unread).toBe(0);
    s = run(s, { type: 'conversations', items: [{ ...stale, unread: 1, last_message: msg(2, 'client') }] });
    expect(s.conversations[CLIENT].unread).toBe(1);
  });

  it('a history page read before a chat.seen keeps the seen time', () => {
    let s = run(initialLiveState, hello('client'), frame({ type: 'chat.message', ...msg(1, 'client') }));
    s = run(s, frame({ type: 'chat.seen', conversation: CLIENT, up_to: 1, by: ADMIN, role: 'admin', seen_at: 42 }));
    s = run(s, { type: 'history', conversation: CLIENT, items: [msg(1, 'client')] });
    expect(s.messages[CLIENT][0].seen_at).toBe(42);
  });
});

describe('messages on their way (the outbox)', () => {
  // Each send carries ref `c<key>` here; LiveContext numbers them the same way, a retry taking a new one.
  const send = (key: number, text: string, sent = true, ref = `c${key}`): LiveAction => ({
    type: 'send',
    key,
    ref,
    conversation: CLIENT,
    text,
    sent,
  });
  const echo = (id: number, text: string, ref?: string) =>
    frame({ type: 'chat.message', ...msg(id, 'client', { text }), ...(ref ? { ref } : {}) });
  const error = (code: string, message = 'no', ref?: string) => frame({ type: 'error', code, message, ...(ref ? { ref } : {}) });

  it('shows a message as sending until the echo with its ref, then once, as stored', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'hi'), send(2, 'hi'));
    expect(s.outbox[CLIENT]).toMatchObject([
      { key: 1, ref: 'c1', text: 'hi', status: 'sending' },
      { key: 2, ref: 'c2', text: 'hi', status: 'sending' },
    ]);
    // The second send's echo settles the second entry, though the texts are the same.
    s = run(s, echo(5, 'hi', 'c2'));
    expect(s.outbox[CLIENT].map((o) => o.key)).toEqual([1]);
    // The broadcast copy without a ref (ours or another tab's) settles nothing, and is kept once.
    s = run(s, echo(5, 'hi'));
    expect(s.outbox[CLIENT].map((o) => o.key)).toEqual([1]);
    s = run(s, echo(6, 'hi', 'c1'));
    expect(s.outbox[CLIENT]).toBeUndefined();
    expect(s.messages[CLIENT].map((m) => m.id)).toEqual([5, 6]);
    expect('ref' in s.messages[CLIENT][0]).toBe(false);
  });

  it('marks the send its error names failed, and no other', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'first'), send(2, 'second'));
    s = run(s, error('forbidden', 'a client may only write to the administrators', 'c2'));
    expect(s.outbox[CLIENT].map((o) => [o.key, o.status])).toEqual([
      [1, 'sending'],
      [2, 'failed'],
    ]);
    expect(s.outbox[CLIENT][1].error).toEqual({ code: 'forbidden', message: 'a client may only write to the administrators' });
    expect(failureOf(s.outbox[CLIENT][1].error)).toEqual({ text: 'You may not write to this conversation.', retry: false });
  });

  it('does not take the error of another frame (a typing, a seen, an old send) for a send', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'hello'));
    s = run(s, error('bad_request', 'chat.typing takes {to?}'), error('bad_request', 'text must be…', 'c0'));
    expect(s.outbox[CLIENT][0]).toMatchObject({ status: 'sending', error: null });
  });

  it('fails every send still waiting when the server closes for a flood, and keeps the stored ones', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'a'), send(2, 'b'), send(3, 'c'), echo(7, 'a', 'c1'));
    s = run(s, error('rate_limited', 'too many messages'));
    expect(s.outbox[CLIENT].map((o) => [o.key, o.status])).toEqual([
      [2, 'failed'],
      [3, 'failed'],
    ]);
    expect(failureOf(s.outbox[CLIENT][0].error)).toEqual({ text: 'Too many messages at once. Wait a moment, then retry.', retry: true });
    expect(s.messages[CLIENT].map((m) => m.text)).toEqual(['a']);
    // The connection then closes: the failures keep their reason.
    s = run(s, { type: 'status', status: 'connecting' });
    expect(s.outbox[CLIENT][0].error?.code).toBe('rate_limited');
  });

  it('fails a send whose answer never came when the connection drops, and a send while offline at once', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'lost'));
    s = run(s, { type: 'status', status: 'connecting' });
    expect(s.outbox[CLIENT][0]).toMatchObject({ status: 'failed', error: { code: 'offline' } });
    s = run(s, send(2, 'offline', false));
    expect(s.outbox[CLIENT][1]).toMatchObject({ status: 'failed', error: { code: 'offline' } });
  });

  it('drops a failed copy that the history read after a reconnect shows stored, and only a newer one', () => {
    let s = run(initialLiveState, hello('client'), { type: 'history', conversation: CLIENT, items: [msg(4, 'client', { text: 'same' })] });
    s = run(s, send(1, 'same'), send(2, 'other'), { type: 'status', status: 'connecting' });
    expect(s.outbox[CLIENT].map((o) => o.afterId)).toEqual([4, 4]);
    // Message 4 was there before: it is not the copy of key 1.
    s = run(s, { type: 'history', conversation: CLIENT, items: [msg(4, 'client', { text: 'same' })] });
    expect(s.outbox[CLIENT]).toHaveLength(2);
    s = run(s, { type: 'history', conversation: CLIENT, items: [msg(4, 'client', { text: 'same' }), msg(6, 'client', { text: 'same' })] });
    expect(s.outbox[CLIENT].map((o) => o.text)).toEqual(['other']);
  });

  it('retries a failed message as the newest one under a new ref, and discards on request', () => {
    let s = run(initialLiveState, hello('client'), send(1, 'a'), send(2, 'b'), error('rate_limited'));
    s = run(s, send(1, 'a', true, 'c3'));
    expect(s.outbox[CLIENT].map((o) => [o.key, o.ref, o.status])).toEqual([
      [2, 'c2', 'failed'],
      [1, 'c3', 'sending'],
    ]);
    // An answer to the first attempt's ref is not the retry's.
    s = run(s, error('bad_request', 'late', 'c1'));
    expect(s.outbox[CLIENT][1].status).toBe('sending');
    s = run(s, { type: 'discard', key: 2 });
    expect(s.outbox[CLIENT].map((o) => o.key)).toEqual([1]);
  });
});

describe('the assistant conversation', () => {
  const question = (id: number) =>
    frame({ type: 'chat.message', ...msg(id, 'client', { conversation: ASSISTANT, text: 'What is a kWh?' }), ref: 'c1' }, 5000);
  const answer = (id: number, extra: Record<string, unknown> = {}) =>
    frame({
      type: 'chat.message',
      id,
      conversation: ASSISTANT,
      sender_id: 'assistant',
      sender_role: 'assistant',
      sender_name: 'Assistant',
      text: 'A kilowatt-hour is…',
      created_at: id * 1000,
      seen_at: null,
      ...extra,
    });

  it('waits for the answer after the question, and keeps its source', () => {
    let s = run(initialLiveState, hello('client'), {
      type: 'send',
      key: 1,
      ref: 'c1',
      conversation: ASSISTANT,
      to: ASSISTANT,
      text: 'What is a kWh?',
      sent: true,
    });
    s = run(s, question(10));
    expect(s.asking).toEqual({ id: 10, at: 5000 });
    expect(s.outbox[ASSISTANT]).toBeUndefined();
    s = run(s, answer(11, { source: 'rule', rule: 'kwh' }));
    expect(s.asking).toBeNull();
    expect(s.messages[ASSISTANT].at(-1)).toMatchObject({ sender_role: 'assistant', source: 'rule', rule: 'kwh' });
  });

  it('counts nothing unread in it, nor in the client’s chat with the administrators', () => {
    const listed = { conversation: ASSISTANT, peer: ASSISTANT, client: { id: CLIENT, username: 'carol' }, unread: 0, last_message: null };
    const s = run(initialLiveState, hello('client'), { type: 'conversations', items: [listed] }, question(3), answer(4));
    expect(s.conversations[ASSISTANT].unread).toBe(0);
    expect(s.conversations[ASSISTANT].last_message?.id).toBe(4);
    expect(s.messages[CLIENT]).toBeUndefined();
  });
});
