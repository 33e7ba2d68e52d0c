/*
 * auth.c — ES256 tokens (libjwt over OpenSSL), argon2id passwords
 * (libsodium), UUIDs and random tokens.
 *
 * libjwt 1.10 verifies whatever algorithm the token's header names, and
 * checks no times: ems_jwt_verify pins ES256 and checks exp/iat itself.
 * An ECDSA verify costs a few hundred microseconds, most of it spent parsing
 * the PEM key again; verified tokens are therefore kept in a small cache
 * keyed by the whole token text, each entry honouring its own exp.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define CACHE_SLOTS 4096 /* power of two */
#define CLOCK_SKEW_S 60  /* tolerated for iat in the future */

typedef struct {
    char *token;
    uint64_t hash;
    ems_principal who;
} cache_entry;

struct ems_jwt {
    char *priv;
    size_t priv_len;
    char *pub;
    size_t pub_len;
    pthread_mutex_t lock;
    cache_entry cache[CACHE_SLOTS];
};

static const char *const role_names[] = {"none", "client", "admin"};

ems_role ems_role_parse(const char *name) {
    for (int i = 1; i <= EMS_ROLE_ADMIN; i++)
        if (name && strcmp(name, role_names[i]) == 0) return (ems_role)i;
    return EMS_ROLE_NONE;
}

const char *ems_role_name(ems_role role) { return (unsigned)role <= EMS_ROLE_ADMIN ? role_names[role] : "none"; }

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static void sodium_start(void) {
    if (sodium_init() < 0) abort(); /* no usable randomness: nothing is safe */
}

ems_jwt *ems_jwt_new(const char *private_pem, const char *public_pem) {
    if (!public_pem) return NULL;
    ems_jwt *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->lock, NULL);
    j->pub = strdup(public_pem);
    j->pub_len = strlen(public_pem);
    if (private_pem) {
        j->priv = strdup(private_pem);
        j->priv_len = strlen(private_pem);
    }
    /* Parse both once now so that a bad key fails at start, not at first use. */
    BIO *bio = BIO_new_mem_buf(j->pub, (int)j->pub_len);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    int ok = k != NULL;
    EVP_PKEY_free(k);
    BIO_free(bio);
    if (ok && j->priv) {
        bio = BIO_new_mem_buf(j->priv, (int)j->priv_len);
        k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        ok = k != NULL;
        EVP_PKEY_free(k);
        BIO_free(bio);
    }
    if (!ok || !j->pub || (private_pem && !j->priv)) {
        ems_jwt_free(j);
        return NULL;
    }
    return j;
}

void ems_jwt_free(ems_jwt *j) {
    if (!j) return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) free(j->cache[i].token);
    if (j->priv) sodium_memzero(j->priv, j->priv_len);
    free(j->priv);
    free(j->pub);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *grown = realloc(buf, len + n + 1);
        if (!grown) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = grown;
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

static int write_pem(const char *path, int private_key, EVP_PKEY *key) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, private_key ? 0600 : 0644);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = private_key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, key);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static ems_rc generate_pair(const char *priv_path, const char *pub_path, char *err, size_t errlen) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key) {
        snprintf(err, errlen, "cannot generate a P-256 key");
        return EMS_INTERNAL;
    }
    ems_rc rc = EMS_OK;
    if (write_pem(priv_path, 1, key) || write_pem(pub_path, 0, key)) {
        snprintf(err, errlen, "cannot write key pair %s, %s: %s", priv_path, pub_path, strerror(errno));
        rc = EMS_INTERNAL;
    } else {
        ems_log(EMS_LOG_INFO, "auth.keygen", "private=%s public=%s", priv_path, pub_path);
    }
    EVP_PKEY_free(key);
    return rc;
}

ems_rc ems_jwt_load(const char *priv_path, const char *pub_path, int create, ems_jwt **out, char *err, size_t errlen) {
    if (create && priv_path && access(priv_path, F_OK) != 0 && access(pub_path, F_OK) != 0) {
        ems_rc rc = generate_pair(priv_path, pub_path, err, errlen);
        if (rc) return rc;
    }
    char *pub = read_file(pub_path);
    char *priv = priv_path ? read_file(priv_path) : NULL;
    ems_rc rc = EMS_OK;
    if (!pub) {
        snprintf(err, errlen, "cannot read public key %s: %s", pub_path, strerror(errno));
        rc = EMS_BAD_REQUEST;
    } else if (priv_path && !priv) {
        snprintf(err, errlen, "cannot read private key %s: %s", priv_path, strerror(errno));
        rc = EMS_BAD_REQUEST;
    } else if (!(*out = ems_jwt_new(priv, pub))) {
        snprintf(err, errlen, "key %s or %s is not a valid PEM EC key", pub_path, priv_path ? priv_path : "");
        rc = EMS_BAD_REQUEST;
    }
    if (priv) sodium_memzero(priv, strlen(priv));
    free(priv);
    free(pub);
    return rc;
}

ems_rc ems_jwt_sign(ems_jwt *j, const ems_principal *p, int64_t ttl, char **token, int64_t *expires_at) {
    if (!j->priv) return EMS_INTERNAL;
    jwt_t *jwt = NULL;
    ems_rc rc = EMS_INTERNAL;
    int64_t now = (int64_t)time(NULL);
    if (jwt_new(&jwt)) goto cleanup;
    if (jwt_add_grant(jwt, "sub", p->id) || jwt_add_grant(jwt, "username", p->username) ||
        jwt_add_grant(jwt, "role", ems_role_name(p->role)) || jwt_add_grant_int(jwt, "ver", (long)p->ver) ||
        jwt_add_grant_int(jwt, "iat", (long)now) || jwt_add_grant_int(jwt, "exp", (long)(now + ttl)))
        goto cleanup;
    if (jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)j->priv, (int)j->priv_len)) goto cleanup;
    *token = jwt_encode_str(jwt);
    if (!*token) goto cleanup;
    if (expires_at) *expires_at = (now + ttl) * 1000;
    rc = EMS_OK;
cleanup:
    jwt_free(jwt);
    return rc;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int claims_to_principal(jwt_t *jwt, ems_principal *who) {
    const char *sub = jwt_get_grant(jwt, "sub");
    const char *username = jwt_get_grant(jwt, "username");
    const char *role = jwt_get_grant(jwt, "role");
    if (!sub || !username || !role || !ems_uuid_valid(sub) || strlen(username) > EMS_USERNAME_MAX) return -1;
    memset(who, 0, sizeof *who);
    memcpy(who->id, sub, EMS_ID_LEN);
    snprintf(who->username, sizeof who->username, "%s", username);
    if ((who->role = ems_role_parse(role)) == EMS_ROLE_NONE) return -1;
    errno = 0;
    who->ver = jwt_get_grant_int(jwt, "ver");
    if (errno) return -1;
    who->iat = jwt_get_grant_int(jwt, "iat");
    if (errno) return -1;
    who->exp = jwt_get_grant_int(jwt, "exp");
    if (errno) return -1;
    return 0;
}

ems_rc ems_jwt_verify(ems_jwt *j, const char *token, ems_principal *out) {
    if (!token || !*token || strlen(token) > 4096) return EMS_UNAUTHORIZED;
    int64_t now = (int64_t)time(NULL);
    uint64_t h = fnv1a(token);
    cache_entry *slot = &j->cache[h & (CACHE_SLOTS - 1)];

    pthread_mutex_lock(&j->lock);
    if (slot->token && slot->hash == h && strcmp(slot->token, token) == 0) {
        ems_principal who = slot->who;
        pthread_mutex_unlock(&j->lock);
        if (who.exp <= now) return EMS_UNAUTHORIZED;
        *out = who;
        return EMS_OK;
    }
    pthread_mutex_unlock(&j->lock);

    jwt_t *jwt = NULL;
    ems_principal who;
    if (jwt_decode(&jwt, token, (const unsigned char *)j->pub, (int)j->pub_len) || !jwt) return EMS_UNAUTHORIZED;
    int bad = jwt_get_alg(jwt) != JWT_ALG_ES256 || claims_to_principal(jwt, &who) != 0;
    jwt_free(jwt);
    if (bad || who.exp <= now || who.iat > now + CLOCK_SKEW_S) return EMS_UNAUTHORIZED;

    char *copy = strdup(token);
    if (copy) {
        pthread_mutex_lock(&j->lock);
        free(slot->token);
        slot->token = copy;
        slot->hash = h;
        slot->who = who;
        pthread_mutex_unlock(&j->lock);
    }
    *out = who;
    return EMS_OK;
}

const char *ems_bearer(const char *authorization) {
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return NULL;
    const char *t = authorization + 7;
    while (*t == ' ') t++;
    return *t ? t : NULL;
}

ems_rc ems_password_hash(const char *pw, char out[EMS_PWHASH_LEN]) {
    pthread_once(&sodium_once, sodium_start);
    /* OWASP's minimum for argon2id: 19 MiB, two passes. */
    if (crypto_pwhash_str_alg(out, pw, strlen(pw), 2, (size_t)19 * 1024 * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return EMS_NOMEM;
    return EMS_OK;
}

int ems_password_verify(const char *hash, const char *pw) {
    pthread_once(&sodium_once, sodium_start);
    return hash && pw && crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

void ems_uuid(char out[EMS_ID_LEN]) {
    pthread_once(&sodium_once, sodium_start);
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, EMS_ID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int ems_uuid_valid(const char *s) {
    if (!s || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

void ems_random_token(char *out, size_t n) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pthread_once(&sodium_once, sodium_start);
    for (size_t i = 0; i < n; i++) out[i] = alphabet[randombytes_uniform(64)];
    out[n] = '\0';
}
