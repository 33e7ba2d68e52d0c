// The administrators' chat: an inbox of every customer's conversation (newest first, with the
// messages nobody on the team has seen yet and the last message), and one conversation opened from
// it at /admin/chat/:id. Both follow the live connection; the list reloads after a reconnect.
// The administrator's own conversation with the assistant sits at the top, at /admin/chat/assistant.
import { Link, useParams } from 'react-router-dom';
import { ChatView } from '../../components/ChatView';
import { InboxEntry } from '../../components/InboxEntry';
import { PageHead } from '../../components/PageHead';
import { Empty, LoadError, Loading } from '../../components/States';
import { usePageTitle } from '../../hooks/misc';
import { useLive } from '../../live/LiveContext';
import { ASSISTANT, type ConversationSummary } from '../../live/state';
import { useConversations } from '../../live/useConversations';

/** Unread count of a conversation: the summary's, or more if unseen messages arrived since. */
export function unreadOf(summary: ConversationSummary, messages: { sender_role: string; seen_at: number | null }[] = []): number {
  const live = messages.filter((m) => m.sender_role === 'client' && m.seen_at === null).length;
  return Math.max(summary.unread, live);
}

export function Inbox() {
  usePageTitle('Chat');
  const { state } = useLive();
  const { loaded, error, retry } = useConversations();
  const assistantLast = state.conversations[ASSISTANT]?.last_message ?? state.messages[ASSISTANT]?.at(-1) ?? null;
  const items = Object.values(state.conversations)
    .filter((c) => c.conversation !== ASSISTANT)
    .sort(
    (a, b) => (b.last_message?.created_at ?? 0) - (a.last_message?.created_at ?? 0),
  );
  const online = (id: string) => state.presence[id]?.online ?? false;

  return (
    <>
      <PageHead title="Chat" sub="Every customer’s conversation with the administrators. Any administrator may answer." />
      <ul className="card inbox inbox-pinned" aria-label="Assistant">
        <li>
          <Link to="/admin/chat/assistant" className="inbox-item" data-testid="inbox-assistant">
            <InboxEntry
              online
              name="Assistant"
              last={assistantLast ? assistantLast.text : 'Your own questions to the support assistant'}
              side={false}
            />
          </Link>
        </li>
      </ul>
      {error ? <LoadError message={error} onRetry={retry} /> : null}
      {!loaded && !error ? <Loading label="Loading conversations…" /> : null}
      {loaded && items.length === 0 ? (
        <Empty title="No conversations yet">A conversation appears here when a customer writes.</Empty>
      ) : null}
      {items.length > 0 ? (
        <ul className="card inbox" aria-label="Conversations" data-testid="inbox">
          {items.map((item) => {
            const unread = unreadOf(item, state.messages[item.conversation]);
            const last = item.last_message;
            return (
              <li key={item.conversation}>
                <Link
                  to={`/admin/chat/${item.client.id}`}
                  className={unread > 0 ? 'inbox-item inbox-item-unread' : 'inbox-item'}
                  data-testid="inbox-item"
                >
                  <InboxEntry
                    online={online(item.client.id)}
                    name={
                      <>
                        {item.client.username}
                        <span className="visually-hidden">{online(item.client.id) ? ', online' : ', offline'}</span>
                      </>
                    }
                    last={last ? `${last.sender_role === 'admin' ? `${last.sender_name}: ` : ''}${last.text}` : 'No messages yet'}
                    at={last?.created_at ?? null}
                    unread={unread}
                  />
                </Link>
              </li>
            );
          })}
        </ul>
      ) : null}
    </>
  );
}

export function AdminConversation() {
  const { id = '' } = useParams();
  return id === ASSISTANT ? <AdminAssistant /> : <ClientConversation id={id} />;
}

function BackToInbox() {
  return (
    <Link to="/admin/chat" className="back-link">
      ← All conversations
    </Link>
  );
}

function AdminAssistant() {
  usePageTitle('Assistant');
  return (
    <>
      <PageHead title="Assistant" back={<BackToInbox />} />
      <ChatView peer={{ kind: 'assistant' }} />
    </>
  );
}

function ClientConversation({ id }: { id: string }) {
  const { state } = useLive();
  const { loaded, error, retry } = useConversations();
  const summary = Object.values(state.conversations).find((c) => c.conversation !== ASSISTANT && c.client.id === id) ?? null;
  const name = summary?.client.username ?? '';
  usePageTitle(name ? `Chat with ${name}` : 'Chat');

  return (
    <>
      <PageHead title={name ? `Chat with ${name}` : 'Chat'} back={<BackToInbox />} />
      {error ? <LoadError message={error} onRetry={retry} /> : null}
      {!loaded && !error ? <Loading label="Loading conversation…" /> : null}
      {loaded && !summary ? <Empty title="No such conversation">This customer has not written yet, or does not exist.</Empty> : null}
      {summary ? <ChatView key={summary.conversation} peer={{ kind: 'client', id: summary.client.id, username: summary.client.username }} /> : null}
    </>
  );
}
