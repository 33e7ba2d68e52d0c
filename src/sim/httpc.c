/*
 * httpc.c — the minimal HTTP/1.1 client of the simulator (see httpc.h).
 *
 * Sockets are blocking with send and receive timeouts: a sender has nothing
 * else to do while it waits for its answer.
 */
#include "httpc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define DEFAULT_PATH "/api/readings"
#define CONNECT_TIMEOUT_MS 3000
#define IO_TIMEOUT_S 30
#define HEAD_MAX (64 * 1024)
#define BODY_MAX (4 * 1024 * 1024)
#define TOKEN_MAX 4096

struct sim_httpc {
    char host[256];
    char port[8];
    char path[1024];
    char where[300];
    int fd; /* -1 while not connected */
    sim_buf in; /* bytes read and not yet consumed */
};

ems_rc sim_httpc_open(const char *url, sim_httpc **out, char *err, size_t errlen) {
    const char *p, *host_end, *port = NULL;
    size_t hl;
    sim_httpc *h;
    if (!url || strncmp(url, "http://", 7) != 0) goto bad;
    p = url + 7;
    if (*p == '[') { /* [IPv6] */
        host_end = strchr(p, ']');
        if (!host_end) goto bad;
        p++;
        hl = (size_t)(host_end - p);
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/?#");
        hl = (size_t)(host_end - p);
    }
    if (hl == 0 || hl >= sizeof h->host) goto bad;
    if (*host_end == ':') {
        port = host_end + 1;
        size_t pl = strspn(port, "0123456789");
        long v = atol(port);
        if (pl == 0 || pl > 5 || v < 1 || v > 65535 || (port[pl] && port[pl] != '/')) goto bad;
    } else if (*host_end && *host_end != '/') {
        goto bad;
    }
    if (!(h = calloc(1, sizeof *h))) return EMS_NOMEM;
    h->fd = -1;
    memcpy(h->host, p, hl);
    snprintf(h->port, sizeof h->port, "%ld", port ? atol(port) : 80L);
    p = strchr(host_end, '/');
    snprintf(h->path, sizeof h->path, "%s", p && strcmp(p, "/") != 0 ? p : DEFAULT_PATH);
    snprintf(h->where, sizeof h->where, "%s:%s", h->host, h->port);
    *out = h;
    return EMS_OK;
bad:
    snprintf(err, errlen, "bad http URL (expected http://host[:port][/path])");
    return EMS_BAD_REQUEST;
}

static void disconnect(sim_httpc *h) {
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    h->in.len = 0;
}

void sim_httpc_free(sim_httpc *h) {
    if (!h) return;
    disconnect(h);
    sim_buf_free(&h->in);
    free(h);
}

const char *sim_httpc_where(const sim_httpc *h) { return h->where; }

/* Non-blocking connect bounded by CONNECT_TIMEOUT_MS, then blocking I/O with timeouts. */
static int connect_one(const struct addrinfo *ai, char *why, size_t whylen) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol), one = 1, soerr = 0;
    socklen_t sl = sizeof soerr;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    struct pollfd pfd;
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) goto fail;
        pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        if (r == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) goto fail;
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
fail:
    snprintf(why, whylen, "%s", strerror(errno));
    close(fd);
    return -1;
}

static ems_rc do_connect(sim_httpc *h, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char why[128] = "no address";
    int gai = getaddrinfo(h->host, h->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", h->host, gai_strerror(gai));
        return EMS_UNAVAILABLE;
    }
    for (const struct addrinfo *ai = res; ai && h->fd < 0; ai = ai->ai_next) h->fd = connect_one(ai, why, sizeof why);
    freeaddrinfo(res);
    if (h->fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", h->where, why);
        return EMS_UNAVAILABLE;
    }
    h->in.len = 0;
    return EMS_OK;
}

static int send_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads more into h->in: >0 bytes read, 0 at EOF, -1 on error (errno set). */
static ssize_t fill(sim_httpc *h) {
    ssize_t r;
    if (sim_buf_reserve(&h->in, 16384) != EMS_OK) {
        errno = ENOMEM;
        return -1;
    }
    do {
        r = recv(h->fd, h->in.p + h->in.len, h->in.cap - h->in.len - 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        h->in.len += (size_t)r;
        h->in.p[h->in.len] = '\0';
    }
    return r;
}

/* Reads until h->in holds at least n bytes; -1 if the connection ends first. */
static int fill_to(sim_httpc *h, size_t n) {
    while (h->in.len < n)
        if (fill(h) <= 0) return -1;
    return 0;
}

/* Finds "\r\n" in h->in at or after `from`, reading more as needed; returns its offset or -1. */
static long find_crlf(sim_httpc *h, size_t from) {
    for (;;) {
        if (h->in.len > from) {
            char *e = memmem(h->in.p + from, h->in.len - from, "\r\n", 2);
            if (e) return e - h->in.p;
        }
        if (h->in.len > HEAD_MAX + from || fill(h) <= 0) return -1;
    }
}

/* Value of header `name` in the head (lines after the status line), or NULL; copied into out. */
static const char *header(const char *head, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            s += nl + 1;
            while (*s == ' ' || *s == '\t') s++;
            size_t n = strcspn(s, "\r");
            while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
            snprintf(out, cap, "%.*s", (int)n, s);
            return out;
        }
    }
    return NULL;
}

/* Moves the body from h->in (from `at`, decoded if chunked) into resp; returns -1 on a broken stream. */
static int read_chunked(sim_httpc *h, size_t at, sim_buf *resp) {
    for (;;) {
        long e = find_crlf(h, at);
        char *end;
        unsigned long size;
        if (e < 0) return -1;
        size = strtoul(h->in.p + at, &end, 16);
        if (end == h->in.p + at || size > BODY_MAX || resp->len + size > BODY_MAX) return -1;
        at = (size_t)e + 2;
        if (size == 0) { /* trailers, up to an empty line */
            for (;;) {
                long t = find_crlf(h, at);
                if (t < 0) return -1;
                if ((size_t)t == at) return 0;
                at = (size_t)t + 2;
            }
        }
        if (fill_to(h, at + size + 2) < 0) return -1;
        if (sim_buf_append(resp, h->in.p + at, size) != EMS_OK) return -1;
        at += size + 2;
    }
}

/* One request on an open connection.  *fresh_fail is set when nothing at all came back. */
static ems_rc exchange(sim_httpc *h, const char *token, const char *body, size_t len, int *status, sim_buf *resp,
                       int *keep, int *nothing_back, char *err, size_t errlen) {
    char head[TOKEN_MAX + 512], val[64];
    int n;
    long end_of_head;
    size_t at;
    char *hdr_end;
    struct iovec iov[2];
    *nothing_back = 1;
    n = snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ems-sim\r\nContent-Type: application/json\r\n"
                 "Accept: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                 h->path, h->where, token[0] ? "Authorization: Bearer " : "", token, token[0] ? "\r\n" : "", len);
    if (n < 0 || (size_t)n >= sizeof head) {
        snprintf(err, errlen, "request head too long");
        return EMS_BAD_REQUEST;
    }
    iov[0] = (struct iovec){.iov_base = head, .iov_len = (size_t)n};
    iov[1] = (struct iovec){.iov_base = (void *)body, .iov_len = len};
    h->in.len = 0;
    if (send_all(h->fd, iov, len ? 2 : 1) < 0) goto broken;
    /* The head ends at the first empty line. */
    for (;;) {
        if (h->in.len) {
            *nothing_back = 0;
            hdr_end = memmem(h->in.p, h->in.len, "\r\n\r\n", 4);
            if (hdr_end) break;
        }
        if (h->in.len > HEAD_MAX) {
            snprintf(err, errlen, "response head from %s too long", h->where);
            return EMS_UNAVAILABLE;
        }
        if (fill(h) <= 0) goto broken;
    }
    end_of_head = hdr_end - h->in.p;
    if (strncmp(h->in.p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)h->in.p[9])) {
        snprintf(err, errlen, "%s did not answer in HTTP/1.x", h->where);
        return EMS_UNAVAILABLE;
    }
    *status = atoi(h->in.p + 9);
    *keep = h->in.p[7] == '1';
    h->in.p[end_of_head + 2] = '\0'; /* the head, for header(); the body starts at end_of_head + 4 */
    at = (size_t)end_of_head + 4;
    if (header(h->in.p, "Connection", val, sizeof val) && strcasecmp(val, "close") == 0) *keep = 0;
    resp->len = 0;
    if (sim_buf_reserve(resp, 0) != EMS_OK) return EMS_NOMEM;
    resp->p[0] = '\0';
    if (header(h->in.p, "Transfer-Encoding", val, sizeof val) && strcasecmp(val, "chunked") == 0) {
        h->in.p[end_of_head + 2] = '\r';
        if (read_chunked(h, at, resp) < 0) goto broken_body;
    } else if (header(h->in.p, "Content-Length", val, sizeof val)) {
        unsigned long cl = strtoul(val, NULL, 10);
        h->in.p[end_of_head + 2] = '\r';
        if (cl > BODY_MAX || fill_to(h, at + cl) < 0 || sim_buf_append(resp, h->in.p + at, cl) != EMS_OK)
            goto broken_body;
    } else if (*status == 204 || *status == 304 || *status / 100 == 1) {
        h->in.p[end_of_head + 2] = '\r';
    } else { /* delimited by the end of the connection */
        h->in.p[end_of_head + 2] = '\r';
        while (fill(h) > 0)
            if (h->in.len > BODY_MAX) goto broken_body;
        if (sim_buf_append(resp, h->in.p + at, h->in.len - at) != EMS_OK) goto broken_body;
        *keep = 0;
    }
    return EMS_OK;
broken:
    snprintf(err, errlen, "connection to %s lost: %s", h->where, errno ? strerror(errno) : "closed by the server");
    return EMS_UNAVAILABLE;
broken_body:
    snprintf(err, errlen, "incomplete response from %s", h->where);
    return EMS_UNAVAILABLE;
}

ems_rc sim_httpc_post(sim_httpc *h, const char *token, const char *body, size_t len, int *status, sim_buf *resp,
                      char *err, size_t errlen) {
    ems_rc rc = EMS_UNAVAILABLE;
    if (!token) token = "";
    if (strlen(token) > TOKEN_MAX || strpbrk(token, "\r\n")) {
        snprintf(err, errlen, "the token is not a valid header value");
        return EMS_BAD_REQUEST;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = h->fd >= 0, keep = 0, nothing_back = 1;
        if (!reused && (rc = do_connect(h, err, errlen)) != EMS_OK) return rc;
        errno = 0;
        rc = exchange(h, token, body, len, status, resp, &keep, &nothing_back, err, errlen);
        if (rc != EMS_OK || !keep) disconnect(h);
        /* A keep-alive connection the server had closed meanwhile: once more on a new one. */
        if (rc == EMS_UNAVAILABLE && reused && nothing_back) continue;
        break;
    }
    return rc;
}
