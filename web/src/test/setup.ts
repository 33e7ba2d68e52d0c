// Vitest setup: unmount what a test rendered and forget any stored session between tests. Pages
// render without a live connection: jsdom's WebSocket would dial a server that is not there (the
// live client has its own tests, with a fake socket).
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

Reflect.deleteProperty(globalThis, 'WebSocket');

afterEach(() => {
  cleanup();
  localStorage.clear();
});
