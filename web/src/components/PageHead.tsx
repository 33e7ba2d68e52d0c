// The heading block of a page: an optional link back, the title, a line under it, and the page's
// main actions on the right.
import type { ReactNode } from 'react';

interface PageHeadProps {
  title: ReactNode;
  sub?: ReactNode;
  /** A link above the title, back to the list the page was opened from. */
  back?: ReactNode;
  /** Buttons beside the title. */
  children?: ReactNode;
}

export function PageHead({ title, sub, back, children }: PageHeadProps) {
  return (
    <div className="page-head">
      <div>
        {back}
        <h1>{title}</h1>
        {sub ? <p className="page-sub">{sub}</p> : null}
      </div>
      {children}
    </div>
  );
}
