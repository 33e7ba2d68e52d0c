/*
 * replica.h — which monitoring replica owns a device.
 *
 * Part of the bus contract: the balancer routes a reading to the replica a
 * device hashes to, and a replica names the dead-letter queue of the same
 * replica, so every process (of every build) must compute the same answer.
 * tests/unit/test_replica.c pins it with golden values.
 */
#ifndef EMS_REPLICA_H
#define EMS_REPLICA_H

/*
 * The replica (1..n) that owns device_id, by rendezvous hashing: every
 * replica gets a score from a hash of (device, replica) and the highest
 * wins.  The same device always maps to the same replica for a given n,
 * devices spread evenly, and going from n to n+1 replicas moves only the
 * devices the new replica wins.  n 0 is taken as 1.  Never fails.
 */
unsigned ems_replica_of(const char *device_id, unsigned n);

#endif
