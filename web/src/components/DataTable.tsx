// The app's tables: a caption for screen readers, a header row (number columns right-aligned),
// and either the administrator's lists (an unlabelled actions column, dimmed while a newer page
// loads) or the compact tables inside a card; and the Edit / Delete buttons of a list's row.
import type { ReactNode } from 'react';

/** A column's header; a numeric column's header sits over right-aligned numbers. */
export type Column = string | { label: string; numeric: true };

interface DataTableProps {
  caption: string;
  columns: Column[];
  /** Adds the unlabelled last column that holds RowActions. */
  actions?: boolean;
  /** Dims the rows while the next answer loads. */
  stale?: boolean;
  /** The smaller table that fills a card edge to edge. */
  compact?: boolean;
  children: ReactNode;
}

export function DataTable({ caption, columns, actions = false, stale = false, compact = false, children }: DataTableProps) {
  const wrap = ['table-wrap', compact ? 'table-wrap-flat' : null, stale ? 'is-stale' : null].filter(Boolean).join(' ');
  return (
    <div className={wrap}>
      <table className={compact ? 'table table-compact' : 'table'}>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) =>
              typeof column === 'string' ? (
                <th key={column} scope="col">
                  {column}
                </th>
              ) : (
                <th key={column.label} scope="col" className="num-head">
                  {column.label}
                </th>
              ),
            )}
            {actions ? (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

interface RowActionsProps {
  /** The row's name, as the buttons announce it: "Edit <name>". */
  name: string;
  onEdit: () => void;
  onDelete: () => void;
  /** Why this row cannot be deleted, if it cannot. */
  cannotDelete?: string;
}

export function RowActions({ name, onEdit, onDelete, cannotDelete }: RowActionsProps) {
  return (
    <td className="actions">
      <button type="button" className="button button-small" onClick={onEdit} aria-label={`Edit ${name}`}>
        Edit
      </button>
      <button
        type="button"
        className="button button-small button-danger-quiet"
        onClick={onDelete}
        aria-label={`Delete ${name}`}
        disabled={cannotDelete !== undefined}
        title={cannotDelete}
      >
        Delete
      </button>
    </td>
  );
}
