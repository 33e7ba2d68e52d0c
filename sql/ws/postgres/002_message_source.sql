-- Where an answer of the assistant came from: source is what support said (rule, llm,
-- fallback) or unavailable when support could not be reached; rule is the rule's id when
-- source is rule.  Both stay NULL for messages people write, and for the assistant's
-- answers stored before this change.
ALTER TABLE messages ADD COLUMN source TEXT;
ALTER TABLE messages ADD COLUMN rule TEXT;
