// Form state with the local checks of validation.ts: errors appear on submit, then follow the
// typing; a failed submit focuses the first bad field; the server's refusal lands in serverError.
import { useRef, useState, type FormEvent } from 'react';
import { hasErrors, validate, type Check, type Errors } from '../validation';
import { errorMessage } from '../lib/errors';

/** What a form control needs of one field: its value, its setter and its message. */
export interface FieldBinding {
  value: string;
  onChange: (value: string) => void;
  error: string | undefined;
}

export interface Form<K extends string> {
  values: Record<K, string>;
  errors: Errors<K>;
  serverError: string | null;
  busy: boolean;
  set: (key: K) => (value: string) => void;
  /** The value, setter and error of `key`, to spread on a TextField, TextArea or SelectField. */
  field: (key: K) => FieldBinding;
  setValues: (values: Record<K, string>) => void;
  setServerError: (message: string | null) => void;
  /** Validates, then runs `action` unless a check failed; returns the submit handler. */
  onSubmit: (action: (values: Record<K, string>) => Promise<void>) => (event: FormEvent<HTMLFormElement>) => void;
}

export function useForm<K extends string>(
  initial: Record<K, string>,
  checks: (values: Record<K, string>) => Partial<Record<K, Check>>,
): Form<K> {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState<Errors<K>>({});
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submitted = useRef(false);

  const set = (key: K) => (value: string) => {
    const next = { ...values, [key]: value };
    setValues(next);
    if (submitted.current) setErrors(validate(next, checks(next)));
  };

  const field = (key: K): FieldBinding => ({ value: values[key], onChange: set(key), error: errors[key] });

  const onSubmit = (action: (values: Record<K, string>) => Promise<void>) => (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget;
    submitted.current = true;
    const found = validate(values, checks(values));
    setErrors(found);
    setServerError(null);
    if (hasErrors(found)) {
      window.setTimeout(() => form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
      return;
    }
    setBusy(true);
    action(values).then(
      () => setBusy(false),
      (reason: unknown) => {
        setServerError(errorMessage(reason));
        setBusy(false);
      },
    );
  };

  return { values, errors, serverError, busy, set, field, setValues, setServerError, onSubmit };
}
