// The four profile fields (first and last name, email, address) that registration, "My profile"
// and the administrator's user form share: their controls, their checks, and the trimming before
// the values are sent.
import type { FieldBinding } from '../hooks/useForm';
import { checkAddress, checkEmail, checkFirstName, checkLastName, type Check } from '../validation';
import { TextField } from './Field';

export type ProfileKey = 'first_name' | 'last_name' | 'email' | 'address';

export const PROFILE_CHECKS: Record<ProfileKey, Check> = {
  first_name: checkFirstName,
  last_name: checkLastName,
  email: (v) => checkEmail(v.trim()),
  address: (v) => checkAddress(v.trim()),
};

/** The profile part of a form's values, trimmed as the server stores it. */
export function trimProfile(values: Record<ProfileKey, string>): Record<ProfileKey, string> {
  return {
    first_name: values.first_name.trim(),
    last_name: values.last_name.trim(),
    email: values.email.trim(),
    address: values.address.trim(),
  };
}

interface ProfileFormFieldsProps {
  field: (key: ProfileKey) => FieldBinding;
  /**
   * Whose details these are: the user's own ones get the browser's autofill tokens (and, when
   * `named`, name attributes for password managers); someone else's, for an administrator, none.
   */
  own: boolean;
  named?: boolean;
  addressHint?: string;
  autoFocus?: boolean;
}

export function ProfileFormFields({ field, own, named = false, addressHint, autoFocus }: ProfileFormFieldsProps) {
  const extra = (key: ProfileKey, token: string) => ({
    ...(named ? { name: key } : {}),
    autoComplete: own ? token : 'off',
  });
  return (
    <>
      <div className="form-row">
        <TextField label="First name" {...extra('first_name', 'given-name')} {...field('first_name')} autoFocus={autoFocus} />
        <TextField label="Last name" {...extra('last_name', 'family-name')} {...field('last_name')} />
      </div>
      <TextField label="Email" type="email" {...extra('email', 'email')} {...field('email')} />
      <TextField label="Address" {...extra('address', 'street-address')} {...field('address')} hint={addressHint} />
    </>
  );
}
