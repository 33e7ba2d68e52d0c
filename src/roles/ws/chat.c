/*
 * chat.c — what the clients' WebSocket messages do, and the chat history API.
 *
 * The model (docs/ws.md): a conversation belongs to one client and is named
 * by the client's id; on the other side stand the administrators as a team.
 * Any administrator may answer, every administrator sees every conversation,
 * and "seen" marks the other side's messages for the whole team.  A client
 * never reaches another client: it may only name an administrator (or no
 * one, meaning the team) as the recipient.
 *
 * Each user also has a conversation with the support assistant, stored as
 * "assistant:<user id>" and shown as "assistant": only that user and the
 * assistant are in it (administrators do not see it).
 *
 * Client messages (JSON text frames, each with a "type"):
 *   chat.send          {to?, text, tz?}       stored, then to the conversation (tz: the
 *                                             assistant's "yesterday" is in that zone)
 *                      {to:"assistant", text} stored, to the user, and asked (assistant.c)
 *   chat.typing        {to?}                  relayed, not stored
 *   chat.seen          {conversation?, up_to} stored, then relayed
 *   notification.read  {id}                   stored, then to the user's sessions
 *   ping               {}                     answered with pong
 * Any of them may carry "ref", the client's name for that frame (a string of
 * at most REF_MAX characters): an error frame about it carries it back, and
 * so do chat.send's own copy of the stored message and ping's pong.  The
 * handlers run on the service thread; each answers with an error frame for
 * the sender alone, or hands its delivery to ws_dispatch.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "ws.h"

#define TEXT_MAX 4000   /* bytes of one chat message */
#define BACKLOG_MAX 200 /* unseen chat messages replayed to a new session */
#define REF_MAX 64      /* characters of a client's ref */
#define MESSAGE_COLUMNS                                                                                                \
    "m.id, m.conversation, m.sender_id, m.sender_role, m.text, m.created_at, m.seen_at, p.username, m.source, m.rule"

json_t *ws_error(ems_rc rc, const char *message) {
    return json_pack("{s:s, s:s, s:s}", "type", "error", "code", ems_rc_code(rc), "message", message);
}

/* A chat.message frame from the MESSAGE_COLUMNS starting at column c. */
static json_t *message_json_at(const ems_rows *r, size_t i, size_t c) {
    json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:I}", "type", "chat.message", "id",
                          (json_int_t)ems_rows_int(r, i, c), "conversation", ems_rows_text(r, i, c + 1), "sender_id",
                          ems_rows_text(r, i, c + 2), "sender_role", ems_rows_text(r, i, c + 3), "text",
                          ems_rows_text(r, i, c + 4), "created_at", (json_int_t)ems_rows_int(r, i, c + 5));
    json_object_set_new(m, "seen_at",
                        ems_rows_null(r, i, c + 6) ? json_null() : json_integer(ems_rows_int(r, i, c + 6)));
    const char *name = ems_rows_text(r, i, c + 7);
    json_object_set_new(m, "sender_name", name ? json_string(name) : json_null());
    /* The stored name of an assistant conversation carries its user; the peer is what a client names. */
    if (strncmp(ems_rows_text(r, i, c + 1), WS_ASSISTANT_CONV, strlen(WS_ASSISTANT_CONV)) == 0)
        json_object_set_new(m, "conversation", json_string(WS_ASSISTANT));
    if (strcmp(ems_rows_text(r, i, c + 2), WS_ASSISTANT) == 0)
        json_object_set_new(m, "sender_name", json_string("Assistant"));
    /* An answer of the assistant says where it came from (and which rule); a person's message does not. */
    if (!ems_rows_null(r, i, c + 8)) json_object_set_new(m, "source", json_string(ems_rows_text(r, i, c + 8)));
    if (!ems_rows_null(r, i, c + 9)) json_object_set_new(m, "rule", json_string(ems_rows_text(r, i, c + 9)));
    return m;
}

static json_t *message_json(const ems_rows *r, size_t i) { return message_json_at(r, i, 0); }

/* The role a user id had when last seen here: EMS_ROLE_NONE if never seen. */
static ems_role role_of(ems_db *db, const char *id) {
    ems_rows *rows = NULL;
    ems_role role = EMS_ROLE_NONE;
    if (ems_db_query(db, &rows, "SELECT role FROM people WHERE id = $1", "s", id) == EMS_OK && ems_rows_count(rows))
        role = ems_role_parse(ems_rows_text(rows, 0, 0));
    ems_rows_free(rows);
    return role;
}

/*
 * Which conversation a message from `who` to `to` belongs to.  A client's is
 * its own, and `to` may only be an administrator; an administrator's is the
 * client `to`, who must not be an administrator.
 */
static ems_rc conversation_for(ems_db *db, const ems_principal *who, const char *to, char conv[EMS_ID_LEN],
                               const char **why) {
    if (to && !ems_uuid_valid(to)) {
        *why = "'to' is not a valid id";
        return EMS_BAD_REQUEST;
    }
    if (who->role == EMS_ROLE_CLIENT) {
        if (to && strcmp(to, who->id) != 0 && role_of(db, to) != EMS_ROLE_ADMIN) {
            *why = "a client may only write to the administrators";
            return EMS_FORBIDDEN;
        }
        snprintf(conv, EMS_ID_LEN, "%s", who->id);
        return EMS_OK;
    }
    if (!to) {
        *why = "'to' (the client's id) is required";
        return EMS_BAD_REQUEST;
    }
    if (strcmp(to, who->id) == 0 || role_of(db, to) == EMS_ROLE_ADMIN) {
        *why = "administrators write to clients, not to each other";
        return EMS_FORBIDDEN;
    }
    snprintf(conv, EMS_ID_LEN, "%s", to);
    return EMS_OK;
}

/* Chat text: 1..TEXT_MAX bytes, no control characters but newline and tab, not only blanks. */
static int text_ok(const json_t *t) {
    const char *s = json_string_value(t);
    size_t n = json_string_length(t);
    if (!s || n == 0 || n > TEXT_MAX || strlen(s) != n) return 0;
    int blank = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) return 0;
        if (*p != ' ' && *p != '\n' && *p != '\t') blank = 0;
    }
    return !blank;
}

/*
 * A frame's handler: on success it may set *answer, a frame for the sender
 * alone (the table says when the sender gets it); on failure it sets *why.
 */
typedef ems_rc (*frame_handler)(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in,
                                json_t **answer, const char **why);

/* Stores an answer of the assistant to `user` and delivers it to the user's sessions. */
static void assistant_reply(ws_role *w, ems_db *db, const char *user, const char *text, const char *source,
                            const char *rule) {
    char conv[EMS_ID_LEN + sizeof WS_ASSISTANT_CONV];
    snprintf(conv, sizeof conv, WS_ASSISTANT_CONV "%s", user);
    ems_rows *rows = NULL;
    /* Where the answer came from (rule, llm, fallback; unavailable when support was not reached) is kept with it. */
    ems_rc rc = ems_db_query(db, &rows,
                             "INSERT INTO messages (conversation, sender_id, sender_role, text, created_at, source, "
                             "rule) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, conversation, sender_id, "
                             "sender_role, text, created_at, seen_at, NULL, source, rule",
                             "ssssiss", conv, WS_ASSISTANT, WS_ASSISTANT, text, ems_now_ms(), source, rule);
    if (rc) {
        ems_log(EMS_LOG_WARN, "ws.assistant_reply_not_stored", "user_id=%s", user);
        return;
    }
    json_t *msg = message_json(rows, 0);
    ems_rows_free(rows);
    ws_dispatch(w, WS_TO_USER, user, NULL, msg);
    json_decref(msg);
}

void ws_chat_assistant_reply(ws_role *w, const char *user, const char *text, const char *source, const char *rule) {
    ems_db *db = ems_store_get(w->env->store);
    if (!db) {
        ems_log(EMS_LOG_WARN, "ws.assistant_reply_not_stored", "user_id=%s", user);
        return;
    }
    assistant_reply(w, db, user, text, source, rule);
    ems_store_put(w->env->store, db);
}

/*
 * The shape of an IANA zone name ("Area/City", "UTC", "Etc/GMT+5"): support
 * checks that the zone exists; this keeps anything else out of its request.
 */
static int zone_name_ok(const char *tz) {
    size_t n = strlen(tz);
    if (n == 0 || n > 64) return 0;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '/' ||
              *p == '_' || *p == '-' || *p == '+'))
            return 0;
    return 1;
}

static ems_rc on_send(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in, json_t **answer,
                      const char **why) {
    const char *to = NULL, *tz = NULL;
    json_t *text = NULL;
    char conv[EMS_ID_LEN + sizeof WS_ASSISTANT_CONV];
    if (json_unpack(in, "{s:s, s?:s, s:o, s?:s !}", "type", &(const char *){0}, "to", &to, "text", &text, "tz", &tz)) {
        *why = "chat.send takes {to?, text, tz?}";
        return EMS_BAD_REQUEST;
    }
    if (!text_ok(text)) {
        *why = "text must be 1-4000 bytes of text";
        return EMS_BAD_REQUEST;
    }
    if (tz && !zone_name_ok(tz)) {
        *why = "tz must be an IANA time zone such as Europe/Bucharest";
        return EMS_BAD_REQUEST;
    }
    int to_assistant = to && strcmp(to, WS_ASSISTANT) == 0;
    ems_rc rc = to_assistant ? EMS_OK : conversation_for(db, who, to, conv, why);
    if (to_assistant) snprintf(conv, sizeof conv, WS_ASSISTANT_CONV "%.36s", who->id);
    if (rc) return rc;
    ems_rows *rows = NULL;
    rc = ems_db_query(db, &rows,
                      "INSERT INTO messages (conversation, sender_id, sender_role, text, created_at) "
                      "VALUES ($1, $2, $3, $4, $5) RETURNING id, conversation, sender_id, sender_role, text, "
                      "created_at, seen_at, NULL, source, rule",
                      "ssssi", conv, who->id, ems_role_name(who->role), json_string_value(text), ems_now_ms());
    if (rc) {
        *why = "cannot store the message";
        return rc;
    }
    json_t *msg = message_json(rows, 0);
    ems_rows_free(rows);
    json_object_set_new(msg, "sender_name", json_string(who->username));
    if (to_assistant) {
        /*
         * The question goes to the asker's sessions only; the answer follows
         * from a worker, or now, on this thread's db handle, when none can take it.
         */
        ws_dispatch(w, WS_TO_USER, who->id, NULL, msg);
        if (ws_assistant_ask(w->assistant, who->id, token, json_string_value(text), tz) != EMS_OK)
            assistant_reply(w, db, who->id, WS_ASSISTANT_BUSY, "unavailable", NULL);
    } else {
        ws_dispatch(w, WS_TO_CONVERSATION, conv, NULL, msg);
    }
    *answer = msg; /* dispatched as text already: the sender's copy may gain a ref */
    return EMS_OK;
}

static ems_rc on_typing(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in,
                        json_t **answer, const char **why) {
    (void)token;
    (void)answer;
    const char *to = NULL;
    char conv[EMS_ID_LEN];
    if (json_unpack(in, "{s:s, s?:s !}", "type", &(const char *){0}, "to", &to)) {
        *why = "chat.typing takes {to?}";
        return EMS_BAD_REQUEST;
    }
    ems_rc rc = conversation_for(db, who, to, conv, why);
    if (rc) return rc;
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "chat.typing", "conversation", conv, "user_id",
                            who->id, "username", who->username, "role", ems_role_name(who->role));
    ws_dispatch(w, WS_TO_CONVERSATION, conv, who->id, msg);
    json_decref(msg);
    return EMS_OK;
}

static ems_rc on_seen(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in, json_t **answer,
                      const char **why) {
    (void)token;
    (void)answer;
    const char *conv = NULL;
    json_int_t up_to = 0;
    if (json_unpack(in, "{s:s, s?:s, s:I !}", "type", &(const char *){0}, "conversation", &conv, "up_to", &up_to) ||
        up_to < 1) {
        *why = "chat.seen takes {conversation?, up_to: a message id}";
        return EMS_BAD_REQUEST;
    }
    if (who->role == EMS_ROLE_CLIENT && !conv) conv = who->id;
    if (!conv || !ems_uuid_valid(conv)) {
        *why = "'conversation' must be the client's id";
        return EMS_BAD_REQUEST;
    }
    if (who->role == EMS_ROLE_CLIENT && strcmp(conv, who->id) != 0) {
        *why = "not your conversation";
        return EMS_FORBIDDEN;
    }
    /* Each side marks what the other side wrote. */
    const char *other = who->role == EMS_ROLE_ADMIN ? "client" : "admin";
    int64_t now = ems_now_ms();
    ems_rc rc = ems_db_exec(db,
                            "UPDATE messages SET seen_at = $1 WHERE conversation = $2 AND sender_role = $3 "
                            "AND id <= $4 AND seen_at IS NULL",
                            "issi", now, conv, other, (int64_t)up_to);
    if (rc) {
        *why = "cannot store the receipt";
        return rc;
    }
    json_t *msg = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "type", "chat.seen", "conversation", conv, "up_to", up_to,
                            "by", who->id, "role", ems_role_name(who->role), "seen_at", (json_int_t)now);
    ws_dispatch(w, WS_TO_CONVERSATION, conv, NULL, msg);
    json_decref(msg);
    return EMS_OK;
}

static ems_rc on_read(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in, json_t **answer,
                      const char **why) {
    (void)token;
    (void)answer;
    json_int_t id = 0;
    if (json_unpack(in, "{s:s, s:I !}", "type", &(const char *){0}, "id", &id)) {
        *why = "notification.read takes {id}";
        return EMS_BAD_REQUEST;
    }
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT read_at FROM notifications WHERE id = $1 AND user_id = $2", "is",
                             (int64_t)id, who->id);
    if (!rc && ems_rows_count(rows) == 0) {
        *why = "no such notification";
        rc = EMS_NOT_FOUND;
    }
    int64_t read_at = rc ? 0 : ems_rows_null(rows, 0, 0) ? ems_now_ms() : ems_rows_int(rows, 0, 0);
    if (!rc && ems_rows_null(rows, 0, 0))
        rc = ems_db_exec(db, "UPDATE notifications SET read_at = $1 WHERE id = $2 AND read_at IS NULL", "ii", read_at,
                         (int64_t)id);
    ems_rows_free(rows);
    if (rc) {
        if (!*why) *why = "cannot mark the notification read";
        return rc;
    }
    json_t *msg = json_pack("{s:s, s:I, s:I}", "type", "notification.read", "id", id, "read_at", (json_int_t)read_at);
    ws_dispatch(w, WS_TO_USER, who->id, NULL, msg);
    json_decref(msg);
    return EMS_OK;
}

static ems_rc on_ping(ws_role *w, ems_db *db, const ems_principal *who, const char *token, json_t *in, json_t **answer,
                      const char **why) {
    (void)w, (void)db, (void)who, (void)token, (void)in, (void)why;
    *answer = json_pack("{s:s}", "type", "pong");
    return *answer ? EMS_OK : EMS_INTERNAL;
}

/* Who gets a handler's answer: always, or only a sender that gave a ref (the others get the dispatch). */
enum answer_to { ANSWER_NONE, ANSWER_ALWAYS, ANSWER_IF_REF };

static const struct {
    const char *type;
    frame_handler fn;
    int needs_db;
    enum answer_to answer;
} frame_handlers[] = {
    {"chat.send", on_send, 1, ANSWER_IF_REF}, {"chat.typing", on_typing, 1, ANSWER_NONE},
    {"chat.seen", on_seen, 1, ANSWER_NONE},   {"notification.read", on_read, 1, ANSWER_NONE},
    {"ping", on_ping, 0, ANSWER_ALWAYS},
};

/*
 * Takes the client's "ref" out of the frame (the handlers' field checks do
 * not know it): 0 with *ref set to it, or to NULL when there is none; -1
 * when it is not a string of 1..REF_MAX characters.
 */
static int take_ref(json_t *in, json_t **ref) {
    json_t *r = json_object_get(in, "ref");
    *ref = NULL;
    if (!r) return 0;
    const char *s = json_string_value(r);
    size_t n = json_string_length(r), chars = 0;
    if (!s || n == 0 || strlen(s) != n) return -1;
    for (size_t i = 0; i < n; i++) chars += ((unsigned char)s[i] & 0xc0) != 0x80; /* UTF-8 lead bytes */
    if (chars > REF_MAX) return -1;
    *ref = json_incref(r);
    json_object_del(in, "ref");
    return 0;
}

void ws_chat_handle(ws_role *w, const ems_principal *who, const char *token, const char *data, size_t len,
                    json_t **reply) {
    json_error_t jerr;
    json_t *in = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *ref = NULL, *answer = NULL;
    const char *type = json_string_value(json_object_get(in, "type"));
    const char *why = "";
    ems_rc rc = EMS_OK;
    size_t i = 0, n = sizeof frame_handlers / sizeof frame_handlers[0];
    if (json_is_object(in) && take_ref(in, &ref) != 0) { /* a ref not worth echoing: the error has none */
        *reply = ws_error(EMS_BAD_REQUEST, "ref must be a string of 1-64 characters");
        goto cleanup;
    }
    if (!json_is_object(in) || !type) {
        *reply = ws_error(EMS_BAD_REQUEST, "expected a JSON object with a \"type\"");
        goto cleanup;
    }
    while (i < n && strcmp(frame_handlers[i].type, type) != 0) i++;
    if (i == n) {
        *reply =
            json_pack("{s:s, s:s, s:s+}", "type", "error", "code", "unknown_type", "message", "unknown type: ", type);
        goto cleanup;
    }
    ems_db *db = frame_handlers[i].needs_db ? ems_store_get(w->env->store) : NULL;
    if (frame_handlers[i].needs_db && !db) {
        rc = EMS_UNAVAILABLE;
        why = "database unavailable";
    } else {
        rc = frame_handlers[i].fn(w, db, who, token, in, &answer, &why);
        if (db) ems_store_put(w->env->store, db);
    }
    if (rc) *reply = ws_error(rc, why);
    else if (frame_handlers[i].answer == ANSWER_ALWAYS || (frame_handlers[i].answer == ANSWER_IF_REF && ref))
        *reply = json_incref(answer);
cleanup:
    if (*reply && ref) json_object_set(*reply, "ref", ref);
    json_decref(answer);
    json_decref(ref);
    json_decref(in);
}

void ws_chat_seen_person(ws_role *w, const ems_principal *who) {
    ems_db *db = ems_store_get(w->env->store);
    if (!db) return;
    if (ems_db_exec(db,
                    "INSERT INTO people (id, username, role, last_seen_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) "
                    "DO UPDATE SET username = excluded.username, role = excluded.role, "
                    "last_seen_at = excluded.last_seen_at",
                    "sssi", who->id, who->username, ems_role_name(who->role), ems_now_ms()))
        ems_log(EMS_LOG_WARN, "ws.person_not_recorded", "user_id=%s", who->id);
    ems_store_put(w->env->store, db);
}

/* {"type":"notification", "id", "created_at", "read_at": null, ...the event's fields} */
json_t *ws_notification_json(int64_t id, const char *payload, int64_t created_at) {
    json_t *msg = json_loads(payload, 0, NULL);
    if (!json_is_object(msg)) {
        json_decref(msg);
        msg = json_object();
    }
    json_t *kind = json_object_get(msg, "type");
    json_object_set_new(msg, "kind", json_is_string(kind) ? json_incref(kind) : json_string("alert"));
    json_object_set_new(msg, "type", json_string("notification"));
    json_object_set_new(msg, "id", json_integer(id));
    json_object_set_new(msg, "created_at", json_integer(created_at));
    json_object_set_new(msg, "read_at", json_null());
    return msg;
}

json_t *ws_chat_backlog(ws_role *w, const ems_principal *who) {
    json_t *frames = json_array();
    ems_rows *notes = NULL, *msgs = NULL;
    ems_db *db = ems_store_get(w->env->store);
    if (!db) return frames;
    int admin = who->role == EMS_ROLE_ADMIN;
    ems_rc rc = ems_db_query(db, &notes,
                             "SELECT id, payload, created_at FROM notifications WHERE user_id = $1 AND read_at IS NULL "
                             "ORDER BY id",
                             "s", who->id);
    /* Unseen messages from the other side, oldest first (the newest BACKLOG_MAX of them). */
    if (!rc)
        rc = ems_db_query(db, &msgs,
                          "SELECT * FROM (SELECT " MESSAGE_COLUMNS " FROM messages m LEFT JOIN people p ON "
                          "p.id = m.sender_id WHERE m.sender_role = $1 AND m.seen_at IS NULL AND (($2 = 1 AND "
                          "m.conversation NOT LIKE 'assistant:%') OR m.conversation = $3) ORDER BY m.id DESC "
                          "LIMIT $4) t ORDER BY id",
                          "sisi", admin ? "client" : "admin", (int64_t)admin, who->id, (int64_t)BACKLOG_MAX);
    ems_store_put(w->env->store, db);
    if (rc) {
        ems_log(EMS_LOG_WARN, "ws.backlog_failed", "user_id=%s", who->id);
        goto cleanup;
    }
    json_array_append_new(frames, json_pack("{s:s, s:{s:s, s:s, s:s}, s:I, s:I}", "type", "hello", "user", "id",
                                            who->id, "username", who->username, "role", ems_role_name(who->role),
                                            "unread_notifications", (json_int_t)ems_rows_count(notes),
                                            "unseen_messages", (json_int_t)ems_rows_count(msgs)));
    for (size_t i = 0; i < ems_rows_count(notes); i++)
        json_array_append_new(frames, ws_notification_json(ems_rows_int(notes, i, 0), ems_rows_text(notes, i, 1),
                                                           ems_rows_int(notes, i, 2)));
    for (size_t i = 0; i < ems_rows_count(msgs); i++) json_array_append_new(frames, message_json(msgs, i));
cleanup:
    ems_rows_free(notes);
    ems_rows_free(msgs);
    return frames;
}

/* ---- REST ---- */

ems_rc ws_conversations(ems_req *req, ems_resp *resp, void *ctx) {
    ws_role *w = ctx;
    int admin = req->who.role == EMS_ROLE_ADMIN;
    ems_db *db = ems_store_get(w->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    char mine[EMS_ID_LEN + sizeof WS_ASSISTANT_CONV]; /* the caller's conversation with the assistant */
    snprintf(mine, sizeof mine, WS_ASSISTANT_CONV "%s", req->who.id);
    /*
     * The last message of each conversation, and how many of the other side's
     * the caller has not seen.  Administrators see every client conversation
     * but only their own assistant conversation.
     */
    ems_rc rc = ems_db_query(
        db, &rows,
        "SELECT (SELECT count(*) FROM messages u WHERE u.conversation = m.conversation "
        "AND u.sender_role = $1 AND u.seen_at IS NULL), " MESSAGE_COLUMNS
        " FROM messages m LEFT JOIN people p ON p.id = m.sender_id "
        "WHERE m.id IN (SELECT max(id) FROM messages WHERE ($2 = 1 AND conversation NOT LIKE 'assistant:%') "
        "OR conversation = $3 OR conversation = $4 GROUP BY conversation) "
        "ORDER BY m.id DESC",
        "siss", admin ? "client" : "admin", (int64_t)admin, req->who.id, mine);
    ems_rows *names = NULL;
    if (!rc)
        rc = ems_db_query(db, &names,
                          "SELECT id, username FROM people WHERE id IN (SELECT DISTINCT conversation FROM messages "
                          "WHERE $1 = 1 OR conversation = $2)",
                          "is", (int64_t)admin, req->who.id);
    ems_store_put(w->env->store, db);
    if (rc) {
        ems_rows_free(rows);
        return ems_fail(resp, rc, "cannot list conversations");
    }
    json_t *items = json_array();
    int own_listed = 0;
    for (size_t i = 0; i < ems_rows_count(rows); i++) {
        /* Column 0 is the unread count; the message follows as message_json reads it. */
        const char *conv = ems_rows_text(rows, i, 2);
        if (strcmp(conv, mine) == 0) {
            json_t *last = message_json_at(rows, i, 1);
            json_object_del(last, "type");
            json_array_append_new(items, json_pack("{s:s, s:s, s:{s:s, s:s}, s:i, s:o}", "conversation", WS_ASSISTANT,
                                                   "peer", WS_ASSISTANT, "client", "id", req->who.id, "username",
                                                   req->who.username, "unread", 0, "last_message", last));
            continue;
        }
        own_listed |= strcmp(conv, req->who.id) == 0;
        const char *client_name = NULL;
        for (size_t k = 0; k < ems_rows_count(names); k++)
            if (strcmp(ems_rows_text(names, k, 0), conv) == 0) client_name = ems_rows_text(names, k, 1);
        json_t *last = message_json_at(rows, i, 1);
        json_object_del(last, "type");
        json_t *item = json_pack(
            "{s:s, s:o, s:I, s:o}", "conversation", conv, "client",
            json_pack("{s:s, s:o}", "id", conv, "username", client_name ? json_string(client_name) : json_null()),
            "unread", (json_int_t)ems_rows_int(rows, i, 0), "last_message", last);
        json_array_append_new(items, item);
    }
    if (!admin && !own_listed)
        json_array_append_new(items,
                              json_pack("{s:s, s:{s:s, s:s}, s:i, s:n}", "conversation", req->who.id, "client", "id",
                                        req->who.id, "username", req->who.username, "unread", 0, "last_message"));
    ems_rows_free(rows);
    ems_rows_free(names);
    return ems_reply_json(resp, 200, json_pack("{s:o}", "items", items));
}

ems_rc ws_messages(ems_req *req, ems_resp *resp, void *ctx) {
    ws_role *w = ctx;
    const char *peer = req->param[0], *before_s = ems_req_query(req, "before"), *limit_s = ems_req_query(req, "limit");
    int assistant = strcmp(peer, WS_ASSISTANT) == 0;
    if (!assistant && !ems_uuid_valid(peer)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", peer);
    char *end = NULL;
    long long before = before_s ? strtoll(before_s, &end, 10) : 0;
    if (before_s && (!*before_s || *end || before < 1))
        return ems_fail(resp, EMS_BAD_REQUEST, "before must be a message id");
    long long limit = limit_s ? strtoll(limit_s, &end, 10) : 50;
    if (limit_s && (!*limit_s || *end || limit < 1 || limit > 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "limit must be 1-100");

    ems_db *db = ems_store_get(w->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    /*
     * A client's conversation is its own: it names it by its own id or an
     * administrator's.  "assistant" names the caller's own assistant conversation.
     */
    char mine[EMS_ID_LEN + sizeof WS_ASSISTANT_CONV];
    snprintf(mine, sizeof mine, WS_ASSISTANT_CONV "%s", req->who.id);
    const char *conv = peer;
    ems_rc rc = EMS_OK;
    if (assistant) {
        conv = mine;
    } else if (req->who.role == EMS_ROLE_CLIENT && strcmp(peer, req->who.id) != 0) {
        if (role_of(db, peer) != EMS_ROLE_ADMIN) rc = ems_fail(resp, EMS_FORBIDDEN, "not your conversation");
        conv = req->who.id;
    } else if (req->who.role == EMS_ROLE_ADMIN && role_of(db, peer) == EMS_ROLE_ADMIN) {
        rc = ems_fail(resp, EMS_FORBIDDEN, "conversations are between a client and the administrators");
    }
    ems_rows *rows = NULL;
    if (!rc)
        rc = ems_db_query(db, &rows,
                          "SELECT * FROM (SELECT " MESSAGE_COLUMNS " FROM messages m LEFT JOIN people p ON "
                          "p.id = m.sender_id WHERE m.conversation = $1 AND ($2 = 0 OR m.id < $2) ORDER BY m.id DESC "
                          "LIMIT $3) t ORDER BY id",
                          "sii", conv, (int64_t)before, (int64_t)limit + 1);
    ems_store_put(w->env->store, db);
    if (rc) return rows ? (ems_rows_free(rows), rc) : ems_fail(resp, rc, "cannot read the conversation");
    size_t n = ems_rows_count(rows), skip = n > (size_t)limit ? 1 : 0;
    json_t *items = json_array();
    for (size_t i = skip; i < n; i++) {
        json_t *m = message_json(rows, i);
        json_object_del(m, "type");
        json_array_append_new(items, m);
    }
    ems_rows_free(rows);
    return ems_reply_json(resp, 200,
                          json_pack("{s:s, s:o, s:b}", "conversation", assistant ? WS_ASSISTANT : conv, "items", items,
                                    "has_more", (int)skip));
}
