/*
 * roles.h — the roles compiled into `ems`, and the queue names they share.
 */
#ifndef EMS_ROLES_H
#define EMS_ROLES_H

#include "role.h"

extern const ems_role_def ems_role_auth;
extern const ems_role_def ems_role_users;
extern const ems_role_def ems_role_devices;
extern const ems_role_def ems_role_monitoring;
extern const ems_role_def ems_role_balancer;
extern const ems_role_def ems_role_ws;
extern const ems_role_def ems_role_support;

/* Every role, in the order `ems serve` starts them. */
extern const ems_role_def *const ems_roles[];
extern const size_t ems_nroles;

const ems_role_def *ems_role_find(const char *name);

/* Queue names: configuration keys with DESIGN.md's names as defaults. */
#define EMS_Q_AUTH_USER(conf) ems_conf_str((conf), "rabbitmq_auth_user_queue")
#define EMS_Q_AUTH_DEVICE(conf) ems_conf_str((conf), "rabbitmq_auth_device_queue")
#define EMS_Q_AUTH_WS(conf) ems_conf_str((conf), "rabbitmq_auth_ws_queue") /* not in DESIGN.md: docs/ws.md */
#define EMS_Q_DEVICE_MONITORING(conf) ems_conf_str((conf), "rabbitmq_device_monitoring_queue")
#define EMS_Q_ALERT(conf) ems_conf_str((conf), "rabbitmq_alert_queue")
#define EMS_Q_NOTIFICATION(conf) ems_conf_str((conf), "rabbitmq_notification_queue")

#endif
