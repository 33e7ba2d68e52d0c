/*
 * csv.c — reads a values file (see csv.h).
 */
#include "csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

/* Strips leading and trailing white space (and a CR) in place. */
static char *trim(char *s) {
    char *e;
    while (isspace((unsigned char)*s)) s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

ems_rc sim_csv_load(const char *path, int64_t **values, size_t *n, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t linecap = 0, count = 0, cap = 0;
    int64_t *v = NULL;
    long lineno = 0;
    int seen_content = 0;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EMS_BAD_REQUEST;
    }
    while (getline(&line, &linecap, f) != -1) {
        char *s = trim(line), *end;
        double d;
        lineno++;
        if (!*s || *s == '#') continue;
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end || errno == ERANGE || !isfinite(d) || fabs(d) > 1e9) {
            if (!seen_content) { /* a header line */
                seen_content = 1;
                continue;
            }
            snprintf(err, errlen, "%s:%ld: '%.40s' is not a number", path, lineno, s);
            rc = EMS_BAD_REQUEST;
            goto cleanup;
        }
        seen_content = 1;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            int64_t *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = EMS_NOMEM;
                goto cleanup;
            }
            v = nv;
            cap = ncap;
        }
        v[count++] = sim_kwh_to_micro(d);
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if (count == 0) {
        snprintf(err, errlen, "%s: no values", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    *values = v;
    *n = count;
    v = NULL;
cleanup:
    free(v);
    free(line);
    fclose(f);
    return rc;
}
