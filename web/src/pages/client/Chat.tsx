// A customer's chat: two conversations side by side in a list — the administrators (answered by
// whichever of them is available; the team shows online while any administrator is connected) at
// /chat, and the support assistant (answers at once, from its rules, the customer's own data or
// a language model) at /chat/assistant. The old /assistant address leads here.
import { NavLink, useParams } from 'react-router-dom';
import { ChatView } from '../../components/ChatView';
import { InboxEntry } from '../../components/InboxEntry';
import { PageHead } from '../../components/PageHead';
import { usePageTitle } from '../../hooks/misc';
import { useLive } from '../../live/LiveContext';
import { ASSISTANT, type ChatMessage } from '../../live/state';
import { useConversations } from '../../live/useConversations';
import { useUser } from '../../session/SessionContext';

export function Chat() {
  const { peer } = useParams();
  const assistant = peer === ASSISTANT;
  usePageTitle(assistant ? 'Assistant' : 'Chat');
  const user = useUser();
  const { state } = useLive();
  useConversations();
  const lastOf = (conv: string): ChatMessage | null =>
    state.messages[conv]?.at(-1) ?? state.conversations[conv]?.last_message ?? null;
  const teamLast = lastOf(user.id);
  const assistantLast = lastOf(ASSISTANT);
  const unread = (state.messages[user.id] ?? []).filter((m) => m.sender_role === 'admin' && m.seen_at === null).length;
  const adminsOnline = Object.values(state.presence).some((p) => p.role === 'admin' && p.online);

  return (
    <>
      <PageHead title="Chat" sub="Write to the administrators about your account, devices or bills, or ask the assistant." />
      <div className="chat-layout">
        <nav className="card inbox chat-list" aria-label="Conversations">
          <ul>
            <li>
              <NavLink to="/chat" end className="inbox-item" data-testid="conversation-team">
                <InboxEntry
                  online={adminsOnline}
                  name="Administrators"
                  last={teamLast ? preview(teamLast, user.id) : 'Write to the team'}
                  at={teamLast?.created_at ?? null}
                  unread={assistant ? unread : 0}
                />
              </NavLink>
            </li>
            <li>
              <NavLink to="/chat/assistant" className="inbox-item" data-testid="conversation-assistant">
                <InboxEntry
                  online
                  name="Assistant"
                  last={assistantLast ? preview(assistantLast, user.id) : 'Answers at once'}
                  at={assistantLast?.created_at ?? null}
                />
              </NavLink>
            </li>
          </ul>
        </nav>
        <ChatView key={assistant ? ASSISTANT : user.id} peer={assistant ? { kind: 'assistant' } : { kind: 'team' }} />
      </div>
    </>
  );
}

function preview(message: ChatMessage, me: string): string {
  return message.sender_id === me ? `You: ${message.text}` : message.text;
}
