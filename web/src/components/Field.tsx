// Labelled form controls with their error and hint wired for screen readers.
import {
  useId,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from 'react';

interface BaseProps {
  label: string;
  error?: string;
  hint?: ReactNode;
  className?: string;
  value: string;
  onChange: (value: string) => void;
}

/** The props every control takes, besides the ones a field passes through. */
type Own = 'onChange' | 'value' | 'className';

/**
 * The label, the hint or error below, and the attributes that tie the control to them; `control`
 * renders the input itself with `wiring` spread on it (before the caller's own attributes).
 */
function FieldFrame<E extends HTMLElement>({
  label,
  error,
  hint,
  className,
  value,
  onChange,
  control,
}: BaseProps & {
  control: (wiring: {
    id: string;
    value: string;
    onChange: (event: { target: E & { value: string } }) => void;
    'aria-invalid': true | undefined;
    'aria-describedby': string | undefined;
  }) => ReactNode;
}) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      {control({
        id,
        value,
        onChange: (event) => onChange(event.target.value),
        'aria-invalid': error ? true : undefined,
        'aria-describedby': describedBy,
      })}
      {hint && !error ? (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

type InputProps = BaseProps & Omit<InputHTMLAttributes<HTMLInputElement>, Own>;

export function TextField({ label, error, hint, className, value, onChange, ...rest }: InputProps) {
  return (
    <FieldFrame<HTMLInputElement>
      {...{ label, error, hint, className, value, onChange }}
      control={(wiring) => <input {...wiring} {...rest} />}
    />
  );
}

/** A username box: no capital first letter or spelling marks from the keyboard. */
export function UsernameField(props: Omit<InputProps, 'label'>) {
  return <TextField label="Username" autoCapitalize="none" spellCheck={false} {...props} />;
}

type TextAreaProps = BaseProps & Pick<TextareaHTMLAttributes<HTMLTextAreaElement>, 'name' | 'rows' | 'maxLength'>;

export function TextArea({ label, error, hint, className, value, onChange, ...rest }: TextAreaProps) {
  return (
    <FieldFrame<HTMLTextAreaElement>
      {...{ label, error, hint, className, value, onChange }}
      control={(wiring) => <textarea {...wiring} {...rest} />}
    />
  );
}

type SelectProps = BaseProps &
  Pick<SelectHTMLAttributes<HTMLSelectElement>, 'name'> & { options: { value: string; label: string }[] };

export function SelectField({ label, error, hint, className, value, onChange, options, ...rest }: SelectProps) {
  return (
    <FieldFrame<HTMLSelectElement>
      {...{ label, error, hint, className, value, onChange }}
      control={(wiring) => (
        <select {...wiring} {...rest}>
          {options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    />
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

interface SubmitButtonProps {
  busy: boolean;
  label: string;
  /** What the button says while the form is being sent. */
  busyLabel: string;
  /** As wide as the form (the sign-in and registration pages). */
  block?: boolean;
  /** The id of the form, when the button sits outside it (a dialog's footer). */
  form?: string;
}

/** A form's primary button: disabled, and saying what happens, while the form is being sent. */
export function SubmitButton({ busy, label, busyLabel, block, form }: SubmitButtonProps) {
  return (
    <button type="submit" form={form} className={block ? 'button button-primary button-block' : 'button button-primary'} disabled={busy}>
      {busy ? busyLabel : label}
    </button>
  );
}
