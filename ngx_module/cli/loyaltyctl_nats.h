/*
 * loyaltyctl: the NATS JetStream side of follow, bootstrap and
 * import --nats.
 */

#ifndef _LOYALTYCTL_NATS_H_INCLUDED_
#define _LOYALTYCTL_NATS_H_INCLUDED_


#include <getopt.h>
#include <signal.h>
#include <nats/nats.h>

#include "loyaltyctl.h"
#include "loyalty_repl.h"


#define LOYALTYCTL_NATS_STREAM      "LOYALTY"
#define LOYALTYCTL_NATS_SERVERS_MAX 16
#define LOYALTYCTL_NATS_SUBJECT_MAX 128
#define LOYALTYCTL_NATS_WAIT        5000    /* ms, a publish's ack */

/* the options every NATS command takes, for its getopt_long table */
#define LOYALTYCTL_NATS_OPTIONS                                             \
    { "nats",     required_argument, NULL, 'N' },                           \
    { "creds",    required_argument, NULL, 'C' },                           \
    { "user",     required_argument, NULL, 'U' },                           \
    { "password", required_argument, NULL, 'P' },                           \
    { "stream",   required_argument, NULL, 'S' },                           \
    { "edge",     required_argument, NULL, 'E' },                           \
    { "replicas", required_argument, NULL, 'R' }


typedef struct {
    const char       *urls;     /* comma-separated */
    const char       *creds;
    const char       *user;
    const char       *password;
    const char       *stream;
    const char       *edge;
    int               replicas; /* of a stream this creates */
    char              host[LOYALTY_REPL_EDGE_MAX + 1];
    /* set by a signal: a daemon waiting for NATS gives up */
    volatile sig_atomic_t  *stop;
    natsConnection   *nc;
    jsCtx            *js;
} loyaltyctl_nats_t;


/* defaults: stream LOYALTY, edge the host name, 1 replica, env password */
void loyaltyctl_nats_init(loyaltyctl_nats_t *n);
/* one of LOYALTYCTL_NATS_OPTIONS: 0, 1 when c is not one, -1 if bad */
int loyaltyctl_nats_option(loyaltyctl_nats_t *n, int c, const char *arg);
/* connects and makes the stream if it is not there: an exit code */
int loyaltyctl_nats_connect(loyaltyctl_nats_t *n, int forever);
void loyaltyctl_nats_close(loyaltyctl_nats_t *n);
/* "loyalty.STREAM.KIND" */
void loyaltyctl_nats_subject(loyaltyctl_nats_t *n, const char *kind,
    char *subject);
/* publishes msg, acknowledged by the stream (its sequence in *seq) */
int loyaltyctl_nats_publish(loyaltyctl_nats_t *n, json_t *msg,
    const char *msgid, uint64_t *seq);
/* connects, publishes msg with the id and releases it; says "published
 * WHAT to STREAM, sequence N": an exit code */
int loyaltyctl_nats_send(loyaltyctl_nats_t *n, json_t *msg, const char *id,
    const char *what);
/* an id for JetStream's duplicate window: 0, or -1 */
int loyaltyctl_nats_msgid(loyaltyctl_nats_t *n, char *id, size_t size);


#endif /* _LOYALTYCTL_NATS_H_INCLUDED_ */
