// The app's one API instance. The session provider plugs in where the token comes from and what
// happens on a 401, so pages just import { api } and call it.
import { ApiError, createApiClient } from './client';
import { createApi } from './endpoints';

interface SessionHooks {
  getToken: () => string | null;
  onUnauthorized: (error: ApiError) => void;
}

let hooks: SessionHooks = {
  getToken: () => null,
  onUnauthorized: () => undefined,
};

export function setSessionHooks(next: SessionHooks): void {
  hooks = next;
}

export const api = createApi(
  createApiClient({
    getToken: () => hooks.getToken(),
    onUnauthorized: (error) => hooks.onUnauthorized(error),
  }),
);

export { ApiError, isAbort } from './client';
export type * from './types';
export { ENERGY_CLASSES } from './types';
