/*
 * role.h — what a role is to the process that runs it.
 *
 * Each role (auth, users, devices, ...) exports one ems_role_def.  `ems serve`
 * starts every role in one process over SQLite and the in-process bus;
 * `ems serve --role R` starts one over PostgreSQL and RabbitMQ.  The role's
 * code is the same: it receives its store, the bus and the HTTP server in
 * an ems_role_env and registers routes and consumers on them.
 */
#ifndef EMS_ROLE_H
#define EMS_ROLE_H

#include <stddef.h>

#include "auth.h"
#include "bus.h"
#include "conf.h"
#include "http.h"
#include "outbox.h"
#include "result.h"
#include "store.h"

typedef struct ems_role_env {
    const char *name;
    const ems_conf *conf;
    ems_store *store; /* this role's own database (migrated), or NULL */
    ems_bus *bus;
    ems_outbox *outbox; /* relay over store → bus, or NULL without a store */
    ems_jwt *jwt;       /* verifier (and signer where the private key is loaded) */
    ems_http *http;     /* the server to add routes to (shared in embedded mode) */
    int embedded;       /* 1 in `ems serve`, 0 with --role */
} ems_role_env;

typedef struct ems_role_def {
    const char *name;
    const ems_conf_def *conf; /* the role's own keys */
    size_t nconf;
    int has_store; /* migrations under sql/<name>/<engine>/ */
    /* Registers routes and consumers; *state is passed to stop. */
    ems_rc (*start)(ems_role_env *env, void **state);
    void (*stop)(void *state);
} ems_role_def;

#endif
