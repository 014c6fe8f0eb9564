/*
 * loyaltyctl prune: retention of events and touches, in bounded
 * transactions (loyalty_prune.c says what a deleted record costs).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_prune.h"
#include "loyaltyctl.h"
#include "loyaltyctl_nats.h"


#define LOYALTYCTL_PRUNE_DAYS       400
#define LOYALTYCTL_PRUNE_DAYS_MAX   36500


typedef struct {
    int64_t          cutoff;
    loyalty_prune_t  pr;
} loyaltyctl_prune_t;


/* the prune as one message of the cluster's stream */
static int
loyaltyctl_prune_publish(loyaltyctl_nats_t *n, int64_t now, int64_t cutoff)
{
    json_t  *msg;

    msg = loyalty_repl_message("prune", n->edge, now);

    if (msg && json_object_set_new(msg, "before", json_integer(cutoff)) != 0) {
        json_decref(msg);
        msg = NULL;
    }

    return loyaltyctl_nats_send(n, msg, "prune", "prune: out of memory",
                                LOYALTYCTL_STORE);
}


static int
loyaltyctl_prune_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                  rc;
    loyaltyctl_prune_t  *p;

    p = w->data;

    rc = loyalty_prune_step(&w->st, txn, p->cutoff, LOYALTY_PRUNE_CHUNK,
                            &p->pr);
    if (rc != 0) {
        return rc;
    }

    return p->pr.done ? 0 : LOYALTYCTL_WRITE_MORE;
}


/* --older-than DAYS: 1 to LOYALTYCTL_PRUNE_DAYS_MAX */
static int
loyaltyctl_prune_days(const char *arg, void *days)
{
    if (loyaltyctl_parse_count(arg, days) != 0
        || *(int64_t *) days > LOYALTYCTL_PRUNE_DAYS_MAX)
    {
        return -1;
    }

    return 0;
}


int
loyaltyctl_prune(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc, nats;
    char                 before[LOYALTY_RFC3339_LEN + 1];
    int64_t              now, days;
    loyaltyctl_nats_t    n;
    loyaltyctl_prune_t   p;
    loyaltyctl_write_t   w;

    loyaltyctl_option_t  opts[] = {
        { "older-than", 0, 1, loyaltyctl_prune_days, &days, NULL },
        { "now", 0, 1, loyaltyctl_time, &now, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    days = LOYALTYCTL_PRUNE_DAYS;

    rc = loyaltyctl_nats_args(o, argc, argv, opts, &n, 0, 0, &nats);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    /* the NATS options go with --nats only */
    if (nats && n.urls == NULL) {
        return loyaltyctl_usage(o->usage);
    }

    memset(&p, 0, sizeof(loyaltyctl_prune_t));
    p.cutoff = now - days * LOYALTY_DAY;

    /* into the cluster's stream, for every edge */
    if (n.urls) {
        rc = loyaltyctl_prune_publish(&n, now, p.cutoff);
        loyaltyctl_nats_close(&n);
        return rc;
    }

    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "prune";
    w.regrow = (size_t) 16 << 20;
    w.step = loyaltyctl_prune_step;
    w.data = &p;
    w.state = &p.pr;
    w.state_size = sizeof(loyalty_prune_t);

    rc = loyaltyctl_write(o, &w);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_format_rfc3339(p.cutoff, before);

    return loyaltyctl_print_json(json_pack("{s:I,s:I,s:s}",
                                           "events",
                                           (json_int_t) p.pr.events,
                                           "touches",
                                           (json_int_t) p.pr.touches,
                                           "before", before));
}
