// A customer creates their own account (POST /api/auth/register) and is signed in by it; the
// PublicOnly guard around this page then opens their home.
import { Link } from 'react-router-dom';
import { api } from '../api';
import { FormAlert, SubmitButton, TextField, UsernameField } from '../components/Field';
import { AuthFrame } from '../components/Layout';
import { PROFILE_CHECKS, ProfileFormFields, trimProfile } from '../components/ProfileFormFields';
import { usePageTitle } from '../hooks/misc';
import { useForm } from '../hooks/useForm';
import { useSession } from '../session/SessionContext';
import { checkPassword, checkSame, checkUsername } from '../validation';

export function Register() {
  usePageTitle('Create an account');
  const { signIn } = useSession();
  const form = useForm(
    { username: '', password: '', confirm: '', first_name: '', last_name: '', email: '', address: '' },
    (values) => ({
      username: (v) => checkUsername(v.trim()),
      password: checkPassword,
      confirm: checkSame(() => values.password, 'The passwords do not match.'),
      ...PROFILE_CHECKS,
    }),
  );

  const submit = form.onSubmit(async (v) => {
    const session = await api.register({ username: v.username.trim(), password: v.password, ...trimProfile(v) });
    signIn(session);
  });

  return (
    <AuthFrame>
      <h1>Create an account</h1>
      <form onSubmit={submit} noValidate className="form">
        <ProfileFormFields field={form.field} own named addressHint="Optional." autoFocus />
        <UsernameField
          name="username"
          autoComplete="username"
          {...form.field('username')}
          hint="3 to 64 letters, digits, dots, underscores or hyphens."
        />
        <div className="form-row">
          <TextField
            label="Password"
            name="password"
            type="password"
            autoComplete="new-password"
            {...form.field('password')}
            hint="At least 8 characters."
          />
          <TextField
            label="Repeat password"
            name="confirm"
            type="password"
            autoComplete="new-password"
            {...form.field('confirm')}
          />
        </div>
        <FormAlert message={form.serverError} />
        <SubmitButton busy={form.busy} label="Create account" busyLabel="Creating your account…" block />
      </form>
      <p className="auth-switch">
        Already have an account? <Link to="/signin">Sign in</Link>
      </p>
    </AuthFrame>
  );
}
