// Vitest setup: unmount what a test rendered and forget any stored session between tests. Pages
// render without a live connection: jsdom's WebSocket would dial a server that is not there (the
// live client has its own tests, with a fake socket).
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

Reflect.deleteProperty(globalThis, 'WebSocket');

// jsdom has <dialog> but not its methods: enough of them for the Modal (open while shown, a close
// event when closed). No top layer, inert background or Escape handling; tests fire those events.
if (typeof HTMLDialogElement !== 'undefined' && !HTMLDialogElement.prototype.showModal) {
  HTMLDialogElement.prototype.show = function show(this: HTMLDialogElement) {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.showModal = function showModal(this: HTMLDialogElement) {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.close = function close(this: HTMLDialogElement) {
    if (!this.open) return;
    this.removeAttribute('open');
    this.dispatchEvent(new Event('close'));
  };
}

afterEach(() => {
  cleanup();
  localStorage.clear();
});
