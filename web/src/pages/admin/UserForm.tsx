// Create an account with its profile (POST /api/auth/accounts), or edit one: the profile through
// users (PATCH /api/users/{id}) and username, password or role through auth
// (PATCH /api/auth/accounts/{id}). Only changed fields are sent.
import { api } from '../../api';
import { profileSettled } from '../../api/eventually';
import type { AccountPatch, Profile, ProfilePatch, Role } from '../../api/types';
import { SelectField, TextField, UsernameField } from '../../components/Field';
import { FormDialog } from '../../components/Modal';
import { PROFILE_CHECKS, ProfileFormFields, trimProfile } from '../../components/ProfileFormFields';
import { useForm } from '../../hooks/useForm';
import { changedFields } from '../../lib/patch';
import { useSession } from '../../session/SessionContext';
import { checkOptionalPassword, checkPassword, checkRole, checkUsername } from '../../validation';

const ROLE_OPTIONS = [
  { value: 'client', label: 'Customer' },
  { value: 'admin', label: 'Administrator' },
];

interface UserFormProps {
  /** The user to edit; absent to create one. */
  user?: Profile;
  onClose: () => void;
  onSaved: (id: string) => void;
}

export function UserForm({ user, onClose, onSaved }: UserFormProps) {
  const { session, signOut, updateUser } = useSession();
  const editing = Boolean(user);
  const form = useForm(
    {
      username: user?.username ?? '',
      password: '',
      role: user?.role ?? 'client',
      first_name: user?.first_name ?? '',
      last_name: user?.last_name ?? '',
      email: user?.email ?? '',
      address: user?.address ?? '',
    },
    () => ({
      username: (v) => checkUsername(v.trim()),
      password: editing ? checkOptionalPassword : checkPassword,
      role: checkRole,
      ...PROFILE_CHECKS,
    }),
  );

  const submit = form.onSubmit(async (v) => {
    const role = v.role as Role;
    const profile = trimProfile(v);
    if (!user) {
      const account = await api.createAccount({ username: v.username.trim(), password: v.password, role, ...profile });
      await profileSettled(account);
      onSaved(account.id);
      return;
    }

    const profilePatch: ProfilePatch = changedFields(profile, user);
    const accountPatch: AccountPatch = {};
    if (v.username.trim() !== user.username) accountPatch.username = v.username.trim();
    if (v.password) accountPatch.password = v.password;
    if (role !== user.role) accountPatch.role = role;

    // The profile goes first: a new password or role for yourself ends your own session.
    if (Object.keys(profilePatch).length > 0) await api.updateProfile(user.id, profilePatch);
    if (Object.keys(accountPatch).length > 0) {
      const account = await api.updateAccount(user.id, accountPatch);
      await profileSettled(account);
    }

    if (session?.user.id === user.id) {
      if (accountPatch.password || accountPatch.role) {
        signOut('Your password or role changed. Sign in again.');
        return;
      }
      if (accountPatch.username) updateUser({ username: accountPatch.username });
    }
    onSaved(user.id);
  });

  return (
    <FormDialog
      title={user ? `Edit ${user.username}` : 'New user'}
      formId="user-form"
      onSubmit={submit}
      onClose={onClose}
      form={form}
      submitLabel={user ? 'Save changes' : 'Create user'}
    >
      <fieldset>
        <legend>Profile</legend>
        <ProfileFormFields field={form.field} own={false} addressHint="Optional." />
      </fieldset>
      <fieldset>
        <legend>Account</legend>
        <div className="form-row">
          <UsernameField {...form.field('username')} autoComplete="off" />
          <SelectField label="Role" {...form.field('role')} options={ROLE_OPTIONS} />
        </div>
        <TextField
          label={editing ? 'New password' : 'Password'}
          type="password"
          {...form.field('password')}
          autoComplete="new-password"
          hint={editing ? 'Leave empty to keep the current password.' : '8 to 128 characters.'}
        />
      </fieldset>
    </FormDialog>
  );
}
