// Small hooks shared by the pages.
import { useEffect, useState } from 'react';

/** Sets the document title as "<page> · EMS". */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · EMS` : 'EMS';
  }, [title]);
}

/** The value, once it has stopped changing for `delay` ms (search boxes). */
export function useDebounced<T>(value: T, delay = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), delay);
    return () => window.clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

/** The list offset in the address (`?offset=40`): a whole number, 0 when absent or invalid. */
export function offsetParam(params: URLSearchParams): number {
  return Math.max(0, Number.parseInt(params.get('offset') ?? '0', 10) || 0);
}
