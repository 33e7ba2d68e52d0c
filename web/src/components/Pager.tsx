// Previous / next through a list answer {total, limit, offset}.
interface PagerProps {
  total: number;
  limit: number;
  offset: number;
  onChange: (offset: number) => void;
  /** Plural, as in "12 devices"; the singular drops the final "s". */
  noun: string;
}

export function Pager({ total, limit, offset, onChange, noun }: PagerProps) {
  if (total === 0) return null;
  const first = Math.min(offset + 1, total);
  const last = Math.min(offset + limit, total);
  const hasPrev = offset > 0;
  const hasNext = offset + limit < total;
  const singular = noun.replace(/s$/, '');
  return (
    <nav className="pager" aria-label={`${noun} pages`}>
      <p className="pager-text" aria-live="polite">
        {hasPrev || hasNext ? `${first}–${last} of ${total} ${noun}` : `${total} ${total === 1 ? singular : noun}`}
      </p>
      {hasPrev || hasNext ? (
        <div className="pager-buttons">
          <button
            type="button"
            className="button"
            disabled={!hasPrev}
            onClick={() => onChange(Math.max(0, offset - limit))}
          >
            ‹ Previous
          </button>
          <button type="button" className="button" disabled={!hasNext} onClick={() => onChange(offset + limit)}>
            Next ›
          </button>
        </div>
      ) : null}
    </nav>
  );
}
