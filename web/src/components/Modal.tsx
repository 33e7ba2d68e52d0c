// A modal dialog on the browser's own <dialog>: showModal() keeps focus inside, makes the page
// behind inert and turns Escape into a cancel event. What the browser does not do we do here:
// focus goes to the field the dialog is for, back to the button that opened it when it closes,
// and the page behind does not scroll. The dialog is open while it is mounted: the parent owns
// that, so a cancel is only a request (onClose), never the browser closing it by itself.
import { useEffect, useEffectEvent, useId, useLayoutEffect, useRef, type FormEvent, type ReactNode } from 'react';
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
  const dialog = useRef<HTMLDialogElement>(null);
  const requestClose = useEffectEvent(() => onClose());

  // Before the first paint, so the dialog never shows closed in the page's flow.
  useLayoutEffect(() => {
    const node = dialog.current;
    if (!node) return undefined;
    const opener = document.activeElement as HTMLElement | null;
    if (!node.open) node.showModal();
    // showModal() focuses the first focusable element, which is the header's Close button.
    const first =
      node.querySelector<HTMLElement>('[data-autofocus]') ??
      node.querySelector<HTMLElement>('input, select, textarea') ??
      node.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? node).focus();
    const overflow = document.body.style.overflow;
    document.body.style.overflow = 'hidden';
    return () => {
      document.body.style.overflow = overflow;
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);

  // Escape: the browser asks first (cancel), and we pass the request on. A browser may close the
  // dialog without asking (Chrome does on a second Escape with no click in between); the parent
  // hears of that as well. Unmounting removes the dialog without a close event.
  useEffect(() => {
    const node = dialog.current;
    if (!node) return undefined;
    const onCancel = (event: Event) => {
      event.preventDefault();
      requestClose();
    };
    const onClosed = () => {
      if (node.isConnected) requestClose();
    };
    node.addEventListener('cancel', onCancel);
    node.addEventListener('close', onClosed);
    return () => {
      node.removeEventListener('cancel', onCancel);
      node.removeEventListener('close', onClosed);
    };
  }, []);

  return createPortal(
    <dialog className={`modal modal-${size}`} aria-labelledby={titleId} ref={dialog} tabIndex={-1}>
      <header className="modal-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      <div className="modal-body">{children}</div>
      {footer ? <footer className="modal-footer">{footer}</footer> : null}
    </dialog>,
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
