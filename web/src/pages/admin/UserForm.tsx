// Create an account with its profile (POST /api/auth/accounts), or edit one: the profile through
// users (PATCH /api/users/{id}) and username, password or role through auth
// (PATCH /api/auth/accounts/{id}). Only changed fields are sent.
import { api } from '../../api';
import { profileSettled } from '../../api/eventually';
import type { AccountPatch, Profile, ProfilePatch, Role } from '../../api/types';
import { FormAlert, SelectField, TextField } from '../../components/Field';
import { Modal } from '../../components/Modal';
import { useForm } from '../../hooks/useForm';
import { useSession } from '../../session/SessionContext';
import {
  checkAddress,
  checkEmail,
  checkFirstName,
  checkLastName,
  checkOptionalPassword,
  checkPassword,
  checkRole,
  checkUsername,
} from '../../validation';

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
      first_name: checkFirstName,
      last_name: checkLastName,
      email: (v) => checkEmail(v.trim()),
      address: (v) => checkAddress(v.trim()),
    }),
  );

  const submit = form.onSubmit(async (v) => {
    const role = v.role as Role;
    const profile = {
      first_name: v.first_name.trim(),
      last_name: v.last_name.trim(),
      email: v.email.trim(),
      address: v.address.trim(),
    };
    if (!user) {
      const account = await api.createAccount({ username: v.username.trim(), password: v.password, role, ...profile });
      await profileSettled(account);
      onSaved(account.id);
      return;
    }

    const profilePatch: ProfilePatch = {};
    for (const key of ['first_name', 'last_name', 'email', 'address'] as const) {
      if (profile[key] !== user[key]) profilePatch[key] = profile[key];
    }
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
    <Modal
      title={user ? `Edit ${user.username}` : 'New user'}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="user-form" className="button button-primary" disabled={form.busy}>
            {form.busy ? 'Saving…' : user ? 'Save changes' : 'Create user'}
          </button>
        </>
      }
    >
      <form id="user-form" onSubmit={submit} noValidate className="form">
        <fieldset>
          <legend>Profile</legend>
          <div className="form-row">
            <TextField
              label="First name"
              value={form.values.first_name}
              onChange={form.set('first_name')}
              error={form.errors.first_name}
              autoComplete="off"
            />
            <TextField
              label="Last name"
              value={form.values.last_name}
              onChange={form.set('last_name')}
              error={form.errors.last_name}
              autoComplete="off"
            />
          </div>
          <TextField
            label="Email"
            type="email"
            value={form.values.email}
            onChange={form.set('email')}
            error={form.errors.email}
            autoComplete="off"
          />
          <TextField
            label="Address"
            value={form.values.address}
            onChange={form.set('address')}
            error={form.errors.address}
            hint="Optional."
            autoComplete="off"
          />
        </fieldset>
        <fieldset>
          <legend>Account</legend>
          <div className="form-row">
            <TextField
              label="Username"
              value={form.values.username}
              onChange={form.set('username')}
              error={form.errors.username}
              autoComplete="off"
              autoCapitalize="none"
              spellCheck={false}
            />
            <SelectField
              label="Role"
              value={form.values.role}
              onChange={form.set('role')}
              error={form.errors.role}
              options={ROLE_OPTIONS}
            />
          </div>
          <TextField
            label={editing ? 'New password' : 'Password'}
            type="password"
            value={form.values.password}
            onChange={form.set('password')}
            error={form.errors.password}
            autoComplete="new-password"
            hint={editing ? 'Leave empty to keep the current password.' : '8 to 128 characters.'}
          />
        </fieldset>
        <FormAlert message={form.serverError} />
      </form>
    </Modal>
  );
}
