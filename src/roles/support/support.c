/*
 * support.c — the support role: the customer-support assistant behind
 * POST /api/support/messages.
 *
 * A question goes, in order, to the rules (rules.h: fixed answers, and
 * answers from the caller's own data through the REST API, data.h), then to
 * an LLM if one is configured (llm.h), then to a polite fallback.  The rules
 * are loaded once at start and never change, so handlers on any number of
 * threads read them without a lock; the slow calls (API, LLM) hold none.
 *
 * A handler runs on one of the server's few request threads.  In embedded
 * mode the data answers read the other roles in-process (ems_http_call): the
 * thread never waits on a socket of its own server, which with every thread
 * asking would wait for itself.  A question that must wait on the network —
 * the data of another process, the LLM — takes a slot first; there are fewer
 * slots than request threads, so /healthz and the rest of the API always find
 * one free, and a question finding no slot gets 503 with Retry-After at once.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "fetch.h"
#include "llm.h"
#include "log.h"
#include "tz.h"
#include "roles.h"
#include "rules.h"
#include "util.h"

#ifndef EMS_SOURCE_DIR
#define EMS_SOURCE_DIR "."
#endif

#define TEXT_MAX_CHARS 1000
#define TZ_DEFAULT "UTC"

static const ems_conf_def support_conf[] = {
    {"support_rules_file", "EMS_SUPPORT_RULES", EMS_CONF_STR, "", 0, 0,
     "support rules (default: the source tree's data/support/rules.json)"},
    {"api_url", "EMS_API_URL", EMS_CONF_STR, "", 0, 0,
     "REST API for answers from the caller's data (default: this process; with --role, give the gateway)"},
    {"support_api_timeout_ms", "EMS_SUPPORT_API_TIMEOUT_MS", EMS_CONF_INT, "2000", 50, 60000,
     "timeout of each REST call the assistant makes (ms)"},
    {"llm_api_url", "LLM_API_URL", EMS_CONF_STR, "", 0, 0, "OpenAI-compatible API for questions no rule answers"},
    {"llm_api_key", "LLM_API_KEY", EMS_CONF_SECRET, "", 0, 0, "key of the LLM API"},
    {"llm_model", "LLM_MODEL", EMS_CONF_STR, "", 0, 0, "model name for the LLM API"},
    {"llm_timeout_ms", "LLM_TIMEOUT_MS", EMS_CONF_INT, "8000", 100, 120000, "timeout of an LLM call (ms)"},
    {"support_max_waiting", "EMS_SUPPORT_MAX_WAITING", EMS_CONF_INT, "0", 0, 256,
     "questions waiting on the network at once (LLM, API of another process); more get 503 "
     "(0: one less than the HTTP threads)"},
};

#define RETRY_AFTER_S "1"

typedef struct support_role {
    ems_role_env *env;
    support_rules *rules;
    char *rules_path;
    const char *api_url; /* configured, or NULL: this process in embedded mode */
    long api_timeout_ms;
    support_llm llm;
    int max_waiting;    /* slots for questions that wait on the network */
    atomic_int waiting; /* slots taken */
} support_role;

/* How a data answer reaches the API, per request: in-process, or over HTTP with the caller's token. */
typedef struct api_ctx {
    const support_role *s;
    const ems_req *req;
} api_ctx;

static int get_local(void *ctx, const char *path, long *status, char **body) {
    const api_ctx *a = ctx;
    if (ems_http_call(a->s->env->http, "GET", path, &a->req->who, a->req->token, status, body) == EMS_OK) return 0;
    ems_log(EMS_LOG_WARN, "support.api_failed", "path=%.*s reason=\"out of memory\"", (int)strcspn(path, "?"), path);
    return -1;
}

static int get_remote(void *ctx, const char *path, long *status, char **body) {
    const api_ctx *a = ctx;
    size_t n = strlen(a->s->api_url) + strlen(path) + 1;
    char *url = malloc(n), why[160] = "";
    int rc = -1;
    if (!url) return -1;
    snprintf(url, n, "%s%s", a->s->api_url, path);
    ems_fetch_req fr = {"GET", url, a->req->token, NULL, a->s->api_timeout_ms};
    if (ems_fetch(&fr, status, body, why, sizeof why) == EMS_OK) rc = 0;
    else ems_log(EMS_LOG_WARN, "support.api_failed", "path=%.*s reason=\"%s\"", (int)strcspn(path, "?"), path, why);
    free(url);
    return rc;
}

/* In embedded mode, unless an API is configured, this process's own routes; else the API over HTTP; else none. */
static support_get_fn api_transport(const support_role *s) {
    if (s->api_url) return get_remote;
    return s->env->embedded ? get_local : NULL;
}

/* Takes a slot for a question that will wait on the network; 0 when none is free. */
static int slot_take(support_role *s) {
    if (atomic_fetch_add(&s->waiting, 1) < s->max_waiting) return 1;
    atomic_fetch_sub(&s->waiting, 1);
    return 0;
}

static void slot_give(support_role *s) { atomic_fetch_sub(&s->waiting, 1); }

static ems_rc busy(ems_resp *resp) {
    ems_rc rc = ems_reply_header(resp, "Retry-After", RETRY_AFTER_S);
    if (rc) return rc;
    return ems_fail(resp, EMS_UNAVAILABLE, "the assistant is busy: try again in a moment");
}

/* 1 if text is 1..TEXT_MAX_CHARS characters of UTF-8 with something besides white space in it. */
static int text_ok(const char *text) {
    char *flat = strdup(text);
    int ok = 0, blank = 1;
    if (!flat) return 0;
    for (char *p = flat; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' '; /* line breaks are fine in a question */
        if (*p != ' ') blank = 0;
    }
    ok = !blank && ems_text_ok(flat, 1, TEXT_MAX_CHARS);
    free(flat);
    return ok;
}

/* Answers from a rule: its fixed answer, or the template its data action picks. */
static char *rule_answer(const support_role *s, const support_rule *rule, const ems_req *req, const char *tz) {
    support_vars vars = {0};
    const support_action *action = support_rule_action(rule);
    const char *outcome = NULL;
    api_ctx api = {s, req};
    support_caller who = {.get = api_transport(s),
                          .get_ctx = &api,
                          .user_id = req->who.id,
                          .tz = tz,
                          .username = req->who.username,
                          .now_ms = ems_now_ms()};
    support_vars_set(&vars, "username", "%s", req->who.username);
    if (action) outcome = action->run(&who, &vars);
    return support_render(support_rule_template(rule, outcome), &vars);
}

static ems_rc support_message(ems_req *req, ems_resp *resp, void *ctx) {
    support_role *s = ctx;
    int slot = 0;
    const char *text = NULL, *tz = NULL;
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s?:s}", "text", &text, "tz", &tz);
    if (rc) return rc;
    if (!text_ok(text))
        return ems_fail(resp, EMS_BAD_REQUEST, "text must be 1-%d characters and not blank", TEXT_MAX_CHARS);
    if (tz && !ems_tz_valid(tz))
        return ems_fail(resp, EMS_BAD_REQUEST, "tz must be an IANA time zone such as Europe/Bucharest");
    if (!tz) tz = TZ_DEFAULT;

    const char *source = "fallback", *rule_id = NULL;
    char *reply = NULL;
    int score = 0;
    const support_rule *rule = support_rules_match(s->rules, text, &score);
    int waits = rule ? support_rule_action(rule) && api_transport(s) == get_remote : support_llm_configured(&s->llm);
    if (waits && !(slot = slot_take(s))) {
        ems_log(EMS_LOG_WARN, "support.busy", "user=%s waiting=%d", req->who.id, s->max_waiting);
        return busy(resp);
    }
    if (rule) {
        source = "rule";
        rule_id = support_rule_id(rule);
        reply = rule_answer(s, rule, req, tz);
    } else if (support_llm_ask(&s->llm, text, &reply) == EMS_OK) {
        source = "llm";
    } else {
        reply = strdup(support_rules_fallback(s->rules));
    }
    if (slot) slot_give(s);
    if (!reply) return EMS_NOMEM;
    ems_log(EMS_LOG_INFO, "support.answered", "user=%s source=%s rule=%s score=%d", req->who.id, source,
            rule_id ? rule_id : "-", score);
    json_t *body = json_pack("{s:s, s:s}", "reply", reply, "source", source);
    free(reply);
    if (!body) return EMS_NOMEM;
    if (rule_id) json_object_set_new(body, "rule", json_string(rule_id));
    return ems_reply_json(resp, 200, body);
}

static const ems_route support_routes[] = {
    {"POST", "/api/support/messages", EMS_ACCESS_USER, support_message},
};

static void support_stop(void *state) {
    support_role *s = state;
    if (!s) return;
    support_rules_free(s->rules);
    free(s->rules_path);
    free(s);
}

static char *default_rules_path(void) {
    static const char rel[] = "/data/support/rules.json";
    size_t n = strlen(EMS_SOURCE_DIR) + sizeof rel;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s", EMS_SOURCE_DIR, rel);
    return p;
}

static ems_rc support_start(ems_role_env *env, void **state) {
    const ems_conf *c = env->conf;
    char err[512] = "";
    support_role *s = calloc(1, sizeof *s);
    if (!s) return EMS_NOMEM;
    s->env = env;
    ems_fetch_init();
    const char *path = ems_conf_str(c, "support_rules_file");
    s->rules_path = path && *path ? strdup(path) : default_rules_path();
    ems_rc rc = s->rules_path ? EMS_OK : EMS_NOMEM;
    if (!rc) rc = support_rules_load(s->rules_path, support_actions, support_nactions, &s->rules, err, sizeof err);
    if (rc) {
        ems_log(EMS_LOG_ERROR, "support.bad_rules", "error=\"%s\"", err[0] ? err : "out of memory");
        goto fail;
    }
    const char *api = ems_conf_str(c, "api_url");
    s->api_url = api && *api ? api : NULL;
    s->api_timeout_ms = ems_conf_int(c, "support_api_timeout_ms");
    s->max_waiting = (int)ems_conf_int(c, "support_max_waiting");
    if (!s->max_waiting) {
        long threads = ems_conf_int(c, "http_threads");
        if (threads <= 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
        s->max_waiting = threads > 2 ? (int)threads - 1 : 1;
    }
    s->llm = (support_llm){ems_conf_str(c, "llm_api_url"), ems_conf_str(c, "llm_api_key"), ems_conf_str(c, "llm_model"),
                           support_rules_system_prompt(s->rules), ems_conf_int(c, "llm_timeout_ms")};
    if (!s->api_url && !env->embedded)
        ems_log(EMS_LOG_WARN, "support.no_api_url", "hint=\"set EMS_API_URL to the gateway for answers from data\"");
    rc = ems_http_routes(env->http, support_routes, sizeof support_routes / sizeof support_routes[0], s);
    if (rc) goto fail;
    char host[256] = "-";
    if (support_llm_configured(&s->llm)) support_url_host(s->llm.url, host, sizeof host);
    ems_log(EMS_LOG_INFO, "support.ready", "rules=%zu file=%s llm_host=%s data=%s max_waiting=%d",
            support_rules_count(s->rules), s->rules_path, host,
            api_transport(s) == get_local ? "in-process"
            : api_transport(s)            ? "http"
                                          : "none",
            s->max_waiting);
    *state = s;
    return EMS_OK;
fail:
    support_stop(s);
    return rc;
}

const ems_role_def ems_role_support = {
    .name = "support",
    .conf = support_conf,
    .nconf = sizeof support_conf / sizeof support_conf[0],
    .start = support_start,
    .stop = support_stop,
};
