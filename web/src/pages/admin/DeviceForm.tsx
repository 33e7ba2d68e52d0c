// Create a device (POST /api/devices) or edit one (PATCH /api/devices/{id}, changed fields only).
import { api } from '../../api';
import { ENERGY_CLASSES, type Device, type DevicePatch, type EnergyClass } from '../../api/types';
import { SelectField, TextArea, TextField } from '../../components/Field';
import { FormDialog } from '../../components/Modal';
import { useForm } from '../../hooks/useForm';
import { changedFields } from '../../lib/patch';
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
    const patch: DevicePatch = changedFields(fields, device);
    onSaved(Object.keys(patch).length > 0 ? await api.updateDevice(device.id, patch) : device);
  });

  return (
    <FormDialog
      title={device ? `Edit ${device.name}` : 'New device'}
      formId="device-form"
      onSubmit={submit}
      onClose={onClose}
      form={form}
      submitLabel={device ? 'Save changes' : 'Create device'}
    >
      <TextField label="Name" {...form.field('name')} autoComplete="off" />
      <div className="form-row">
        <TextField
          label="Hourly limit (kWh)"
          inputMode="decimal"
          {...form.field('max_hourly_kwh')}
          hint="An alert is sent when an hour's total goes over it."
          autoComplete="off"
        />
        <SelectField label="Energy class" {...form.field('energy_class')} options={CLASS_OPTIONS} />
      </div>
      <TextArea label="Description" rows={3} {...form.field('description')} hint="Optional." />
      <TextField
        label="Address"
        {...form.field('address')}
        hint="Where the meter is installed. Optional."
        autoComplete="off"
      />
    </FormDialog>
  );
}
