// One action at a time behind a button (delete, assign, unassign): busy while it runs, and its
// failure as text to show in place. On failure the button comes back; on success busy stays set,
// because the action usually closes what showed it and its button must not come back meanwhile.
import { useState } from 'react';
import { errorMessage } from '../lib/errors';

export interface Action {
  busy: boolean;
  error: string | null;
  setError: (message: string | null) => void;
  run: (action: () => Promise<void>) => Promise<void>;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (reason) {
      setError(errorMessage(reason));
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}
