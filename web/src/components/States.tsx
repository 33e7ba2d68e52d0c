// What a page shows while it loads, when it has nothing, and when loading failed.
import type { ReactNode } from 'react';
import type { ApiError } from '../api';
import type { Resource } from '../hooks/useResource';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function Empty({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children ? <p className="state-text">{children}</p> : null}
      {action}
    </div>
  );
}

export function LoadError({ message, onRetry }: { message: string; onRetry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">Could not load this.</p>
      <p className="state-text">{message}</p>
      {onRetry ? (
        <button type="button" className="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** A failed load; when the thing asked for does not exist, `notFound` says so and there is no retry. */
export function ResourceError({ error, onRetry, notFound }: { error: ApiError; onRetry: () => void; notFound?: string }) {
  const gone = notFound !== undefined && error.code === 'not_found';
  return <LoadError message={gone ? notFound : error.message} onRetry={gone ? undefined : onRetry} />;
}

/** A resource's spinner until its first answer, and its failure (kept while older data shows). */
export function ResourceStates({ resource, loading, notFound }: { resource: Omit<Resource<unknown>, 'setData'>; loading: string; notFound?: string }) {
  return (
    <>
      {resource.loading && !resource.data ? <Loading label={loading} /> : null}
      {resource.error ? <ResourceError error={resource.error} onRetry={resource.reload} notFound={notFound} /> : null}
    </>
  );
}
