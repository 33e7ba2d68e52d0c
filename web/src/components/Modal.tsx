// A modal dialog: focus moves in and stays in (Tab wraps), Escape closes, focus returns to the
// button that opened it, and the page behind does not scroll.
import { useEffect, useId, useRef, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import { useAction } from '../hooks/useAction';
import type { Form } from '../hooks/useForm';
import { FormAlert, SubmitButton } from './Field';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

interface ModalProps {
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** Buttons at the bottom of the dialog. */
  footer?: ReactNode;
  size?: 'small' | 'medium';
}

export function Modal({ title, onClose, children, footer, size = 'medium' }: ModalProps) {
  const titleId = useId();
  const panel = useRef<HTMLDivElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const node = panel.current;
    const first =
      node?.querySelector<HTMLElement>('[data-autofocus]') ??
      node?.querySelector<HTMLElement>('input, select, textarea') ??
      node?.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? node)?.focus();
    const overflow = document.body.style.overflow;
    document.body.style.overflow = 'hidden';
    return () => {
      document.body.style.overflow = overflow;
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      closeRef.current();
      return;
    }
    if (event.key !== 'Tab' || !panel.current) return;
    const items = Array.from(panel.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };

  return createPortal(
    <div className="modal-backdrop">
      <div
        className={`modal modal-${size}`}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        ref={panel}
        tabIndex={-1}
        onKeyDown={onKeyDown}
      >
        <header className="modal-header">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        <div className="modal-body">{children}</div>
        {footer ? <footer className="modal-footer">{footer}</footer> : null}
      </div>
    </div>,
    document.body,
  );
}

interface ConfirmProps {
  title: string;
  children: ReactNode;
  /** The confirming button; the title by default ("Delete device"). */
  confirmLabel?: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}

/** Asks before a destructive action; shows the server's refusal in place. */
export function ConfirmDialog({ title, children, confirmLabel = title, onConfirm, onClose }: ConfirmProps) {
  const { busy, error, run } = useAction();
  const confirm = () => run(onConfirm);

  return (
    <Modal
      title={title}
      onClose={onClose}
      size="small"
      footer={
        <>
          <button type="button" className="button" onClick={onClose} data-autofocus>
            Cancel
          </button>
          <button type="button" className="button button-danger" onClick={confirm} disabled={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </>
      }
    >
      <div className="confirm-text">{children}</div>
      <FormAlert message={error} />
    </Modal>
  );
}

interface FormDialogProps {
  title: string;
  /** The form's id: the submit button sits in the dialog's footer, outside the form. */
  formId: string;
  onSubmit: (event: FormEvent<HTMLFormElement>) => void;
  onClose: () => void;
  /** The form's state: busy while it is sent, and the server's refusal, shown under the fields. */
  form: Pick<Form<string>, 'busy' | 'serverError'>;
  submitLabel: string;
  children: ReactNode;
}

/** A create or edit form in a dialog, with Cancel and the submit button at the bottom. */
export function FormDialog({ title, formId, onSubmit, onClose, form, submitLabel, children }: FormDialogProps) {
  return (
    <Modal
      title={title}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton busy={form.busy} label={submitLabel} busyLabel="Saving…" form={formId} />
        </>
      }
    >
      <form id={formId} onSubmit={onSubmit} noValidate className="form">
        {children}
        <FormAlert message={form.serverError} />
      </form>
    </Modal>
  );
}
