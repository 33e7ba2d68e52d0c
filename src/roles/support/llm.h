/*
 * llm.h — asking an OpenAI-compatible chat model (/v1/chat/completions, which
 * OpenAI, Mistral, Hugging Face and Gemini all serve) when no rule fires.
 *
 * The key is sent in the Authorization header and nowhere else: failures are
 * logged with the URL's host and the status only.
 */
#ifndef EMS_SUPPORT_LLM_H
#define EMS_SUPPORT_LLM_H

#include <stddef.h>

#include "result.h"

typedef struct support_llm {
    const char *url; /* base ("https://api.example.com") or the full .../chat/completions */
    const char *key;
    const char *model;
    const char *system_prompt;
    long timeout_ms;
} support_llm;

/* 1 when url, key and model are all set. */
int support_llm_configured(const support_llm *llm);

/* The endpoint for a base URL: <url>/v1/chat/completions, or url as is if it already ends in /chat/completions. */
char *support_llm_endpoint(const char *url); /* malloc'd */

/* The request body for a question; malloc'd JSON text. */
char *support_llm_request(const support_llm *llm, const char *text);

/*
 * choices[0].message.content of a reply, trimmed and at most 2000 characters
 * (malloc'd), or NULL when the reply is malformed or the content empty.
 */
char *support_llm_parse(const char *body);

/*
 * Asks the model.  EMS_OK with *reply (malloc'd); EMS_DECLINED when the
 * model is not configured; EMS_UNAVAILABLE on a timeout, a non-2xx status or
 * a malformed reply (one warn line logged, without the key).
 */
ems_rc support_llm_ask(const support_llm *llm, const char *text, char **reply);

#endif
