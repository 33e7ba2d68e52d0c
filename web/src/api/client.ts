// The HTTP client every API call goes through. It speaks JSON to relative URLs (the app is served
// from the same origin as the API, by `ems serve` or nginx), adds the bearer token, and turns the
// error envelope {"error":{"code","message"}} into an ApiError so forms can show the server's words.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Codes used when an answer carries no envelope (a proxy's HTML page, a dropped connection). */
const FALLBACK_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  502: 'unavailable',
  503: 'unavailable',
  504: 'unavailable',
};

const FALLBACK_MESSAGES: Record<string, string> = {
  unauthorized: 'You are not signed in.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  unavailable: 'The service is unavailable. Try again shortly.',
};

export const NETWORK_ERROR_MESSAGE = 'Cannot reach the server. Check your connection and try again.';

export interface ApiClientOptions {
  /** Prefix of every path; empty for same-origin relative URLs. */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** The current bearer token, or null when signed out. */
  getToken?: () => string | null;
  /** Called when a request that carried a token is answered 401: the session is over. */
  onUnauthorized?: (error: ApiError) => void;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Send the token (default true). Sign-in and registration do not. */
  auth?: boolean;
}

/** A file the API answered with (CSV export), and the name its Content-Disposition suggests. */
export interface Download {
  blob: Blob;
  filename: string | null;
}

export interface ApiClient {
  request<T>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<T>;
  /** GET of a file: the same token and error handling, the body kept as a Blob. */
  download(path: string, options?: RequestOptions): Promise<Download>;
}

type QueryValue = string | number | boolean | undefined | null;

/** Builds "?a=1&b=x" from the defined, non-empty values; "" when there are none. */
export function queryString(params: Record<string, QueryValue>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function isEnvelope(value: unknown): value is { error: { code: string; message: string } } {
  if (typeof value !== 'object' || value === null) return false;
  const error = (value as { error?: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/** Maps a failed answer to an ApiError, preferring the server's own code and message. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(await response.text());
  } catch {
    parsed = null;
  }
  if (isEnvelope(parsed)) {
    return new ApiError(response.status, parsed.error.code, parsed.error.message);
  }
  const code = FALLBACK_CODES[response.status] ?? `http_${response.status}`;
  const message = FALLBACK_MESSAGES[code] ?? `The server answered ${response.status}.`;
  return new ApiError(response.status, code, message);
}

export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const baseUrl = options.baseUrl ?? '';

  /** Sends one request; answers the response when it is a success, throws an ApiError otherwise. */
  async function send(method: string, path: string, body: unknown, opts: RequestOptions, accept: string) {
    const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { Accept: accept };
    const token = opts.auth === false ? null : (options.getToken?.() ?? null);
    if (token) headers.Authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers, signal: opts.signal, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }

    let response: Response;
    try {
      response = await doFetch(baseUrl + path, init);
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === 'AbortError') throw cause;
      throw new ApiError(0, 'network', NETWORK_ERROR_MESSAGE);
    }

    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (response.status === 401 && token) options.onUnauthorized?.(error);
      throw error;
    }
    return response;
  }

  async function request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const response = await send(method, path, body, opts, 'application/json');
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'bad_response', 'The server sent an answer the app cannot read.');
    }
  }

  async function download(path: string, opts: RequestOptions = {}): Promise<Download> {
    const response = await send('GET', path, undefined, opts, '*/*');
    return { blob: await response.blob(), filename: filenameOf(response.headers.get('Content-Disposition')) };
  }

  return { request, download };
}

/** The file name of `attachment; filename="x.csv"`, or null when there is none. */
export function filenameOf(disposition: string | null): string | null {
  const match = disposition ? /filename="?([^";]+)"?/i.exec(disposition) : null;
  return match ? match[1].trim() : null;
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}
