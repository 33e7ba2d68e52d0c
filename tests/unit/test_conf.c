/*
 * test_conf.c — layering (defaults → file → environment → flags) and
 * validation messages that name the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"

static const ems_conf_def defs[] = {
    {"port", "TEST_EMS_PORT", EMS_CONF_INT, "8080", 1, 65535, "port"},
    {"name", "TEST_EMS_NAME", EMS_CONF_STR, "ems", 0, 0, "name"},
    {"verbose", "TEST_EMS_VERBOSE", EMS_CONF_BOOL, "false", 0, 0, "verbose"},
    {"secret", "TEST_EMS_SECRET", EMS_CONF_SECRET, "hunter2", 0, 0, "secret"},
    {"unset", NULL, EMS_CONF_STR, NULL, 0, 0, "unset"},
};

static ems_conf *fresh(void) {
    unsetenv("TEST_EMS_PORT");
    unsetenv("TEST_EMS_NAME");
    unsetenv("TEST_EMS_VERBOSE");
    ems_conf *c = ems_conf_new();
    assert_non_null(c);
    assert_int_equal(ems_conf_add(c, defs, sizeof defs / sizeof defs[0]), EMS_OK);
    return c;
}

static char *write_file(const char *text) {
    static char path[] = "/tmp/ems-test-conf-XXXXXX";
    strcpy(path, "/tmp/ems-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void defaults_apply(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[256];
    assert_int_equal(ems_conf_load(c, NULL, 0, NULL, err, sizeof err), EMS_OK);
    assert_int_equal(ems_conf_int(c, "port"), 8080);
    assert_string_equal(ems_conf_str(c, "name"), "ems");
    assert_false(ems_conf_bool(c, "verbose"));
    assert_null(ems_conf_str(c, "unset"));
    ems_conf_free(c);
}

/* Asking for a key no table declares stops the process: a typo must not read as "unset". */
static void unknown_key_aborts(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[128];
    assert_int_equal(ems_conf_load(c, NULL, 0, NULL, err, sizeof err), EMS_OK);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        ems_conf_int(c, "no_such_key");
        _exit(0); /* reached only if the getter returned */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    ems_conf_free(c);
}

static void layers_override_in_order(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[256];
    char *file = write_file("# comment\nport = 9000\nname = from-file\n\nverbose = yes\n");
    setenv("TEST_EMS_NAME", "from-env", 1);
    char *argv[] = {"--port", "9100"};
    assert_int_equal(ems_conf_load(c, file, 2, argv, err, sizeof err), EMS_OK);
    assert_int_equal(ems_conf_int(c, "port"), 9100);          /* flag beats file */
    assert_string_equal(ems_conf_str(c, "name"), "from-env"); /* env beats file */
    assert_true(ems_conf_bool(c, "verbose"));                 /* file beats default */
    unlink(file);
    ems_conf_free(c);
}

static void flag_forms(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[256];
    char *argv[] = {"--name=x=y", "--verbose"};
    assert_int_equal(ems_conf_load(c, NULL, 2, argv, err, sizeof err), EMS_OK);
    assert_string_equal(ems_conf_str(c, "name"), "x=y");
    assert_true(ems_conf_bool(c, "verbose"));
    ems_conf_free(c);
}

static void bad_values_name_the_key(void **state) {
    (void)state;
    char err[256];
    struct {
        char *arg;
        const char *expect;
    } cases[] = {
        {"--port=abc", "port"},         {"--port=0", "port"},         {"--port=70000", "out of range"},
        {"--verbose=maybe", "verbose"}, {"--nonsense=1", "nonsense"}, {"stray", "stray"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ems_conf *c = fresh();
        char *argv[] = {cases[i].arg};
        assert_int_equal(ems_conf_load(c, NULL, 1, argv, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, cases[i].expect));
        ems_conf_free(c);
    }
}

static void bad_env_names_variable(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[256];
    setenv("TEST_EMS_PORT", "eighty", 1);
    assert_int_equal(ems_conf_load(c, NULL, 0, NULL, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "port"));
    assert_non_null(strstr(err, "TEST_EMS_PORT"));
    unsetenv("TEST_EMS_PORT");
    ems_conf_free(c);
}

static void bad_file_line(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char err[256];
    char *file = write_file("port 9000\n");
    assert_int_equal(ems_conf_load(c, file, 0, NULL, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, ":1"));
    unlink(file);
    assert_int_equal(ems_conf_load(c, "/nonexistent/ems.conf", 0, NULL, err, sizeof err), EMS_BAD_REQUEST);
    ems_conf_free(c);
}

static void help_hides_secrets(void **state) {
    (void)state;
    ems_conf *c = fresh();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ems_conf_help(c, f);
    fclose(f);
    assert_non_null(strstr(buf, "--port"));
    assert_non_null(strstr(buf, "TEST_EMS_PORT"));
    assert_null(strstr(buf, "hunter2"));
    free(buf);
    ems_conf_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply),
        cmocka_unit_test(unknown_key_aborts),
        cmocka_unit_test(layers_override_in_order),
        cmocka_unit_test(flag_forms),
        cmocka_unit_test(bad_values_name_the_key),
        cmocka_unit_test(bad_env_names_variable),
        cmocka_unit_test(bad_file_line),
        cmocka_unit_test(help_hides_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
