// The chat pages over a fake WebSocket and a fake API: a customer's Assistant conversation beside
// the administrators' (the old /assistant address leads to it), a question going out as chat.send
// to "assistant" and its answer coming back with its source; a message the server refuses with an
// error frame staying in the conversation, marked failed with the reason, and sent again by Retry;
// the server's answers found by the ref each chat.send carries.
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeFetch, jsonResponse, renderApp, session } from '../test/helpers';
import { browserTimeZone } from '../time';

class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
}

const me = session('client');
const ME = me.user.id;

function message(id: number, extra: Record<string, unknown>) {
  return { type: 'chat.message', id, conversation: ME, sender_id: ME, sender_role: 'client', sender_name: 'carol', text: '', created_at: Date.now(), seen_at: null, ...extra };
}

function routes(history: Record<string, unknown[]> = {}) {
  return fakeFetch((url) => {
    if (url === '/api/config') return jsonResponse(200, { version: 't', mode: 'embedded', ws_url: '/ws' });
    if (url === '/api/chat/conversations') return jsonResponse(200, { items: [] });
    const m = /^\/api\/chat\/conversations\/([^/]+)\/messages/.exec(url);
    if (m) {
      const conversation = m[1] === 'assistant' ? 'assistant' : ME;
      return jsonResponse(200, { conversation, items: history[conversation] ?? [], has_more: false });
    }
    return undefined;
  });
}

/** The socket the page opened, open and greeted. */
async function connected(): Promise<FakeWebSocket> {
  await waitFor(() => expect(FakeWebSocket.instances.length).toBe(1));
  const socket = FakeWebSocket.instances[0];
  act(() => {
    socket.open();
    socket.push({ type: 'hello', user: me.user, unread_notifications: 0, unseen_messages: 0 });
  });
  return socket;
}

beforeEach(() => {
  FakeWebSocket.instances = [];
  vi.stubGlobal('WebSocket', FakeWebSocket);
});

afterEach(() => {
  vi.unstubAllGlobals();
  Reflect.deleteProperty(globalThis, 'WebSocket');
});

describe('the assistant in the chat', () => {
  it('is a conversation beside the administrators; a question goes to it and its answer comes back with its source', async () => {
    const fetchMock = routes();
    renderApp('/assistant', me);
    expect(await screen.findByRole('heading', { name: 'Chat' })).toBeTruthy();
    expect(screen.getByTestId('location').textContent).toBe('/chat/assistant');
    const list = screen.getByRole('navigation', { name: 'Conversations' });
    expect(within(list).getByRole('link', { name: /Administrators/ })).toBeTruthy();
    expect(within(list).getByRole('link', { name: /Assistant/ }).getAttribute('aria-current')).toBe('page');
    const socket = await connected();
    expect(await screen.findByText('How can I help?')).toBeTruthy();
    await waitFor(() => expect(fetchMock.mock.calls.some(([url]) => String(url).startsWith('/api/chat/conversations/assistant/messages'))).toBe(true));

    fireEvent.change(screen.getByLabelText('Your question'), { target: { value: 'What is a kWh?' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    // The question carries the browser's zone, so that the assistant's "yesterday" is the asker's.
    expect(socket.sent).toEqual([{ type: 'chat.send', to: 'assistant', text: 'What is a kWh?', tz: browserTimeZone(), ref: 'c1' }]);
    expect(screen.getByTestId('message-sending').textContent).toContain('What is a kWh?');

    act(() => {
      socket.push(message(7, { conversation: 'assistant', text: 'What is a kWh?', ref: 'c1' }));
      socket.push(message(7, { conversation: 'assistant', text: 'What is a kWh?' }));
    });
    expect(screen.queryByTestId('message-sending')).toBeNull();
    expect(screen.getByTestId('message-ours').textContent).toContain('What is a kWh?');
    expect(screen.getByTestId('answering')).toBeTruthy();

    act(() =>
      socket.push(
        message(8, { conversation: 'assistant', sender_id: 'assistant', sender_role: 'assistant', sender_name: 'Assistant', text: 'A kilowatt-hour is the energy…', source: 'rule', rule: 'kwh' }),
      ),
    );
    expect(screen.getByTestId('message-theirs').textContent).toContain('A kilowatt-hour is the energy…');
    expect(screen.getByTestId('answer-source').textContent).toBe('Rule · kwh');
    expect(screen.queryByTestId('answering')).toBeNull();
  });

  it('shows the history on open, and answers without a source plainly', async () => {
    routes({
      assistant: [
        message(1, { conversation: 'assistant', text: 'hello' }),
        message(2, { conversation: 'assistant', sender_id: 'assistant', sender_role: 'assistant', sender_name: 'Assistant', text: 'Hello carol!' }),
      ],
    });
    renderApp('/chat/assistant', me);
    await connected();
    const log = await screen.findByTestId('chat-log');
    expect(await within(log).findByText('Hello carol!')).toBeTruthy();
    expect(screen.queryByTestId('answer-source')).toBeNull();
    expect(screen.queryByRole('group', { name: 'Suggested questions' })).toBeNull();
  });
});

describe('a message the server refuses', () => {
  it('stays in the conversation, failed with the reason, and Retry sends it again', async () => {
    routes();
    renderApp('/chat', me);
    const socket = await connected();
    await screen.findByText('No messages yet');
    fireEvent.change(screen.getByLabelText('Your message'), { target: { value: 'one of many' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(socket.sent.at(-1)).toEqual({ type: 'chat.send', text: 'one of many', ref: 'c1' });
    act(() => {
      socket.push({ type: 'error', code: 'rate_limited', message: 'too many messages' });
      socket.drop();
    });
    const failed = screen.getByTestId('message-failed');
    expect(failed.textContent).toContain('one of many');
    expect(screen.getByTestId('failure').textContent).toBe('Not sent: Too many messages at once. Wait a moment, then retry.');
    const retry = screen.getByRole('button', { name: 'Retry' }) as HTMLButtonElement;
    expect(retry.disabled).toBe(true);

    // The live client reconnects by itself; then Retry sends the same text again.
    await waitFor(() => expect(FakeWebSocket.instances.length).toBe(2), { timeout: 3000 });
    const again = FakeWebSocket.instances[1];
    act(() => again.open());
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(again.sent).toEqual([{ type: 'chat.send', text: 'one of many', ref: 'c2' }]);
    expect(screen.getByTestId('message-sending')).toBeTruthy();
    act(() => {
      again.push(message(3, { text: 'one of many', ref: 'c2' }));
      again.push(message(3, { text: 'one of many' }));
    });
    expect(screen.queryByTestId('message-sending')).toBeNull();
    expect(screen.queryByTestId('message-failed')).toBeNull();
    expect(screen.getAllByTestId('message-ours')).toHaveLength(1);
  });

  it('offers Edit instead of Retry when sending again cannot help, and Discard forgets it', async () => {
    routes();
    renderApp('/chat', me);
    const socket = await connected();
    await screen.findByText('No messages yet');
    fireEvent.change(screen.getByLabelText('Your message'), { target: { value: 'to someone else' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    act(() => socket.push({ type: 'error', code: 'forbidden', message: 'a client may only write to the administrators', ref: 'c1' }));
    expect(screen.getByTestId('failure').textContent).toBe('Not sent: You may not write to this conversation.');
    expect(screen.queryByRole('button', { name: 'Retry' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Edit' }));
    expect((screen.getByLabelText('Your message') as HTMLTextAreaElement).value).toBe('to someone else');
    expect(screen.queryByTestId('message-failed')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    act(() => socket.push({ type: 'error', code: 'bad_request', message: 'text must be 1-4000 bytes of text', ref: 'c2' }));
    expect(screen.getByTestId('failure').textContent).toBe('Not sent: The server refused this message.');
    fireEvent.click(screen.getByRole('button', { name: 'Discard' }));
    expect(screen.queryByTestId('message-failed')).toBeNull();
  });

  it('a typing frame’s error is not taken for the next message’s', async () => {
    routes();
    renderApp('/chat', me);
    const socket = await connected();
    await screen.findByText('No messages yet');
    fireEvent.change(screen.getByLabelText('Your message'), { target: { value: 'typed' } });
    expect(socket.sent).toEqual([{ type: 'chat.typing' }]);
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(socket.sent.slice(1)).toEqual([{ type: 'chat.send', text: 'typed', ref: 'c1' }]);
    // The error names no ref: it is about the typing frame, not the message.
    act(() => socket.push({ type: 'error', code: 'unavailable', message: 'database unavailable' }));
    expect(screen.queryByTestId('message-failed')).toBeNull();
    expect(screen.getByTestId('message-sending')).toBeTruthy();
    act(() => socket.push(message(4, { text: 'typed', ref: 'c1' })));
    expect(screen.queryByTestId('message-sending')).toBeNull();
    expect(screen.getAllByTestId('message-ours')).toHaveLength(1);
  });
});
