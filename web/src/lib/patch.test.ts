// changedFields: what an edit form sends is exactly the fields that differ from the stored ones.
import { describe, expect, it } from 'vitest';
import { changedFields } from './patch';

describe('changedFields', () => {
  it('keeps only the fields whose value differs', () => {
    const stored = { name: 'Boiler', max_hourly_kwh: 2, address: 'Main St 1' };
    expect(changedFields({ name: 'Boiler', max_hourly_kwh: 3, address: 'Main St 1' }, stored)).toEqual({ max_hourly_kwh: 3 });
  });

  it('answers an empty patch when nothing changed', () => {
    expect(changedFields({ first_name: 'Ann', email: 'ann@example.com' }, { first_name: 'Ann', email: 'ann@example.com' })).toEqual({});
  });

  it('sends a value cleared to null, and compares strictly ("2" is not 2)', () => {
    const stored: { energy_class: string | null; max_hourly_kwh: unknown } = { energy_class: 'A', max_hourly_kwh: '2' };
    expect(changedFields({ energy_class: null, max_hourly_kwh: 2 }, stored)).toEqual({ energy_class: null, max_hourly_kwh: 2 });
  });
});
