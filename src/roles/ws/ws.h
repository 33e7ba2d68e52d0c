/*
 * ws.h — the ws role's private state, shared by its files.
 *
 * Threads and who owns what:
 *   - the lws service thread (server.c) owns every session and the maps
 *     that find them; it alone writes to sockets and handles client frames;
 *   - any other thread (the notification consumer, a peer replica's
 *     consumer) hands a delivery to it with ws_dispatch: a job goes on a
 *     locked queue and lws_cancel_service wakes the loop;
 *   - in distributed mode every delivery is also written to the outbox
 *     for each other live replica (replicas.c, whose thread keeps this
 *     replica's heartbeat), so that a message reaches whichever replica
 *     holds the recipient's connection.
 */
#ifndef EMS_ROLE_WS_H
#define EMS_ROLE_WS_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "role.h"

/* Who a delivery is for. */
typedef enum {
    WS_TO_USER,             /* every session of `user` */
    WS_TO_CONVERSATION,     /* the client `user` and every administrator */
    WS_PRESENCE_TO_ADMINS,  /* a presence frame for every administrator (coalesced: server.c) */
    WS_PRESENCE_TO_CLIENTS, /* a presence frame for every client (coalesced) */
    WS_REVOKE,              /* closes the sessions of `user` opened with a token version below `ver` (0: all) */
    WS_VERDICT,             /* auth's answer for the sockets waiting on question `seq` (tokens.c) */
} ws_target;

/* The close code of a session whose token expired or was revoked: sign in again. */
#define WS_CLOSE_SIGNED_OUT 4001

/* A frame to deliver; `text` is the JSON text sent as is. */
typedef struct ws_job {
    struct ws_job *next;
    ws_target target;
    char user[EMS_ID_LEN];    /* for USER / CONVERSATION */
    char exclude[EMS_ID_LEN]; /* sessions of this user are skipped ("" = none) */
    int64_t ver;              /* for REVOKE, VERDICT */
    uint64_t seq, epoch;      /* for VERDICT: the question, the revocations heard when it was asked */
    ems_rc verdict;           /* for VERDICT */
    char *text;               /* malloc'd; NULL for REVOKE, VERDICT */
    size_t len;
} ws_job;

typedef struct ws_server ws_server;
typedef struct ws_replicas ws_replicas;
typedef struct ws_assistant ws_assistant;
typedef struct ws_tokens ws_tokens;

/* The peer id of the support assistant in chat, and the prefix of its conversations (+ the user's id). */
#define WS_ASSISTANT "assistant"
#define WS_ASSISTANT_CONV "assistant:"
/* The assistant's answer when no worker can take a question. */
#define WS_ASSISTANT_BUSY "Sorry, the assistant is busy right now. Please try again in a moment."

typedef struct ws_role {
    ems_role_env *env;
    size_t max_message; /* bytes of one client message */
    unsigned rate;      /* client messages per second before the connection is closed */
    ws_server *server;
    ws_replicas *replicas; /* NULL in embedded mode */
    ws_assistant *assistant;
    ws_tokens *tokens;
} ws_role;

/* ---- server.c: the libwebsockets side ---- */

/* Listens on bind:port (0 = any free port) and starts the service thread. */
ems_rc ws_server_start(ws_role *w, const char *bind, int port, ws_server **out);
int ws_server_port(const ws_server *s);
void ws_server_stop(ws_server *s); /* accepts NULL */

/*
 * Hands a delivery to the service thread, from any thread.  Takes `text`
 * (malloc'd).  Deliveries are made in the order they were handed over.
 */
void ws_server_post(ws_server *s, ws_target target, const char *user, const char *exclude, char *text);

/* Closes the sessions of `user` whose token version is below `ver` (0: all of them), from any thread. */
void ws_server_revoke(ws_server *s, const char *user, int64_t ver);

/* auth's answer to question `seq` (ws_tokens_ask) for account `user`, token version `ver`, from a worker. */
void ws_server_verdict(ws_server *s, uint64_t seq, const char *user, int64_t ver, ems_rc verdict, uint64_t epoch);

/* A delivery from this replica: to the local sessions and, distributed, to the other replicas. */
void ws_dispatch(ws_role *w, ws_target target, const char *user, const char *exclude, json_t *msg);

/* ---- chat.c: what the clients' frames do (on the service thread) ---- */

/*
 * Handles one client message; on failure *reply is an error frame for the
 * sender alone.  `token` is the one the session was opened with (NULL if
 * unknown): a question to the assistant is asked with it.
 */
void ws_chat_handle(ws_role *w, const ems_principal *who, const char *token, const char *data, size_t len,
                    json_t **reply);

/* Stores the assistant's answer in the user's assistant conversation and delivers it (any thread). */
void ws_chat_assistant_reply(ws_role *w, const char *user, const char *text, const char *source, const char *rule);

/* Frames a new session gets first: hello, unread notifications, unseen chat messages. */
json_t *ws_chat_backlog(ws_role *w, const ems_principal *who);

/* A notification frame from its stored row. */
json_t *ws_notification_json(int64_t id, const char *payload, int64_t created_at);

/* Records who connected (people table). */
void ws_chat_seen_person(ws_role *w, const ems_principal *who);

/* An error frame {"type":"error","code":...,"message":...}. */
json_t *ws_error(ems_rc rc, const char *message);

/* REST handlers. */
ems_rc ws_conversations(ems_req *req, ems_resp *resp, void *ctx);
ems_rc ws_messages(ems_req *req, ems_resp *resp, void *ctx);

/* ---- assistant.c: the support assistant as a chat peer ---- */

/*
 * Starts the workers that ask support: at support_service_host, or in
 * embedded mode at this process's own HTTP port (without either, every
 * question gets an apology).
 */
ems_rc ws_assistant_start(ws_role *w, ws_assistant **out);
/*
 * Queues a question from `user` (asked with `token`, in time zone `tz`, NULL
 * for support's default); the answer comes later
 * as a chat message.  EMS_RATE_LIMITED when the queue is full (or EMS_NOMEM):
 * then nothing will answer, and the caller answers WS_ASSISTANT_BUSY.
 */
ems_rc ws_assistant_ask(ws_assistant *a, const char *user, const char *token, const char *text, const char *tz);
void ws_assistant_stop(ws_assistant *a); /* accepts NULL; waits for the questions being asked */

/* ---- tokens.c: is a verified token still good for its account? ---- */

/*
 * The answer to "is this token, already verified into `who`, still good?"
 * comes from auth (GET /api/auth/verify), asked by worker threads, never
 * on the service thread.  Verdicts: EMS_OK, EMS_UNAUTHORIZED when revoked,
 * EMS_UNAVAILABLE when auth cannot say (the caller refuses: fail closed).
 */
ems_rc ws_tokens_new(ws_role *w, ws_tokens **out);
/* Starts the workers; their answers go to `server` (ws_server_verdict).  EMS_UNAVAILABLE if none started. */
ems_rc ws_tokens_start(ws_tokens *t, ws_server *server);
/* Joins the workers (a question being asked ends within ws_auth_timeout_ms); the waiting ones are dropped. */
void ws_tokens_stop(ws_tokens *t); /* accepts NULL */
/*
 * What is known without asking (the cache, a revocation heard, auth down):
 * a verdict, or EMS_AGAIN when auth must be asked.  Service thread only.
 */
ems_rc ws_tokens_known(ws_tokens *t, const ems_principal *who);
/*
 * Queues the question, numbered `seq`; its answer comes to the service
 * thread as a WS_VERDICT job.  EMS_RATE_LIMITED when too many wait (or
 * EMS_NOMEM): then no answer will come.  Service thread only.
 */
ems_rc ws_tokens_ask(ws_tokens *t, const ems_principal *who, const char *token, uint64_t seq);
/* Records an answer (cached unless a revocation came meanwhile); returns the verdict to apply.  Service thread. */
ems_rc ws_tokens_settle(ws_tokens *t, const char *id, int64_t ver, ems_rc verdict, uint64_t epoch);
/* The account's tokens below `ver` (0: all) were revoked: remembered, the cached answer dropped.  Service thread. */
void ws_tokens_revoke(ws_tokens *t, const char *id, int64_t ver);
void ws_tokens_free(ws_tokens *t); /* accepts NULL; stops the workers first */

/* ---- replicas.c: distributed mode only ---- */

ems_rc ws_replicas_start(ws_role *w, ws_replicas **out);
/* Writes a delivery (its envelope) to the outbox for every other live replica; `ver` only for REVOKE. */
void ws_replicas_publish(ws_replicas *r, ws_target target, const char *user, const char *exclude, int64_t ver,
                         const char *text);
void ws_replicas_stop(ws_replicas *r); /* accepts NULL */
/* How many other replicas this one knows alive (from its last heartbeat); 0 for NULL. */
size_t ws_replicas_peers(ws_replicas *r);

#endif
