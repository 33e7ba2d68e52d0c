// The live connection to the ws role (docs/ws.md): one WebSocket opened with the session token in
// `?token=`, kept open by reconnecting with a growing delay whenever it drops (a server restart, a
// network cut, a refused upgrade), and reopened at once when the token changes. A close with code
// 4001 is the server ending the session (its token expired or was revoked): that one is not
// retried, and the app is told so that it can sign out. It knows nothing
// of React; the provider in LiveContext.tsx feeds its frames to the app. Timers and the socket
// constructor are injectable so the unit tests drive it without a network or real time.

/** The part of the browser's WebSocket this module uses. */
export interface SocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type LiveStatus = 'connecting' | 'open' | 'closed';

/** A frame from the server: a JSON object with a `type`. */
export type Frame = { type: string } & Record<string, unknown>;

export interface LiveSocketOptions {
  /** Where to connect, without the token; asked again before every attempt (it may need a fetch). */
  resolveUrl: () => Promise<string>;
  createSocket?: (url: string) => SocketLike;
  onFrame: (frame: Frame) => void;
  onStatus?: (status: LiveStatus) => void;
  /** The server ended the session opened with `token` (close 4001): it will not open a socket again. */
  onSignedOut?: (token: string) => void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
  /** 0 ≤ random() < 1, for the jitter that keeps many browsers from reconnecting in step. */
  random?: () => number;
}

const OPEN = 1;
/** The close code of a session whose token expired or was revoked (docs/ws.md). */
export const SIGNED_OUT_CODE = 4001;
/** The first retry waits about this long; each failure doubles it, up to MAX_DELAY_MS. */
export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 15_000;

/** The wait before retry number `attempt` (0-based): doubling, capped, with up to 20 % less as jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const full = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempt, 20));
  return Math.round(full * (1 - 0.2 * random()));
}

/** Turns the configured ws_url into an absolute ws(s) URL: "/ws" means this page's host. */
export function absoluteWsUrl(wsUrl: string, location: { protocol: string; host: string }): string {
  if (/^wss?:\/\//i.test(wsUrl)) return wsUrl;
  if (/^https?:\/\//i.test(wsUrl)) return wsUrl.replace(/^http/i, 'ws');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const path = wsUrl.startsWith('/') ? wsUrl : `/${wsUrl}`;
  return `${scheme}//${location.host}${path}`;
}

export function withToken(url: string, token: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

export class LiveSocket {
  private readonly options: Required<Omit<LiveSocketOptions, 'onStatus' | 'onSignedOut'>> &
    Pick<LiveSocketOptions, 'onStatus' | 'onSignedOut'>;
  private token: string | null = null;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  /** Bumped on every (re)start and stop, so a late answer from an old attempt is ignored. */
  private generation = 0;
  private status: LiveStatus = 'closed';

  constructor(options: LiveSocketOptions) {
    this.options = {
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
      random: Math.random,
      ...options,
    };
  }

  /** Connects with this token; a different token than the current one reconnects at once. */
  start(token: string): void {
    if (token === this.token && this.status !== 'closed') return;
    this.token = token;
    this.attempt = 0;
    this.restart();
  }

  /** Closes for good (sign-out): no more retries until start() is called again. */
  stop(): void {
    this.token = null;
    this.generation++;
    this.cancelTimer();
    this.drop();
    this.setStatus('closed');
  }

  /** Tries again now instead of waiting out the delay (the browser says the network is back). */
  nudge(): void {
    if (!this.token || this.status === 'open') return;
    this.attempt = 0;
    this.restart();
  }

  /** Sends a frame if the socket is open; false when it is not (the caller shows it as offline). */
  send(frame: Frame): boolean {
    if (!this.socket || this.socket.readyState !== OPEN || this.status !== 'open') return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  get currentStatus(): LiveStatus {
    return this.status;
  }

  /** The number of failed attempts since the last successful connection. */
  get failures(): number {
    return this.attempt;
  }

  private restart(): void {
    this.generation++;
    this.cancelTimer();
    this.drop();
    void this.connect(this.generation);
  }

  private async connect(generation: number): Promise<void> {
    const token = this.token;
    if (!token) return;
    this.setStatus('connecting');
    let url: string;
    try {
      url = await this.options.resolveUrl();
    } catch {
      if (generation === this.generation) this.retry(generation);
      return;
    }
    if (generation !== this.generation) return;
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(withToken(url, token));
    } catch {
      this.retry(generation);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (generation !== this.generation) return;
      this.attempt = 0;
      this.setStatus('open');
    };
    socket.onmessage = (event) => {
      if (generation !== this.generation || typeof event.data !== 'string') return;
      let frame: unknown;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === 'object' && typeof (frame as Frame).type === 'string') {
        this.options.onFrame(frame as Frame);
      }
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.socket = null;
      if ((event as { code?: unknown } | null)?.code === SIGNED_OUT_CODE) {
        this.stop();
        this.options.onSignedOut?.(token);
        return;
      }
      this.retry(generation);
    };
  }

  private retry(generation: number): void {
    if (!this.token || generation !== this.generation) return;
    this.setStatus('connecting');
    const delay = backoffDelay(this.attempt, this.options.random);
    this.attempt++;
    this.cancelTimer();
    this.timer = this.options.setTimer(() => {
      this.timer = null;
      if (generation === this.generation) void this.connect(generation);
    }, delay);
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close(1000, 'bye');
    } catch {
      /* closing a socket that never opened may throw; it is gone either way */
    }
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.options.clearTimer(this.timer);
    this.timer = null;
  }

  private setStatus(status: LiveStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.options.onStatus?.(status);
  }
}
