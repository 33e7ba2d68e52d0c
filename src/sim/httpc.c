/*
 * httpc.c — the simulator's HTTP client (see httpc.h), on libcurl.
 *
 * One easy handle per client, kept for its whole life, so libcurl keeps the
 * connection alive between POSTs and re-makes a stale one by itself.  A
 * sender has nothing else to do while it waits for its answer, so the calls
 * block, bounded by a connect timeout and a timeout for the whole exchange.
 */
#include "httpc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

#define DEFAULT_PATH "/api/readings"
#define CONNECT_TIMEOUT_MS 3000L
#define IO_TIMEOUT_MS 30000L
#define BODY_MAX ((size_t)4 * 1024 * 1024)
#define TOKEN_MAX 4096

struct sim_httpc {
    CURL *curl;
    char url[1400];
    char where[300];
    sim_buf *resp; /* the caller's buffer during a POST */
    int too_large;
};

/* Checks url is http://host[:port][/path] and splits off host:port for messages. */
static int parse_url(const char *url, char *host, size_t hostlen, long *port, const char **path) {
    const char *p, *host_end;
    size_t hl;
    if (!url || strncmp(url, "http://", 7) != 0) return -1;
    p = url + 7;
    if (*p == '[') { /* [IPv6] */
        if (!(host_end = strchr(p, ']'))) return -1;
        hl = (size_t)(host_end - p) + 1;
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/?#");
        hl = (size_t)(host_end - p);
    }
    if (hl == 0 || hl >= hostlen) return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    *port = 80;
    if (*host_end == ':') {
        const char *digits = host_end + 1;
        size_t dl = strspn(digits, "0123456789");
        char *end;
        if (dl == 0 || dl > 5) return -1;
        *port = strtol(digits, &end, 10);
        if (*port < 1 || *port > 65535 || (*end && *end != '/')) return -1;
        host_end = end;
    } else if (*host_end && *host_end != '/') {
        return -1;
    }
    *path = host_end;
    return 0;
}

ems_rc sim_httpc_open(const char *url, sim_httpc **out, char *err, size_t errlen) {
    char host[256];
    long port;
    const char *path;
    if (parse_url(url, host, sizeof host, &port, &path)) {
        snprintf(err, errlen, "bad http URL (expected http://host[:port][/path])");
        return EMS_BAD_REQUEST;
    }
    ems_fetch_init();
    sim_httpc *h = calloc(1, sizeof *h);
    if (!h) return EMS_NOMEM;
    if (!(h->curl = curl_easy_init())) {
        free(h);
        return EMS_NOMEM;
    }
    snprintf(h->where, sizeof h->where, "%s:%ld", host, port);
    int n =
        snprintf(h->url, sizeof h->url, "http://%s%s", h->where, *path && strcmp(path, "/") != 0 ? path : DEFAULT_PATH);
    if (n < 0 || (size_t)n >= sizeof h->url) {
        sim_httpc_free(h);
        snprintf(err, errlen, "bad http URL (too long)");
        return EMS_BAD_REQUEST;
    }
    *out = h;
    return EMS_OK;
}

void sim_httpc_free(sim_httpc *h) {
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h);
}

const char *sim_httpc_where(const sim_httpc *h) { return h->where; }

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
    sim_httpc *h = arg;
    size_t n = size * nmemb;
    if (h->resp->len + n > BODY_MAX) {
        h->too_large = 1;
        return 0; /* aborts the transfer */
    }
    return sim_buf_append(h->resp, data, n) == EMS_OK ? n : 0;
}

/* A bearer token goes into a header line: no control characters, bounded. */
static int token_ok(const char *token) {
    size_t n = strlen(token);
    if (n > TOKEN_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f) return 0;
    return 1;
}

ems_rc sim_httpc_post(sim_httpc *h, const char *token, const char *body, size_t len, int *status, sim_buf *resp,
                      char *err, size_t errlen) {
    char auth[TOKEN_MAX + 32];
    struct curl_slist *headers = NULL, *more;
    ems_rc rc = EMS_NOMEM;
    if (token && *token && !token_ok(token)) {
        snprintf(err, errlen, "the token is not a valid header value");
        return EMS_BAD_REQUEST;
    }
    resp->len = 0;
    if (sim_buf_reserve(resp, 0) != EMS_OK) return EMS_NOMEM;
    resp->p[0] = '\0'; /* sim_buf_append keeps it terminated as the body arrives */
    if (!(headers = curl_slist_append(NULL, "Content-Type: application/json"))) goto cleanup;
    if (!(more = curl_slist_append(headers, "Expect:"))) goto cleanup; /* no 100-continue round trip */
    headers = more;
    if (token && *token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        if (!(more = curl_slist_append(headers, auth))) goto cleanup;
        headers = more;
    }
    h->resp = resp;
    h->too_large = 0;
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, IO_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL); /* the list is freed below */
    h->resp = NULL;
    if (cc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        *status = (int)code;
        rc = EMS_OK;
    } else {
        snprintf(err, errlen, "%s %s: %s", h->too_large ? "response too large from" : "cannot reach", h->where,
                 curl_easy_strerror(cc));
        rc = EMS_UNAVAILABLE;
    }
cleanup:
    curl_slist_free_all(headers);
    return rc;
}
