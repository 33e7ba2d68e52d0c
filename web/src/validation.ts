// Local checks with the same rules the server applies (docs/api.md, "Validation"), so a form can
// point at the field before a round trip. The server stays the judge: its message is shown too.
import { ENERGY_CLASSES } from './api/types';

export type Check = (value: string) => string | null;

/** Length in characters as a person counts them (code points, not UTF-16 units). */
const length = (value: string) => Array.from(value).length;

const USERNAME = /^[A-Za-z0-9._-]+$/;

export const checkUsername: Check = (value) => {
  if (!value) return 'Enter a username.';
  if (length(value) < 3 || length(value) > 64) return 'A username has 3 to 64 characters.';
  if (!USERNAME.test(value)) return 'Use only letters, digits, dot, underscore and hyphen.';
  return null;
};

export const checkPassword: Check = (value) => {
  if (!value) return 'Enter a password.';
  if (length(value) < 8) return 'A password has at least 8 characters.';
  if (length(value) > 128) return 'A password has at most 128 characters.';
  return null;
};

/** An optional new password: empty keeps the current one. */
export const checkOptionalPassword: Check = (value) => (value ? checkPassword(value) : null);

const required =
  (label: string, max: number): Check =>
  (value) => {
    if (!value.trim()) return `Enter ${label}.`;
    if (length(value) > max) return `At most ${max} characters.`;
    return null;
  };

const optional =
  (max: number): Check =>
  (value) =>
    length(value) > max ? `At most ${max} characters.` : null;

export const checkFirstName = required('a first name', 100);
export const checkLastName = required('a last name', 100);
export const checkAddress = optional(200);

export const checkEmail: Check = (value) => {
  if (!value) return 'Enter an email address.';
  if (length(value) < 3 || length(value) > 254) return 'An email address has 3 to 254 characters.';
  const at = value.indexOf('@');
  if (at <= 0 || at !== value.lastIndexOf('@') || at === value.length - 1) {
    return 'An email address has one @ with text on both sides.';
  }
  return null;
};

export const checkRole: Check = (value) => (value === 'admin' || value === 'client' ? null : 'Choose a role.');

export const checkDeviceName = required('a name', 100);
export const checkDescription = optional(500);

export const checkMaxHourlyKwh: Check = (value) => {
  if (!value.trim()) return 'Enter the hourly limit in kWh.';
  const number = Number(value);
  if (!Number.isFinite(number)) return 'Enter a number, such as 2.5.';
  if (number <= 0) return 'The limit must be greater than 0.';
  if (number > 1_000_000) return 'The limit is at most 1,000,000 kWh.';
  return null;
};

export const checkEnergyClass: Check = (value) =>
  value === '' || (ENERGY_CLASSES as readonly string[]).includes(value) ? null : 'Choose a class from the list.';

export const checkSame =
  (other: () => string, message: string): Check =>
  (value) =>
    value === other() ? null : message;

export type Errors<K extends string> = Partial<Record<K, string>>;

/** Runs one check per field; the result holds only the fields that failed. */
export function validate<K extends string>(values: Record<K, string>, checks: Partial<Record<K, Check>>): Errors<K> {
  const errors: Errors<K> = {};
  for (const key of Object.keys(checks) as K[]) {
    const message = checks[key]?.(values[key]);
    if (message) errors[key] = message;
  }
  return errors;
}

export const hasErrors = (errors: Errors<string>) => Object.keys(errors).length > 0;
