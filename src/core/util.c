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

/*
 * Decodes the UTF-8 sequence at *p into *cp and advances *p past it.  0 for
 * anything that is not the shortest encoding of a Unicode scalar value: a
 * stray continuation byte, a truncated sequence, an overlong form (C0, C1,
 * E0 80-9F, F0 80-8F), a surrogate (ED A0-BF), a code point above U+10FFFF
 * (F4 90-BF, F5-FF).  The second byte's allowed range is what rules all four
 * out, as in the table of RFC 3629 section 4.
 */
static int utf8_next(const unsigned char **p, uint32_t *cp) {
    const unsigned char *s = *p;
    unsigned c = s[0], lo = 0x80, hi = 0xbf;
    int extra;
    if (c < 0x80) {
        *cp = c;
        *p = s + 1;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        extra = 2;
        if (c == 0xe0) lo = 0xa0; /* overlong below U+0800 */
        if (c == 0xed) hi = 0x9f; /* surrogates U+D800-DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        extra = 3;
        if (c == 0xf0) lo = 0x90; /* overlong below U+10000 */
        if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    uint32_t v = c & (0x3fu >> extra);
    for (int i = 1; i <= extra; i++) {
        unsigned b = s[i]; /* a NUL ends the loop here: never read past it */
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf)) return 0;
        v = (v << 6) | (b & 0x3f);
    }
    *cp = v;
    *p = s + 1 + extra;
    return 1;
}

/* C0, DEL and C1. */
static int is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp < 0xa0); }

int ems_text_ok(const char *s, size_t min, size_t max) {
    if (!s) return 0;
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    while (*p) {
        if (!utf8_next(&p, &cp)) return 0;
        if (is_control(cp)) return 0;
        chars++;
    }
    return chars >= min && chars <= max;
}

/*
 * Code points that put nothing on the screen by themselves: spaces,
 * format and bidi controls, joiners, variation selectors, fillers, blank
 * pattern characters, and the common blocks of combining marks (which show
 * only on a base character).  Sorted.
 */
static const struct {
    uint32_t lo, hi;
} invisible[] = {
    {0x0020, 0x0020},   {0x00a0, 0x00a0},   {0x00ad, 0x00ad}, {0x0300, 0x036f}, {0x061c, 0x061c}, {0x115f, 0x1160},
    {0x1680, 0x1680},   {0x17b4, 0x17b5},   {0x180b, 0x180f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x2000, 0x200f},
    {0x2028, 0x202f},   {0x205f, 0x206f},   {0x20d0, 0x20ff}, {0x2800, 0x2800}, {0x3000, 0x3000}, {0x3164, 0x3164},
    {0xfe00, 0xfe0f},   {0xfe20, 0xfe2f},   {0xfeff, 0xfeff}, {0xffa0, 0xffa0}, {0xfff0, 0xfffb}, {0x1bca0, 0x1bca3},
    {0x1d173, 0x1d17a}, {0xe0000, 0xe0fff},
};

static int is_invisible(uint32_t cp) {
    size_t lo = 0, hi = sizeof invisible / sizeof invisible[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < invisible[mid].lo) hi = mid;
        else if (cp > invisible[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int ems_text_visible(const char *s) {
    if (!s) return 0;
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    while (*p) {
        if (!utf8_next(&p, &cp)) return 0;
        if (!is_control(cp) && !is_invisible(cp)) return 1;
    }
    return 0;
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
