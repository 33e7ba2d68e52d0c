// The support assistant (POST /api/support/messages): a question, an answer, and where the answer
// came from — a rule (some read the customer's own data), the language model, or the fallback.
// The browser's time zone goes with each question, so "yesterday" is the customer's yesterday.
// The conversation lives in this page only; chat with administrators is a separate feature.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { api } from '../../api';
import type { SupportSource } from '../../api/types';
import { FormAlert } from '../../components/Field';
import { usePageTitle } from '../../hooks/misc';
import { browserTimeZone } from '../../time';

const MAX_TEXT = 1000;

const SUGGESTIONS = [
  'How much did I use yesterday?',
  'Which of my devices uses most?',
  'Did I go over my limit?',
  'What is a kWh?',
];

const SOURCE_LABELS: Record<SupportSource, { label: string; title: string }> = {
  rule: { label: 'Rule', title: 'Answered by one of the assistant’s rules' },
  llm: { label: 'AI', title: 'Answered by the language model' },
  fallback: { label: 'Fallback', title: 'No rule matched; the standard answer' },
};

interface Message {
  id: number;
  from: 'you' | 'assistant';
  text: string;
  source?: SupportSource;
  rule?: string;
}

export function Assistant() {
  usePageTitle('Assistant');
  const [messages, setMessages] = useState<Message[]>([]);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const nextId = useRef(1);
  const log = useRef<HTMLOListElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    const list = log.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [messages, busy]);

  const ask = async (question: string) => {
    const trimmed = question.trim();
    if (busy) return;
    if (!trimmed) {
      setError('Write a question first.');
      input.current?.focus();
      return;
    }
    if (trimmed.length > MAX_TEXT) {
      setError(`A question has at most ${MAX_TEXT} characters.`);
      return;
    }
    setError(null);
    setBusy(true);
    setMessages((prev) => [...prev, { id: nextId.current++, from: 'you', text: trimmed }]);
    setText('');
    try {
      const answer = await api.askSupport(trimmed, browserTimeZone());
      setMessages((prev) => [
        ...prev,
        { id: nextId.current++, from: 'assistant', text: answer.reply, source: answer.source, rule: answer.rule },
      ]);
    } catch (reason) {
      setError(reason instanceof Error ? reason.message : String(reason));
      setText(trimmed);
    } finally {
      setBusy(false);
      input.current?.focus();
    }
  };

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    void ask(text);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void ask(text);
    }
  };

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Assistant</h1>
          <p className="page-sub">Ask about your consumption, limits and alerts, your devices or your account.</p>
        </div>
      </div>
      <section className="card assistant" aria-label="Conversation with the assistant">
        <ol className="assistant-log" ref={log} role="log" aria-live="polite" aria-label="Messages">
          {messages.length === 0 ? (
            <li className="assistant-intro">
              <p className="state-title">How can I help?</p>
              <p className="muted">Try one of these, or write your own question below.</p>
            </li>
          ) : null}
          {messages.map((message) => (
            <li key={message.id} className={`bubble-row bubble-row-${message.from}`}>
              <div className={`bubble bubble-${message.from}`} data-testid={`message-${message.from}`}>
                <span className="visually-hidden">{message.from === 'you' ? 'You: ' : 'Assistant: '}</span>
                <p>{message.text}</p>
                {message.source ? (
                  <span
                    className={`source source-${message.source}`}
                    title={SOURCE_LABELS[message.source].title}
                    data-testid="answer-source"
                  >
                    {SOURCE_LABELS[message.source].label}
                    {message.rule ? ` · ${message.rule.replace(/_/g, ' ')}` : ''}
                  </span>
                ) : null}
              </div>
            </li>
          ))}
          {busy ? (
            <li className="bubble-row bubble-row-assistant">
              <div className="bubble bubble-assistant bubble-typing" role="status">
                <span className="visually-hidden">The assistant is answering…</span>
                <span className="dots" aria-hidden="true">
                  <i />
                  <i />
                  <i />
                </span>
              </div>
            </li>
          ) : null}
        </ol>
        <div className="assistant-suggestions" role="group" aria-label="Suggested questions">
          {SUGGESTIONS.map((suggestion) => (
            <button
              key={suggestion}
              type="button"
              className="chip"
              disabled={busy}
              onClick={() => void ask(suggestion)}
            >
              {suggestion}
            </button>
          ))}
        </div>
        <form className="assistant-form" onSubmit={submit} noValidate>
          <label htmlFor="assistant-text" className="visually-hidden">
            Your question
          </label>
          <textarea
            id="assistant-text"
            ref={input}
            rows={2}
            value={text}
            maxLength={MAX_TEXT}
            placeholder="Ask a question… (Enter sends, Shift+Enter for a new line)"
            onChange={(event) => setText(event.target.value)}
            onKeyDown={onKeyDown}
          />
          <button type="submit" className="button button-primary" disabled={busy}>
            Send
          </button>
        </form>
        <FormAlert message={error} />
      </section>
    </>
  );
}
