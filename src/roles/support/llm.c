/*
 * llm.c — the LLM fallback of the support assistant.
 */
#include "llm.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"

#define LLM_MAX_TOKENS 200
#define LLM_TEMPERATURE 0.2
#define LLM_REPLY_MAX_CHARS 2000

static const char chat_path[] = "/chat/completions";

int support_llm_configured(const support_llm *llm) {
    return llm->url && *llm->url && llm->key && *llm->key && llm->model && *llm->model;
}

char *support_llm_endpoint(const char *url) {
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/') len--;
    size_t plen = sizeof chat_path - 1;
    int complete = len >= plen && strncmp(url + len - plen, chat_path, plen) == 0;
    const char *suffix = complete ? "" : "/v1/chat/completions";
    size_t n = len + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%.*s%s", (int)len, url, suffix);
    return out;
}

char *support_llm_request(const support_llm *llm, const char *text) {
    json_t *req = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f}", "model", llm->model, "messages", "role",
                            "system", "content", llm->system_prompt ? llm->system_prompt : "", "role", "user",
                            "content", text, "max_tokens", LLM_MAX_TOKENS, "temperature", LLM_TEMPERATURE);
    char *out = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return out;
}

char *support_llm_parse(const char *body) {
    json_t *doc = json_loads(body, 0, NULL);
    const char *content = NULL;
    char *out = NULL;
    if (!doc || json_unpack(doc, "{s:[{s:{s:s}}]}", "choices", "message", "content", &content)) goto cleanup;
    while (isspace((unsigned char)*content)) content++;
    size_t len = strlen(content);
    while (len > 0 && isspace((unsigned char)content[len - 1])) len--;
    /* Cut at LLM_REPLY_MAX_CHARS code points; jansson has checked the UTF-8. */
    size_t chars = 0, cut = 0;
    while (cut < len && chars < LLM_REPLY_MAX_CHARS) {
        cut++;
        while (cut < len && ((unsigned char)content[cut] & 0xc0) == 0x80) cut++;
        chars++;
    }
    if (cut == 0) goto cleanup;
    if ((out = malloc(cut + 1))) {
        memcpy(out, content, cut);
        out[cut] = '\0';
    }
cleanup:
    json_decref(doc);
    return out;
}

ems_rc support_llm_ask(const support_llm *llm, const char *text, char **reply) {
    if (!support_llm_configured(llm)) return EMS_DECLINED;
    char host[256], why[160] = "";
    long status = 0;
    char *url = support_llm_endpoint(llm->url), *req_body = support_llm_request(llm, text), *body = NULL;
    ems_rc rc = EMS_NOMEM;
    support_url_host(llm->url, host, sizeof host);
    if (!url || !req_body) goto cleanup;
    ems_fetch_req req = {"POST", url, llm->key, req_body, llm->timeout_ms};
    rc = ems_fetch(&req, &status, &body, why, sizeof why);
    if (rc) {
        ems_log(EMS_LOG_WARN, "support.llm_failed", "host=%s reason=\"%s\"", host, why);
        goto cleanup;
    }
    if (status < 200 || status > 299) {
        ems_log(EMS_LOG_WARN, "support.llm_failed", "host=%s status=%ld", host, status);
        rc = EMS_UNAVAILABLE;
        goto cleanup;
    }
    if (!(*reply = support_llm_parse(body))) {
        ems_log(EMS_LOG_WARN, "support.llm_failed", "host=%s status=%ld reason=malformed_reply", host, status);
        rc = EMS_UNAVAILABLE;
        goto cleanup;
    }
    ems_log(EMS_LOG_DEBUG, "support.llm_answered", "host=%s status=%ld", host, status);
    rc = EMS_OK;
cleanup:
    free(url);
    free(req_body);
    free(body);
    return rc;
}
