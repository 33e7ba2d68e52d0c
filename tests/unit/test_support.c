/*
 * test_support.c — the support assistant's rules (the shipped file: every
 * rule fires on a typical question; whole-word and phrase matching; scoring;
 * deterministic ties; bad files refused with a message naming the file and
 * the rule), answer templates, the LLM request/reply handling, local dates,
 * data answers when the API cannot answer, and data answers over every one
 * of a customer's devices (a fake API that pages its lists like the real one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/data.h"
#include "support/llm.h"
#include "support/rules.h"

#define RULES_FILE EMS_SOURCE_DIR "/data/support/rules.json"

static support_rules *load_shipped(void) {
    char err[512] = "";
    support_rules *r = NULL;
    ems_rc rc = support_rules_load(RULES_FILE, support_actions, support_nactions, &r, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, EMS_OK);
    return r;
}

static support_rules *parse(const char *json, char *err, size_t n, ems_rc *rc) {
    support_rules *r = NULL;
    *rc = support_rules_parse(json, strlen(json), "test.json", support_actions, support_nactions, &r, err, n);
    return r;
}

static const support_rule *find_rule(const support_rules *r, const char *id) {
    for (size_t i = 0; i < support_rules_count(r); i++)
        if (strcmp(support_rule_id(support_rules_at(r, i)), id) == 0) return support_rules_at(r, i);
    return NULL;
}

static const char *match_id(const support_rules *r, const char *text) {
    const support_rule *rule = support_rules_match(r, text, NULL);
    return rule ? support_rule_id(rule) : NULL;
}

/* ---- the shipped rules ---- */

static const struct {
    const char *question, *rule;
} typical[] = {
    {"Hello!", "greeting"},
    {"good morning", "greeting"},
    {"Thank you so much", "thanks"},
    {"How do I read the chart?", "chart"},
    {"What is a kWh?", "kwh"},
    {"What does the hourly limit mean?", "hourly_limit"},
    {"What is an overconsumption alert?", "alerts"},
    {"How can I add a new device?", "add_device"},
    {"How do I change my password?", "password"},
    {"I want to update my profile and e-mail", "profile"},
    {"How can I contact an administrator?", "contact_admin"},
    {"Any tips to save energy?", "saving_tips"},
    {"How much is my bill this month?", "billing"},
    {"Who can see my personal data? Privacy?", "privacy"},
    {"Which time zone does the chart use?", "timezone"},
    {"What is the simulator for?", "simulator"},
    {"How much did I use yesterday?", "usage_yesterday"},
    {"hi, how many kWh did I consume yesterday", "usage_yesterday"},
    {"Which of my devices uses most?", "top_device"},
    {"Did I go over my limit?", "limit_exceeded"},
    {"did I exceed the limit?", "limit_exceeded"},
    {"have I exceeded my hourly limit", "limit_exceeded"},
    {"Hi, I forgot my password", "password"},
    {"what is the price of a kWh", "billing"},
    {"is my data safe", "privacy"},
    {"why does the chart have 25 hours", "timezone"},
    {"how can I lower my consumption", "saving_tips"},
};

static void shipped_rules_load(void **state) {
    (void)state;
    support_rules *r = load_shipped();
    assert_true(support_rules_count(r) >= 12);
    assert_true(support_rules_min_score(r) >= 1);
    assert_non_null(support_rules_fallback(r));
    assert_non_null(support_rules_system_prompt(r));
    support_rules_free(r);
}

static void every_rule_fires_on_a_typical_question(void **state) {
    (void)state;
    support_rules *r = load_shipped();
    for (size_t i = 0; i < sizeof typical / sizeof typical[0]; i++) {
        const char *got = match_id(r, typical[i].question);
        if (!got || strcmp(got, typical[i].rule) != 0)
            fail_msg("'%s' fired %s, expected %s", typical[i].question, got ? got : "nothing", typical[i].rule);
    }
    /* And every rule in the file is reached by at least one of them. */
    for (size_t i = 0; i < support_rules_count(r); i++) {
        const char *id = support_rule_id(support_rules_at(r, i));
        int seen = 0;
        for (size_t j = 0; j < sizeof typical / sizeof typical[0]; j++) seen |= strcmp(typical[j].rule, id) == 0;
        if (!seen) fail_msg("rule %s has no typical question in this test", id);
    }
    support_rules_free(r);
}

static void unrelated_questions_fire_nothing(void **state) {
    (void)state;
    support_rules *r = load_shipped();
    assert_null(match_id(r, "What is the capital of Mongolia?"));
    assert_null(match_id(r, "Tell me a joke about penguins"));
    assert_null(match_id(r, "!!! ???"));
    support_rules_free(r);
}

static void shipped_words_match_whole_words_only(void **state) {
    (void)state;
    support_rules *r = load_shipped();
    /* "hi" is in "this", "history" and "shipping"; "hey" in "they"; "max" in "maximal" is its own word. */
    assert_int_equal(support_rule_score(find_rule(r, "greeting"), "this history of shipping they said"), 0);
    assert_null(match_id(r, "this history of shipping they said"));
    /* "use" must not match inside "user" or "useful", nor "used" inside "unused". */
    const support_rule *usage = find_rule(r, "usage_yesterday");
    assert_int_equal(support_rule_score(usage, "user useful unused"), 0);
    assert_int_equal(support_rule_score(usage, "use"), 1);
    /* "chart" inside "charter", "limit" inside "limitless", "bill" inside "billion". */
    assert_null(match_id(r, "a charter of limitless billions"));
    support_rules_free(r);
}

/* ---- matching and scoring on small rule sets ---- */

#define RULES_HEAD "{\"min_score\": 3, \"fallback\": \"sorry\", \"system_prompt\": \"be brief\", \"rules\": ["

static void whole_words_and_phrases(void **state) {
    (void)state;
    char err[512] = "";
    ems_rc rc;
    support_rules *r = parse(RULES_HEAD "{\"id\": \"use\", \"keywords\": {\"use\": 3}, \"answer\": \"a\"},"
                                        "{\"id\": \"tz\", \"keywords\": {\"Time-Zone\": 3}, \"answer\": \"b\"}]}",
                             err, sizeof err, &rc);
    assert_int_equal(rc, EMS_OK);
    assert_null(match_id(r, "user"));
    assert_null(match_id(r, "username reuse abuse"));
    assert_string_equal(match_id(r, "what USE is it"), "use");
    assert_string_equal(match_id(r, "(use)"), "use");
    /* Phrases match consecutive tokens, whatever separates them, in any case. */
    assert_string_equal(match_id(r, "which time zone"), "tz");
    assert_string_equal(match_id(r, "TIME_ZONE?"), "tz");
    assert_null(match_id(r, "zone time"));
    assert_null(match_id(r, "time of the zone"));
    assert_null(match_id(r, "timezone"));
    support_rules_free(r);
}

static void scores_add_distinct_keywords(void **state) {
    (void)state;
    char err[512] = "";
    ems_rc rc;
    support_rules *r = parse(
        RULES_HEAD "{\"id\": \"a\", \"keywords\": {\"alpha\": 2, \"beta\": 1, \"alpha beta\": 5}, \"answer\": \"a\"},"
                   "{\"id\": \"b\", \"keywords\": {\"gamma\": 4}, \"answer\": \"b\"}]}",
        err, sizeof err, &rc);
    assert_int_equal(rc, EMS_OK);
    const support_rule *a = find_rule(r, "a");
    assert_int_equal(support_rule_score(a, "alpha"), 2);
    assert_int_equal(support_rule_score(a, "alpha alpha alpha"), 2); /* a keyword counts once */
    assert_int_equal(support_rule_score(a, "beta alpha"), 3);
    assert_int_equal(support_rule_score(a, "alpha beta"), 8);
    int score = -1;
    assert_null(support_rules_match(r, "alpha", &score)); /* 2 < min_score 3 */
    assert_int_equal(score, 0);
    assert_string_equal(support_rule_id(support_rules_match(r, "beta, alpha", &score)), "a");
    assert_int_equal(score, 3);
    /* The best score wins: 4 (gamma) against 3, then 8 against 4. */
    assert_string_equal(match_id(r, "gamma beta alpha"), "b");
    assert_string_equal(match_id(r, "gamma alpha beta"), "a");
    support_rules_free(r);
}

static void ties_are_deterministic(void **state) {
    (void)state;
    char err[512] = "";
    ems_rc rc;
    /* Equal scores: the higher priority wins, in either file order. */
    const char *orders[2] = {
        RULES_HEAD "{\"id\": \"low\", \"priority\": 1, \"keywords\": {\"meter\": 3}, \"answer\": \"l\"},"
                   "{\"id\": \"high\", \"priority\": 7, \"keywords\": {\"meter\": 3}, \"answer\": \"h\"}]}",
        RULES_HEAD "{\"id\": \"high\", \"priority\": 7, \"keywords\": {\"meter\": 3}, \"answer\": \"h\"},"
                   "{\"id\": \"low\", \"priority\": 1, \"keywords\": {\"meter\": 3}, \"answer\": \"l\"}]}",
    };
    for (int i = 0; i < 2; i++) {
        support_rules *r = parse(orders[i], err, sizeof err, &rc);
        assert_int_equal(rc, EMS_OK);
        assert_string_equal(match_id(r, "my meter"), "high");
        support_rules_free(r);
    }
    /* Equal scores and priorities: the smaller id wins, in either file order. */
    const char *ids[2] = {
        RULES_HEAD "{\"id\": \"zeta\", \"keywords\": {\"meter\": 3}, \"answer\": \"z\"},"
                   "{\"id\": \"beta\", \"keywords\": {\"meter\": 3}, \"answer\": \"b\"}]}",
        RULES_HEAD "{\"id\": \"beta\", \"keywords\": {\"meter\": 3}, \"answer\": \"b\"},"
                   "{\"id\": \"zeta\", \"keywords\": {\"meter\": 3}, \"answer\": \"z\"}]}",
    };
    for (int i = 0; i < 2; i++) {
        support_rules *r = parse(ids[i], err, sizeof err, &rc);
        assert_int_equal(rc, EMS_OK);
        for (int k = 0; k < 3; k++) assert_string_equal(match_id(r, "my meter"), "beta");
        support_rules_free(r);
    }
}

/* ---- bad files ---- */

static const struct {
    const char *json, *message;
} bad_files[] = {
    {"{\"min_score\": 3,", "test.json: line"},
    {"[]", "test.json:"},
    {"{\"min_score\": 0, \"fallback\": \"s\", \"system_prompt\": \"p\", \"rules\": [{}]}", "min_score"},
    {"{\"min_score\": 3, \"fallback\": \"s\", \"system_prompt\": \"p\", \"rules\": [], \"extra\": 1}", "test.json:"},
    {RULES_HEAD "]}", "'rules' must be a non-empty array"},
    {RULES_HEAD "{\"id\": \"ok\", \"keywords\": {\"a\": 3}, \"answer\": \"x\"}, 7]}", "rule #2: must be an object"},
    {RULES_HEAD "{\"id\": \"Bad Id\", \"keywords\": {\"a\": 3}, \"answer\": \"x\"}]}", "rule #1: 'id' must be"},
    {RULES_HEAD "{\"id\": \"dup\", \"keywords\": {\"a\": 3}, \"answer\": \"x\"},"
                "{\"id\": \"dup\", \"keywords\": {\"b\": 3}, \"answer\": \"y\"}]}",
     "rule 'dup' (#2): the id is used by an earlier rule"},
    {RULES_HEAD "{\"id\": \"w\", \"keywords\": {\"a\": 0}, \"answer\": \"x\"}]}", "rule 'w' (#1): keyword 'a': weight"},
    {RULES_HEAD "{\"id\": \"w\", \"keywords\": {\"a\": \"3\"}, \"answer\": \"x\"}]}",
     "rule 'w' (#1): keyword 'a': weight"},
    {RULES_HEAD "{\"id\": \"k\", \"keywords\": {\"?!\": 3}, \"answer\": \"x\"}]}",
     "rule 'k' (#1): keyword '?!' must have"},
    {RULES_HEAD "{\"id\": \"k\", \"keywords\": {}, \"answer\": \"x\"}]}", "rule 'k' (#1): 'keywords' must be"},
    {RULES_HEAD "{\"id\": \"k\", \"keywords\": {\"a\": 3}, \"answer\": \"x\", \"colour\": 1}]}", "rule 'k' (#1):"},
    {RULES_HEAD "{\"id\": \"n\", \"keywords\": {\"a\": 3}}]}", "rule 'n' (#1): a rule without 'data' needs 'answer'"},
    {RULES_HEAD "{\"id\": \"e\", \"keywords\": {\"a\": 3}, \"answer\": \"\"}]}", "rule 'e' (#1): 'answer' must be"},
    {RULES_HEAD "{\"id\": \"p\", \"keywords\": {\"a\": 3}, \"answer\": \"hi {nobody}\"}]}",
     "rule 'p' (#1): 'answer' uses the unknown placeholder {nobody}"},
    {RULES_HEAD "{\"id\": \"p\", \"keywords\": {\"a\": 3}, \"answer\": \"hi {username\"}]}",
     "rule 'p' (#1): 'answer' has a '{'"},
    {RULES_HEAD "{\"id\": \"d\", \"keywords\": {\"a\": 3}, \"data\": \"weather\", \"answers\": {}}]}",
     "rule 'd' (#1): 'data' names the unknown action 'weather'"},
    {RULES_HEAD "{\"id\": \"d\", \"keywords\": {\"a\": 3}, \"data\": \"usage_yesterday\","
                "\"answers\": {\"ok\": \"{total_kwh}\", \"no_devices\": \"none\"}}]}",
     "rule 'd' (#1): 'answers' lacks the outcome 'unavailable'"},
    {RULES_HEAD "{\"id\": \"d\", \"keywords\": {\"a\": 3}, \"data\": \"usage_yesterday\","
                "\"answers\": {\"ok\": \"{device}\", \"no_devices\": \"none\", \"unavailable\": \"u\"}}]}",
     "rule 'd' (#1): answer 'ok' uses the unknown placeholder {device}"},
    {RULES_HEAD "{\"id\": \"d\", \"keywords\": {\"a\": 3}, \"data\": \"usage_yesterday\","
                "\"answers\": {\"ok\": \"k\", \"no_devices\": \"n\", \"unavailable\": \"u\", \"maybe\": \"m\"}}]}",
     "rule 'd' (#1): 'answers' has 'maybe'"},
    {RULES_HEAD "{\"id\": \"d\", \"keywords\": {\"a\": 3}, \"data\": \"limit_alerts\", \"answer\": \"x\"}]}",
     "rule 'd' (#1): a rule with 'data' gives 'answers'"},
};

static void bad_files_are_refused_with_a_message(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        char err[512] = "";
        ems_rc rc;
        support_rules *r = parse(bad_files[i].json, err, sizeof err, &rc);
        if (rc != EMS_BAD_REQUEST || r) fail_msg("case %zu accepted: %s", i, bad_files[i].json);
        if (strncmp(err, "test.json", 9) != 0 || !strstr(err, bad_files[i].message))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err, bad_files[i].message);
    }
}

static void missing_file_is_refused(void **state) {
    (void)state;
    char err[512] = "";
    support_rules *r = NULL;
    assert_int_equal(
        support_rules_load("/nonexistent/rules.json", support_actions, support_nactions, &r, err, sizeof err),
        EMS_NOT_FOUND);
    assert_null(r);
    assert_non_null(strstr(err, "/nonexistent/rules.json"));
}

/* ---- templates ---- */

static void templates_render(void **state) {
    (void)state;
    support_vars vars = {0};
    support_vars_set(&vars, "username", "%s", "ana");
    support_vars_set(&vars, "total_kwh", "%.2f", 3.14159);
    support_vars_set(&vars, "total_kwh", "%.1f", 2.0); /* replaced, not added */
    assert_int_equal(vars.n, 2);
    char *s = support_render("Hi {username}: {total_kwh} kWh, {total_kwh} again, {unset}.", &vars);
    assert_string_equal(s, "Hi ana: 2.0 kWh, 2.0 again, .");
    free(s);
    /* Many repeats of a long value still fit. */
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    support_vars_set(&vars, "username", "%s", big);
    s = support_render("{username}{username}{username}{username}{username}{username}{username}", &vars);
    assert_int_equal(strlen(s), 7 * strlen(big));
    free(s);
    /* A value too long is cut at a character boundary. */
    char utf[1200] = "";
    for (int i = 0; i < 300; i++) strcat(utf, "\xc3\xa9"); /* é, 2 bytes */
    strcat(utf, "\xe2\x82\xac");                           /* €, 3 bytes, straddles the end */
    support_vars_set(&vars, "username", "%s", utf);
    size_t len = strlen(vars.v[0].value);
    assert_true(len < SUPPORT_VAR_LEN);
    assert_int_equal(len % 2, 0); /* whole é's only: the € and any half é are gone */
    assert_int_equal(memcmp(vars.v[0].value + len - 2, "\xc3\xa9", 2), 0);
    support_vars_set(&vars, "username", "%.508sx\xe2\x82\xac", utf); /* 512 bytes: the € loses its tail */
    assert_int_equal(strlen(vars.v[0].value), 509);
    support_vars_set(&vars, "username", "%.508s\xe2\x82\xac", utf); /* the € fits: 511 bytes */
    assert_int_equal(strlen(vars.v[0].value), 511);
}

static void shipped_data_rules_render_every_outcome(void **state) {
    (void)state;
    support_rules *r = load_shipped();
    for (size_t i = 0; i < support_rules_count(r); i++) {
        const support_rule *rule = support_rules_at(r, i);
        const support_action *a = support_rule_action(rule);
        if (!a) {
            assert_non_null(support_rule_template(rule, NULL));
            continue;
        }
        for (const char *const *o = a->outcomes; *o; o++) assert_non_null(support_rule_template(rule, *o));
        assert_null(support_rule_template(rule, "no_such_outcome"));
    }
    support_rules_free(r);
}

/* ---- the LLM request and reply ---- */

static void llm_endpoint(void **state) {
    (void)state;
    char *e = support_llm_endpoint("http://127.0.0.1:9999");
    assert_string_equal(e, "http://127.0.0.1:9999/v1/chat/completions");
    free(e);
    e = support_llm_endpoint("https://api.example.com/");
    assert_string_equal(e, "https://api.example.com/v1/chat/completions");
    free(e);
    e = support_llm_endpoint("https://api.example.com/openai/v1/chat/completions");
    assert_string_equal(e, "https://api.example.com/openai/v1/chat/completions");
    free(e);
}

static void llm_request_body(void **state) {
    (void)state;
    support_llm llm = {"http://x", "k", "fake-model", "be brief", 1000};
    char *body = support_llm_request(&llm, "why \"quotes\"?");
    json_t *doc = json_loads(body, 0, NULL);
    const char *model, *r0, *c0, *r1, *c1;
    json_int_t max_tokens;
    double temperature;
    assert_int_equal(json_unpack(doc, "{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:I, s:f}", "model", &model, "messages",
                                 "role", &r0, "content", &c0, "role", &r1, "content", &c1, "max_tokens", &max_tokens,
                                 "temperature", &temperature),
                     0);
    assert_string_equal(model, "fake-model");
    assert_string_equal(r0, "system");
    assert_string_equal(c0, "be brief");
    assert_string_equal(r1, "user");
    assert_string_equal(c1, "why \"quotes\"?");
    assert_true(max_tokens >= 100 && max_tokens <= 400);
    assert_true(temperature < 0.5);
    assert_null(strstr(body, "\"k\"")); /* the key is a header, never the body */
    json_decref(doc);
    free(body);
}

static void llm_reply_parsing(void **state) {
    (void)state;
    char *s =
        support_llm_parse("{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"  Hi there.\\n\"}}]}");
    assert_string_equal(s, "Hi there.");
    free(s);
    assert_null(support_llm_parse("not json"));
    assert_null(support_llm_parse("{\"choices\": []}"));
    assert_null(support_llm_parse("{\"choices\": [{\"message\": {\"content\": 7}}]}"));
    assert_null(support_llm_parse("{\"choices\": [{\"message\": {\"content\": \"   \"}}]}"));
    assert_null(support_llm_parse("{\"error\": {\"message\": \"bad key\"}}"));
    /* Long replies are cut to 2000 characters. */
    size_t n = 5000;
    char *big = malloc(n + 100);
    strcpy(big, "{\"choices\": [{\"message\": {\"content\": \"");
    size_t off = strlen(big);
    memset(big + off, 'a', n);
    strcpy(big + off + n, "\"}}]}");
    s = support_llm_parse(big);
    assert_int_equal(strlen(s), 2000);
    free(s);
    free(big);
}

static void llm_not_configured_declines(void **state) {
    (void)state;
    char *reply = NULL;
    support_llm none = {"", "", "", "p", 1000};
    assert_int_equal(support_llm_ask(&none, "hello", &reply), EMS_DECLINED);
    support_llm no_key = {"http://127.0.0.1:1", "", "m", "p", 1000};
    assert_int_equal(support_llm_ask(&no_key, "hello", &reply), EMS_DECLINED);
    assert_null(reply);
}

/* ---- data answers without an API ---- */

/* A fake API: answers every GET with a fixed status and body, or with no answer at all. */
typedef struct fixed_api {
    int no_answer;
    long status;
    const char *body;
} fixed_api;

static int fixed_get(void *ctx, const char *path, long *status, char **body) {
    const fixed_api *f = ctx;
    (void)path;
    if (f->no_answer) return -1;
    *status = f->status;
    *body = strdup(f->body);
    return *body ? 0 : -1;
}

static void data_answers_without_api_are_unavailable(void **state) {
    (void)state;
    /* No API, one that does not answer, errors, and nonsense: "unavailable", never a number. */
    fixed_api apis[] = {{1, 0, ""}, {0, 503, "{\"error\":{}}"}, {0, 200, "not json"}, {0, 200, "{\"items\":7}"}};
    for (size_t u = 0; u <= sizeof apis / sizeof apis[0]; u++) {
        support_caller who = {.get = u ? fixed_get : NULL,
                              .get_ctx = u ? &apis[u - 1] : NULL,
                              .user_id = "6f1c2a1e-0b7d-4c1a-9e3f-2d4b5a6c7d8e",
                              .tz = "UTC",
                              .username = "ana",
                              .now_ms = 1774744200000LL};
        for (size_t i = 0; i < support_nactions; i++) {
            support_vars vars = {0};
            assert_string_equal(support_actions[i].run(&who, &vars), "unavailable");
            for (size_t v = 0; v < vars.n; v++) assert_string_not_equal(vars.v[v].name, "total_kwh");
        }
    }
}

/*
 * A fake API with `ndev` devices owned by the caller, listed as the devices
 * role lists them (at most 100 a page, limit/offset, the total alongside);
 * device i used (i + 1) / 100 kWh over any range, and only the last device
 * passed its limit, an hour before now.
 */
#define OWNER "6f1c2a1e-0b7d-4c1a-9e3f-2d4b5a6c7d8e"
#define NOW_MS 1774744200000LL

typedef struct paged_api {
    int ndev;
    int calls, device_pages, bad_pages;
} paged_api;

static void device_id(int i, char out[37]) { snprintf(out, 37, "00000000-0000-4000-8000-%012d", i); }

static int device_index(const char *id) {
    int i = -1;
    return sscanf(id, "00000000-0000-4000-8000-%12d", &i) == 1 ? i : -1;
}

static long query_long(const char *path, const char *name, long dflt) {
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *q = strchr(path, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, key, strlen(key)) == 0) return strtol(p + 1 + strlen(key), NULL, 10);
    return dflt;
}

static int paged_get(void *ctx, const char *path, long *status, char **body) {
    paged_api *api = ctx;
    json_t *doc = NULL;
    char id[37];
    api->calls++;
    *status = 200;
    if (strncmp(path, "/api/devices?", 13) == 0) {
        long limit = query_long(path, "limit", 20), offset = query_long(path, "offset", 0);
        api->device_pages++;
        if (limit < 1 || limit > 100 || offset < 0 || !strstr(path, "owner=" OWNER)) {
            api->bad_pages++;
            *status = 400;
            doc = json_pack("{s:{s:s}}", "error", "code", "bad_request");
        } else {
            json_t *items = json_array();
            for (long i = offset; i < offset + limit && i < api->ndev; i++) {
                char name[32];
                device_id((int)i, id);
                snprintf(name, sizeof name, "meter %03ld", i);
                json_array_append_new(items, json_pack("{s:s, s:s}", "id", id, "name", name));
            }
            doc = json_pack("{s:o, s:i, s:i, s:i}", "items", items, "total", api->ndev, "limit", (int)limit, "offset",
                            (int)offset);
        }
    } else if (strncmp(path, "/api/consumption/", 17) == 0 && strstr(path, "/days?")) {
        int i = device_index(path + 17);
        doc = json_pack("{s:f}", "total_kwh", (i + 1) / 100.0);
    } else if (strncmp(path, "/api/alerts?device_id=", 22) == 0) {
        int i = device_index(path + 22);
        json_t *items = json_array();
        if (i == api->ndev - 1)
            json_array_append_new(items,
                                  json_pack("{s:I, s:s, s:f, s:f}", "hour_start", (json_int_t)(NOW_MS - 3600000),
                                            "device_name", "the last meter", "total_kwh", 2.5, "limit_kwh", 2.0));
        doc = json_pack("{s:o}", "items", items);
    } else {
        *status = 404;
        doc = json_object();
    }
    *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return *body ? 0 : -1;
}

static const char *var(const support_vars *vars, const char *name) {
    for (size_t i = 0; i < vars->n; i++)
        if (strcmp(vars->v[i].name, name) == 0) return vars->v[i].value;
    return NULL;
}

static const char *run_action(const char *name, paged_api *api, support_vars *vars) {
    support_caller who = {
        .get = paged_get, .get_ctx = api, .user_id = OWNER, .tz = "UTC", .username = "ana", .now_ms = NOW_MS};
    for (size_t i = 0; i < support_nactions; i++)
        if (strcmp(support_actions[i].name, name) == 0) return support_actions[i].run(&who, vars);
    fail_msg("no action %s", name);
    return NULL;
}

static void data_answers_count_every_device(void **state) {
    (void)state;
    /* 335 devices: four pages.  Reading only the first page said 100 devices and 50.50 kWh. */
    paged_api api = {.ndev = 335};
    support_vars vars = {0};
    assert_string_equal(run_action("usage_yesterday", &api, &vars), "ok");
    assert_string_equal(var(&vars, "device_count"), "335");
    assert_string_equal(var(&vars, "total_kwh"), "562.80"); /* (1 + 2 + ... + 335) / 100 */
    assert_int_equal(api.device_pages, 4);
    assert_int_equal(api.bad_pages, 0);

    /* The biggest consumer is on the last page. */
    memset(&vars, 0, sizeof vars);
    assert_string_equal(run_action("top_device", &api, &vars), "ok");
    assert_string_equal(var(&vars, "device"), "meter 334");
    assert_string_equal(var(&vars, "device_kwh"), "3.35");

    /* So is the only device that went over its limit. */
    memset(&vars, 0, sizeof vars);
    assert_string_equal(run_action("limit_alerts", &api, &vars), "yes");
    assert_string_equal(var(&vars, "count"), "1");
    assert_string_equal(var(&vars, "device"), "the last meter");
}

static void data_answers_page_boundaries(void **state) {
    (void)state;
    /* Exactly one page, one more than a page, none at all. */
    static const struct {
        int ndev, pages;
        const char *outcome, *count;
    } cases[] = {{100, 1, "ok", "100"},
                 {101, 2, "ok", "101"},
                 {200, 2, "ok", "200"},
                 {1, 1, "ok", "1"},
                 {0, 1, "no_devices", NULL}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        paged_api api = {.ndev = cases[c].ndev};
        support_vars vars = {0};
        assert_string_equal(run_action("usage_yesterday", &api, &vars), cases[c].outcome);
        assert_int_equal(api.device_pages, cases[c].pages);
        if (cases[c].count) assert_string_equal(var(&vars, "device_count"), cases[c].count);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_rules_load),
        cmocka_unit_test(every_rule_fires_on_a_typical_question),
        cmocka_unit_test(unrelated_questions_fire_nothing),
        cmocka_unit_test(shipped_words_match_whole_words_only),
        cmocka_unit_test(whole_words_and_phrases),
        cmocka_unit_test(scores_add_distinct_keywords),
        cmocka_unit_test(ties_are_deterministic),
        cmocka_unit_test(bad_files_are_refused_with_a_message),
        cmocka_unit_test(missing_file_is_refused),
        cmocka_unit_test(templates_render),
        cmocka_unit_test(shipped_data_rules_render_every_outcome),
        cmocka_unit_test(llm_endpoint),
        cmocka_unit_test(llm_request_body),
        cmocka_unit_test(llm_reply_parsing),
        cmocka_unit_test(llm_not_configured_declines),
        cmocka_unit_test(data_answers_without_api_are_unavailable),
        cmocka_unit_test(data_answers_count_every_device),
        cmocka_unit_test(data_answers_page_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
