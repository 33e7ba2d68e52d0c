/*
 * sim_config.h — the simulator's configuration: what is simulated and where
 * the readings go.  Shared by the `ems-sim` command line and the desktop
 * window, which both load, edit, validate and save it through these calls.
 *
 * The file is JSON, read strictly: an unknown key, a duplicate key or a value
 * of the wrong type is an error whose message names the key
 * ("devices[1].scale: expected a number").  See docs/sim.md for the keys.
 *
 * ems_sim_config is plain data, so that a window can show and edit the
 * fields directly; strings and the device array are owned by the struct
 * (malloc'd; replace them with ems_sim_config_set_string) and freed by
 * ems_sim_config_clear.  Layering: defaults (ems_sim_config_init) → file
 * (ems_sim_config_load_file) → environment (ems_sim_config_apply_env) → the
 * caller's own overrides → ems_sim_config_validate.
 */
#ifndef EMS_SIM_CONFIG_H
#define EMS_SIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

#define EMS_SIM_HOURS 24
#define EMS_SIM_ID_LEN 36
#define EMS_SIM_DEFAULT_INTERVAL_S 600
#define EMS_SIM_DEFAULT_QUEUE "external.data.collection.queue"
#define EMS_SIM_DEFAULT_AMQP "amqp://guest:guest@127.0.0.1:5672"
#define EMS_SIM_DEFAULT_FLUCTUATION 0.10
/* Readings per message: one per AMQP message (the seed's form), a thousand per HTTP request. */
#define EMS_SIM_DEFAULT_AMQP_BATCH 1
#define EMS_SIM_DEFAULT_HTTP_BATCH 1000
/* AMQP messages published per wait for publisher confirms. */
#define EMS_SIM_DEFAULT_PUBLISH_BATCH 500
#define EMS_SIM_DEFAULT_LATE_BY 50
#define EMS_SIM_DEFAULT_SHUFFLE_WINDOW 32

typedef enum { EMS_SIM_TARGET_AMQP, EMS_SIM_TARGET_HTTP } ems_sim_target_kind;

/* Body forms: the seed's {timestamp, device_id, measurement_value}; the original simulator's {deviceId, timestamp, value}. */
typedef enum { EMS_SIM_FORMAT_SEED, EMS_SIM_FORMAT_ORIGINAL } ems_sim_format;

typedef struct {
    char id[EMS_SIM_ID_LEN + 1]; /* UUID */
    char *name;                  /* a label for people, or NULL */
    double scale;                /* multiplies the curve; default 1 */
    double max_kwh;              /* cap on the hourly rate; 0 = none */
} ems_sim_device_conf;

typedef struct {
    ems_sim_device_conf *devices;
    size_t ndevices;
    int interval_s; /* seconds between readings of a device */
    char *timezone; /* IANA name of the meters' local time; NULL = the system's */
    int has_seed;   /* 0: a seed is picked at random when the simulation starts */
    uint64_t seed;
    double hourly_kwh[EMS_SIM_HOURS]; /* the daily load curve, kWh per hour */
    double fluctuation;               /* 0.1 = ±10 % */
    char *csv;                        /* values file, as written (relative to base_dir); or NULL */
    char *base_dir;                   /* directory of the loaded file, or NULL */
    struct {
        ems_sim_target_kind kind;
        char *url;       /* NULL = EMS_SIM_DEFAULT_AMQP */
        char *queue;     /* amqp; NULL = EMS_SIM_DEFAULT_QUEUE */
        char *exchange;  /* amqp; set: publish there with the queue as routing key, declare nothing */
        char *token;     /* http ingest token, as in the file */
        char *env_token; /* EMS_INGEST_TOKEN: wins over token, never saved */
        int from_env;    /* the target came from RABBITMQ_*: never saved */
    } target;
    struct {
        int batch;         /* readings per message; 0 = the target's default */
        int publish_batch; /* AMQP messages per confirm wait; 0 = default */
        ems_sim_format format;
        int iso; /* ISO-8601 timestamps instead of epoch ms */
    } send;
    struct {
        double duplicates; /* fraction of readings sent twice */
        double late;       /* fraction held back by late_by readings */
        int late_by;
        int shuffle; /* reorder within shuffle_window readings */
        int shuffle_window;
        double malformed; /* extra malformed messages per reading */
    } faults;
} ems_sim_config;

/* Fills c with the defaults (no devices, the built-in curve, the default AMQP target). */
void ems_sim_config_init(ems_sim_config *c);
/* Frees what c owns and leaves it as ems_sim_config_init does; accepts NULL. */
void ems_sim_config_clear(ems_sim_config *c);
/* Deep copy into *out (which is overwritten, not cleared). */
ems_rc ems_sim_config_copy(const ems_sim_config *c, ems_sim_config *out);

/*
 * Replaces c (which must be initialised) with defaults + the file at path,
 * then validates.  On error c is unchanged and err names the file and key.
 */
ems_rc ems_sim_config_load_file(ems_sim_config *c, const char *path, char *err, size_t errlen);
/* The same from text; base_dir (or NULL) anchors a relative csv path. */
ems_rc ems_sim_config_load_string(ems_sim_config *c, const char *json, const char *base_dir, char *err, size_t errlen);

/*
 * EMS_INGEST_TOKEN → target.env_token; when no target is set, the seed's
 * RABBITMQ_HOST / RABBITMQ_PORT / RABBITMQ_USERNAME / RABBITMQ_PASSWORD
 * make an AMQP target.
 */
ems_rc ems_sim_config_apply_env(ems_sim_config *c);

/* Checks ranges, ids, the zone, the target and the CSV file; err names the key. */
ems_rc ems_sim_config_validate(const ems_sim_config *c, char *err, size_t errlen);

/* The config as JSON text (malloc'd), without what came from the environment. */
char *ems_sim_config_to_json(const ems_sim_config *c);
/* Validates, then writes atomically (temporary file + rename). */
ems_rc ems_sim_config_save(const ems_sim_config *c, const char *path, char *err, size_t errlen);

/* Appends a device (scale 1, no cap); EMS_CONFLICT if the id is there already. */
ems_rc ems_sim_config_add_device(ems_sim_config *c, const char *id, char *err, size_t errlen);
/* Removes device i; EMS_NOT_FOUND if there is none. */
ems_rc ems_sim_config_remove_device(ems_sim_config *c, size_t i);
/* Replaces an owned string (*slot) by a copy of value (NULL clears it). */
ems_rc ems_sim_config_set_string(char **slot, const char *value);

/* Effective values, defaults applied. */
const char *ems_sim_config_url(const ems_sim_config *c);
const char *ems_sim_config_queue(const ems_sim_config *c);
const char *ems_sim_config_token(const ems_sim_config *c);
int ems_sim_config_batch(const ems_sim_config *c);
int ems_sim_config_publish_batch(const ems_sim_config *c);
/* The csv path resolved against base_dir into buf; NULL when there is no csv. */
const char *ems_sim_config_csv_path(const ems_sim_config *c, char *buf, size_t cap);

#endif
