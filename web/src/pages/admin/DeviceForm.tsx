// Create a device (POST /api/devices) or edit one (PATCH /api/devices/{id}, changed fields only).
import { api } from '../../api';
import { ENERGY_CLASSES, type Device, type DevicePatch, type EnergyClass } from '../../api/types';
import { FormAlert, SelectField, TextArea, TextField } from '../../components/Field';
import { Modal } from '../../components/Modal';
import { useForm } from '../../hooks/useForm';
import { checkAddress, checkDescription, checkDeviceName, checkEnergyClass, checkMaxHourlyKwh } from '../../validation';

const CLASS_OPTIONS = [
  { value: '', label: 'Not rated' },
  ...ENERGY_CLASSES.map((energyClass) => ({ value: energyClass, label: energyClass })),
];

interface DeviceFormProps {
  device?: Device;
  onClose: () => void;
  onSaved: (device: Device) => void;
}

export function DeviceForm({ device, onClose, onSaved }: DeviceFormProps) {
  const form = useForm(
    {
      name: device?.name ?? '',
      max_hourly_kwh: device ? String(device.max_hourly_kwh) : '',
      energy_class: device?.energy_class ?? '',
      description: device?.description ?? '',
      address: device?.address ?? '',
    },
    () => ({
      name: checkDeviceName,
      max_hourly_kwh: checkMaxHourlyKwh,
      energy_class: checkEnergyClass,
      description: (v) => checkDescription(v.trim()),
      address: (v) => checkAddress(v.trim()),
    }),
  );

  const submit = form.onSubmit(async (v) => {
    const fields = {
      name: v.name.trim(),
      max_hourly_kwh: Number(v.max_hourly_kwh),
      energy_class: v.energy_class ? (v.energy_class as EnergyClass) : null,
      description: v.description.trim(),
      address: v.address.trim(),
    };
    if (!device) {
      onSaved(await api.createDevice(fields));
      return;
    }
    const patch: DevicePatch = {};
    if (fields.name !== device.name) patch.name = fields.name;
    if (fields.max_hourly_kwh !== device.max_hourly_kwh) patch.max_hourly_kwh = fields.max_hourly_kwh;
    if (fields.energy_class !== device.energy_class) patch.energy_class = fields.energy_class;
    if (fields.description !== device.description) patch.description = fields.description;
    if (fields.address !== device.address) patch.address = fields.address;
    onSaved(Object.keys(patch).length > 0 ? await api.updateDevice(device.id, patch) : device);
  });

  return (
    <Modal
      title={device ? `Edit ${device.name}` : 'New device'}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="device-form" className="button button-primary" disabled={form.busy}>
            {form.busy ? 'Saving…' : device ? 'Save changes' : 'Create device'}
          </button>
        </>
      }
    >
      <form id="device-form" onSubmit={submit} noValidate className="form">
        <TextField
          label="Name"
          value={form.values.name}
          onChange={form.set('name')}
          error={form.errors.name}
          autoComplete="off"
        />
        <div className="form-row">
          <TextField
            label="Hourly limit (kWh)"
            inputMode="decimal"
            value={form.values.max_hourly_kwh}
            onChange={form.set('max_hourly_kwh')}
            error={form.errors.max_hourly_kwh}
            hint="An alert is sent when an hour's total goes over it."
            autoComplete="off"
          />
          <SelectField
            label="Energy class"
            value={form.values.energy_class}
            onChange={form.set('energy_class')}
            error={form.errors.energy_class}
            options={CLASS_OPTIONS}
          />
        </div>
        <TextArea
          label="Description"
          rows={3}
          value={form.values.description}
          onChange={form.set('description')}
          error={form.errors.description}
          hint="Optional."
        />
        <TextField
          label="Address"
          value={form.values.address}
          onChange={form.set('address')}
          error={form.errors.address}
          hint="Where the meter is installed. Optional."
          autoComplete="off"
        />
        <FormAlert message={form.serverError} />
      </form>
    </Modal>
  );
}
