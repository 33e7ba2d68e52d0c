// The live client's connection logic with a fake socket and fake timers: the token in the URL,
// frames to the app, reconnecting with a growing delay after drops, a fresh start after a token
// change, nothing after stop(), and the ws URL made absolute.
import { describe, expect, it } from 'vitest';
import {
  absoluteWsUrl,
  backoffDelay,
  BASE_DELAY_MS,
  LiveSocket,
  MAX_DELAY_MS,
  SIGNED_OUT_CODE,
  type Frame,
  type LiveStatus,
  type SocketLike,
} from './socket';

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  readyState = 0;
  sent: string[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  /** The server accepts the upgrade. */
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** The connection ends (server restart, network cut, refused upgrade), with a close code if given. */
  drop(code?: number) {
    this.readyState = 3;
    this.onclose?.(code === undefined ? {} : { code });
  }
  receive(data: unknown) {
    this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) });
  }
}

function harness(resolveUrl: () => Promise<string> = async () => 'ws://127.0.0.1:9/ws') {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  const frames: Frame[] = [];
  const statuses: LiveStatus[] = [];
  const signedOut: string[] = [];
  let nextId = 1;
  const live = new LiveSocket({
    resolveUrl,
    createSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onFrame: (frame) => frames.push(frame),
    onStatus: (status) => statuses.push(status),
    onSignedOut: (token) => signedOut.push(token),
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.push({ fn, ms, id });
      return id;
    },
    clearTimer: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    random: () => 0,
  });
  /** Runs the one pending timer and lets the async connect reach createSocket. */
  const fire = async () => {
    expect(timers).toHaveLength(1);
    const timer = timers.shift()!;
    timer.fn();
    await flush();
    return timer.ms;
  };
  return { live, sockets, timers, frames, statuses, signedOut, fire };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('backoffDelay', () => {
  it('doubles from the base delay up to the cap, with at most 20 % jitter taken off', () => {
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(10, () => 0)).toBe(MAX_DELAY_MS);
    expect(backoffDelay(1000, () => 0)).toBe(MAX_DELAY_MS);
    expect(backoffDelay(0, () => 0.999)).toBeGreaterThanOrEqual(BASE_DELAY_MS * 0.8);
    expect(backoffDelay(0, () => 0.999)).toBeLessThan(BASE_DELAY_MS);
  });
});

describe('absoluteWsUrl', () => {
  const page = { protocol: 'http:', host: 'ems.example:8080' };
  it('keeps an absolute ws URL as it is', () => {
    expect(absoluteWsUrl('ws://127.0.0.1:18081/ws', page)).toBe('ws://127.0.0.1:18081/ws');
  });
  it('puts a path on the page’s host, with wss behind https', () => {
    expect(absoluteWsUrl('/ws', page)).toBe('ws://ems.example:8080/ws');
    expect(absoluteWsUrl('/ws', { protocol: 'https:', host: 'ems.example' })).toBe('wss://ems.example/ws');
  });
});

describe('LiveSocket', () => {
  it('connects with the token in the query and hands JSON frames with a type to the app', async () => {
    const h = harness();
    h.live.start('a.b+c');
    await flush();
    expect(h.sockets).toHaveLength(1);
    expect(h.sockets[0].url).toBe('ws://127.0.0.1:9/ws?token=a.b%2Bc');
    h.sockets[0].open();
    expect(h.live.currentStatus).toBe('open');
    h.sockets[0].receive({ type: 'hello', user: { id: 'u' } });
    h.sockets[0].receive('not json');
    h.sockets[0].receive({ no: 'type' });
    expect(h.frames).toEqual([{ type: 'hello', user: { id: 'u' } }]);
    expect(h.live.send({ type: 'ping' })).toBe(true);
    expect(h.sockets[0].sent).toEqual(['{"type":"ping"}']);
  });

  it('reconnects after drops with a doubling delay, and starts over from the base after a success', async () => {
    const h = harness();
    h.live.start('t');
    await flush();
    h.sockets[0].open();
    h.sockets[0].drop(); // the server restarts
    expect(h.live.currentStatus).toBe('connecting');
    expect(h.live.send({ type: 'ping' })).toBe(false);
    expect(await h.fire()).toBe(500);
    h.sockets[1].drop(); // still down: the upgrade fails
    expect(await h.fire()).toBe(1000);
    h.sockets[2].drop();
    expect(await h.fire()).toBe(2000);
    expect(h.live.failures).toBe(3);
    h.sockets[3].open(); // back
    expect(h.live.failures).toBe(0);
    expect(h.statuses.at(-1)).toBe('open');
    h.sockets[3].drop();
    expect(await h.fire()).toBe(500);
    expect(h.sockets).toHaveLength(5);
  });

  it('retries when the ws URL cannot be fetched yet', async () => {
    let fail = true;
    const h = harness(async () => {
      if (fail) throw new Error('offline');
      return 'ws://127.0.0.1:9/ws';
    });
    h.live.start('t');
    await flush();
    expect(h.sockets).toHaveLength(0);
    fail = false;
    expect(await h.fire()).toBe(500);
    expect(h.sockets).toHaveLength(1);
  });

  it('reconnects at once with a new token, and ignores the old socket from then on', async () => {
    const h = harness();
    h.live.start('old');
    await flush();
    h.sockets[0].open();
    h.live.start('old'); // the same token changes nothing
    await flush();
    expect(h.sockets).toHaveLength(1);
    h.live.start('new');
    await flush();
    expect(h.sockets[0].closed).toBe(true);
    expect(h.sockets[1].url).toContain('token=new');
    h.sockets[0].receive({ type: 'stale' });
    h.sockets[0].drop();
    expect(h.frames).toEqual([]);
    expect(h.timers).toHaveLength(0);
  });

  it('does not retry when the server ends the session (4001), and says so once', async () => {
    const h = harness();
    h.live.start('t');
    await flush();
    h.sockets[0].open();
    h.sockets[0].drop(1006); // any other close is retried
    expect(h.signedOut).toHaveLength(0);
    await h.fire();
    h.sockets[1].open();
    h.sockets[1].drop(SIGNED_OUT_CODE);
    expect(h.signedOut).toEqual(['t']);
    expect(h.timers).toHaveLength(0);
    expect(h.live.currentStatus).toBe('closed');
    expect(h.sockets).toHaveLength(2);
  });

  it('closes on stop() and neither retries nor delivers afterwards', async () => {
    const h = harness();
    h.live.start('t');
    await flush();
    h.sockets[0].open();
    h.sockets[0].drop();
    expect(h.timers).toHaveLength(1);
    h.live.stop();
    expect(h.timers).toHaveLength(0);
    expect(h.live.currentStatus).toBe('closed');
    h.live.start('t');
    await flush();
    h.sockets[1].open();
    h.live.stop();
    expect(h.sockets[1].closed).toBe(true);
    h.sockets[1].receive({ type: 'hello' });
    h.sockets[1].drop();
    expect(h.frames).toEqual([]);
    expect(h.timers).toHaveLength(0);
  });

  it('stops waiting out the delay when the browser comes back online', async () => {
    const h = harness();
    h.live.start('t');
    await flush();
    h.sockets[0].drop();
    await h.fire();
    h.sockets[1].drop();
    expect(h.timers[0].ms).toBe(1000);
    h.live.nudge();
    await flush();
    expect(h.timers).toHaveLength(0);
    expect(h.sockets).toHaveLength(3);
    h.sockets[2].open();
    h.live.nudge(); // already open: nothing happens
    await flush();
    expect(h.sockets).toHaveLength(3);
  });
});
