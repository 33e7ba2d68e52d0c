// Assign a device to a user chosen with the user picker (PUT /api/devices/{id}/owner).
import { useState } from 'react';
import { api } from '../../api';
import type { Device, Profile } from '../../api/types';
import { FormAlert } from '../../components/Field';
import { Modal } from '../../components/Modal';
import { UserPicker } from '../../components/UserPicker';
import { useAction } from '../../hooks/useAction';

interface AssignDialogProps {
  device: Device;
  onClose: () => void;
  onAssigned: (device: Device, owner: Profile) => void;
}

export function AssignDialog({ device, onClose, onAssigned }: AssignDialogProps) {
  const [selected, setSelected] = useState<Profile | null>(null);
  const { busy, error, setError, run } = useAction();

  const assign = async () => {
    if (!selected) {
      setError('Choose a user first.');
      return;
    }
    await run(async () => onAssigned(await api.assignDevice(device.id, selected.id), selected));
  };

  return (
    <Modal
      title={`Assign ${device.name}`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="button button-primary" onClick={assign} disabled={busy || !selected}>
            {busy ? 'Assigning…' : selected ? `Assign to ${selected.username}` : 'Assign'}
          </button>
        </>
      }
    >
      <UserPicker selected={selected} onSelect={setSelected} />
      <FormAlert message={error} />
    </Modal>
  );
}
