// Sign in with username and password; shows why the last session ended, if it ended by itself.
// Once signed in, the PublicOnly guard around this page moves on to the right page.
import { useEffect, useState } from 'react';
import { Link } from 'react-router-dom';
import { api } from '../api';
import { FormAlert, SubmitButton, TextField, UsernameField } from '../components/Field';
import { AuthFrame } from '../components/Layout';
import { usePageTitle } from '../hooks/misc';
import { useForm } from '../hooks/useForm';
import { useSession } from '../session/SessionContext';

export function SignIn() {
  usePageTitle('Sign in');
  const { signIn, notice, clearNotice } = useSession();
  const [shownNotice] = useState(notice);

  useEffect(() => {
    if (notice) clearNotice();
  }, [notice, clearNotice]);

  const form = useForm({ username: '', password: '' }, () => ({
    username: (v) => (v.trim() ? null : 'Enter your username.'),
    password: (v) => (v ? null : 'Enter your password.'),
  }));

  const submit = form.onSubmit(async ({ username, password }) => {
    const session = await api.login({ username: username.trim(), password });
    signIn(session);
  });

  return (
    <AuthFrame>
      <h1>Sign in</h1>
      {shownNotice && !form.serverError ? <FormAlert message={shownNotice} tone="info" /> : null}
      <form onSubmit={submit} noValidate className="form">
        <UsernameField name="username" autoComplete="username" {...form.field('username')} autoFocus />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          {...form.field('password')}
        />
        <FormAlert message={form.serverError} />
        <SubmitButton busy={form.busy} label="Sign in" busyLabel="Signing in…" block />
      </form>
      <p className="auth-switch">
        New here? <Link to="/register">Create an account</Link>
      </p>
    </AuthFrame>
  );
}
