/*
 * conf.c — layered configuration over static key tables.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const ems_conf_def *def;
    char *value;
} conf_entry;

struct ems_conf {
    conf_entry *v;
    size_t n, cap;
};

ems_conf *ems_conf_new(void) { return calloc(1, sizeof(ems_conf)); }

void ems_conf_free(ems_conf *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->v[i].value);
    free(c->v);
    free(c);
}

static conf_entry *conf_find(const ems_conf *c, const char *key) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].def->key, key) == 0) return &c->v[i];
    return NULL;
}

ems_rc ems_conf_add(ems_conf *c, const ems_conf_def *defs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (conf_find(c, defs[i].key)) continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 32;
            conf_entry *v = realloc(c->v, cap * sizeof *v);
            if (!v) return EMS_NOMEM;
            c->v = v;
            c->cap = cap;
        }
        c->v[c->n].def = &defs[i];
        c->v[c->n].value = defs[i].def ? strdup(defs[i].def) : NULL;
        c->n++;
    }
    return EMS_OK;
}

static int parse_bool(const char *s) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return 1;
        if (strcasecmp(s, no[i]) == 0) return 0;
    }
    return -1;
}

static ems_rc conf_check(const conf_entry *e, const char *value, char *err, size_t errlen) {
    const ems_conf_def *d = e->def;
    if (!value) return EMS_OK;
    if (d->type == EMS_CONF_INT) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(err, errlen, "%s: '%s' is not an integer", d->key, value);
            return EMS_BAD_REQUEST;
        }
        if ((d->min || d->max) && (v < d->min || v > d->max)) {
            snprintf(err, errlen, "%s: %ld is out of range [%ld, %ld]", d->key, v, d->min, d->max);
            return EMS_BAD_REQUEST;
        }
    } else if (d->type == EMS_CONF_BOOL && parse_bool(value) < 0) {
        snprintf(err, errlen, "%s: '%s' is not a boolean (true/false)", d->key, value);
        return EMS_BAD_REQUEST;
    }
    return EMS_OK;
}

ems_rc ems_conf_set(ems_conf *c, const char *key, const char *value, char *err, size_t errlen) {
    conf_entry *e = conf_find(c, key);
    if (!e) {
        snprintf(err, errlen, "unknown option '%s'", key);
        return EMS_BAD_REQUEST;
    }
    ems_rc rc = conf_check(e, value, err, errlen);
    if (rc) return rc;
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy) return EMS_NOMEM;
    free(e->value);
    e->value = copy;
    return EMS_OK;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) *--end = '\0';
    return s;
}

static ems_rc conf_file(ems_conf *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return EMS_BAD_REQUEST;
    }
    char line[1024];
    int lineno = 0;
    ems_rc rc = EMS_OK;
    while (rc == EMS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "config file %s:%d: expected key = value", path, lineno);
            rc = EMS_BAD_REQUEST;
            break;
        }
        *eq = '\0';
        rc = ems_conf_set(c, trim(s), trim(eq + 1), err, errlen);
    }
    fclose(f);
    return rc;
}

/* "--db-port" → "db_port" into buf; NULL if not a flag. */
static const char *flag_key(const char *arg, char *buf, size_t len) {
    if (strncmp(arg, "--", 2) != 0 || !arg[2]) return NULL;
    size_t i = 0;
    for (arg += 2; *arg && *arg != '=' && i + 1 < len; arg++) buf[i++] = (char)(*arg == '-' ? '_' : *arg);
    buf[i] = '\0';
    return buf;
}

ems_rc ems_conf_load(ems_conf *c, const char *file, int argc, char **argv, char *err, size_t errlen) {
    ems_rc rc;
    if (file && (rc = conf_file(c, file, err, errlen))) return rc;
    for (size_t i = 0; i < c->n; i++) {
        const char *env = c->v[i].def->env ? getenv(c->v[i].def->env) : NULL;
        if (env && (rc = ems_conf_set(c, c->v[i].def->key, env, err, errlen))) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, " (from %s)", c->v[i].def->env);
            return rc;
        }
    }
    for (int i = 0; i < argc; i++) {
        char key[64];
        if (!flag_key(argv[i], key, sizeof key)) {
            snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
            return EMS_BAD_REQUEST;
        }
        const char *eq = strchr(argv[i], '=');
        const char *value;
        conf_entry *e = conf_find(c, key);
        if (eq) {
            value = eq + 1;
        } else if (e && e->def->type == EMS_CONF_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "%s: missing value", key);
            return EMS_BAD_REQUEST;
        }
        if ((rc = ems_conf_set(c, key, value, err, errlen))) return rc;
    }
    return EMS_OK;
}

/*
 * Asking for a key no table declares is a programming error (a typo, or a
 * role reading another's option without declaring it), not an unset value:
 * it stops the process at the first read, which is at start-up.
 */
const char *ems_conf_str(const ems_conf *c, const char *key) {
    const conf_entry *e = conf_find(c, key);
    if (!e) {
        fprintf(stderr, "conf: no table declares the key \"%s\" (a programming error)\n", key);
        abort();
    }
    return e->value;
}

long ems_conf_int(const ems_conf *c, const char *key) {
    const char *s = ems_conf_str(c, key);
    return s ? strtol(s, NULL, 10) : 0;
}

int ems_conf_bool(const ems_conf *c, const char *key) {
    const char *s = ems_conf_str(c, key);
    return s ? parse_bool(s) == 1 : 0;
}

void ems_conf_help(const ems_conf *c, FILE *out) {
    for (size_t i = 0; i < c->n; i++) {
        const ems_conf_def *d = c->v[i].def;
        char flag[64];
        size_t j = 0;
        for (const char *k = d->key; *k && j + 1 < sizeof flag; k++) flag[j++] = (char)(*k == '_' ? '-' : *k);
        flag[j] = '\0';
        fprintf(out, "  --%-22s %-26s %s", flag, d->env ? d->env : "", d->help);
        if (d->def && d->type != EMS_CONF_SECRET && *d->def) fprintf(out, " [default: %s]", d->def);
        fputc('\n', out);
    }
}
