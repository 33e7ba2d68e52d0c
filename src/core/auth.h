/*
 * auth.h — tokens and passwords.
 *
 * Tokens are ES256 JWTs.  The `auth` role signs them with the private key;
 * every role verifies them with the public key.  Verification pins the
 * algorithm to ES256 (no "none", no HS256 signed with the public key as the
 * HMAC secret) and checks `exp` and `iat` itself, since libjwt 1.10 checks
 * neither.  Verified tokens are cached (keyed by the whole token) so that a
 * hot path pays the ECDSA verify once per token, not once per request.
 *
 * Claims: sub (user id), username, role ("admin"|"client"), ver (the
 * account's token version: bumping it revokes older tokens), iat, exp.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash_str) at
 * 19 MiB / t=2 or more.
 */
#ifndef EMS_AUTH_H
#define EMS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

typedef enum { EMS_ROLE_NONE = 0, EMS_ROLE_CLIENT = 1, EMS_ROLE_ADMIN = 2 } ems_role;

/* "client" / "admin" → role; EMS_ROLE_NONE for anything else. */
ems_role ems_role_parse(const char *name);
const char *ems_role_name(ems_role role); /* "client", "admin", "none" */

#define EMS_ID_LEN 37       /* a UUID in text and its NUL */
#define EMS_USERNAME_MAX 64 /* bytes, without NUL */

typedef struct ems_principal {
    char id[EMS_ID_LEN];
    char username[EMS_USERNAME_MAX + 1];
    ems_role role;
    int64_t ver; /* token version */
    int64_t iat, exp;
} ems_principal;

typedef struct ems_jwt ems_jwt;

/*
 * Creates a signer/verifier.  private_pem may be NULL (verify only).
 * Returns NULL if a key cannot be parsed.
 */
ems_jwt *ems_jwt_new(const char *private_pem, const char *public_pem);
void ems_jwt_free(ems_jwt *j); /* accepts NULL */

/*
 * Reads the key pair from the given files; if both are missing and
 * `create` is set, generates a P-256 pair and writes them (private key 0600).
 * priv_path may be NULL to load only the public key.
 */
ems_rc ems_jwt_load(const char *priv_path, const char *pub_path, int create, ems_jwt **out, char *err, size_t errlen);

/* Signs p (id, username, role, ver) valid for ttl seconds; *token is malloc'd. */
ems_rc ems_jwt_sign(ems_jwt *j, const ems_principal *p, int64_t ttl, char **token, int64_t *expires_at);

/*
 * Verifies a token; on success fills *out.  EMS_UNAUTHORIZED for any bad
 * token: wrong algorithm, bad signature, expired, malformed, missing claims.
 */
ems_rc ems_jwt_verify(ems_jwt *j, const char *token, ems_principal *out);

/* Extracts the token from an "Authorization: Bearer <t>" value; NULL if none. */
const char *ems_bearer(const char *authorization);

/* argon2id hash of pw into out (crypto_pwhash_STRBYTES = 128 bytes). */
#define EMS_PWHASH_LEN 128
ems_rc ems_password_hash(const char *pw, char out[EMS_PWHASH_LEN]);
/* 1 if pw matches hash, else 0. */
int ems_password_verify(const char *hash, const char *pw);

/* A new random UUID v4 in text form. */
void ems_uuid(char out[EMS_ID_LEN]);
/* 1 if s is a UUID in canonical text form. */
int ems_uuid_valid(const char *s);
/* Fills out with n random URL-safe characters and a NUL. */
void ems_random_token(char *out, size_t n);

#endif
