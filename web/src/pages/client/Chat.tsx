// A customer's chat: two conversations side by side in a list — the administrators (answered by
// whichever of them is available; the team shows online while any administrator is connected) at
// /chat, and the support assistant (answers at once, from its rules, the customer's own data or
// a language model) at /chat/assistant. The old /assistant address leads here.
import { NavLink, useParams } from 'react-router-dom';
import { ChatView, messageTime } from '../../components/ChatView';
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
      <div className="page-head">
        <div>
          <h1>Chat</h1>
          <p className="page-sub">Write to the administrators about your account, devices or bills, or ask the assistant.</p>
        </div>
      </div>
      <div className="chat-layout">
        <nav className="card inbox chat-list" aria-label="Conversations">
          <ul>
            <li>
              <NavLink to="/chat" end className="inbox-item" data-testid="conversation-team">
                <span className={adminsOnline ? 'presence-dot presence-dot-online' : 'presence-dot'} aria-hidden="true" />
                <span className="inbox-main">
                  <span className="inbox-name">Administrators</span>
                  <span className="inbox-last muted">{teamLast ? preview(teamLast, user.id) : 'Write to the team'}</span>
                </span>
                <span className="inbox-side">
                  {teamLast ? <time className="muted">{messageTime(teamLast.created_at)}</time> : null}
                  {unread > 0 && assistant ? (
                    <span className="inbox-unread" data-testid="unread">
                      {unread}
                      <span className="visually-hidden"> unread</span>
                    </span>
                  ) : null}
                </span>
              </NavLink>
            </li>
            <li>
              <NavLink to="/chat/assistant" className="inbox-item" data-testid="conversation-assistant">
                <span className="presence-dot presence-dot-online" aria-hidden="true" />
                <span className="inbox-main">
                  <span className="inbox-name">Assistant</span>
                  <span className="inbox-last muted">{assistantLast ? preview(assistantLast, user.id) : 'Answers at once'}</span>
                </span>
                <span className="inbox-side">
                  {assistantLast ? <time className="muted">{messageTime(assistantLast.created_at)}</time> : null}
                </span>
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
