/*
 * wsload.c — the load client of bench/ws: many WebSocket sessions in one
 * thread (epoll, non-blocking sockets), plus an AMQP publisher, so that a
 * send time and an arrival time are read from the same clock.
 *
 *   wsload --port P --server-pid PID --hold FILE --pairs FILE --amqp-port N
 *          [--queue Q] [--wave 500] [--alerts 500] [--alert-gap-ms 4]
 *          [--chat-seconds 10] [--window 4]
 *
 * --hold holds "<user id> <token>" per line: one client session each.
 * --pairs holds "<client id> <client token> <admin id> <admin token>".
 *
 * In one run, against a ws role on 127.0.0.1:P whose process is PID:
 *   1. VmRSS / VmHWM of PID before any session;
 *   2. every --hold session opened, --wave at a time (a wave is finished
 *      before the next starts, so the listen backlog is never overrun);
 *      failures are counted; then VmRSS / VmHWM again;
 *   3. --alerts alerts published to the notification queue, --alert-gap-ms
 *      apart, each to another held user; the event id carries the alert's
 *      index, so the arrival of the notification frame gives its latency.
 *      The same is done once with only the first wave open (base_* keys);
 *   4. every pair opened too, then each client keeps --window messages in
 *      flight to its administrator, who answers each one: messages counted
 *      when the peer gets them, over --chat-seconds (after 1 s of warm-up).
 * Results go to stdout as key=value lines; progress to stderr.
 *
 * The WebSocket side is a minimal RFC 6455 client: the upgrade request (the
 * token in ?token=), the Sec-WebSocket-Accept check, masked text frames out,
 * unmasked frames in, pings answered.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WAVE_TIMEOUT_US 60000000LL
#define NOTIFICATION "\"type\":\"notification\""
#define PRESENCE "\"type\":\"presence\""
#define CHAT_MESSAGE "\"type\":\"chat.message\""
#define EVENT_PREFIX "00000000-0000-4000-8000-" /* + 12 digits: the alert's index */

enum { CONNECTING, HANDSHAKE, OPEN, DEAD };
enum { HOLD, CLIENT, ADMIN };

typedef struct conn {
    int fd;
    int state;
    int kind;
    int pair;       /* CLIENT / ADMIN: index into the pairs */
    const char *id; /* the user's id */
    const char *token;
    char accept[32]; /* the Sec-WebSocket-Accept we expect */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    unsigned char *tx;
    size_t tx_len, tx_cap;
    int want_out; /* EPOLLOUT registered */
} conn;

typedef struct pair {
    char *client_id, *client_token, *admin_id, *admin_token;
    conn *client, *admin;
} pair;

static int epfd = -1;
static int port;
static long long phase_start_us;

/* Chat counters (phase 4). */
static int chatting;
static long long chat_count_from_us, chat_count_until_us;
static long long chat_delivered, chat_frames, chat_sent;

/* Alert arrivals (phase 3). */
static long long *alert_sent_us, *alert_lat_us;
static int nalerts;
static long long alerts_received, alerts_duplicate;

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static void die(const char *what) {
    fprintf(stderr, "wsload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) die("out of memory");
    return q;
}

/* VmRSS and VmHWM of a process, in kB. */
static void proc_mem(int pid, long *rss, long *hwm) {
    char path[64], line[256];
    *rss = *hwm = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = strtol(line + 6, NULL, 10);
        if (strncmp(line, "VmHWM:", 6) == 0) *hwm = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

static void base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

static void tx_append(conn *c, const void *p, size_t n) {
    if (c->tx_len + n > c->tx_cap) {
        c->tx_cap = (c->tx_len + n) * 2;
        c->tx = xrealloc(c->tx, c->tx_cap);
    }
    memcpy(c->tx + c->tx_len, p, n);
    c->tx_len += n;
}

static void set_events(conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (c->want_out != out && epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->want_out = out;
}

static void kill_conn(conn *c) {
    if (c->state == DEAD) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = DEAD;
    free(c->rx);
    free(c->tx);
    c->rx = c->tx = NULL;
    c->rx_len = c->rx_cap = c->tx_len = c->tx_cap = 0;
}

/* Writes what is queued; EPOLLOUT only while something is left. */
static void flush(conn *c) {
    while (c->tx_len) {
        ssize_t n = send(c->fd, c->tx, c->tx_len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            kill_conn(c);
            return;
        }
        memmove(c->tx, c->tx + n, c->tx_len - (size_t)n);
        c->tx_len -= (size_t)n;
    }
    set_events(c, c->tx_len > 0);
}

/* A masked frame to the server. */
static void send_frame(conn *c, int opcode, const char *payload, size_t n) {
    unsigned char head[14], mask[4];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        head[h++] = (unsigned char)(0x80 | n);
    } else {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(n >> 8);
        head[h++] = (unsigned char)n;
    }
    if (getrandom(mask, sizeof mask, 0) != sizeof mask) die("getrandom");
    memcpy(head + h, mask, 4);
    h += 4;
    tx_append(c, head, h);
    size_t at = c->tx_len;
    tx_append(c, payload, n);
    for (size_t i = 0; i < n; i++) c->tx[at + i] ^= mask[i & 3];
    flush(c);
}

static void send_text(conn *c, const char *text) {
    if (c->state == OPEN) send_frame(c, 1, text, strlen(text));
}

static conn *open_conn(int kind, const char *id, const char *token, int pair_index) {
    conn *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->kind = kind;
    c->id = id;
    c->token = token;
    c->pair = pair_index;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->state = DEAD;
        return c;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->state = DEAD;
        return c;
    }
    c->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    return c;
}

/* Connected: the upgrade request goes out. */
static void send_upgrade(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        kill_conn(c);
        return;
    }
    unsigned char raw[16], digest[EVP_MAX_MD_SIZE];
    char key[32], both[128];
    unsigned dlen = 0;
    if (getrandom(raw, sizeof raw, 0) != sizeof raw) die("getrandom");
    base64(raw, sizeof raw, key);
    snprintf(both, sizeof both, "%s" GUID, key);
    EVP_Digest(both, strlen(both), digest, &dlen, EVP_sha1(), NULL);
    base64(digest, dlen, c->accept);
    size_t n = strlen(c->token) + 512;
    char *req = malloc(n);
    if (!req) die("out of memory");
    int m = snprintf(req, n,
                     "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     c->token, port, key);
    c->state = HANDSHAKE;
    tx_append(c, req, (size_t)m);
    free(req);
    flush(c);
}

/* ---- what arrives ---- */

/* The 36 characters after `"key":"` in a frame, or NULL. */
static const char *field(const unsigned char *p, size_t n, const char *key) {
    char pat[48];
    int k = snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *f = memmem(p, n, pat, (size_t)k);
    if (!f || (size_t)((const unsigned char *)f + k + 36 - p) > n) return NULL;
    return f + k;
}

static void on_alert(const unsigned char *p, size_t n) {
    const char *ev = field(p, n, "event_id");
    if (!ev || strncmp(ev, EVENT_PREFIX, strlen(EVENT_PREFIX)) != 0) return;
    long i = strtol(ev + strlen(EVENT_PREFIX), NULL, 10);
    if (i < 0 || i >= nalerts) return;
    if (alert_lat_us[i] >= 0) {
        alerts_duplicate++;
        return;
    }
    alert_lat_us[i] = now_us() - alert_sent_us[i];
    alerts_received++;
}

static pair *pairs;

static void on_chat(conn *c, const unsigned char *p, size_t n) {
    const char *sender = field(p, n, "sender_id");
    const pair *pr = &pairs[c->pair];
    const char *peer = c->kind == CLIENT ? pr->admin_id : pr->client_id;
    if (!sender || strncmp(sender, peer, 36) != 0) return;
    long long t = now_us();
    if (t >= chat_count_from_us && t < chat_count_until_us) chat_delivered++;
    if (!chatting) return;
    char msg[160];
    if (c->kind == CLIENT) snprintf(msg, sizeof msg, "{\"type\":\"chat.send\",\"text\":\"question\"}");
    else snprintf(msg, sizeof msg, "{\"type\":\"chat.send\",\"to\":\"%s\",\"text\":\"answer\"}", pr->client_id);
    send_text(c, msg);
    chat_sent++;
}

static long long admin_presence;        /* presence entries the pairs' administrators got */
static long long admin_presence_frames; /* the frames that carried them (a presence.batch carries many) */

/* How many presence entries a frame carries: each, alone or in a presence.batch, has its "type". */
static long long presence_entries(const unsigned char *p, size_t n) {
    long long k = 0;
    for (const unsigned char *q = p; (q = memmem(q, n - (size_t)(q - p), PRESENCE, sizeof PRESENCE - 1)) != NULL;
         q += sizeof PRESENCE - 1)
        k++;
    return k;
}

static void on_text(conn *c, const unsigned char *p, size_t n) {
    if (c->kind == ADMIN) {
        long long k = presence_entries(p, n);
        admin_presence += k;
        admin_presence_frames += k > 0;
    }
    if (c->kind == HOLD) {
        if (memmem(p, n, NOTIFICATION, sizeof NOTIFICATION - 1)) on_alert(p, n);
        return;
    }
    chat_frames++;
    if (memmem(p, n, CHAT_MESSAGE, sizeof CHAT_MESSAGE - 1)) on_chat(c, p, n);
}

/* Frames from the server: unmasked, whole messages (its messages are small). */
static void parse_frames(conn *c) {
    size_t at = 0;
    while (c->state == OPEN && c->rx_len - at >= 2) {
        const unsigned char *h = c->rx + at;
        size_t need = 2, len = h[1] & 0x7f;
        if (len == 126) {
            if (c->rx_len - at < 4) break;
            len = (size_t)h[2] << 8 | h[3];
            need = 4;
        } else if (len == 127) {
            if (c->rx_len - at < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++) len = len << 8 | h[i];
            need = 10;
        }
        if (h[1] & 0x80) need += 4; /* a server must not mask; tolerated */
        if (c->rx_len - at < need + len) break;
        int opcode = h[0] & 0x0f;
        const unsigned char *payload = h + need;
        at += need + len;
        if (opcode == 1) on_text(c, payload, len);
        else if (opcode == 9) send_frame(c, 10, (const char *)payload, len);
        else if (opcode == 8) {
            kill_conn(c);
            return;
        }
    }
    memmove(c->rx, c->rx + at, c->rx_len - at);
    c->rx_len -= at;
}

/* The 101 answer: status and Sec-WebSocket-Accept. */
static void parse_upgrade(conn *c) {
    unsigned char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
    if (!end) return;
    size_t head = (size_t)(end - c->rx) + 4;
    int ok = c->rx_len > 12 && memcmp(c->rx, "HTTP/1.1 101", 12) == 0 &&
             memmem(c->rx, head, c->accept, strlen(c->accept)) != NULL;
    if (!ok) {
        kill_conn(c);
        return;
    }
    c->state = OPEN;
    memmove(c->rx, c->rx + head, c->rx_len - head);
    c->rx_len -= head;
    parse_frames(c);
}

static void on_readable(conn *c) {
    for (;;) {
        if (c->rx_cap - c->rx_len < 4096) {
            c->rx_cap = c->rx_cap ? c->rx_cap * 2 : 8192;
            c->rx = xrealloc(c->rx, c->rx_cap);
        }
        ssize_t n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            kill_conn(c);
            return;
        }
        c->rx_len += (size_t)n;
        if (c->state == HANDSHAKE) parse_upgrade(c);
        else if (c->state == OPEN) parse_frames(c);
        if (c->state == DEAD) return;
    }
    /* A held session keeps no buffer between frames: 10k of them add up. */
    if (c->rx_len == 0 && c->rx_cap > 8192) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
}

/* One pass of the event loop, waiting at most timeout_ms. */
static void poll_once(int timeout_ms) {
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        conn *c = evs[i].data.ptr;
        if (c->state == DEAD) continue;
        if (c->state == CONNECTING && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            send_upgrade(c);
            continue;
        }
        if (evs[i].events & EPOLLOUT) flush(c);
        if (c->state != DEAD && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
    }
}

static void run_for(long long us) {
    long long until = now_us() + us;
    for (long long t; (t = now_us()) < until;) poll_once((int)((until - t) / 1000) + 1);
}

/* Opens conns[from..to) and waits until each is open or dead. */
static void open_wave(conn **conns, size_t from, size_t to) {
    long long deadline = now_us() + WAVE_TIMEOUT_US;
    for (;;) {
        size_t pending = 0;
        for (size_t i = from; i < to; i++) pending += conns[i]->state == CONNECTING || conns[i]->state == HANDSHAKE;
        if (!pending) return;
        if (now_us() > deadline) {
            for (size_t i = from; i < to; i++)
                if (conns[i]->state != OPEN) kill_conn(conns[i]);
            return;
        }
        poll_once(50);
    }
}

/* ---- input ---- */

static char *slurp_line(FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n <= 0) {
        free(line);
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return line;
}

/* Splits a line into up to max space-separated words (in place). */
static int words(char *line, char **w, int max) {
    int n = 0;
    for (char *s = strtok(line, " "); s && n < max; s = strtok(NULL, " ")) w[n++] = s;
    return n;
}

/* ---- the alerts ---- */

static amqp_connection_state_t amqp_open(int amqp_port) {
    amqp_connection_state_t a = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(a);
    if (!s || amqp_socket_open(s, "127.0.0.1", amqp_port) != AMQP_STATUS_OK) {
        fprintf(stderr, "wsload: cannot reach the broker on port %d\n", amqp_port);
        exit(1);
    }
    amqp_rpc_reply_t r = amqp_login(a, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "wsload: broker login refused\n");
        exit(1);
    }
    /* Each alert goes out at once, not held back by Nagle's algorithm for the previous one's ack. */
    int one = 1;
    setsockopt(amqp_get_sockfd(a), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    amqp_channel_open(a, 1);
    if (amqp_get_rpc_reply(a).reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "wsload: cannot open a channel\n");
        exit(1);
    }
    return a;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static double pct(const long long *sorted, size_t n, double p) {
    if (!n) return -1;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1000.0;
}

static void alerts_phase(const char *label, conn **held, size_t nheld, int amqp_port, const char *queue, int first,
                         int count, int gap_ms) {
    size_t open = 0;
    for (size_t i = 0; i < nheld; i++) open += held[i]->state == OPEN;
    conn **live = calloc(open ? open : 1, sizeof *live);
    if (!live) die("out of memory");
    open = 0;
    for (size_t i = 0; i < nheld; i++)
        if (held[i]->state == OPEN) live[open++] = held[i];
    if (!open) {
        printf("%salerts_sent=0\n", label);
        free(live);
        return;
    }
    /* Alert i carries index first + i: every event id of the run is new (the inbox would drop a repeat). */
    nalerts = first + count;
    free(alert_sent_us);
    free(alert_lat_us);
    alert_sent_us = calloc((size_t)nalerts, sizeof *alert_sent_us);
    alert_lat_us = calloc((size_t)nalerts, sizeof *alert_lat_us);
    if (!alert_sent_us || !alert_lat_us) die("out of memory");
    for (int i = 0; i < nalerts; i++) alert_lat_us[i] = -1;
    alerts_received = alerts_duplicate = 0;
    amqp_connection_state_t a = amqp_open(amqp_port);
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;
    /* A stride coprime with most counts spreads the alerts over the held users. */
    size_t stride = open > 7919 ? 7919 : 1;
    long long start = now_us(), hour = (long long)time(NULL) / 3600 * 3600000LL;
    int published = 0;
    for (int k = 0; k < count; k++) {
        int i = first + k;
        long long due = start + (long long)k * gap_ms * 1000;
        for (long long t; (t = now_us()) < due;) poll_once((int)((due - t) / 1000));
        const conn *to = live[((size_t)k * stride) % open];
        char body[512];
        snprintf(body, sizeof body,
                 "{\"event_id\":\"" EVENT_PREFIX "%012d\",\"type\":\"alert\","
                 "\"device_id\":\"0000beef-0000-4000-8000-%012d\",\"device_name\":\"Bench meter\","
                 "\"owner_id\":\"%s\",\"hour_start\":%lld,\"total_kwh\":1.25,\"limit_kwh\":1.0}",
                 i, i, to->id, hour);
        alert_sent_us[i] = now_us();
        if (amqp_basic_publish(a, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                               amqp_cstring_bytes(body)) != AMQP_STATUS_OK) {
            fprintf(stderr, "wsload: publish failed at alert %d\n", i);
            break;
        }
        published++;
    }
    long long wait_until = now_us() + 15000000LL;
    while (alerts_received < published && now_us() < wait_until) poll_once(20);
    amqp_channel_close(a, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(a, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(a);

    long long *lat = calloc((size_t)nalerts, sizeof *lat);
    if (!lat) die("out of memory");
    size_t n = 0;
    for (int i = first; i < nalerts; i++)
        if (alert_lat_us[i] >= 0) lat[n++] = alert_lat_us[i];
    qsort(lat, n, sizeof *lat, cmp_ll);
    printf("%salerts_sessions=%zu\n%salerts_sent=%d\n%salerts_received=%lld\n%salerts_duplicate=%lld\n", label, open,
           label, published, label, alerts_received, label, alerts_duplicate);
    printf("%salert_p50_ms=%.2f\n%salert_p90_ms=%.2f\n%salert_p99_ms=%.2f\n%salert_max_ms=%.2f\n", label,
           pct(lat, n, 0.50), label, pct(lat, n, 0.90), label, pct(lat, n, 0.99), label,
           n ? (double)lat[n - 1] / 1000.0 : -1);
    free(lat);
    free(live);
}

/* ---- the chat ---- */

static void chat_phase(size_t npairs, size_t wave, int seconds, int window, size_t online) {
    conn **conns = calloc(npairs * 2, sizeof *conns);
    if (!conns) die("out of memory");
    for (size_t i = 0; i < npairs; i++) {
        conns[2 * i] = pairs[i].admin = open_conn(ADMIN, pairs[i].admin_id, pairs[i].admin_token, (int)i);
        conns[2 * i + 1] = pairs[i].client = open_conn(CLIENT, pairs[i].client_id, pairs[i].client_token, (int)i);
        if ((2 * i + 2) % wave == 0) open_wave(conns, 0, 2 * i + 2);
    }
    open_wave(conns, 0, npairs * 2);
    size_t ok = 0;
    for (size_t i = 0; i < npairs; i++) ok += pairs[i].admin->state == OPEN && pairs[i].client->state == OPEN;
    /*
     * Hello, backlogs and presence settle first: each administrator that
     * connects is announced to every client online (the held ones too) and
     * gets one presence entry per client online (in presence.batch frames
     * when several come at once), so the pairs' sessions are counted open
     * once every administrator has heard of every client.
     */
    long long settle_from = now_us();
    long long want = (long long)(npairs * (online + npairs));
    while (admin_presence < want && now_us() - settle_from < 180000000LL) poll_once(50);
    run_for(1000000);
    printf("chat_settle_s=%.1f\nchat_admin_presence=%lld\nchat_admin_presence_wanted=%lld\n"
           "chat_admin_presence_frames=%lld\n",
           (double)(now_us() - settle_from) / 1e6 - 1.0, admin_presence, want, admin_presence_frames);
    chat_frames = 0;
    fprintf(stderr, "wsload: chat: %zu of %zu pairs open, %d s with %d in flight per pair\n", ok, npairs, seconds,
            window);
    chatting = 1;
    long long t0 = now_us();
    chat_count_from_us = t0 + 1000000;
    chat_count_until_us = chat_count_from_us + (long long)seconds * 1000000;
    for (size_t i = 0; i < npairs; i++)
        for (int k = 0; k < window; k++) {
            send_text(pairs[i].client, "{\"type\":\"chat.send\",\"text\":\"question\"}");
            chat_sent++;
        }
    while (now_us() < chat_count_until_us) poll_once(20);
    chatting = 0;
    run_for(500000);
    size_t dead = 0;
    for (size_t i = 0; i < npairs * 2; i++) dead += conns[i]->state != OPEN;
    printf("chat_pairs=%zu\nchat_pairs_open=%zu\nchat_seconds=%d\nchat_window=%d\n", npairs, ok, seconds, window);
    printf("chat_delivered=%lld\nchat_msgs_per_s=%.0f\nchat_frames_received=%lld\nchat_sessions_lost=%zu\n",
           chat_delivered, (double)chat_delivered / seconds, chat_frames, dead);
    for (size_t i = 0; i < npairs * 2; i++) kill_conn(conns[i]);
    free(conns);
}

int main(int argc, char **argv) {
    const char *hold_file = NULL, *pairs_file = NULL, *queue = "internal.device.websocket.user.notification.queue";
    int server_pid = 0, amqp_port = 0, alerts = 500, gap_ms = 4, seconds = 10, window = 4;
    size_t wave = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--server-pid")) server_pid = atoi(v);
        else if (!strcmp(k, "--hold")) hold_file = v;
        else if (!strcmp(k, "--pairs")) pairs_file = v;
        else if (!strcmp(k, "--amqp-port")) amqp_port = atoi(v);
        else if (!strcmp(k, "--queue")) queue = v;
        else if (!strcmp(k, "--wave")) wave = (size_t)atol(v);
        else if (!strcmp(k, "--alerts")) alerts = atoi(v);
        else if (!strcmp(k, "--alert-gap-ms")) gap_ms = atoi(v);
        else if (!strcmp(k, "--chat-seconds")) seconds = atoi(v);
        else if (!strcmp(k, "--window")) window = atoi(v);
        else {
            fprintf(stderr, "wsload: unknown option %s\n", k);
            return 2;
        }
    }
    if (!port || !server_pid || !hold_file || !pairs_file || !amqp_port || !wave || alerts < 1 || seconds < 1 ||
        window < 1) {
        fprintf(stderr, "usage: wsload --port P --server-pid PID --hold FILE --pairs FILE --amqp-port N "
                        "[--queue Q] [--wave 500] [--alerts 500] [--alert-gap-ms 4] [--chat-seconds 10] "
                        "[--window 4]\n");
        return 2;
    }
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Read the tokens first: the file's lines stay allocated for the run. */
    FILE *f = fopen(hold_file, "r");
    if (!f) die(hold_file);
    conn **held = NULL;
    size_t nheld = 0;
    char **ids = NULL, **tokens = NULL;
    for (char *line, *w[2]; (line = slurp_line(f));) {
        if (words(line, w, 2) != 2) continue;
        ids = xrealloc(ids, (nheld + 1) * sizeof *ids);
        tokens = xrealloc(tokens, (nheld + 1) * sizeof *tokens);
        ids[nheld] = w[0];
        tokens[nheld++] = w[1];
    }
    fclose(f);
    size_t npairs = 0;
    if (!(f = fopen(pairs_file, "r"))) die(pairs_file);
    for (char *line, *w[4]; (line = slurp_line(f));) {
        if (words(line, w, 4) != 4) continue;
        pairs = xrealloc(pairs, (npairs + 1) * sizeof *pairs);
        pairs[npairs++] = (pair){w[0], w[1], w[2], w[3], NULL, NULL};
    }
    fclose(f);

    long rss, hwm;
    proc_mem(server_pid, &rss, &hwm);
    printf("rss_idle_kb=%ld\nhwm_idle_kb=%ld\n", rss, hwm);

    held = calloc(nheld ? nheld : 1, sizeof *held);
    if (!held) die("out of memory");
    phase_start_us = now_us();
    for (size_t from = 0; from < nheld; from += wave) {
        size_t to = from + wave < nheld ? from + wave : nheld;
        for (size_t i = from; i < to; i++) held[i] = open_conn(HOLD, ids[i], tokens[i], -1);
        open_wave(held, from, to);
        size_t ok = 0;
        for (size_t i = 0; i < to; i++) ok += held[i]->state == OPEN;
        fprintf(stderr, "wsload: %zu of %zu sessions open\n", ok, to);
        if (from == 0 && to < nheld) {
            /* The same alerts with one wave open: what the other sessions add to the latency. */
            run_for(2000000);
            fprintf(stderr, "wsload: baseline: %d alerts with %zu sessions open\n", alerts, ok);
            long long paused = now_us();
            alerts_phase("base_", held, to, amqp_port, queue, 0, alerts, gap_ms);
            phase_start_us += now_us() - paused; /* connect_s counts connecting only */
        }
    }
    double connect_s = (double)(now_us() - phase_start_us) / 1e6;
    run_for(3000000); /* the last hellos arrive, lws settles */
    size_t open = 0;
    for (size_t i = 0; i < nheld; i++) open += held[i]->state == OPEN;
    proc_mem(server_pid, &rss, &hwm);
    printf("alert_gap_ms=%d\n", gap_ms);
    printf("sessions_wanted=%zu\nsessions_open=%zu\nsessions_failed=%zu\nconnect_s=%.1f\n", nheld, open, nheld - open,
           connect_s);
    printf("rss_open_kb=%ld\nhwm_open_kb=%ld\n", rss, hwm);

    fprintf(stderr, "wsload: %d alerts, %d ms apart, to held users\n", alerts, gap_ms);
    alerts_phase("", held, nheld, amqp_port, queue, alerts, alerts, gap_ms);
    open = 0;
    for (size_t i = 0; i < nheld; i++) open += held[i]->state == OPEN;
    printf("sessions_open_after_alerts=%zu\n", open);

    chat_phase(npairs, wave, seconds, window, open);
    open = 0;
    for (size_t i = 0; i < nheld; i++) open += held[i]->state == OPEN;
    proc_mem(server_pid, &rss, &hwm);
    printf("sessions_open_at_end=%zu\nrss_end_kb=%ld\nhwm_end_kb=%ld\n", open, rss, hwm);

    for (size_t i = 0; i < nheld; i++) {
        kill_conn(held[i]);
        free(held[i]);
    }
    for (size_t i = 0; i < npairs; i++) {
        free(pairs[i].admin);
        free(pairs[i].client);
        free(pairs[i].client_id); /* the line the four words point into */
    }
    for (size_t i = 0; i < nheld; i++) free(ids[i]);
    free(ids);
    free(tokens);
    free(held);
    free(pairs);
    free(alert_sent_us);
    free(alert_lat_us);
    close(epfd);
    return 0;
}
