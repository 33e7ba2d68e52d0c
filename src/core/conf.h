/*
 * conf.h — configuration from tables of keys.
 *
 * Each role declares a static table of ems_conf_def (like Redis'
 * static_configs[]); the process loads the tables of the roles it runs into
 * one ems_conf.  Values are layered: defaults → optional file → environment →
 * command-line flags; then every value is validated and a bad one stops
 * start-up with a message naming the key.
 *
 * A key "db_port" is read from the file as `db_port = 5432`, from the
 * environment as the def's env name (the seed's DB_PORT, or EMS_...), and
 * from the command line as --db-port=5432 or --db-port 5432.
 */
#ifndef EMS_CONF_H
#define EMS_CONF_H

#include <stddef.h>
#include <stdio.h>

#include "result.h"

typedef enum {
    EMS_CONF_STR,
    EMS_CONF_INT,
    EMS_CONF_BOOL,   /* true/false/1/0/yes/no/on/off */
    EMS_CONF_SECRET, /* a string that --help and logs never show */
} ems_conf_type;

typedef struct ems_conf_def {
    const char *key; /* snake_case; the flag is --key with '_' → '-' */
    const char *env; /* environment variable, or NULL */
    ems_conf_type type;
    const char *def;  /* default as text; NULL means unset */
    long min, max;    /* bounds for EMS_CONF_INT (both 0: no bounds) */
    const char *help; /* one line for --help */
} ems_conf_def;

typedef struct ems_conf ems_conf;

ems_conf *ems_conf_new(void);
void ems_conf_free(ems_conf *c); /* accepts NULL */

/* Adds a table; a key already present is kept as it was (tables may overlap). */
ems_rc ems_conf_add(ems_conf *c, const ems_conf_def *defs, size_t n);

/*
 * Applies defaults, then `file` (if not NULL), then the environment, then
 * argv (flags only; argv[0] is not skipped), then validates.  On failure
 * returns EMS_BAD_REQUEST with a message naming the key in err.
 */
ems_rc ems_conf_load(ems_conf *c, const char *file, int argc, char **argv, char *err, size_t errlen);

/* Sets one value as if from a flag; validates it. */
ems_rc ems_conf_set(ems_conf *c, const char *key, const char *value, char *err, size_t errlen);

/*
 * Getters: NULL / 0 when the key is unset.  A key that no table added is a
 * programming error: the process aborts with a message naming it.
 */
const char *ems_conf_str(const ems_conf *c, const char *key);
long ems_conf_int(const ems_conf *c, const char *key);
int ems_conf_bool(const ems_conf *c, const char *key);

/* Prints one line per key: flag, environment variable, default, help. */
void ems_conf_help(const ems_conf *c, FILE *out);

#endif
