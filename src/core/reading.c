/*
 * reading.c — parsing and serializing readings in the two accepted forms.
 *
 * Two parsers give the same verdicts: readings_parse reads a message's bytes
 * directly (the hot path: HTTP bodies and bus messages), and
 * readings_parse_json reads a jansson value someone already loaded.
 */
#include "reading.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2000-01-01 and 2100-01-01: anything outside is a broken clock, not a reading. */
#define TS_MIN 946684800000LL
#define TS_MAX 4102444800000LL

ems_rc readings_zone_open(const char *name, ems_tz **out, char *err, size_t errlen) {
    char why[200];
    *out = NULL;
    if (!name || !*name) return EMS_OK;
    ems_rc rc = ems_tz_open(name, out, why, sizeof why);
    if (rc) snprintf(err, errlen, "reading_tz: %s", why);
    return rc;
}

static int timestamp_of(const json_t *v, ems_tz *zone, int64_t *ms) {
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Range first: casting a double outside int64_t's range is undefined. */
        if (!isfinite(d) || d != floor(d) || d < TS_MIN || d >= TS_MAX) return -1;
        *ms = (int64_t)d;
    } else if (!json_is_string(v) || ems_iso8601_parse(json_string_value(v), zone, ms)) {
        return -1;
    }
    return *ms >= TS_MIN && *ms < TS_MAX ? 0 : -1;
}

static int one(const json_t *o, ems_tz *zone, reading *r, char *err, size_t errlen) {
    if (!json_is_object(o)) {
        snprintf(err, errlen, "a reading must be an object");
        return -1;
    }
    const json_t *id = json_object_get(o, "device_id"), *val = json_object_get(o, "measurement_value");
    size_t expect = 3;
    if (!id && !val) {
        id = json_object_get(o, "deviceId");
        val = json_object_get(o, "value");
    }
    const json_t *ts = json_object_get(o, "timestamp");
    if (!id || !val || !ts || json_object_size(o) != expect) {
        snprintf(err, errlen, "a reading needs exactly timestamp, device_id and measurement_value");
        return -1;
    }
    const char *s = json_string_value(id);
    if (!s || strlen(s) != EMS_ID_LEN - 1) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    for (size_t i = 0; i < EMS_ID_LEN; i++) r->device_id[i] = (char)tolower((unsigned char)s[i]);
    if (!ems_uuid_valid(r->device_id)) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    if (timestamp_of(ts, zone, &r->ts_ms)) {
        snprintf(err, errlen, "timestamp must be epoch milliseconds or ISO-8601 between 2000 and 2100");
        return -1;
    }
    if (!json_is_number(val) || !isfinite(r->kwh = json_number_value(val)) || r->kwh < 0 || r->kwh > 1e6) {
        snprintf(err, errlen, "measurement_value must be a number from 0 to 1000000 (kWh)");
        return -1;
    }
    return 0;
}

ems_rc readings_parse_json(const json_t *root, ems_tz *zone, reading **out, size_t *n, char *err, size_t errlen) {
    size_t count = json_is_array(root) ? json_array_size(root) : 1;
    if (count == 0 || count > READINGS_MAX_PER_MESSAGE) {
        snprintf(err, errlen, "a message holds 1 to %d readings", READINGS_MAX_PER_MESSAGE);
        return EMS_BAD_REQUEST;
    }
    reading *r = malloc(count * sizeof *r);
    if (!r) return EMS_NOMEM;
    for (size_t i = 0; i < count; i++) {
        const json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
        char why[160];
        if (one(o, zone, &r[i], why, sizeof why)) {
            snprintf(err, errlen, "reading %zu: %s", i, why);
            free(r);
            return EMS_BAD_REQUEST;
        }
    }
    *out = r;
    *n = count;
    return EMS_OK;
}

/* ---- the body parser ------------------------------------------------------
 *
 * Messages are parsed straight from their bytes into readings, without a
 * tree of JSON values in between: this is the ingest hot path.  The parser
 * is a complete JSON validator with jansson's rules as json_loadb applies
 * them here (an object or an array at the top, UTF-8 checked, no NUL in
 * strings, surrogate pairs matched, duplicate keys refused, integers that
 * overflow refused, reals that overflow refused, nesting at most 2048
 * deep), so it accepts and refuses exactly the messages the jansson path
 * (json_loadb, then readings_parse_json) does.  A syntax error wins over a
 * bad reading, and a bad count over a bad reading, as they did there.
 */

#define MAX_DEPTH 2048

/* The five keys a reading may have; K_OTHER is any other key. */
enum { K_TIMESTAMP, K_DEVICE_ID, K_MEASUREMENT_VALUE, K_DEVICEID, K_VALUE, K_OTHER, K_COUNT };

static const struct {
    const char *name;
    size_t len;
} reading_keys[K_OTHER] = {
    {"timestamp", 9}, {"device_id", 9}, {"measurement_value", 17}, {"deviceId", 8}, {"value", 5},
};

/* What a field's value was. */
typedef enum { V_NONE, V_STRING, V_INT, V_REAL, V_OTHER } value_kind;

typedef struct {
    value_kind kind;
    long long i;
    double d;
    int ts_ok; /* V_STRING under "timestamp": parsed as ISO-8601 */
    int64_t ts_ms;
    size_t len;            /* V_STRING: bytes of the decoded text */
    char text[EMS_ID_LEN]; /* V_STRING: its first 36 bytes, NUL-terminated */
} field;

typedef struct {
    const char *start, *p, *end;
    ems_tz *zone; /* places ISO-8601 timestamps without a zone; NULL: UTC */
    char *err;    /* syntax error, set once */
    size_t errlen;
    int failed;
} cursor;

static int syntax(cursor *c, const char *what) {
    if (!c->failed) {
        int line = 1, col = 1;
        for (const char *q = c->start; q < c->p && q < c->end; q++) {
            if (*q == '\n') line++, col = 1;
            else col++;
        }
        snprintf(c->err, c->errlen, "malformed JSON at line %d column %d: %s", line, col, what);
        c->failed = 1;
    }
    return -1;
}

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int ch = (unsigned char)p[i], d;
        if (ch >= '0' && ch <= '9') d = ch - '0';
        else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
        else return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII first byte), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned cp;
    size_t n;
    if (*p >= 0xc2 && *p <= 0xdf) n = 2, cp = *p & 0x1f;
    else if (*p >= 0xe0 && *p <= 0xef) n = 3, cp = *p & 0x0f;
    else if (*p >= 0xf0 && *p <= 0xf4) n = 4, cp = *p & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Appends decoded bytes to out (only its first cap - 1 are kept); *len counts them all. */
static void put(char *out, size_t cap, size_t *len, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++, (*len)++)
        if (*len + 1 < cap) out[*len] = b[i];
}

/*
 * A string at c->p (the opening quote).  Decodes into out (cap bytes, NUL
 * -terminated, truncated) and the full decoded length into *len; out may be
 * NULL to validate only.
 */
static int string_value(cursor *c, char *out, size_t cap, size_t *len) {
    size_t n = 0;
    c->p++;
    for (;;) {
        if (c->p >= c->end) return syntax(c, "premature end of input in a string");
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            break;
        }
        if (ch < 0x20) return syntax(c, "control character in a string");
        if (ch >= 0x80) {
            size_t k = utf8_len((const unsigned char *)c->p, (const unsigned char *)c->end);
            if (!k) return syntax(c, "invalid UTF-8");
            if (out) put(out, cap, &n, c->p, k);
            else n += k;
            c->p += k;
            continue;
        }
        if (ch != '\\') {
            if (out && n + 1 < cap) out[n] = (char)ch;
            n++;
            c->p++;
            continue;
        }
        if (c->end - c->p < 2) return syntax(c, "premature end of input in a string");
        char e = c->p[1], one = 0;
        c->p += 2;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': break;
        default: return syntax(c, "invalid escape");
        }
        if (e != 'u') {
            if (out && n + 1 < cap) out[n] = one;
            n++;
            continue;
        }
        unsigned cp, lo;
        if (c->end - c->p < 4 || hex4(c->p, &cp)) return syntax(c, "invalid \\u escape");
        c->p += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff) return syntax(c, "invalid Unicode escape (lone low surrogate)");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) || lo < 0xdc00 ||
                lo > 0xdfff)
                return syntax(c, "invalid Unicode escape (unpaired surrogate)");
            c->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0) return syntax(c, "\\u0000 is not allowed");
        char b[4];
        size_t k;
        if (cp < 0x80) b[0] = (char)cp, k = 1;
        else if (cp < 0x800) b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
        else if (cp < 0x10000)
            b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[2] = (char)(0x80 | (cp & 0x3f)),
            k = 3;
        else
            b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
            b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
        if (out) put(out, cap, &n, b, k);
        else n += k;
    }
    if (out && cap) out[n < cap ? n : cap - 1] = '\0';
    *len = n;
    return 0;
}

static int is_digit(const cursor *c) { return c->p < c->end && *c->p >= '0' && *c->p <= '9'; }

/* A number at c->p: an integer (no fraction, no exponent) or a real, as jansson reads them. */
static int number_value(cursor *c, field *f) {
    const char *s = c->p;
    int real = 0;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (!is_digit(c)) return syntax(c, "invalid number");
    if (*c->p == '0') {
        c->p++;
        if (is_digit(c)) return syntax(c, "invalid number (leading zero)");
    } else {
        while (is_digit(c)) c->p++;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++, real = 1;
        if (!is_digit(c)) return syntax(c, "invalid number");
        while (is_digit(c)) c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++, real = 1;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!is_digit(c)) return syntax(c, "invalid number");
        while (is_digit(c)) c->p++;
    }
    char text[64], *copy = text, *endp;
    size_t n = (size_t)(c->p - s);
    if (n >= sizeof text && !(copy = malloc(n + 1))) return syntax(c, "out of memory");
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    int bad = 0;
    if (real) {
        f->d = strtod(copy, &endp);
        bad = errno == ERANGE && (f->d == HUGE_VAL || f->d == -HUGE_VAL);
        f->kind = V_REAL;
    } else {
        f->i = strtoll(copy, &endp, 10);
        bad = errno == ERANGE;
        f->kind = V_INT;
    }
    if (copy != text) free(copy);
    return bad ? syntax(c, real ? "real number overflow" : "too big integer") : 0;
}

static int literal(cursor *c, const char *word, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return syntax(c, "invalid token");
    c->p += n;
    return 0;
}

/*
 * Validates any value at c->p and skips it.  Containers are walked without
 * recursion: one bit per open level says object (1) or array (0).
 */
static int skip_value(cursor *c, int depth) {
    unsigned char kinds[MAX_DEPTH / 8] = {0};
    int level = 0;
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end) return syntax(c, "premature end of input");
        char ch = *c->p;
        size_t len;
        field scratch;
        if (ch == '{' || ch == '[') {
            if (depth + level >= MAX_DEPTH) return syntax(c, "maximum parsing depth reached");
            int obj = ch == '{';
            if (obj) kinds[level / 8] |= (unsigned char)(1u << (level % 8));
            else kinds[level / 8] &= (unsigned char)~(1u << (level % 8));
            level++;
            c->p++;
            skip_ws(c);
            if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
                c->p++;
                level--;
                goto after_value;
            }
            if (obj) goto object_key;
            continue;
        }
        if (ch == '"') {
            if (string_value(c, NULL, 0, &len)) return -1;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            if (number_value(c, &scratch)) return -1;
        } else if (ch == 't') {
            if (literal(c, "true", 4)) return -1;
        } else if (ch == 'f') {
            if (literal(c, "false", 5)) return -1;
        } else if (ch == 'n') {
            if (literal(c, "null", 4)) return -1;
        } else {
            return syntax(c, "invalid token");
        }
    after_value:
        for (;;) {
            if (level == 0) return 0;
            int obj = kinds[(level - 1) / 8] >> ((level - 1) % 8) & 1;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                if (obj) goto object_key;
                break; /* the next array element */
            }
            if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
                c->p++;
                level--;
                continue;
            }
            return syntax(c, obj ? "'}' expected" : "']' expected");
        }
        continue;
    object_key:
        /* Nested objects' keys are not checked for duplicates: such a value refuses its reading anyway. */
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"') return syntax(c, "string or '}' expected");
        if (string_value(c, NULL, 0, &len)) return -1;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') return syntax(c, "':' expected");
        c->p++;
    }
}

static int key_of(const char *k, size_t len) {
    for (int i = 0; i < K_OTHER; i++)
        if (len == reading_keys[i].len && memcmp(k, reading_keys[i].name, len) == 0) return i;
    return K_OTHER;
}

/* A field's value: strings and numbers are kept, anything else is validated and skipped. */
static int field_value(cursor *c, int key, int depth, field *f) {
    char ch = (char)(c->p < c->end ? *c->p : '\0');
    if (ch == '"') {
        f->kind = V_STRING;
        if (key != K_TIMESTAMP) return string_value(c, key == K_OTHER ? NULL : f->text, sizeof f->text, &f->len);
        /* A timestamp may be long (any number of fraction digits): decode it whole. */
        char small[64], *text = small;
        const char *q = c->p + 1;
        while (q < c->end && *q != '"') q += *q == '\\' && q + 1 < c->end ? 2 : 1;
        size_t cap = (size_t)(q - c->p) + 1;
        if (cap > sizeof small && !(text = malloc(cap))) return syntax(c, "out of memory");
        if (cap <= sizeof small) cap = sizeof small;
        int rc = string_value(c, text, cap, &f->len);
        f->ts_ok = rc == 0 && strlen(text) == f->len && ems_iso8601_parse(text, c->zone, &f->ts_ms) == 0;
        if (text != small) free(text);
        return rc;
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) return number_value(c, f);
    f->kind = V_OTHER;
    return skip_value(c, depth);
}

/* Checks a reading's fields as readings_parse_json's one() does, in the same order, with its words. */
static int check_reading(const field *fs, size_t nkeys, reading *r, char *err, size_t errlen) {
    const field *id = &fs[K_DEVICE_ID], *val = &fs[K_MEASUREMENT_VALUE], *ts = &fs[K_TIMESTAMP];
    if (id->kind == V_NONE && val->kind == V_NONE) {
        id = &fs[K_DEVICEID];
        val = &fs[K_VALUE];
    }
    if (id->kind == V_NONE || val->kind == V_NONE || ts->kind == V_NONE || nkeys != 3) {
        snprintf(err, errlen, "a reading needs exactly timestamp, device_id and measurement_value");
        return -1;
    }
    if (id->kind != V_STRING || id->len != EMS_ID_LEN - 1) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    for (size_t i = 0; i < EMS_ID_LEN; i++) r->device_id[i] = (char)tolower((unsigned char)id->text[i]);
    if (!ems_uuid_valid(r->device_id)) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    int ts_bad = 1;
    if (ts->kind == V_INT) r->ts_ms = ts->i, ts_bad = 0;
    else if (ts->kind == V_REAL && ts->d == floor(ts->d) && ts->d >= TS_MIN && ts->d < TS_MAX)
        r->ts_ms = (int64_t)ts->d, ts_bad = 0; /* range first: casting a huge double is undefined */
    else if (ts->kind == V_STRING && ts->ts_ok) r->ts_ms = ts->ts_ms, ts_bad = 0;
    if (ts_bad || r->ts_ms < TS_MIN || r->ts_ms >= TS_MAX) {
        snprintf(err, errlen, "timestamp must be epoch milliseconds or ISO-8601 between 2000 and 2100");
        return -1;
    }
    r->kwh = val->kind == V_INT ? (double)val->i : val->d;
    if ((val->kind != V_INT && val->kind != V_REAL) || !isfinite(r->kwh) || r->kwh < 0 || r->kwh > 1e6) {
        snprintf(err, errlen, "measurement_value must be a number from 0 to 1000000 (kWh)");
        return -1;
    }
    return 0;
}

/* An object at c->p (the '{'), read as a reading; its problem, if any, goes to why. */
static int reading_object(cursor *c, int depth, reading *r, char *why, size_t whylen, int *bad) {
    field fs[K_COUNT];
    size_t nkeys = 0;
    char key[24];
    for (int i = 0; i < K_COUNT; i++) fs[i].kind = V_NONE;
    if (depth > MAX_DEPTH) return syntax(c, "maximum parsing depth reached");
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            size_t len;
            skip_ws(c);
            if (c->p >= c->end || *c->p != '"') return syntax(c, "string or '}' expected");
            if (string_value(c, key, sizeof key, &len)) return -1;
            int k = len < sizeof key ? key_of(key, len) : K_OTHER;
            if (k != K_OTHER && fs[k].kind != V_NONE) return syntax(c, "duplicate object key");
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':') return syntax(c, "':' expected");
            c->p++;
            skip_ws(c);
            field other;
            if (field_value(c, k, depth, k == K_OTHER ? &other : &fs[k])) return -1;
            nkeys++;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == '}') {
                c->p++;
                break;
            }
            return syntax(c, "'}' expected");
        }
    }
    if (!*bad && check_reading(fs, nkeys, r, why, whylen)) *bad = 1;
    return 0;
}

ems_rc readings_parse(const char *body, size_t len, ems_tz *zone, reading **out, size_t *n, char *err, size_t errlen) {
    cursor c = {.start = body, .p = body, .end = body + len, .zone = zone, .err = err, .errlen = errlen};
    reading *rs = NULL;
    size_t count = 0, cap = 0, bad_at = 0;
    int bad = 0, array = 0;
    char why[160] = "";
    ems_rc rc = EMS_BAD_REQUEST;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '[') {
        array = 1;
        c.p++;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ']') c.p++;
        else
            for (;;) {
                skip_ws(&c);
                if (count == cap && count <= READINGS_MAX_PER_MESSAGE) {
                    size_t ncap = cap ? cap * 2 : 64;
                    reading *grown = realloc(rs, ncap * sizeof *grown);
                    if (!grown) {
                        rc = EMS_NOMEM;
                        goto cleanup;
                    }
                    rs = grown;
                    cap = ncap;
                }
                /* Past the limit the readings are only validated: the count refuses the message. */
                reading spare = {0}, *r = count < cap ? &rs[count] : &spare;
                int was_bad = bad;
                if (c.p < c.end && *c.p == '{') {
                    if (reading_object(&c, 2, r, why, sizeof why, &bad)) goto cleanup;
                } else {
                    if (skip_value(&c, 1)) goto cleanup;
                    if (!bad) snprintf(why, sizeof why, "a reading must be an object"), bad = 1;
                }
                if (bad && !was_bad) bad_at = count;
                count++;
                skip_ws(&c);
                if (c.p < c.end && *c.p == ',') {
                    c.p++;
                    continue;
                }
                if (c.p < c.end && *c.p == ']') {
                    c.p++;
                    break;
                }
                syntax(&c, "']' expected");
                goto cleanup;
            }
    } else if (c.p < c.end && *c.p == '{') {
        if (!(rs = malloc(sizeof *rs))) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
        if (reading_object(&c, 1, rs, why, sizeof why, &bad)) goto cleanup;
        count = 1;
    } else {
        syntax(&c, c.p < c.end ? "'[' or '{' expected" : "premature end of input");
        goto cleanup;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        syntax(&c, "end of file expected");
        goto cleanup;
    }
    if (array && (count == 0 || count > READINGS_MAX_PER_MESSAGE)) {
        snprintf(err, errlen, "a message holds 1 to %d readings", READINGS_MAX_PER_MESSAGE);
        goto cleanup;
    }
    if (bad) {
        snprintf(err, errlen, "reading %zu: %s", bad_at, why);
        goto cleanup;
    }
    *out = rs;
    *n = count;
    rs = NULL;
    rc = EMS_OK;
cleanup:
    free(rs);
    return rc;
}

char *readings_dump(const reading *r, size_t n, size_t *len) {
    /*
     * Written by hand: this is the balancer's hot path, and the shape is fixed.
     * The longest a reading can print: separator 1 + {"timestamp": 13 + an int64
     * 20 + ,"device_id":" 14 + the id 36 + ","measurement_value": 22 + a %.17g
     * double 24 + } 1 = 131 bytes.
     */
    size_t cap = n * 131 + 3, used = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[used++] = '[';
    for (size_t i = 0; i < n; i++) {
        int w =
            snprintf(buf + used, cap - used, "%s{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":%.17g}",
                     i ? "," : "", (long long)r[i].ts_ms, r[i].device_id, r[i].kwh);
        if (w < 0 || (size_t)w >= cap - used) {
            free(buf);
            return NULL;
        }
        used += (size_t)w;
    }
    buf[used++] = ']';
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}
