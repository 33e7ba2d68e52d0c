/*
 * fetch.c — blocking HTTP calls over libcurl, for any role.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_MAX_BODY ((size_t)1024 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void ems_fetch_init(void) { pthread_once(&curl_once, curl_init_once); }

typedef struct buffer {
    char *data;
    size_t len, cap;
    int too_large;
} buffer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ctx) {
    buffer *b = ctx;
    size_t n = size * nmemb;
    if (b->len + n > FETCH_MAX_BODY) {
        b->too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

ems_rc ems_fetch(const ems_fetch_req *req, long *status, char **body, char *why, size_t whylen) {
    buffer b = {0};
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    ems_rc rc = EMS_UNAVAILABLE;
    ems_fetch_init();
    CURL *curl = curl_easy_init();
    if (!curl) {
        if (why) snprintf(why, whylen, "cannot create a curl handle");
        return EMS_NOMEM;
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    if (req->json_body) headers = curl_slist_append(headers, "Content-Type: application/json");
    if (req->bearer) {
        size_t n = strlen(req->bearer) + 32;
        if ((auth = malloc(n))) snprintf(auth, n, "Authorization: Bearer %s", req->bearer);
        if (auth) headers = curl_slist_append(headers, auth);
    }
    if (!headers || (req->bearer && !auth)) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect must not carry the token elsewhere */
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->json_body ? req->json_body : "");
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        if (why) snprintf(why, whylen, "%s", b.too_large ? "answer larger than 1 MiB" : curl_easy_strerror(cc));
        goto cleanup;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (!b.data && !(b.data = calloc(1, 1))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    *body = b.data;
    b.data = NULL;
    rc = EMS_OK;
cleanup:
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (auth) {
        memset(auth, 0, strlen(auth)); /* the token does not linger in freed memory */
        free(auth);
    }
    free(b.data);
    return rc;
}

void support_url_host(const char *url, char *out, size_t n) {
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(out, n, "%s", host);
    else snprintf(out, n, "?");
    curl_free(host);
    curl_url_cleanup(u);
}
