// My profile, for every role: the profile (GET /api/users/me, PATCH /api/users/{id}) and the
// password change (PUT /api/auth/password), whose answer is a new token that replaces the old one.
import { useCallback, useState } from 'react';
import { api } from '../api';
import type { Profile as ProfileData } from '../api/types';
import { FormAlert, SubmitButton, TextField } from '../components/Field';
import { PageHead } from '../components/PageHead';
import { PROFILE_CHECKS, ProfileFormFields, trimProfile } from '../components/ProfileFormFields';
import { LoadError, Loading } from '../components/States';
import { formatDate, fullName, roleLabel } from '../format';
import { usePageTitle } from '../hooks/misc';
import { useForm, type Form } from '../hooks/useForm';
import { useResource } from '../hooks/useResource';
import { useSession, useUser } from '../session/SessionContext';
import { changedFields } from '../lib/patch';
import { checkPassword, checkSame } from '../validation';

export function Profile() {
  usePageTitle('My profile');
  const me = useResource(useCallback((signal) => api.me({ signal }), []));

  return (
    <>
      <PageHead title="My profile" sub="Your contact details and password." />
      {me.loading && !me.data ? <Loading label="Loading your profile…" /> : null}
      {me.error && !me.data ? <LoadError message={me.error.message} onRetry={me.reload} /> : null}
      {me.data ? (
        <div className="grid-2">
          <ProfileCard profile={me.data} onSaved={me.setData} />
          <PasswordCard />
        </div>
      ) : null}
    </>
  );
}

function ProfileCard({ profile, onSaved }: { profile: ProfileData; onSaved: (p: ProfileData) => void }) {
  const [saved, setSaved] = useState<string | null>(null);
  const form = useForm(
    {
      first_name: profile.first_name,
      last_name: profile.last_name,
      email: profile.email,
      address: profile.address,
    },
    () => PROFILE_CHECKS,
  );

  const submit = form.onSubmit(async (v) => {
    setSaved(null);
    const changed = changedFields(trimProfile(v), profile);
    if (Object.keys(changed).length === 0) {
      setSaved('Nothing to save: no field changed.');
      return;
    }
    const updated = await api.updateProfile(profile.id, changed);
    onSaved(updated);
    form.setValues({
      first_name: updated.first_name,
      last_name: updated.last_name,
      email: updated.email,
      address: updated.address,
    });
    setSaved('Your profile is saved.');
  });

  return (
    <section className="card" aria-labelledby="profile-title">
      <header className="card-head">
        <span className="avatar" aria-hidden="true">
          {(profile.first_name[0] ?? profile.username[0] ?? '?').toUpperCase()}
        </span>
        <div>
          <h2 id="profile-title">{fullName(profile) || profile.username}</h2>
          <p className="muted">
            <span data-testid="profile-username">{profile.username}</span> ·{' '}
            <span className={`badge badge-${profile.role}`}>{roleLabel(profile.role)}</span> · member since{' '}
            {formatDate(profile.created_at)}
          </p>
        </div>
      </header>
      <form onSubmit={submit} noValidate className="form">
        <ProfileFormFields field={form.field} own />
        <CardFormEnd form={form} saved={saved} label="Save profile" busyLabel="Saving…" />
      </form>
    </section>
  );
}

function PasswordCard() {
  const { signIn } = useSession();
  const user = useUser();
  const [saved, setSaved] = useState<string | null>(null);
  const form = useForm({ old_password: '', new_password: '', confirm: '' }, (values) => ({
    old_password: (v) => (v ? null : 'Enter your current password.'),
    new_password: checkPassword,
    confirm: checkSame(() => values.new_password, 'The passwords do not match.'),
  }));

  const submit = form.onSubmit(async (v) => {
    setSaved(null);
    const session = await api.changePassword(v.old_password, v.new_password);
    signIn(session);
    form.setValues({ old_password: '', new_password: '', confirm: '' });
    setSaved('Your password is changed. Other signed-in devices must sign in again.');
  });

  return (
    <section className="card" aria-labelledby="password-title">
      <header className="card-head">
        <div>
          <h2 id="password-title">Change password</h2>
          <p className="muted">You stay signed in here.</p>
        </div>
      </header>
      <form onSubmit={submit} noValidate className="form">
        <input type="text" name="username" autoComplete="username" hidden readOnly value={user.username} />
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          {...form.field('old_password')}
        />
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          {...form.field('new_password')}
          hint="8 to 128 characters."
        />
        <TextField
          label="Repeat new password"
          type="password"
          autoComplete="new-password"
          {...form.field('confirm')}
        />
        <CardFormEnd form={form} saved={saved} label="Change password" busyLabel="Changing…" />
      </form>
    </section>
  );
}

/** The end of a card's form: the server's refusal or what was saved, then the submit button. */
function CardFormEnd({
  form,
  saved,
  label,
  busyLabel,
}: {
  form: Pick<Form<string>, 'busy' | 'serverError'>;
  saved: string | null;
  label: string;
  busyLabel: string;
}) {
  return (
    <>
      <FormAlert message={form.serverError} />
      <FormAlert message={form.serverError ? null : saved} tone="success" />
      <div className="form-actions">
        <SubmitButton busy={form.busy} label={label} busyLabel={busyLabel} />
      </div>
    </>
  );
}
