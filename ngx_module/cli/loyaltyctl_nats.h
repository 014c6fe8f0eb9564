/*
 * loyaltyctl: the NATS JetStream side of follow, bootstrap and
 * import --nats.
 */

#ifndef _LOYALTYCTL_NATS_H_INCLUDED_
#define _LOYALTYCTL_NATS_H_INCLUDED_


#include <signal.h>
#include <nats/nats.h>

#include "loyaltyctl.h"
#include "loyalty_repl.h"


#define LOYALTYCTL_NATS_STREAM      "LOYALTY"
#define LOYALTYCTL_NATS_SERVERS_MAX 16
#define LOYALTYCTL_NATS_SUBJECT_MAX 128
#define LOYALTYCTL_NATS_WAIT        5000    /* ms, a publish's ack */

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


/*
 * A NATS command's options: its own (opts, ending with a NULL name, or
 * NULL), and those every NATS command takes (--nats, --creds, --user,
 * --password, --stream, --edge, --replicas) into n, through
 * loyaltyctl_options(); a bad value of these is a usage error.  What was
 * not given gets its default (stream LOYALTY, edge the host name, 1
 * replica, the password $LOYALTY_NATS_PASSWORD); *given (unless NULL) is
 * 1 if any of them was.  An exit code.
 */
int loyaltyctl_nats_args(const loyaltyctl_opts_t *o, int argc, char **argv,
    const loyaltyctl_option_t *opts, loyaltyctl_nats_t *n, int min,
    int max, int *given);
/* connects and makes the stream if it is not there: an exit code */
int loyaltyctl_nats_connect(loyaltyctl_nats_t *n, int forever);
void loyaltyctl_nats_close(loyaltyctl_nats_t *n);
/* "loyalty.STREAM.KIND" */
void loyaltyctl_nats_subject(loyaltyctl_nats_t *n, const char *kind,
    char *subject);
/* publishes msg, acknowledged by the stream (its sequence in *seq) */
int loyaltyctl_nats_publish(loyaltyctl_nats_t *n, json_t *msg,
    const char *msgid, uint64_t *seq);
/*
 * Connects, publishes msg under a new id (loyaltyctl_nats_msgid()) and
 * releases it; says "published WHAT to STREAM, sequence N": an exit code.
 * A msg of NULL could not be made: then, or without an id, says
 * "loyaltyctl: WHY" and returns fail.
 */
int loyaltyctl_nats_send(loyaltyctl_nats_t *n, json_t *msg,
    const char *what, const char *why, int fail);
/* an id for JetStream's duplicate window: 0, or -1 */
int loyaltyctl_nats_msgid(loyaltyctl_nats_t *n, char *id, size_t size);


#endif /* _LOYALTYCTL_NATS_H_INCLUDED_ */
