// The conversation list (GET /api/chat/conversations) as pages need it: loaded on open and again
// after each reconnect (messages may have come meanwhile), with its loading and error state.
import { useEffect, useState } from 'react';
import { isAbort } from '../api';
import { useLive } from './LiveContext';
import { errorMessage } from '../lib/errors';

export function useConversations() {
  const { state, loadConversations } = useLive();
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const connected = state.status === 'open';
  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    loadConversations(controller.signal).then(
      () => setLoaded(true),
      (reason: unknown) => {
        if (!isAbort(reason) && !controller.signal.aborted) setError(errorMessage(reason));
      },
    );
    return () => controller.abort();
  }, [loadConversations, connected, attempt]);
  return { loaded, error, retry: () => setAttempt((n) => n + 1) };
}
