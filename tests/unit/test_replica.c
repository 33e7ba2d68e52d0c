/*
 * test_replica.c — the replica hash (core/replica.c): golden values, so that
 * processes of different builds agree on a device's replica, stability,
 * spread, and the few devices a new replica takes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "replica.h"

#define REPLICAS 4

static void test_rendezvous_hash_stable_and_spread(void **state) {
    (void)state;
    enum { N = 4000 };
    static char ids[N][EMS_ID_LEN];
    unsigned count[REPLICAS + 1] = {0}, moved = 0;
    for (int i = 0; i < N; i++) {
        ems_uuid(ids[i]);
        unsigned r = ems_replica_of(ids[i], REPLICAS);
        assert_true(r >= 1 && r <= REPLICAS);
        count[r]++;
    }
    /* Stable: the same answer every time. */
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(ems_replica_of(ids[i], REPLICAS), ems_replica_of(ids[i], REPLICAS));
    assert_int_equal(ems_replica_of("8a6e0804-2bd0-4672-b79d-d97027f9071a", 4),
                     ems_replica_of("8a6e0804-2bd0-4672-b79d-d97027f9071a", 4));
    /* Spread: each replica within 20 % of a fair share. */
    for (int r = 1; r <= REPLICAS; r++)
        assert_true(count[r] > N / REPLICAS * 8 / 10 && count[r] < N / REPLICAS * 12 / 10);
    /* One more replica takes devices only for itself. */
    for (int i = 0; i < N; i++) {
        unsigned before = ems_replica_of(ids[i], REPLICAS), after = ems_replica_of(ids[i], REPLICAS + 1);
        if (before != after) {
            assert_int_equal(after, REPLICAS + 1);
            moved++;
        }
    }
    assert_true(moved > N / (REPLICAS + 1) * 7 / 10 && moved < N / (REPLICAS + 1) * 13 / 10);
    assert_int_equal(ems_replica_of(ids[0], 1), 1);
    assert_int_equal(ems_replica_of(ids[0], 0), 1);
}

/*
 * The hash is a wire contract: a balancer and the replicas of another build
 * must agree on which replica owns a device.  Values taken from the
 * implementation as shipped; a change here moves devices between replicas.
 */
static void test_rendezvous_hash_golden(void **state) {
    (void)state;
    static const unsigned ns[] = {1, 2, 3, 4, 8, 16, 1024};
    static const struct {
        const char *id;
        unsigned replica[7];
    } golden[] = {
        {"8a6e0804-2bd0-4672-b79d-d97027f9071a", {1, 1, 1, 4, 4, 12, 492}},
        {"6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", {1, 2, 2, 2, 8, 8, 593}},
        {"00000000-0000-4000-8000-000000000000", {1, 1, 1, 1, 1, 1, 824}},
        {"7f3c2a10-1234-4abc-8def-012345678901", {1, 2, 2, 4, 4, 4, 166}},
        {"ffffffff-ffff-4fff-bfff-ffffffffffff", {1, 2, 2, 2, 5, 5, 223}},
        {"123e4567-e89b-42d3-a456-426614174000", {1, 2, 3, 3, 3, 3, 696}},
    };
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            if (ems_replica_of(golden[i].id, ns[k]) != golden[i].replica[k])
                fail_msg("%s over %u replicas: %u, expected %u", golden[i].id, ns[k],
                         ems_replica_of(golden[i].id, ns[k]), golden[i].replica[k]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rendezvous_hash_stable_and_spread),
        cmocka_unit_test(test_rendezvous_hash_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
