// Labelled form controls with their error and hint wired for screen readers.
import { useId, type InputHTMLAttributes, type ReactNode } from 'react';

interface BaseProps {
  label: string;
  error?: string;
  hint?: ReactNode;
  className?: string;
}

function describedBy(errorId: string, hintId: string, error?: string, hint?: ReactNode) {
  return [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
}

function Help({ id, hintId, error, hint }: { id: string; hintId: string; error?: string; hint?: ReactNode }) {
  return (
    <>
      {hint && !error ? (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={id}>
          {error}
        </p>
      ) : null}
    </>
  );
}

type InputProps = BaseProps &
  Omit<InputHTMLAttributes<HTMLInputElement>, 'onChange' | 'value' | 'className'> & {
    value: string;
    onChange: (value: string) => void;
  };

export function TextField({ label, error, hint, className, value, onChange, ...rest }: InputProps) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(errorId, hintId, error, hint)}
        {...rest}
      />
      <Help id={errorId} hintId={hintId} error={error} hint={hint} />
    </div>
  );
}

interface TextAreaProps extends BaseProps {
  name?: string;
  value: string;
  onChange: (value: string) => void;
  rows?: number;
  maxLength?: number;
}

export function TextArea({ label, error, hint, className, value, onChange, ...rest }: TextAreaProps) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(errorId, hintId, error, hint)}
        {...rest}
      />
      <Help id={errorId} hintId={hintId} error={error} hint={hint} />
    </div>
  );
}

interface SelectProps extends BaseProps {
  name?: string;
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
}

export function SelectField({ label, error, hint, className, value, onChange, options, ...rest }: SelectProps) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(errorId, hintId, error, hint)}
        {...rest}
      >
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      <Help id={errorId} hintId={hintId} error={error} hint={hint} />
    </div>
  );
}

/** The server's answer to a form, shown beside it. */
export function FormAlert({ message, tone = 'error' }: { message: string | null; tone?: 'error' | 'success' | 'info' }) {
  if (!message) return null;
  return (
    <div className={`alert alert-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      {message}
    </div>
  );
}
