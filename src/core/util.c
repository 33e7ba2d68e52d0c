/*
 * util.c — small helpers the roles share.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ems_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ems_text_ok(const char *s, size_t min, size_t max) {
    if (!s) return 0;
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int extra;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return 0;
            extra = 0;
        } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
            extra = 1;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
        } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
            extra = 3;
        } else {
            return 0;
        }
        p++;
        for (int i = 0; i < extra; i++, p++)
            if ((*p & 0xc0) != 0x80) return 0;
        chars++;
    }
    return chars >= min && chars <= max;
}

static int parse_int(const char *s, int64_t *out) {
    if (!s || !*s || strlen(s) > 18) return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

ems_rc ems_paging(ems_req *req, ems_resp *resp, int64_t *limit, int64_t *offset) {
    const char *l = ems_req_query(req, "limit"), *o = ems_req_query(req, "offset");
    *limit = 20;
    *offset = 0;
    if (l && (parse_int(l, limit) || *limit < 1 || *limit > 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "limit must be an integer from 1 to 100");
    if (o && parse_int(o, offset)) return ems_fail(resp, EMS_BAD_REQUEST, "offset must be a non-negative integer");
    return EMS_OK;
}

char *ems_like_pattern(const char *q) {
    size_t n = strlen(q);
    char *out = malloc(2 * n + 3);
    if (!out) return NULL;
    char *w = out;
    *w++ = '%';
    for (; *q; q++) {
        if (*q == '%' || *q == '_' || *q == '\\') *w++ = '\\';
        *w++ = *q;
    }
    *w++ = '%';
    *w = '\0';
    return out;
}

char *ems_url_escape(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * strlen(s) + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return out;
}
