/*
 * support.c — the support role: the customer-support assistant behind
 * POST /api/support/messages.
 *
 * A question goes, in order, to the rules (rules.h: fixed answers, and
 * answers from the caller's own data through the REST API, data.h), then to
 * an LLM if one is configured (llm.h), then to a polite fallback.  The rules
 * are loaded once at start and never change, so handlers on any number of
 * threads read them without a lock; the slow calls (API, LLM) hold none.
 */
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fetch.h"
#include "llm.h"
#include "log.h"
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
};

typedef struct support_role {
    ems_role_env *env;
    support_rules *rules;
    char *rules_path;
    const char *api_url; /* configured, or NULL: this process in embedded mode */
    long api_timeout_ms;
    support_llm llm;
} support_role;

/* The API base for data answers; "" when there is none (distributed mode without api_url). */
static void api_base(const support_role *s, char *out, size_t n) {
    if (s->api_url) snprintf(out, n, "%s", s->api_url);
    else if (s->env->embedded) snprintf(out, n, "http://127.0.0.1:%d", ems_http_port(s->env->http));
    else out[0] = '\0';
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
    char base[256];
    api_base(s, base, sizeof base);
    support_caller who = {.api_url = base,
                          .token = req->token,
                          .user_id = req->who.id,
                          .tz = tz,
                          .username = req->who.username,
                          .timeout_ms = s->api_timeout_ms,
                          .now_ms = ems_now_ms()};
    support_vars_set(&vars, "username", "%s", req->who.username);
    if (action) outcome = action->run(&who, &vars);
    return support_render(support_rule_template(rule, outcome), &vars);
}

static ems_rc support_message(ems_req *req, ems_resp *resp, void *ctx) {
    support_role *s = ctx;
    const char *text = NULL, *tz = NULL;
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s?:s}", "text", &text, "tz", &tz);
    if (rc) return rc;
    if (!text_ok(text))
        return ems_fail(resp, EMS_BAD_REQUEST, "text must be 1-%d characters and not blank", TEXT_MAX_CHARS);
    if (tz && !support_tz_valid(tz))
        return ems_fail(resp, EMS_BAD_REQUEST, "tz must be an IANA time zone such as Europe/Bucharest");
    if (!tz) tz = TZ_DEFAULT;

    const char *source = "fallback", *rule_id = NULL;
    char *reply = NULL;
    int score = 0;
    const support_rule *rule = support_rules_match(s->rules, text, &score);
    if (rule) {
        source = "rule";
        rule_id = support_rule_id(rule);
        reply = rule_answer(s, rule, req, tz);
    } else if (support_llm_ask(&s->llm, text, &reply) == EMS_OK) {
        source = "llm";
    } else {
        reply = strdup(support_rules_fallback(s->rules));
    }
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
    s->llm = (support_llm){ems_conf_str(c, "llm_api_url"), ems_conf_str(c, "llm_api_key"), ems_conf_str(c, "llm_model"),
                           support_rules_system_prompt(s->rules), ems_conf_int(c, "llm_timeout_ms")};
    if (!s->api_url && !env->embedded)
        ems_log(EMS_LOG_WARN, "support.no_api_url", "hint=\"set EMS_API_URL to the gateway for answers from data\"");
    rc = ems_http_routes(env->http, support_routes, sizeof support_routes / sizeof support_routes[0], s);
    if (rc) goto fail;
    char host[256] = "-";
    if (support_llm_configured(&s->llm)) support_url_host(s->llm.url, host, sizeof host);
    ems_log(EMS_LOG_INFO, "support.ready", "rules=%zu file=%s llm_host=%s", support_rules_count(s->rules),
            s->rules_path, host);
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
