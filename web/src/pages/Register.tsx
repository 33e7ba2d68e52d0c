// A customer creates their own account (POST /api/auth/register) and is signed in by it; the
// PublicOnly guard around this page then opens their home.
import { Link } from 'react-router-dom';
import { api } from '../api';
import { FormAlert, TextField } from '../components/Field';
import { AuthFrame } from '../components/Layout';
import { usePageTitle } from '../hooks/misc';
import { useForm } from '../hooks/useForm';
import { useSession } from '../session/SessionContext';
import {
  checkAddress,
  checkEmail,
  checkFirstName,
  checkLastName,
  checkPassword,
  checkSame,
  checkUsername,
} from '../validation';

export function Register() {
  usePageTitle('Create an account');
  const { signIn } = useSession();
  const form = useForm(
    { username: '', password: '', confirm: '', first_name: '', last_name: '', email: '', address: '' },
    (values) => ({
      username: (v) => checkUsername(v.trim()),
      password: checkPassword,
      confirm: checkSame(() => values.password, 'The passwords do not match.'),
      first_name: checkFirstName,
      last_name: checkLastName,
      email: (v) => checkEmail(v.trim()),
      address: (v) => checkAddress(v.trim()),
    }),
  );

  const submit = form.onSubmit(async (v) => {
    const session = await api.register({
      username: v.username.trim(),
      password: v.password,
      first_name: v.first_name.trim(),
      last_name: v.last_name.trim(),
      email: v.email.trim(),
      address: v.address.trim(),
    });
    signIn(session);
  });

  return (
    <AuthFrame>
      <h1>Create an account</h1>
      <form onSubmit={submit} noValidate className="form">
        <div className="form-row">
          <TextField
            label="First name"
            name="first_name"
            autoComplete="given-name"
            value={form.values.first_name}
            onChange={form.set('first_name')}
            error={form.errors.first_name}
            autoFocus
          />
          <TextField
            label="Last name"
            name="last_name"
            autoComplete="family-name"
            value={form.values.last_name}
            onChange={form.set('last_name')}
            error={form.errors.last_name}
          />
        </div>
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          value={form.values.email}
          onChange={form.set('email')}
          error={form.errors.email}
        />
        <TextField
          label="Address"
          name="address"
          autoComplete="street-address"
          value={form.values.address}
          onChange={form.set('address')}
          error={form.errors.address}
          hint="Optional."
        />
        <TextField
          label="Username"
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          value={form.values.username}
          onChange={form.set('username')}
          error={form.errors.username}
          hint="3 to 64 letters, digits, dots, underscores or hyphens."
        />
        <div className="form-row">
          <TextField
            label="Password"
            name="password"
            type="password"
            autoComplete="new-password"
            value={form.values.password}
            onChange={form.set('password')}
            error={form.errors.password}
            hint="At least 8 characters."
          />
          <TextField
            label="Repeat password"
            name="confirm"
            type="password"
            autoComplete="new-password"
            value={form.values.confirm}
            onChange={form.set('confirm')}
            error={form.errors.confirm}
          />
        </div>
        <FormAlert message={form.serverError} />
        <button type="submit" className="button button-primary button-block" disabled={form.busy}>
          {form.busy ? 'Creating your account…' : 'Create account'}
        </button>
      </form>
      <p className="auth-switch">
        Already have an account? <Link to="/signin">Sign in</Link>
      </p>
    </AuthFrame>
  );
}
