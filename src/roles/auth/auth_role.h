/*
 * auth_role.h — the auth role's private state, shared by its files.
 *
 * Not auth.h: that is core's (tokens and passwords), and which of two headers
 * of one name `#include "auth.h"` finds depends on the include path's order.
 */
#ifndef EMS_ROLE_AUTH_H
#define EMS_ROLE_AUTH_H

#include <pthread.h>

#include "client.h"
#include "limiter.h"
#include "role.h"

typedef struct auth_role {
    ems_role_env *env;
    int64_t token_ttl;
    limiter *limiter;
    auth_proxies proxies; /* peers whose X-Real-IP is believed */
    const char *user_queue, *device_queue, *ws_queue;
    /* Token versions of recently seen accounts, so that checking a token for
     * revocation costs a lookup, not a query.  Written through on every change. */
    pthread_mutex_t ver_lock;
    struct ver_entry {
        char id[EMS_ID_LEN];
        int64_t ver; /* 0: account gone */
        int64_t checked_ms;
    } vers[1024];
} auth_role;

/* Handlers (accounts.c). */
ems_rc auth_register(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_login(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_verify(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_account_create(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_account_patch(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_account_delete(ems_req *req, ems_resp *resp, void *ctx);
ems_rc auth_password(ems_req *req, ems_resp *resp, void *ctx);

/* Revocation check for ems_http_token_check (accounts.c). */
ems_rc auth_token_check(const ems_principal *who, void *ctx);
/* Creates the initial admin when there is none (accounts.c). */
ems_rc auth_ensure_admin(auth_role *a, const char *username, const char *password);

#endif
