// A customer's chat with the administrators: one conversation, answered by whichever of them is
// available (the team shows online while any administrator is connected).
import { ChatView } from '../../components/ChatView';
import { usePageTitle } from '../../hooks/misc';
import { useUser } from '../../session/SessionContext';

export function Chat() {
  usePageTitle('Chat');
  const user = useUser();
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Chat</h1>
          <p className="page-sub">Write to the administrators about your account, devices or bills.</p>
        </div>
      </div>
      <ChatView conversation={user.id} client={null} />
    </>
  );
}
