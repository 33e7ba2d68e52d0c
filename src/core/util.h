/*
 * util.h — small helpers the roles share: clock, text checks, paging.
 */
#ifndef EMS_UTIL_H
#define EMS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "result.h"

/* Wall-clock time in epoch milliseconds. */
int64_t ems_now_ms(void);

/*
 * 1 if s is strict UTF-8 (shortest forms only; no surrogates, nothing above
 * U+10FFFF, no truncated sequence) of min..max characters (code points) with
 * no control character (C0, DEL, C1).  0 for NULL.
 */
int ems_text_ok(const char *s, size_t min, size_t max);
/*
 * 1 if s has a character that shows: something other than spaces, format
 * and bidi controls, zero-width characters, joiners, variation selectors,
 * fillers and combining marks alone.  For names, which must not be blank to
 * the eye.  0 for NULL or text that is not valid UTF-8.
 */
int ems_text_visible(const char *s);

/*
 * Reads ?limit= and ?offset= (limit 1..100, default 20; offset ≥ 0, default 0).
 * EMS_BAD_REQUEST with a message on anything else.
 */
ems_rc ems_paging(ems_req *req, ems_resp *resp, int64_t *limit, int64_t *offset);

/* Escapes % _ and \ for a LIKE pattern with ESCAPE '\' and wraps it in %...%; malloc'd. */
char *ems_like_pattern(const char *q);

/* Percent-encodes s for a URL's userinfo; malloc'd. */
char *ems_url_escape(const char *s);

#endif
