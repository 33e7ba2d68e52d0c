/*
 * rules.h — the support assistant's rules: loading, whole-word matching,
 * scoring and answer templates.
 *
 * The rules live in a JSON data file (data/support/rules.json), not in code:
 *
 *   {"min_score": 3, "fallback": "...", "system_prompt": "...",
 *    "rules": [{"id": "kwh", "priority": 5, "keywords": {"kwh": 4, "kilowatt hour": 4},
 *               "answer": "A kilowatt-hour is ..."},
 *              {"id": "usage_yesterday", "priority": 9, "keywords": {...},
 *               "data": "usage_yesterday", "answers": {"ok": "...{total_kwh}...", ...}}]}
 *
 * A text and every keyword are cut into tokens the same way: runs of ASCII
 * letters and digits (bytes above 0x7f count as letters, so UTF-8 words stay
 * whole), lower-cased.  A keyword of several words matches the same tokens in
 * a row.  So "use" never matches inside "user".  A rule's score is the sum
 * of the weights of its distinct keywords found in the text; the best score
 * wins, ties go to the higher priority, then to the smaller id; nothing fires
 * below min_score.  The answer is the same for the same text, always.
 *
 * A rule with "data" answers from the caller's own data: it names an action
 * (see data.h) and gives one template per outcome of that action.  Templates
 * use {name} placeholders; the loader refuses a placeholder the rule's action
 * does not provide.  Loaded rules are read-only: any number of threads may
 * match against them at once.
 */
#ifndef EMS_SUPPORT_RULES_H
#define EMS_SUPPORT_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

/* Values for a template's placeholders. */
#define SUPPORT_MAX_VARS 12
#define SUPPORT_VAR_LEN 512

typedef struct support_var {
    const char *name;
    char value[SUPPORT_VAR_LEN];
} support_var;

typedef struct support_vars {
    size_t n;
    support_var v[SUPPORT_MAX_VARS];
} support_vars;

/* Sets (or replaces) a value; a value too long is cut at a character boundary. */
void support_vars_set(support_vars *vs, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * GETs an API path ("/api/devices?owner=…&limit=100") as the caller: 0 with
 * *status (any status) and *body (malloc'd), or -1 when no answer came.
 * support.c gives one of two: in-process through this server's routes
 * (embedded mode) or over HTTP to the configured API (distributed mode).
 */
typedef int (*support_get_fn)(void *ctx, const char *path, long *status, char **body);

/* Who asks, and how their data is read: what a data action needs. */
typedef struct support_caller {
    support_get_fn get; /* NULL: no API to read from, every data answer is "unavailable" */
    void *get_ctx;
    const char *user_id; /* "my devices" are the ones this user owns, admins included */
    const char *tz;      /* IANA zone for "yesterday" and local times */
    const char *username;
    int64_t now_ms;
} support_caller;

/* Fills vars and returns the name of the outcome whose template answers. */
typedef const char *(*support_action_fn)(const support_caller *who, support_vars *vars);

typedef struct support_action {
    const char *name;
    const char *const *outcomes; /* NULL-terminated; a data rule gives a template for each, no more */
    const char *const *vars;     /* NULL-terminated placeholders its templates may use (besides username) */
    support_action_fn run;
} support_action;

typedef struct support_rules support_rules;
typedef struct support_rule support_rule;

/*
 * Parses and validates rules from JSON text; `name` (the file name) starts
 * every error message, followed by the rule ("rule 'kwh' (#4)") and what is
 * wrong with it.  actions: the data actions a rule may name.
 * EMS_BAD_REQUEST on a bad file, EMS_NOMEM; *out is set only on success.
 */
ems_rc support_rules_parse(const char *json, size_t len, const char *name, const support_action *actions,
                           size_t nactions, support_rules **out, char *err, size_t errlen);
/* Reads the file and parses it; EMS_NOT_FOUND if it cannot be read. */
ems_rc support_rules_load(const char *path, const support_action *actions, size_t nactions, support_rules **out,
                          char *err, size_t errlen);
void support_rules_free(support_rules *r); /* accepts NULL */

size_t support_rules_count(const support_rules *r);
const support_rule *support_rules_at(const support_rules *r, size_t i);
int support_rules_min_score(const support_rules *r);
const char *support_rules_fallback(const support_rules *r);
const char *support_rules_system_prompt(const support_rules *r);

/* The rule that fires for text, or NULL; *score (may be NULL) gets its score. */
const support_rule *support_rules_match(const support_rules *r, const char *text, int *score);
/* The score of one rule for text (0 when nothing matches). */
int support_rule_score(const support_rule *rule, const char *text);

const char *support_rule_id(const support_rule *rule);
int support_rule_priority(const support_rule *rule);
/* The data action, or NULL for a rule with a fixed answer. */
const support_action *support_rule_action(const support_rule *rule);
/* The template for an outcome (NULL for a fixed answer); NULL if there is none. */
const char *support_rule_template(const support_rule *rule, const char *outcome);

/* Replaces each {name} in tmpl by its value (empty if unset); malloc'd, NULL on no memory. */
char *support_render(const char *tmpl, const support_vars *vars);

#endif
