/*
 * rules.c — loading, validating and matching the support assistant's rules.
 *
 * The parsed JSON document is kept for the life of the rules: every string a
 * rule hands out (id, templates) points into it.  Keywords are cut into
 * tokens once, at load, by the same tokenizer the question goes through, so
 * the file may write "Time-Zone" and still match "time zone".
 */
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_ID_MAX 64
#define KEYWORD_TOKENS_MAX 8
#define TEMPLATE_MAX 4000
#define RULES_FILE_MAX ((size_t)1024 * 1024)

/* A text cut into lower-case tokens: one buffer, NUL-separated, and pointers into it. */
typedef struct tokens {
    char *buf;
    char **v;
    size_t n;
} tokens;

typedef struct keyword {
    tokens tok;
    int weight;
    const char *text;
} keyword;

struct support_rule {
    const char *id;
    int priority;
    keyword *kw;
    size_t nkw;
    const char *answer;           /* fixed answer, or NULL */
    const support_action *action; /* data rules */
    json_t *answers;              /* outcome → template (borrowed from the document) */
};

struct support_rules {
    json_t *doc;
    int min_score;
    const char *fallback;
    const char *system_prompt;
    support_rule *rule;
    size_t nrule;
};

static int is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

static void tokens_free(tokens *t) {
    free(t->buf);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static ems_rc tokenize(const char *text, tokens *out) {
    size_t len = strlen(text);
    memset(out, 0, sizeof *out);
    out->buf = malloc(len + 1);
    out->v = malloc((len / 2 + 1) * sizeof *out->v); /* at most one token per two bytes, plus one */
    if (!out->buf || !out->v) {
        tokens_free(out);
        return EMS_NOMEM;
    }
    char *w = out->buf;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        if (!is_word_byte(*p)) {
            p++;
            continue;
        }
        out->v[out->n++] = w;
        for (; *p && is_word_byte(*p); p++) *w++ = (char)tolower(*p);
        *w++ = '\0';
    }
    return EMS_OK;
}

/* 1 if the keyword's tokens occur in a row in the text's. */
static int keyword_found(const keyword *k, const tokens *text) {
    for (size_t i = 0; i + k->tok.n <= text->n; i++) {
        size_t j = 0;
        while (j < k->tok.n && strcmp(text->v[i + j], k->tok.v[j]) == 0) j++;
        if (j == k->tok.n) return 1;
    }
    return 0;
}

static int score_tokens(const support_rule *rule, const tokens *text) {
    int score = 0;
    for (size_t i = 0; i < rule->nkw; i++)
        if (keyword_found(&rule->kw[i], text)) score += rule->kw[i].weight;
    return score;
}

/* 1 if a beats b: the higher score, then the higher priority, then the smaller id. */
static int better(const support_rule *a, int sa, const support_rule *b, int sb) {
    if (sa != sb) return sa > sb;
    if (a->priority != b->priority) return a->priority > b->priority;
    return strcmp(a->id, b->id) < 0;
}

const support_rule *support_rules_match(const support_rules *r, const char *text, int *score) {
    tokens t;
    const support_rule *best = NULL;
    int best_score = 0;
    if (tokenize(text, &t)) return NULL;
    for (size_t i = 0; i < r->nrule; i++) {
        int s = score_tokens(&r->rule[i], &t);
        if (s >= r->min_score && (!best || better(&r->rule[i], s, best, best_score))) {
            best = &r->rule[i];
            best_score = s;
        }
    }
    tokens_free(&t);
    if (score) *score = best ? best_score : 0;
    return best;
}

int support_rule_score(const support_rule *rule, const char *text) {
    tokens t;
    if (tokenize(text, &t)) return 0;
    int s = score_tokens(rule, &t);
    tokens_free(&t);
    return s;
}

size_t support_rules_count(const support_rules *r) { return r->nrule; }
const support_rule *support_rules_at(const support_rules *r, size_t i) { return i < r->nrule ? &r->rule[i] : NULL; }
int support_rules_min_score(const support_rules *r) { return r->min_score; }
const char *support_rules_fallback(const support_rules *r) { return r->fallback; }
const char *support_rules_system_prompt(const support_rules *r) { return r->system_prompt; }
const char *support_rule_id(const support_rule *rule) { return rule->id; }
int support_rule_priority(const support_rule *rule) { return rule->priority; }
const support_action *support_rule_action(const support_rule *rule) { return rule->action; }

const char *support_rule_template(const support_rule *rule, const char *outcome) {
    if (!outcome) return rule->answer;
    return rule->answers ? json_string_value(json_object_get(rule->answers, outcome)) : NULL;
}

/* ---- templates ---- */

static const support_var *vars_find(const support_vars *vs, const char *name, size_t len) {
    for (size_t i = 0; vs && i < vs->n; i++)
        if (strlen(vs->v[i].name) == len && strncmp(vs->v[i].name, name, len) == 0) return &vs->v[i];
    return NULL;
}

void support_vars_set(support_vars *vs, const char *name, const char *fmt, ...) {
    support_var *v = (support_var *)vars_find(vs, name, strlen(name));
    if (!v) {
        if (vs->n == SUPPORT_MAX_VARS) return;
        v = &vs->v[vs->n++];
        v->name = name;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->value, sizeof v->value, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof v->value) {
        /* vsnprintf cut bytes, not characters: drop the last character if it lost its tail. */
        size_t len = sizeof v->value - 1, start = len - 1;
        while (start > 0 && ((unsigned char)v->value[start] & 0xc0) == 0x80) start--;
        unsigned char lead = (unsigned char)v->value[start];
        size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (start + need > len) v->value[start] = '\0';
    }
}

char *support_render(const char *tmpl, const support_vars *vars) {
    size_t cap = strlen(tmpl) + 1;
    for (size_t i = 0; vars && i < vars->n; i++) cap += strlen(vars->v[i].value) * 4; /* a value may recur */
    char *out = malloc(cap), *w = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            const support_var *v = vars_find(vars, p + 1, (size_t)(close - p - 1));
            size_t vlen = v ? strlen(v->value) : 0;
            if ((size_t)(w - out) + vlen + strlen(close + 1) + 1 > cap) { /* more repeats than planned for */
                size_t used = (size_t)(w - out);
                cap = used + vlen + strlen(close + 1) + 1 + cap;
                char *grown = realloc(out, cap);
                if (!grown) {
                    free(out);
                    return NULL;
                }
                out = grown;
                w = out + used;
            }
            if (v) memcpy(w, v->value, vlen);
            w += vlen;
            p = close + 1;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

/* ---- loading ---- */

static int list_has(const char *const *list, const char *s, size_t len) {
    for (; list && *list; list++)
        if (strlen(*list) == len && strncmp(*list, s, len) == 0) return 1;
    return 0;
}

/* Checks a template: not empty, not too long, braces closed, every placeholder known. */
static int template_ok(const char *tmpl, const support_action *action, char *why, size_t n) {
    size_t len = strlen(tmpl);
    if (len == 0 || len > TEMPLATE_MAX) {
        snprintf(why, n, "must be 1-%d bytes", TEMPLATE_MAX);
        return 0;
    }
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        if (!close) {
            snprintf(why, n, "has a '{' that is never closed");
            return 0;
        }
        size_t nlen = (size_t)(close - p - 1);
        if (!(nlen == 8 && strncmp(p + 1, "username", 8) == 0) && !(action && list_has(action->vars, p + 1, nlen))) {
            snprintf(why, n, "uses the unknown placeholder {%.*s}", (int)(nlen > 40 ? 40 : nlen), p + 1);
            return 0;
        }
        p = close;
    }
    return 1;
}

static int id_ok(const char *id) {
    size_t len = strlen(id);
    if (len == 0 || len > RULE_ID_MAX) return 0;
    for (const char *p = id; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-')) return 0;
    return 1;
}

static void rule_free(support_rule *rule) {
    for (size_t i = 0; i < rule->nkw; i++) tokens_free(&rule->kw[i].tok);
    free(rule->kw);
}

void support_rules_free(support_rules *r) {
    if (!r) return;
    for (size_t i = 0; i < r->nrule; i++) rule_free(&r->rule[i]);
    free(r->rule);
    json_decref(r->doc);
    free(r);
}

static ems_rc parse_keywords(support_rule *rule, json_t *kws, char *why, size_t n) {
    if (!json_is_object(kws) || json_object_size(kws) == 0) {
        snprintf(why, n, "'keywords' must be a non-empty object of phrase: weight");
        return EMS_BAD_REQUEST;
    }
    rule->kw = calloc(json_object_size(kws), sizeof *rule->kw);
    if (!rule->kw) return EMS_NOMEM;
    const char *phrase;
    json_t *weight;
    json_object_foreach(kws, phrase, weight) {
        keyword *k = &rule->kw[rule->nkw];
        json_int_t w = json_is_integer(weight) ? json_integer_value(weight) : 0;
        if (w < 1 || w > 100) {
            snprintf(why, n, "keyword '%.60s': weight must be an integer from 1 to 100", phrase);
            return EMS_BAD_REQUEST;
        }
        if (tokenize(phrase, &k->tok)) return EMS_NOMEM;
        rule->nkw++;
        if (k->tok.n == 0 || k->tok.n > KEYWORD_TOKENS_MAX) {
            snprintf(why, n, "keyword '%.60s' must have 1 to %d words", phrase, KEYWORD_TOKENS_MAX);
            return EMS_BAD_REQUEST;
        }
        k->weight = (int)w;
        k->text = phrase;
    }
    return EMS_OK;
}

static const support_action *find_action(const support_action *actions, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(actions[i].name, name) == 0) return &actions[i];
    return NULL;
}

/* A data rule answers every outcome of its action, and nothing else. */
static ems_rc parse_answers(support_rule *rule, json_t *answers, char *why, size_t n) {
    if (!json_is_object(answers)) {
        snprintf(why, n, "a rule with 'data' needs 'answers', an object of outcome: template");
        return EMS_BAD_REQUEST;
    }
    for (const char *const *o = rule->action->outcomes; *o; o++)
        if (!json_object_get(answers, *o)) {
            snprintf(why, n, "'answers' lacks the outcome '%s' of action '%s'", *o, rule->action->name);
            return EMS_BAD_REQUEST;
        }
    const char *outcome;
    json_t *tmpl;
    json_object_foreach(answers, outcome, tmpl) {
        char tw[160];
        if (!list_has(rule->action->outcomes, outcome, strlen(outcome))) {
            snprintf(why, n, "'answers' has '%.60s', not an outcome of action '%s'", outcome, rule->action->name);
            return EMS_BAD_REQUEST;
        }
        if (!json_is_string(tmpl) || !template_ok(json_string_value(tmpl), rule->action, tw, sizeof tw)) {
            snprintf(why, n, "answer '%.60s' %s", outcome, json_is_string(tmpl) ? tw : "must be a string");
            return EMS_BAD_REQUEST;
        }
    }
    rule->answers = answers;
    return EMS_OK;
}

static ems_rc parse_rule(support_rules *r, json_t *obj, const support_action *actions, size_t nactions,
                         support_rule *rule, char *why, size_t n) {
    json_error_t jerr;
    const char *id = NULL, *answer = NULL, *data = NULL;
    json_int_t priority = 0;
    json_t *kws = NULL, *answers = NULL;
    rule->id = json_string_value(json_object_get(obj, "id")); /* so that any error below can name the rule */
    if (json_unpack_ex(obj, &jerr, JSON_STRICT, "{s:s, s?:I, s:o, s?:s, s?:s, s?:o}", "id", &id, "priority", &priority,
                       "keywords", &kws, "answer", &answer, "data", &data, "answers", &answers)) {
        snprintf(why, n, "%s", jerr.text);
        return EMS_BAD_REQUEST;
    }
    rule->id = id;
    if (!id_ok(id)) {
        snprintf(why, n, "'id' must be 1-%d characters of a-z 0-9 _ -", RULE_ID_MAX);
        return EMS_BAD_REQUEST;
    }
    for (const support_rule *other = r->rule; other < rule; other++)
        if (strcmp(other->id, id) == 0) {
            snprintf(why, n, "the id is used by an earlier rule");
            return EMS_BAD_REQUEST;
        }
    if (priority < 0 || priority > 1000) {
        snprintf(why, n, "'priority' must be from 0 to 1000");
        return EMS_BAD_REQUEST;
    }
    rule->priority = (int)priority;
    ems_rc rc = parse_keywords(rule, kws, why, n);
    if (rc) return rc;
    if (data) {
        if (answer) {
            snprintf(why, n, "a rule with 'data' gives 'answers', not 'answer'");
            return EMS_BAD_REQUEST;
        }
        if (!(rule->action = find_action(actions, nactions, data))) {
            snprintf(why, n, "'data' names the unknown action '%.60s'", data);
            return EMS_BAD_REQUEST;
        }
        return parse_answers(rule, answers, why, n);
    }
    char tw[160];
    if (!answer || answers) {
        snprintf(why, n, "a rule without 'data' needs 'answer' (and no 'answers')");
        return EMS_BAD_REQUEST;
    }
    if (!template_ok(answer, NULL, tw, sizeof tw)) {
        snprintf(why, n, "'answer' %s", tw);
        return EMS_BAD_REQUEST;
    }
    rule->answer = answer;
    return EMS_OK;
}

ems_rc support_rules_parse(const char *json, size_t len, const char *name, const support_action *actions,
                           size_t nactions, support_rules **out, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *list = NULL;
    json_int_t min_score = 0;
    char why[256] = "";
    ems_rc rc = EMS_BAD_REQUEST;
    support_rules *r = calloc(1, sizeof *r);
    if (!r) return EMS_NOMEM;
    if (!(r->doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
        snprintf(err, errlen, "%s: line %d: %s", name, jerr.line, jerr.text);
        goto cleanup;
    }
    if (json_unpack_ex(r->doc, &jerr, JSON_STRICT, "{s:I, s:s, s:s, s:o}", "min_score", &min_score, "fallback",
                       &r->fallback, "system_prompt", &r->system_prompt, "rules", &list)) {
        snprintf(err, errlen, "%s: %s", name, jerr.text);
        goto cleanup;
    }
    if (min_score < 1 || min_score > 1000) {
        snprintf(err, errlen, "%s: 'min_score' must be from 1 to 1000", name);
        goto cleanup;
    }
    r->min_score = (int)min_score;
    if (!*r->fallback || !*r->system_prompt) {
        snprintf(err, errlen, "%s: 'fallback' and 'system_prompt' must not be empty", name);
        goto cleanup;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(err, errlen, "%s: 'rules' must be a non-empty array", name);
        goto cleanup;
    }
    if (!(r->rule = calloc(json_array_size(list), sizeof *r->rule))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        support_rule *rule = &r->rule[r->nrule++];
        json_t *obj = json_array_get(list, i);
        rc = json_is_object(obj) ? parse_rule(r, obj, actions, nactions, rule, why, sizeof why) : EMS_BAD_REQUEST;
        if (rc == EMS_NOMEM) goto cleanup;
        if (rc) {
            if (!json_is_object(obj)) snprintf(why, sizeof why, "must be an object");
            if (rule->id && id_ok(rule->id))
                snprintf(err, errlen, "%s: rule '%s' (#%zu): %s", name, rule->id, i + 1, why);
            else snprintf(err, errlen, "%s: rule #%zu: %s", name, i + 1, why);
            goto cleanup;
        }
    }
    *out = r;
    r = NULL;
    rc = EMS_OK;
cleanup:
    support_rules_free(r);
    return rc;
}

ems_rc support_rules_load(const char *path, const support_action *actions, size_t nactions, support_rules **out,
                          char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return EMS_NOT_FOUND;
    }
    char *buf = malloc(RULES_FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, RULES_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    ems_rc rc;
    if (!buf) {
        rc = EMS_NOMEM;
    } else if (bad || len > RULES_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
        rc = EMS_BAD_REQUEST;
    } else {
        rc = support_rules_parse(buf, len, path, actions, nactions, out, err, errlen);
    }
    free(buf);
    return rc;
}
