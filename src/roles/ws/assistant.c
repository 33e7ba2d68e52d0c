/*
 * assistant.c — the support assistant as a chat peer ("to":"assistant").
 *
 * A question sent in chat is stored and echoed on the service thread
 * (chat.c), then handed here: a few worker threads take questions off a
 * locked queue and ask the support role over HTTP, POST
 * <support_service_host>/api/support/messages with the asker's own token
 * (so the data-grounded answers are about the asker's data), with a hard
 * timeout.  The answer, or a polite apology when support cannot be reached,
 * is stored and delivered as a chat message from "assistant".  Nothing here
 * runs on the lws service thread: a slow or dead support role never stalls
 * the sockets.
 */
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "util.h"
#include "ws.h"

#define WORKERS 4
#define QUEUE_MAX 256 /* questions waiting; more are answered "busy" at once */

static const char SORRY_UNREACHABLE[] =
    "Sorry, the assistant cannot be reached right now. Please try again in a moment, or write to an administrator.";

typedef struct question {
    struct question *next;
    char user[EMS_ID_LEN];
    char *token;
    char *text;
    char tz[65]; /* the asker's zone, or "" for support's default */
} question;

struct ws_assistant {
    ws_role *w;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    question *head, *tail;
    size_t queued;
    int stopping;
    size_t nthreads;
    pthread_t threads[WORKERS];
};

static void question_free(question *q) {
    if (!q) return;
    free(q->token);
    free(q->text);
    free(q);
}

/*
 * Support's base URL into out ("" when there is none).  Worked out per call,
 * as the timeout (ws_assistant_timeout_ms) is: the embedded HTTP port is
 * known only once the server listens, after the roles have started.
 */
static void support_base(const ws_assistant *a, char *out, size_t n) {
    const ems_role_env *env = a->w->env;
    const char *host = ems_conf_str(env->conf, "support_service_host");
    int port = env->http ? ems_http_port(env->http) : 0;
    if (!port) port = (int)ems_conf_int(env->conf, "port");
    if (host && *host) snprintf(out, n, "%s", host);
    else if (env->embedded && port > 0) snprintf(out, n, "http://127.0.0.1:%d", port);
    else out[0] = '\0';
    size_t len = strlen(out);
    while (len && out[len - 1] == '/') out[--len] = '\0'; /* "http://h/" and "http://h" name the same base */
}

/* Asks support one question, then stores and delivers its answer, or an apology. */
static void ask(ws_assistant *a, const question *q) {
    char base[512], url[600], why[128] = "";
    char *answer = NULL, *body = NULL;
    long status = 0;
    const char *reply = SORRY_UNREACHABLE, *source = "unavailable", *rule = NULL;
    json_t *in = json_pack("{s:s}", "text", q->text), *out = NULL;
    if (in && q->tz[0]) json_object_set_new(in, "tz", json_string(q->tz));
    support_base(a, base, sizeof base);
    if (!base[0] || !q->token || !in || !(body = json_dumps(in, JSON_COMPACT))) {
        snprintf(why, sizeof why, "%s",
                 !base[0]    ? "no support_service_host"
                 : !q->token ? "no token"
                             : "out of memory");
        goto answer;
    }
    snprintf(url, sizeof url, "%s/api/support/messages", base);
    ems_fetch_req req = {.method = "POST",
                         .url = url,
                         .bearer = q->token,
                         .json_body = body,
                         .timeout_ms = ems_conf_int(a->w->env->conf, "ws_assistant_timeout_ms")};
    if (ems_fetch(&req, &status, &answer, why, sizeof why) != EMS_OK) goto answer;
    out = json_loads(answer, 0, NULL);
    const char *r = json_string_value(json_object_get(out, "reply"));
    const char *src = json_string_value(json_object_get(out, "source"));
    if (status != 200 || !r || !*r || !src) {
        snprintf(why, sizeof why, "status %ld", status);
        goto answer;
    }
    reply = r;
    source = src;
    rule = json_string_value(json_object_get(out, "rule"));
answer:
    if (strcmp(source, "unavailable") == 0)
        ems_log(EMS_LOG_WARN, "ws.assistant_unavailable", "user_id=%s reason=\"%s\"", q->user, why);
    ws_chat_assistant_reply(a->w, q->user, reply, source, rule);
    json_decref(out);
    json_decref(in);
    free(answer);
    free(body);
}

static void *worker(void *arg) {
    ws_assistant *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->head && !a->stopping) pthread_cond_wait(&a->wake, &a->lock);
        if (a->stopping) break;
        question *q = a->head;
        a->head = q->next;
        if (!a->head) a->tail = NULL;
        a->queued--;
        pthread_mutex_unlock(&a->lock);
        ask(a, q);
        question_free(q);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

ems_rc ws_assistant_start(ws_role *w, ws_assistant **out) {
    ws_assistant *a = calloc(1, sizeof *a);
    if (!a) return EMS_NOMEM;
    a->w = w;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    ems_fetch_init();
    for (; a->nthreads < WORKERS; a->nthreads++)
        if (pthread_create(&a->threads[a->nthreads], NULL, worker, a) != 0) break;
    if (a->nthreads == 0) {
        ws_assistant_stop(a);
        return EMS_UNAVAILABLE;
    }
    *out = a;
    return EMS_OK;
}

ems_rc ws_assistant_ask(ws_assistant *a, const char *user, const char *token, const char *text, const char *tz) {
    question *q = calloc(1, sizeof *q);
    ems_rc rc = EMS_NOMEM;
    if (q && (q->text = strdup(text)) && (!token || (q->token = strdup(token)))) {
        snprintf(q->user, sizeof q->user, "%s", user);
        snprintf(q->tz, sizeof q->tz, "%s", tz ? tz : "");
        pthread_mutex_lock(&a->lock);
        rc = EMS_RATE_LIMITED;
        if (a->queued < QUEUE_MAX && !a->stopping) {
            if (a->tail) a->tail->next = q;
            else a->head = q;
            a->tail = q;
            a->queued++;
            rc = EMS_OK;
            pthread_cond_signal(&a->wake);
        }
        pthread_mutex_unlock(&a->lock);
    }
    if (rc == EMS_OK) return rc;
    question_free(q);
    ems_log(EMS_LOG_WARN, "ws.assistant_busy", "user_id=%s", user);
    return rc;
}

void ws_assistant_stop(ws_assistant *a) {
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    for (size_t i = 0; i < a->nthreads; i++) pthread_join(a->threads[i], NULL);
    while (a->head) {
        question *q = a->head;
        a->head = q->next;
        question_free(q);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
