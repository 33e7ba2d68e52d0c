// An address that matches no page.
import { Link } from 'react-router-dom';
import { usePageTitle } from '../hooks/misc';
import { homeFor, useSession } from '../session/SessionContext';

export function NotFound() {
  usePageTitle('Not found');
  const { session } = useSession();
  return (
    <div className="state state-empty">
      <h1 className="state-title">There is no page here.</h1>
      <p className="state-text">The address may be mistyped, or the page has moved.</p>
      <Link className="button button-primary" to={session ? homeFor(session.user.role) : '/signin'}>
        Go to the start page
      </Link>
    </div>
  );
}
