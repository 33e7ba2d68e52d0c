// Loads data for a page: tracks loading and error, drops answers that arrive after the inputs
// changed or the page closed, and offers reload() after a change.
//
// `load` must be memoised by the caller (useCallback with the values it reads): a new function
// is what starts a new load, so the linter's exhaustive-deps check on that useCallback is what
// keeps the page from showing data for inputs it no longer has. An inline arrow would load on
// every render.
import { useCallback, useEffect, useState } from 'react';
import { ApiError, isAbort } from '../api';

export interface Resource<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
  /** Replaces the data in place after a write whose answer already holds the new value. */
  setData: (data: T) => void;
}

export function useResource<T>(load: (signal: AbortSignal) => Promise<T>): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    load(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setLoading(false);
      },
      (reason: unknown) => {
        if (controller.signal.aborted || isAbort(reason)) return;
        setError(reason instanceof ApiError ? reason : new ApiError(0, 'error', String(reason)));
        setLoading(false);
      },
    );
    return () => controller.abort();
    // generation is not read: reload() bumps it to run the same load again.
  }, [load, generation]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data, error, loading, reload, setData };
}
