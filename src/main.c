/*
 * main.c — `ems`: parses the command line and starts the roles asked for.
 *
 *   ems serve                 every role in one process (embedded mode):
 *                             SQLite under --data-dir, the in-process bus,
 *                             one HTTP port for /api and the web app
 *   ems serve --role R        one role (distributed mode): PostgreSQL and RabbitMQ
 *   ems keygen DIR            an ES256 key pair for a distributed deployment
 *
 * Signals only set a flag (sigwait on the main thread); the roles keep
 * working on their own threads until then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "roles.h"
#include "tz.h"
#include "util.h"

#ifndef EMS_VERSION
#define EMS_VERSION "0.0.0"
#endif

static const ems_conf_def common_conf[] = {
    {"config", "EMS_CONFIG", EMS_CONF_STR, "", 0, 0, "configuration file of key = value lines"},
    {"role", "EMS_ROLE", EMS_CONF_STR, "", 0, 0, "run one role (distributed mode); empty runs all (embedded)"},
    {"port", "PORT", EMS_CONF_INT, "8080", 0, 65535, "HTTP port"},
    {"bind", "EMS_BIND", EMS_CONF_STR, "127.0.0.1", 0, 0, "address to listen on (0.0.0.0 in containers)"},
    {"data_dir", "EMS_DATA_DIR", EMS_CONF_STR, "./var", 0, 0, "embedded mode: SQLite files and the key pair"},
    {"web_dir", "EMS_WEB_DIR", EMS_CONF_STR, "", 0, 0, "web app to serve (embedded default: web/dist)"},
    {"sql_dir", "EMS_SQL_DIR", EMS_CONF_STR, "", 0, 0, "migrations root (default: the source tree's sql/)"},
    {"log_level", "EMS_LOG_LEVEL", EMS_CONF_STR, "info", 0, 0, "debug, info, warn or error"},
    {"log_rate_limit", "EMS_LOG_RATE_LIMIT", EMS_CONF_INT, "10", 0, 1000000,
     "lines of one log event per log_rate_window_ms; the rest are counted in one log.suppressed line (0: no limit)"},
    {"log_rate_window_ms", "EMS_LOG_RATE_WINDOW_MS", EMS_CONF_INT, "10000", 100, 3600000,
     "log_rate_limit's window (ms)"},
    {"bus_dlq_max_bytes", "EMS_BUS_DLQ_MAX_BYTES", EMS_CONF_INT, "8388608", 0, 1073741824,
     "embedded: bytes of dead letters kept in memory per queue; the oldest are dropped first, and counted"},
    {"http_threads", "EMS_HTTP_THREADS", EMS_CONF_INT, "0", 0, 256, "HTTP worker threads (0: one per core)"},
    {"max_body", "EMS_MAX_BODY", EMS_CONF_INT, "1048576", 1024, 64L * 1024 * 1024, "largest request body in bytes"},
    {"http_max_conns_per_ip", "EMS_HTTP_MAX_CONNS_PER_IP", EMS_CONF_INT, "-1", -1, 4096,
     "HTTP connections one client address may hold (0: no limit; -1: 128 embedded, none behind the gateway)"},
    {"http_conn_limit_exempt", "EMS_HTTP_CONN_LIMIT_EXEMPT", EMS_CONF_STR, "", 0, 0,
     "addresses or CIDRs, comma-separated, the per-address limit spares (e.g. the gateway's)"},
    {"http_header_timeout", "EMS_HTTP_HEADER_TIMEOUT", EMS_CONF_INT, "10", 1, 3600,
     "seconds from accept to the end of a request's headers, however slowly they come"},
    {"metrics_access", "EMS_METRICS_ACCESS", EMS_CONF_STR, "", 0, 0,
     "who may GET /metrics: admin (an admin token or metrics_token) or public; default admin embedded, public behind "
     "the gateway"},
    {"metrics_token", "EMS_METRICS_TOKEN", EMS_CONF_SECRET, "", 0, 0,
     "bearer secret that may read /metrics (a scraper's)"},
    {"jwt_public_key_file", "EMS_JWT_PUBLIC_KEY_FILE", EMS_CONF_STR, "", 0, 0,
     "ES256 public key (embedded default: <data_dir>/jwt-public.pem)"},
    {"jwt_private_key_file", "EMS_JWT_PRIVATE_KEY_FILE", EMS_CONF_STR, "", 0, 0,
     "ES256 private key, auth role only (embedded default: <data_dir>/jwt-private.pem)"},
    {"ingest_token", "EMS_INGEST_TOKEN", EMS_CONF_SECRET, "", 0, 0, "bearer secret for POST /api/readings"},
    {"ws_url", "EMS_WS_URL", EMS_CONF_STR, "", 0, 0,
     "WebSocket URL told to the web app (default: /ws behind a gateway, ws://<host>:<ws_port>/ws embedded)"},
    {"db_ip", "DB_IP", EMS_CONF_STR, "127.0.0.1", 0, 0, "PostgreSQL host"},
    {"db_port", "DB_PORT", EMS_CONF_INT, "5432", 1, 65535, "PostgreSQL port"},
    {"db_user", "DB_USER", EMS_CONF_STR, "postgres", 0, 0, "PostgreSQL user"},
    {"db_password", "DB_PASSWORD", EMS_CONF_SECRET, "", 0, 0, "PostgreSQL password"},
    {"db_dbname", "DB_DBNAME", EMS_CONF_STR, "", 0, 0, "PostgreSQL database (default ems_<role>)"},
    {"db_pool", "EMS_DB_POOL", EMS_CONF_INT, "4", 1, 64, "database connections per role"},
    {"db_wait", "EMS_DB_WAIT", EMS_CONF_INT, "30", 0, 3600, "seconds to wait for the database at start"},
    {"rabbitmq_host", "RABBITMQ_HOST", EMS_CONF_STR, "127.0.0.1", 0, 0, "RabbitMQ host"},
    {"rabbitmq_port", "RABBITMQ_PORT", EMS_CONF_INT, "5672", 1, 65535, "RabbitMQ port"},
    {"rabbitmq_username", "RABBITMQ_USERNAME", EMS_CONF_STR, "guest", 0, 0, "RabbitMQ user"},
    {"rabbitmq_password", "RABBITMQ_PASSWORD", EMS_CONF_SECRET, "guest", 0, 0, "RabbitMQ password"},
    {"rabbitmq_vhost", "RABBITMQ_VHOST", EMS_CONF_STR, "/", 0, 0, "RabbitMQ virtual host"},
    {"rabbitmq_auth_user_queue", "RABBITMQ_AUTH_USER_QUEUE", EMS_CONF_STR, "internal.auth.user.queue", 0, 0,
     "auth → users events"},
    {"rabbitmq_auth_device_queue", "RABBITMQ_AUTH_DEVICE_QUEUE", EMS_CONF_STR, "internal.auth.device.queue", 0, 0,
     "auth → devices events"},
    {"rabbitmq_auth_ws_queue", "RABBITMQ_AUTH_WS_QUEUE", EMS_CONF_STR, "internal.auth.websocket.queue", 0, 0,
     "auth → ws: tokens revoked, whose open WebSockets close"},
    {"rabbitmq_device_monitoring_queue", "RABBITMQ_DEVICE_MONITORING_QUEUE", EMS_CONF_STR,
     "internal.device.monitoring.queue", 0, 0, "devices → monitoring events"},
    {"rabbitmq_alert_queue", "RABBITMQ_ALERT_QUEUE", EMS_CONF_STR, "internal.monitoring.device.alert.queue", 0, 0,
     "monitoring → devices alerts"},
    {"rabbitmq_notification_queue", "RABBITMQ_NOTIFICATION_QUEUE", EMS_CONF_STR,
     "internal.device.websocket.user.notification.queue", 0, 0, "devices → ws notifications"},
    {"rabbitmq_data_collection_queue", "RABBITMQ_DATA_COLLECTION_QUEUE", EMS_CONF_STR, "external.data.collection.queue",
     0, 0, "meters → balancer readings"},
    {"rabbitmq_monitoring_queue_prefix", "RABBITMQ_MONITORING_QUEUE_PREFIX", EMS_CONF_STR,
     "internal.loadbalancer.monitoring.queue.", 0, 0, "balancer → monitoring replica queues (+ replica number)"},
    {"replica_id", "REPLICA_ID", EMS_CONF_INT, "1", 1, 1024, "monitoring replica number"},
    {"replicas", "EMS_REPLICAS", EMS_CONF_INT, "4", 1, 1024, "number of monitoring replicas"},
    {"simulator_delay_ms", "SIMULATOR_DELAY_MS", EMS_CONF_INT, "0", 0, 60000, "monitoring: pause per reading (ms)"},
    {"reading_tz", "EMS_READING_TZ", EMS_CONF_STR, "", 0, 0,
     "IANA zone of reading timestamps written without one (default UTC); balancer and monitoring"},
    {"auth_service_host", "AUTH_SERVICE_HOST", EMS_CONF_STR, "", 0, 0, "URL of the auth role"},
    {"support_service_host", "SUPPORT_SERVICE_HOST", EMS_CONF_STR, "", 0, 0, "URL of the support role"},
};

/* Everything one running role holds. */
typedef struct running_role {
    const ems_role_def *def;
    ems_role_env env;
    void *state;
} running_role;

static void usage(FILE *out) {
    fprintf(out,
            "ems %s — Energy Management System\n\n"
            "usage:\n"
            "  ems serve [options]              every role in one process (SQLite, in-process bus)\n"
            "  ems serve --role ROLE [options]  one role over PostgreSQL and RabbitMQ\n"
            "  ems keygen DIR                   write an ES256 key pair (jwt-private.pem, jwt-public.pem)\n"
            "  ems version\n"
            "  ems serve --help                 every option and its environment variable\n\n"
            "roles:",
            EMS_VERSION);
    for (size_t i = 0; i < ems_nroles; i++) fprintf(out, " %s", ems_roles[i]->name);
    fputc('\n', out);
}

static ems_conf *conf_all(void) {
    ems_conf *c = ems_conf_new();
    if (!c) return NULL;
    ems_conf_add(c, common_conf, sizeof common_conf / sizeof common_conf[0]);
    for (size_t i = 0; i < ems_nroles; i++)
        if (ems_roles[i]->conf) ems_conf_add(c, ems_roles[i]->conf, ems_roles[i]->nconf);
    return c;
}

static const char *config_file(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    }
    const char *env = getenv("EMS_CONFIG");
    return env && *env ? env : NULL;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static ems_rc open_store(const ems_conf *c, const char *role, int embedded, ems_store **out, char *err, size_t n) {
    char *url = NULL;
    if (embedded) {
        const char *dir = ems_conf_str(c, "data_dir");
        size_t len = strlen(dir) + strlen(role) + 16;
        if ((url = malloc(len))) snprintf(url, len, "sqlite:%s/%s.db", dir, role);
    } else {
        char dbname[128];
        const char *db = ems_conf_str(c, "db_dbname");
        if (!*db) snprintf(dbname, sizeof dbname, "ems_%s", role);
        else snprintf(dbname, sizeof dbname, "%s", db);
        char *user = ems_url_escape(ems_conf_str(c, "db_user")), *pw = ems_url_escape(ems_conf_str(c, "db_password"));
        char *name = ems_url_escape(dbname);
        size_t len = strlen(user) + strlen(pw) + strlen(name) + strlen(ems_conf_str(c, "db_ip")) + 64;
        if ((url = malloc(len)))
            snprintf(url, len, "postgresql://%s%s%s@%s:%ld/%s", user, *pw ? ":" : "", pw, ems_conf_str(c, "db_ip"),
                     ems_conf_int(c, "db_port"), name);
        free(user);
        free(pw);
        free(name);
    }
    if (!url) return EMS_NOMEM;
    ems_rc rc = ems_store_open(url, (unsigned)ems_conf_int(c, "db_pool"), out, err, n);
    free(url);
    if (rc || embedded) return rc;
    /* A distributed role may start before its database: wait for it a while. */
    for (long waited = 0; !ems_store_ping(*out); waited++) {
        if (waited >= ems_conf_int(c, "db_wait") * 2) {
            snprintf(err, n, "database for role %s unreachable at %s:%ld", role, ems_conf_str(c, "db_ip"),
                     ems_conf_int(c, "db_port"));
            ems_store_close(*out);
            *out = NULL;
            return EMS_UNAVAILABLE;
        }
        if (waited == 0) ems_log(EMS_LOG_WARN, "store.waiting", "role=%s", role);
        usleep(500 * 1000);
    }
    return EMS_OK;
}

static ems_rc open_bus(const ems_conf *c, int embedded, ems_bus **out, char *err, size_t n) {
    if (embedded) {
        ems_rc rc = ems_bus_open("inproc:", out, err, n);
        if (rc == EMS_OK) ems_bus_set_dlq_max_bytes(*out, (size_t)ems_conf_int(c, "bus_dlq_max_bytes"));
        return rc;
    }
    char *user = ems_url_escape(ems_conf_str(c, "rabbitmq_username"));
    char *pw = ems_url_escape(ems_conf_str(c, "rabbitmq_password"));
    const char *vhost = ems_conf_str(c, "rabbitmq_vhost");
    char *vh = ems_url_escape(vhost);
    char url[1024];
    snprintf(url, sizeof url, "amqp://%s:%s@%s:%ld%s%s", user, pw, ems_conf_str(c, "rabbitmq_host"),
             ems_conf_int(c, "rabbitmq_port"), strcmp(vhost, "/") ? "/" : "", strcmp(vhost, "/") ? vh : "");
    free(user);
    free(pw);
    free(vh);
    return ems_bus_open(url, out, err, n);
}

static ems_rc load_keys(const ems_conf *c, int embedded, int signs, ems_jwt **out, char *err, size_t n) {
    const char *pub = ems_conf_str(c, "jwt_public_key_file"), *priv = ems_conf_str(c, "jwt_private_key_file");
    char *pub_def = NULL, *priv_def = NULL;
    if (embedded && !*pub) pub = pub_def = path_join(ems_conf_str(c, "data_dir"), "jwt-public.pem");
    if (embedded && !*priv) priv = priv_def = path_join(ems_conf_str(c, "data_dir"), "jwt-private.pem");
    ems_rc rc;
    if (!pub || !*pub) {
        snprintf(err, n, "jwt_public_key_file: required with --role (EMS_JWT_PUBLIC_KEY_FILE)");
        rc = EMS_BAD_REQUEST;
    } else if (signs && (!priv || !*priv)) {
        snprintf(err, n, "jwt_private_key_file: the auth role needs it (EMS_JWT_PRIVATE_KEY_FILE)");
        rc = EMS_BAD_REQUEST;
    } else {
        rc = ems_jwt_load(signs ? priv : NULL, pub, embedded, out, err, n);
    }
    free(pub_def);
    free(priv_def);
    return rc;
}

static int ready_store(void *ctx, char *why, size_t len) {
    if (ems_store_ping(ctx)) return 1;
    snprintf(why, len, "database unreachable");
    return 0;
}

static int ready_bus(void *ctx, char *why, size_t len) {
    if (ems_bus_ready(ctx)) return 1;
    snprintf(why, len, "message broker unreachable");
    return 0;
}

/*
 * Embedded, without EMS_WS_PORT: the WebSocket takes PORT+1, or any free
 * port when that one is taken (or PORT is 0), so that a busy neighbouring
 * port does not keep `ems serve` from starting; /api/config tells the
 * browser which.  The port is probed here, before the ws role binds it: one
 * taken in between still fails the start, loudly.
 */
static long pick_ws_port(const char *bind_addr, long http_port) {
    long want = http_port > 0 && http_port < 65535 ? http_port + 1 : 0;
    for (int any = want ? 0 : 1; any < 2; any++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(any ? 0 : want))};
        socklen_t len = sizeof sa;
        int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
        long got = -1;
        if (fd < 0) break;
        if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) sa.sin_addr.s_addr = htonl(INADDR_ANY);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as libwebsockets binds */
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
            got = ntohs(sa.sin_port);
        close(fd);
        if (got > 0) {
            if (want && got != want)
                ems_log(EMS_LOG_WARN, "ws.port_moved", "wanted=%ld port=%ld reason=in_use", want, got);
            return got;
        }
    }
    return want; /* let the ws role fail on it, with its own message */
}

typedef struct config_ctx {
    const char *mode;
    const char *ws_url; /* configured, or NULL: the embedded ws port on the host the browser used */
    long ws_port;
} config_ctx;

static ems_rc serve_config(ems_req *req, ems_resp *resp, void *ctx) {
    config_ctx *cc = ctx;
    char url[300];
    if (cc->ws_url) {
        snprintf(url, sizeof url, "%s", cc->ws_url);
    } else {
        /* The browser reached us by this Host; the WebSocket listens on its own port there. */
        const char *host = ems_req_header(req, "Host");
        char name[256] = "127.0.0.1";
        if (host && *host && strlen(host) < sizeof name && !strpbrk(host, "/\\ \"'<>")) {
            snprintf(name, sizeof name, "%s", host);
            char *colon = strrchr(name, ':');
            if (colon && !strchr(colon, ']')) *colon = '\0';
        }
        snprintf(url, sizeof url, "ws://%s:%ld/ws", name, cc->ws_port);
    }
    return ems_reply_json(resp, 200,
                          json_pack("{s:s, s:s, s:s}", "version", EMS_VERSION, "mode", cc->mode, "ws_url", url));
}

static const ems_route config_routes[] = {
    {"GET", "/api/config", EMS_ACCESS_ANY, serve_config},
};

/*
 * What a client may hold of the HTTP server, and who may read /metrics.  In
 * embedded mode the server faces the clients itself; a distributed role
 * faces only the gateway, which is every client's address and does not route
 * /metrics, so neither limit is on there unless asked for.
 */
static ems_rc http_limits(const ems_conf *c, int embedded, ems_http_opts *o, char *err, size_t n) {
    long per_ip = ems_conf_int(c, "http_max_conns_per_ip");
    const char *access = ems_conf_str(c, "metrics_access");
    if (!*access) access = embedded ? "admin" : "public";
    if (strcmp(access, "admin") != 0 && strcmp(access, "public") != 0) {
        snprintf(err, n, "metrics_access: '%s' is not admin or public", access);
        return EMS_BAD_REQUEST;
    }
    o->max_conns_per_ip = per_ip >= 0 ? (unsigned)per_ip : embedded ? 128 : 0;
    o->conn_limit_exempt = ems_conf_str(c, "http_conn_limit_exempt");
    o->header_timeout_s = (unsigned)ems_conf_int(c, "http_header_timeout");
    o->metrics_access = strcmp(access, "admin") == 0 ? EMS_ACCESS_ADMIN : EMS_ACCESS_ANY;
    o->metrics_token = ems_conf_str(c, "metrics_token");
    return EMS_OK;
}

static int serve(int argc, char **argv) {
    char err[512] = "";
    int status = 1;
    ems_conf *c = conf_all();
    ems_http *http = NULL;
    ems_bus *bus = NULL;
    ems_jwt *jwt = NULL;
    running_role run[16];
    size_t nrun = 0;
    char *web_def = NULL, *sql_def = NULL;
    memset(run, 0, sizeof run);

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            printf("\noptions (flag, environment variable, meaning):\n");
            ems_conf_help(c, stdout);
            ems_conf_free(c);
            return 0;
        }
    }
    if (!c || ems_conf_load(c, config_file(argc, argv), argc, argv, err, sizeof err)) {
        fprintf(stderr, "ems: %s\n", err[0] ? err : "out of memory");
        ems_conf_free(c);
        return 2;
    }
    int level = ems_log_level_parse(ems_conf_str(c, "log_level"));
    if (level < 0) {
        fprintf(stderr, "ems: log_level: '%s' is not one of debug, info, warn, error\n", ems_conf_str(c, "log_level"));
        ems_conf_free(c);
        return 2;
    }
    /* Every role is started with the zone, but a bad one is best refused before any of them. */
    const char *reading_tz = ems_conf_str(c, "reading_tz");
    if (*reading_tz && !ems_tz_valid(reading_tz)) {
        fprintf(stderr, "ems: reading_tz: '%s' is not an IANA time zone (such as Europe/Bucharest)\n", reading_tz);
        ems_conf_free(c);
        return 2;
    }
    ems_log_set_level((ems_log_level)level);
    ems_log_set_rate((unsigned)ems_conf_int(c, "log_rate_limit"), ems_conf_int(c, "log_rate_window_ms"));

    const char *role = ems_conf_str(c, "role");
    int embedded = !*role;
    if (!embedded && !ems_role_find(role)) {
        fprintf(stderr, "ems: role: unknown role '%s'\n", role);
        ems_conf_free(c);
        return 2;
    }
    if (!embedded) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "role=%s", role);
        ems_log_set_context(ctx);
    }

    const char *data_dir = ems_conf_str(c, "data_dir");
    if (embedded && mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "ems: data_dir: cannot create %s: %s\n", data_dir, strerror(errno));
        goto cleanup;
    }
    const char *sql_dir = ems_conf_str(c, "sql_dir");
    if (!*sql_dir) sql_dir = sql_def = path_join(EMS_SOURCE_DIR, "sql");
    const char *web_dir = ems_conf_str(c, "web_dir");
    if (!*web_dir && embedded) {
        web_def = path_join(EMS_SOURCE_DIR, "web/dist");
        web_dir = is_dir(web_def) ? web_def : "";
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL); /* every thread started below inherits this */
    signal(SIGPIPE, SIG_IGN);

    int signs = embedded || strcmp(role, "auth") == 0;
    if (load_keys(c, embedded, signs, &jwt, err, sizeof err)) goto fail;
    if (open_bus(c, embedded, &bus, err, sizeof err)) goto fail;

    ems_http_opts opts = {
        .bind = ems_conf_str(c, "bind"),
        .port = (int)ems_conf_int(c, "port"),
        .threads = (unsigned)ems_conf_int(c, "http_threads"),
        .max_body = (size_t)ems_conf_int(c, "max_body"),
        .static_dir = *web_dir ? web_dir : NULL,
        .jwt = jwt,
        .ingest_token = *ems_conf_str(c, "ingest_token") ? ems_conf_str(c, "ingest_token") : NULL,
    };
    if (http_limits(c, embedded, &opts, err, sizeof err)) goto fail;
    if (!(http = ems_http_new(&opts))) {
        snprintf(err, sizeof err, "cannot create the HTTP server");
        goto fail;
    }
    const char *ws_url = ems_conf_str(c, "ws_url");
    long ws_port = ems_conf_int(c, "ws_port");
    if (embedded && !ws_port && (ws_port = pick_ws_port(opts.bind, opts.port)) > 0) {
        char text[24]; /* a long, as the compiler counts */
        snprintf(text, sizeof text, "%ld", ws_port);
        if (ems_conf_set(c, "ws_port", text, err, sizeof err) != EMS_OK) goto fail;
    }
    config_ctx cfg = {
        .mode = embedded ? "embedded" : "distributed",
        .ws_url = *ws_url    ? ws_url
                  : embedded ? NULL
                             : "/ws",
        .ws_port = ws_port ? ws_port : ems_conf_int(c, "port") + 1,
    };
    ems_http_routes(http, config_routes, 1, &cfg);
    if (!embedded) ems_http_ready_check(http, ready_bus, bus);

    for (size_t i = 0; i < ems_nroles; i++) {
        const ems_role_def *def = ems_roles[i];
        if (!embedded && strcmp(def->name, role) != 0) continue;
        running_role *r = &run[nrun++];
        r->def = def;
        r->env =
            (ems_role_env){.name = def->name, .conf = c, .bus = bus, .jwt = jwt, .http = http, .embedded = embedded};
        if (def->has_store) {
            if (open_store(c, def->name, embedded, &r->env.store, err, sizeof err)) goto fail;
            char *dir = path_join(sql_dir, def->name),
                 *engine_dir = dir ? path_join(dir, ems_store_engine_name(r->env.store)) : NULL;
            ems_rc rc = engine_dir ? ems_store_migrate(r->env.store, engine_dir, err, sizeof err) : EMS_NOMEM;
            free(dir);
            free(engine_dir);
            if (rc) goto fail;
            if (ems_outbox_start(r->env.store, bus, &r->env.outbox)) {
                snprintf(err, sizeof err, "role %s: cannot start the outbox relay", def->name);
                goto fail;
            }
            ems_http_ready_check(http, ready_store, r->env.store);
        }
        if (def->start(&r->env, &r->state)) {
            if (!err[0]) snprintf(err, sizeof err, "role %s failed to start", def->name);
            goto fail;
        }
        ems_log(EMS_LOG_INFO, "role.started", "role=%s", def->name);
    }
    if (ems_http_start(http, err, sizeof err)) goto fail;
    ems_log(EMS_LOG_INFO, "ems.listening", "mode=%s bind=%s port=%d", cfg.mode, opts.bind, ems_http_port(http));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    ems_log(EMS_LOG_INFO, "ems.stopping", "signal=%d", sig);
    status = 0;
    goto cleanup;

fail:
    fprintf(stderr, "ems: %s\n", err[0] ? err : "start-up failed");
cleanup:
    /* Stop producers before consumers, consumers before the state they use;
     * an outbox outlives the consumers that may still kick it. */
    for (size_t i = 0; i < nrun; i++) ems_outbox_halt(run[i].env.outbox);
    ems_http_free(http);
    ems_bus_close(bus);
    for (size_t i = nrun; i-- > 0;) {
        if (run[i].state) run[i].def->stop(run[i].state);
        ems_outbox_stop(run[i].env.outbox);
        ems_store_close(run[i].env.store);
    }
    ems_jwt_free(jwt);
    free(web_def);
    free(sql_def);
    ems_conf_free(c);
    ems_log_flush(); /* the suppressed lines' counts still owed */
    return status;
}

static int keygen(const char *dir) {
    char err[512];
    char *priv = path_join(dir, "jwt-private.pem"), *pub = path_join(dir, "jwt-public.pem");
    ems_jwt *jwt = NULL;
    int status = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "ems keygen: cannot create %s: %s\n", dir, strerror(errno));
        status = 1;
    } else if (ems_jwt_load(priv, pub, 1, &jwt, err, sizeof err)) {
        fprintf(stderr, "ems keygen: %s\n", err);
        status = 1;
    }
    ems_jwt_free(jwt);
    free(priv);
    free(pub);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "serve") == 0) return serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "keygen") == 0 && argc == 3) return keygen(argv[2]);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("ems %s\n", EMS_VERSION);
        return 0;
    }
    fprintf(stderr, "ems: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
