/*
 * balancer.h — how the balancer role picks a monitoring replica.
 */
#ifndef EMS_ROLE_BALANCER_H
#define EMS_ROLE_BALANCER_H

/*
 * The replica (1..n) that owns device_id, by rendezvous hashing: every
 * replica gets a score from a hash of (device, replica) and the highest
 * wins.  The same device always maps to the same replica for a given n,
 * devices spread evenly, and going from n to n+1 replicas moves only the
 * devices the new replica wins.  n 0 is taken as 1.
 */
unsigned balancer_replica(const char *device_id, unsigned n);

#endif
