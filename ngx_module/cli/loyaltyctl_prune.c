/*
 * loyaltyctl prune: retention of events and touches, in bounded
 * transactions (loyalty_prune.c says what a deleted record costs).
 */

#include <getopt.h>
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
    int      rc;
    char     id[LOYALTY_REPL_EDGE_MAX + 40];
    json_t  *msg;

    msg = loyalty_repl_message("prune", n->edge, now);

    if (msg == NULL
        || json_object_set_new(msg, "before", json_integer(cutoff)) != 0
        || loyaltyctl_nats_msgid(n, id, sizeof(id)) != 0)
    {
        json_decref(msg);
        fprintf(stderr, "loyaltyctl: prune: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    rc = loyaltyctl_nats_send(n, msg, id, "prune");
    loyaltyctl_nats_close(n);

    return rc;
}


static int
loyaltyctl_prune_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    int                  rc;
    loyaltyctl_prune_t  *p;

    p = w->data;

    rc = loyalty_prune_step(st, txn, p->cutoff, LOYALTY_PRUNE_CHUNK, &p->pr);
    if (rc != 0) {
        return rc;
    }

    return p->pr.done ? 0 : LOYALTYCTL_WRITE_MORE;
}


int
loyaltyctl_prune(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  c, rc, nats;
    char                 before[LOYALTY_RFC3339_LEN + 1];
    int64_t              now, days;
    loyaltyctl_prune_t   p;
    loyaltyctl_write_t   w;

    loyaltyctl_nats_t    n;

    static struct option  opts[] = {
        { "older-than", required_argument, NULL, 'o' },
        { "now",        required_argument, NULL, 'n' },
        LOYALTYCTL_NATS_OPTIONS,
        { NULL, 0, NULL, 0 }
    };

    loyaltyctl_nats_init(&n);
    nats = 0;
    now = (int64_t) time(NULL);
    days = LOYALTYCTL_PRUNE_DAYS;
    optind = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (loyaltyctl_parse_count(optarg, &days) != 0
                || days > LOYALTYCTL_PRUNE_DAYS_MAX)
            {
                return loyaltyctl_invalid("--older-than", optarg);
            }

            break;

        case 'n':
            if (loyaltyctl_time(optarg, &now) != 0) {
                return loyaltyctl_invalid("--now", optarg);
            }

            break;

        default:
            if (loyaltyctl_nats_option(&n, c, optarg) != 0) {
                return loyaltyctl_usage(o->usage);
            }

            nats = 1;
        }
    }

    /* the NATS options go with --nats only */
    if (optind != argc || (nats && n.urls == NULL)) {
        return loyaltyctl_usage(o->usage);
    }

    memset(&p, 0, sizeof(loyaltyctl_prune_t));
    p.cutoff = now - days * 86400;

    /* into the cluster's stream, for every edge */
    if (n.urls) {
        return loyaltyctl_prune_publish(&n, now, p.cutoff);
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
