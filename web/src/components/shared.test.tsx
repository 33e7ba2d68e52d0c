// The shared pieces the pages are built from: a field's label, hint and error wiring; the submit
// button's busy state; a failed load, with and without "not found"; the unread count; the tables;
// the modal dialog (a native <dialog>: jsdom has its open state from the test setup, not Escape).
import { fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api';
import { DataTable, RowActions } from './DataTable';
import { SelectField, SubmitButton, TextArea, TextField } from './Field';
import { UnreadCount } from './InboxEntry';
import { ConfirmDialog, Modal } from './Modal';
import { PageHead } from './PageHead';
import { ResourceError, ResourceStates } from './States';

describe('fields', () => {
  it('tie the hint to the control, then the error instead of the hint', () => {
    const onChange = vi.fn();
    const { rerender } = render(<TextField label="Email" value="a" onChange={onChange} hint="We never share it." />);
    const input = screen.getByLabelText('Email');
    expect(input.getAttribute('aria-invalid')).toBeNull();
    expect(document.getElementById(input.getAttribute('aria-describedby') ?? '')?.textContent).toBe('We never share it.');

    rerender(<TextField label="Email" value="a" onChange={onChange} hint="We never share it." error="Enter an email address." />);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    const [errorId] = (input.getAttribute('aria-describedby') ?? '').split(' ');
    expect(document.getElementById(errorId)?.textContent).toBe('Enter an email address.');
    expect(screen.queryByText('We never share it.')).toBeNull();

    fireEvent.change(input, { target: { value: 'ab' } });
    expect(onChange).toHaveBeenCalledWith('ab');
  });

  it('work the same for a text area and a select', () => {
    const onText = vi.fn();
    const onPick = vi.fn();
    render(
      <>
        <TextArea label="Description" value="" onChange={onText} rows={3} error="Too long." />
        <SelectField label="Role" value="client" onChange={onPick} options={[{ value: 'client', label: 'Customer' }, { value: 'admin', label: 'Administrator' }]} />
      </>,
    );
    const area = screen.getByLabelText('Description');
    expect(area.tagName).toBe('TEXTAREA');
    expect(area.getAttribute('rows')).toBe('3');
    expect(area.getAttribute('aria-invalid')).toBe('true');
    fireEvent.change(area, { target: { value: 'x' } });
    expect(onText).toHaveBeenCalledWith('x');
    fireEvent.change(screen.getByLabelText('Role'), { target: { value: 'admin' } });
    expect(onPick).toHaveBeenCalledWith('admin');
    expect(screen.getByRole('option', { name: 'Administrator' })).toBeTruthy();
  });

  it('submit button says what happens and is disabled while busy', () => {
    const { rerender } = render(<SubmitButton busy={false} label="Save" busyLabel="Saving…" form="f" />);
    const button = screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement;
    expect(button.disabled).toBe(false);
    expect(button.getAttribute('form')).toBe('f');
    rerender(<SubmitButton busy label="Save" busyLabel="Saving…" form="f" />);
    expect(screen.getByRole('button', { name: 'Saving…' })).toHaveProperty('disabled', true);
  });
});

describe('load states', () => {
  it('names a missing thing without a retry, and offers a retry for other failures', () => {
    const retry = vi.fn();
    const { rerender } = render(
      <ResourceError error={new ApiError(404, 'not_found', 'no such device')} onRetry={retry} notFound="This device does not exist (any more)." />,
    );
    expect(screen.getByText('This device does not exist (any more).')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Try again' })).toBeNull();

    rerender(<ResourceError error={new ApiError(503, 'unavailable', 'try later')} onRetry={retry} notFound="gone" />);
    expect(screen.getByText('try later')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(retry).toHaveBeenCalledTimes(1);
  });

  it('shows the spinner only until the first answer', () => {
    const base = { error: null, reload: () => {} };
    const { rerender } = render(<ResourceStates resource={{ ...base, data: null, loading: true }} loading="Loading devices…" />);
    expect(screen.getByRole('status').textContent).toBe('Loading devices…');
    rerender(<ResourceStates resource={{ ...base, data: { items: [] }, loading: true }} loading="Loading devices…" />);
    expect(screen.queryByRole('status')).toBeNull();
  });
});

describe('small pieces', () => {
  it('unread count reads "N unread" and is absent at zero', () => {
    const { rerender } = render(<UnreadCount count={3} />);
    expect(screen.getByTestId('unread').textContent).toBe('3 unread');
    rerender(<UnreadCount count={0} />);
    expect(screen.queryByTestId('unread')).toBeNull();
  });

  it('page head shows the back link, title, line and actions', () => {
    render(
      <PageHead title="Devices" sub="All meters." back={<a href="/back">Back</a>}>
        <button type="button">+ New device</button>
      </PageHead>,
    );
    expect(screen.getByRole('heading', { level: 1, name: 'Devices' })).toBeTruthy();
    expect(screen.getByText('All meters.').className).toBe('page-sub');
    expect(screen.getByRole('link', { name: 'Back' })).toBeTruthy();
    expect(screen.getByRole('button', { name: '+ New device' })).toBeTruthy();
  });

  it('a list table has its headers, a hidden actions column, and named row buttons', () => {
    const onDelete = vi.fn();
    render(
      <DataTable actions caption="Users" columns={['User', { label: 'Energy', numeric: true }]}>
        <tr>
          <td>ann</td>
          <td>1</td>
          <RowActions name="ann" onEdit={() => {}} onDelete={onDelete} cannotDelete="You cannot delete yourself" />
        </tr>
        <tr>
          <td>bob</td>
          <td>2</td>
          <RowActions name="bob" onEdit={() => {}} onDelete={onDelete} />
        </tr>
      </DataTable>,
    );
    expect(screen.getByRole('table', { name: 'Users' })).toBeTruthy();
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['User', 'Energy', 'Actions']);
    expect(screen.getByRole('columnheader', { name: 'Energy' }).className).toBe('num-head');
    const ann = screen.getByRole('button', { name: 'Delete ann' }) as HTMLButtonElement;
    expect(ann.disabled).toBe(true);
    expect(ann.title).toBe('You cannot delete yourself');
    fireEvent.click(screen.getByRole('button', { name: 'Delete bob' }));
    expect(onDelete).toHaveBeenCalledTimes(1);
  });
});

describe('modal', () => {
  function Opener({ onClose }: { onClose?: () => void }) {
    const [open, setOpen] = useState(false);
    const close = () => {
      onClose?.();
      setOpen(false);
    };
    return (
      <>
        <button type="button" onClick={() => setOpen(true)}>
          Open
        </button>
        {open ? (
          <Modal title="Rename" onClose={close} footer={<button type="button">Save</button>}>
            <label>
              Name <input />
            </label>
          </Modal>
        ) : null}
      </>
    );
  }

  it('opens modal, focuses its field, stops the page scrolling, and gives focus back on close', () => {
    render(<Opener />);
    const opener = screen.getByRole('button', { name: 'Open' });
    opener.focus();
    fireEvent.click(opener);
    const dialog = screen.getByRole('dialog', { name: 'Rename' }) as HTMLDialogElement;
    expect(dialog.tagName).toBe('DIALOG');
    expect(dialog.open).toBe(true);
    expect(dialog.classList.contains('modal-medium')).toBe(true);
    expect(document.activeElement).toBe(screen.getByLabelText('Name'));
    expect(document.body.style.overflow).toBe('hidden');

    fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.body.style.overflow).toBe('');
    expect(document.activeElement).toBe(opener);
  });

  it('turns Escape (the cancel event) into a request to close, and hears of a close by the browser', () => {
    const onClose = vi.fn();
    render(<Opener onClose={onClose} />);
    fireEvent.click(screen.getByRole('button', { name: 'Open' }));
    const dialog = screen.getByRole('dialog', { name: 'Rename' }) as HTMLDialogElement;
    const cancel = new Event('cancel', { cancelable: true });
    fireEvent(dialog, cancel);
    expect(cancel.defaultPrevented).toBe(true);
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(screen.queryByRole('dialog')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Open' }));
    (screen.getByRole('dialog', { name: 'Rename' }) as HTMLDialogElement).close();
    expect(onClose).toHaveBeenCalledTimes(2);
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('confirm dialog puts focus on Cancel, the safe choice', () => {
    render(
      <ConfirmDialog title="Delete device" onConfirm={() => Promise.resolve()} onClose={() => undefined}>
        <p>Gone for good.</p>
      </ConfirmDialog>,
    );
    expect(screen.getByRole('dialog', { name: 'Delete device' }).classList.contains('modal-small')).toBe(true);
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Cancel' }));
  });
});
