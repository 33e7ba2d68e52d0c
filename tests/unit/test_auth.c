/*
 * test_auth.c — tokens refuse every forgery the gateway could be handed
 * (alg=none, HS256 keyed with the public key, tampered payload or signature,
 * expired, another key pair), passwords hash with argon2id, ids are UUIDs;
 * and the auth role believes X-Real-IP only from the proxies it was told of.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "auth/client.h"
#include "fixture.h"

typedef struct {
    char dir[64];
    ems_jwt *jwt;
    char *pub_pem;
} fixture;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx_tmpdir(fx->dir, sizeof fx->dir, "auth"));
    char priv[128], pub[128], err[256];
    snprintf(priv, sizeof priv, "%s/priv.pem", fx->dir);
    snprintf(pub, sizeof pub, "%s/pub.pem", fx->dir);
    assert_int_equal(ems_jwt_load(priv, pub, 1, &fx->jwt, err, sizeof err), EMS_OK);
    fx->pub_pem = slurp(pub);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    assert_int_equal(fx_run("rm -rf '%s'", fx->dir), 0);
    ems_jwt_free(fx->jwt);
    free(fx->pub_pem);
    free(fx);
    return 0;
}

static ems_principal alice(void) {
    ems_principal p = {0};
    strcpy(p.id, "0b9d1a4e-2c1f-4f8e-9d3a-6a1b2c3d4e5f");
    strcpy(p.username, "alice");
    p.role = EMS_ROLE_CLIENT;
    p.ver = 7;
    return p;
}

/* A token with any header alg, signed (or not) by libjwt with the given key. */
static char *forge(jwt_alg_t alg, const char *key, const char *role, long exp) {
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    jwt_add_grant(j, "sub", "0b9d1a4e-2c1f-4f8e-9d3a-6a1b2c3d4e5f");
    jwt_add_grant(j, "username", "alice");
    jwt_add_grant(j, "role", role);
    jwt_add_grant_int(j, "ver", 7);
    jwt_add_grant_int(j, "iat", (long)time(NULL));
    jwt_add_grant_int(j, "exp", exp);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

static void sign_and_verify_round_trip(void **state) {
    fixture *fx = *state;
    ems_principal p = alice(), got;
    char *token;
    int64_t exp;
    assert_int_equal(ems_jwt_sign(fx->jwt, &p, 60, &token, &exp), EMS_OK);
    assert_true(exp > (int64_t)time(NULL) * 1000);
    assert_int_equal(ems_jwt_verify(fx->jwt, token, &got), EMS_OK);
    assert_string_equal(got.id, p.id);
    assert_string_equal(got.username, "alice");
    assert_int_equal(got.role, EMS_ROLE_CLIENT);
    assert_int_equal(got.ver, 7);
    /* Second time from the cache: same answer. */
    memset(&got, 0, sizeof got);
    assert_int_equal(ems_jwt_verify(fx->jwt, token, &got), EMS_OK);
    assert_string_equal(got.username, "alice");
    free(token);
}

static void expired_token_refused(void **state) {
    fixture *fx = *state;
    ems_principal p = alice(), got;
    char *token;
    assert_int_equal(ems_jwt_sign(fx->jwt, &p, -10, &token, NULL), EMS_OK);
    assert_int_equal(ems_jwt_verify(fx->jwt, token, &got), EMS_UNAUTHORIZED);
    free(token);
}

static void alg_none_refused(void **state) {
    fixture *fx = *state;
    ems_principal got;
    char *t = forge(JWT_ALG_NONE, NULL, "admin", (long)time(NULL) + 600);
    assert_int_equal(ems_jwt_verify(fx->jwt, t, &got), EMS_UNAUTHORIZED);
    free(t);
}

static void hs256_with_public_key_refused(void **state) {
    fixture *fx = *state;
    ems_principal got;
    char *t = forge(JWT_ALG_HS256, fx->pub_pem, "admin", (long)time(NULL) + 600);
    assert_int_equal(ems_jwt_verify(fx->jwt, t, &got), EMS_UNAUTHORIZED);
    free(t);
}

static void tampered_tokens_refused(void **state) {
    fixture *fx = *state;
    ems_principal p = alice(), got;
    char *token;
    assert_int_equal(ems_jwt_sign(fx->jwt, &p, 60, &token, NULL), EMS_OK);
    /* Swap the payload for one claiming admin, keeping header and signature. */
    char *admin = forge(JWT_ALG_HS256, "x", "admin", (long)time(NULL) + 600);
    char *dot1 = strchr(token, '.'), *dot2 = strchr(dot1 + 1, '.');
    char *adot1 = strchr(admin, '.'), *adot2 = strchr(adot1 + 1, '.');
    char spliced[2048];
    snprintf(spliced, sizeof spliced, "%.*s%.*s%s", (int)(dot1 - token), token, (int)(adot2 - adot1), adot1, dot2);
    assert_int_equal(ems_jwt_verify(fx->jwt, spliced, &got), EMS_UNAUTHORIZED);
    /* Flip one character of the signature. */
    token[strlen(token) - 5] = token[strlen(token) - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(ems_jwt_verify(fx->jwt, token, &got), EMS_UNAUTHORIZED);
    free(admin);
    free(token);
}

static void other_key_pair_refused(void **state) {
    fixture *fx = *state;
    char dir[64], priv[96], pub[96], err[256];
    assert_non_null(fx_tmpdir(dir, sizeof dir, "auth2"));
    snprintf(priv, sizeof priv, "%s/p.pem", dir);
    snprintf(pub, sizeof pub, "%s/q.pem", dir);
    ems_jwt *other;
    assert_int_equal(ems_jwt_load(priv, pub, 1, &other, err, sizeof err), EMS_OK);
    ems_principal p = alice(), got;
    char *token;
    assert_int_equal(ems_jwt_sign(other, &p, 60, &token, NULL), EMS_OK);
    assert_int_equal(ems_jwt_verify(fx->jwt, token, &got), EMS_UNAUTHORIZED);
    free(token);
    ems_jwt_free(other);
    assert_int_equal(fx_run("rm -rf '%s'", dir), 0);
}

static void garbage_refused(void **state) {
    fixture *fx = *state;
    ems_principal got;
    const char *bad[] = {"", "abc", "a.b.c", "..", "eyJhbGciOiJFUzI1NiJ9..", NULL};
    for (size_t i = 0; bad[i]; i++) assert_int_equal(ems_jwt_verify(fx->jwt, bad[i], &got), EMS_UNAUTHORIZED);
    assert_int_equal(ems_jwt_verify(fx->jwt, NULL, &got), EMS_UNAUTHORIZED);
}

static void verify_only_cannot_sign(void **state) {
    fixture *fx = *state;
    ems_jwt *v = ems_jwt_new(NULL, fx->pub_pem);
    assert_non_null(v);
    ems_principal p = alice();
    char *token = NULL;
    assert_int_not_equal(ems_jwt_sign(v, &p, 60, &token, NULL), EMS_OK);
    ems_jwt_free(v);
    assert_null(ems_jwt_new(NULL, "not a key"));
}

static void bearer_parsing(void **state) {
    (void)state;
    assert_string_equal(ems_bearer("Bearer abc"), "abc");
    assert_string_equal(ems_bearer("bearer  abc"), "abc");
    assert_null(ems_bearer("Basic abc"));
    assert_null(ems_bearer("Bearer "));
    assert_null(ems_bearer(NULL));
}

static void passwords(void **state) {
    (void)state;
    char h[EMS_PWHASH_LEN];
    assert_int_equal(ems_password_hash("correct horse", h), EMS_OK);
    assert_non_null(strstr(h, "$argon2id$"));
    assert_non_null(strstr(h, "m=19456,t=2")); /* OWASP minimum */
    assert_true(ems_password_verify(h, "correct horse"));
    assert_false(ems_password_verify(h, "correct horsE"));
    assert_false(ems_password_verify("garbage", "x"));
}

static void uuids(void **state) {
    (void)state;
    char a[EMS_ID_LEN], b[EMS_ID_LEN];
    ems_uuid(a);
    ems_uuid(b);
    assert_true(ems_uuid_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_false(ems_uuid_valid("0B9D1A4E-2C1F-4F8E-9D3A-6A1B2C3D4E5F"));
    assert_false(ems_uuid_valid("0b9d1a4e-2c1f-4f8e-9d3a-6a1b2c3d4e5"));
    assert_false(ems_uuid_valid("../../etc/passwd"));
    assert_false(ems_uuid_valid("0b9d1a4e'2c1f-4f8e-9d3a-6a1b2c3d4e5f"));
    assert_int_equal(ems_role_parse("admin"), EMS_ROLE_ADMIN);
    assert_int_equal(ems_role_parse("root"), EMS_ROLE_NONE);
}

static void trusted_proxies_parse_and_match(void **state) {
    (void)state;
    auth_proxies t;
    char err[128] = "";
    assert_int_equal(auth_proxies_parse("10.0.0.0/8, 192.168.1.7,fd00::/8", 1, &t, err, sizeof err), EMS_OK);
    assert_int_equal(t.n, 3);
    assert_true(auth_proxies_trust(&t, "10.200.3.4"));
    assert_true(auth_proxies_trust(&t, "::ffff:10.0.0.1")); /* an IPv4 peer on a dual-stack socket */
    assert_true(auth_proxies_trust(&t, "192.168.1.7"));
    assert_false(auth_proxies_trust(&t, "192.168.1.8"));
    assert_false(auth_proxies_trust(&t, "11.0.0.1"));
    assert_true(auth_proxies_trust(&t, "fd12::1"));
    assert_false(auth_proxies_trust(&t, "fe80::1"));
    assert_false(auth_proxies_trust(&t, "local"));

    assert_int_equal(auth_proxies_parse("172.16.0.0/12", 0, &t, err, sizeof err), EMS_OK);
    assert_true(auth_proxies_trust(&t, "172.31.255.255"));
    assert_false(auth_proxies_trust(&t, "172.32.0.0"));
}

static void trusted_proxies_default_by_mode(void **state) {
    (void)state;
    auth_proxies t;
    char err[128] = "";
    /* Embedded: clients reach the server directly, so nobody's X-Real-IP is believed. */
    assert_int_equal(auth_proxies_parse("", 1, &t, err, sizeof err), EMS_OK);
    assert_int_equal(t.n, 0);
    assert_false(auth_proxies_trust(&t, "127.0.0.1"));
    /* --role: behind the gateway, on loopback or a private network. */
    assert_int_equal(auth_proxies_parse("", 0, &t, err, sizeof err), EMS_OK);
    assert_true(auth_proxies_trust(&t, "127.0.0.1"));
    assert_true(auth_proxies_trust(&t, "10.0.1.5"));
    assert_false(auth_proxies_trust(&t, "203.0.113.9"));
    assert_int_equal(auth_proxies_parse("none", 0, &t, err, sizeof err), EMS_OK);
    assert_false(auth_proxies_trust(&t, "127.0.0.1"));
}

static void trusted_proxies_bad_entries_named(void **state) {
    (void)state;
    auth_proxies t;
    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "::1/129", "gateway", "10.0.0.1/8x", NULL};
    for (size_t i = 0; bad[i]; i++) {
        char err[128] = "";
        assert_int_equal(auth_proxies_parse(bad[i], 1, &t, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, bad[i]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_and_verify_round_trip),
        cmocka_unit_test(expired_token_refused),
        cmocka_unit_test(alg_none_refused),
        cmocka_unit_test(hs256_with_public_key_refused),
        cmocka_unit_test(tampered_tokens_refused),
        cmocka_unit_test(other_key_pair_refused),
        cmocka_unit_test(garbage_refused),
        cmocka_unit_test(verify_only_cannot_sign),
        cmocka_unit_test(bearer_parsing),
        cmocka_unit_test(passwords),
        cmocka_unit_test(uuids),
        cmocka_unit_test(trusted_proxies_parse_and_match),
        cmocka_unit_test(trusted_proxies_default_by_mode),
        cmocka_unit_test(trusted_proxies_bad_entries_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
