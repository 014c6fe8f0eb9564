/*
 * loyaltyctl apply: events, as the admin API takes them, in one
 * transaction.
 */

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_cadence.h"
#include "loyalty_batch.h"
#include "loyalty_events.h"
#include "loyaltyctl.h"


typedef struct {
    const char            *file;
    loyalty_event_hook_t   hook;
    loyalty_batch_t        res;
    int                    refused;   /* LOYALTY_BATCH_INVALID or _CONFLICT */
} loyaltyctl_apply_t;


static int loyaltyctl_applied(loyaltyctl_write_t *w, int rc);


static int
loyaltyctl_apply_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                  rc;
    loyaltyctl_apply_t  *a;

    a = w->data;

    loyalty_batch_free(&a->res);

    rc = loyalty_batch_apply(&w->st, txn, w->buf, w->len, SIZE_MAX,
                             (int64_t) time(NULL), &a->hook, &a->res, w->err,
                             sizeof(w->err));

    if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT) {
        a->refused = rc;
        return LOYALTYCTL_WRITE_REFUSED;
    }

    return rc;
}


int
loyaltyctl_apply(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    loyalty_lua_t        vm;
    loyalty_cadences_t  *cads;
    loyaltyctl_apply_t   a;
    loyaltyctl_write_t   w;

    rc = loyaltyctl_cadences(o, &vm, &cads);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    memset(&a, 0, sizeof(loyaltyctl_apply_t));
    a.file = argv[1];
    a.hook.cadences = cads->n ? cads : NULL;

    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "apply";
    w.undone = "; nothing applied";
    w.step = loyaltyctl_apply_step;
    w.data = &a;

    /* an event writes its record, the member's and a ledger entry or two */
    w.input = argv[1];
    w.per_byte = 4;

    rc = loyaltyctl_write(o, &w);

    rc = loyaltyctl_applied(&w, rc);
    loyaltyctl_cadences_free(o, &vm, cads);

    return rc;
}


/* what apply prints, and its exit code */
static int
loyaltyctl_applied(loyaltyctl_write_t *w, int rc)
{
    json_t              *out;
    loyaltyctl_apply_t  *a;

    a = w->data;

    if (rc == LOYALTYCTL_DATA && a->refused) {
        out = json_object();
        if (out) {
            json_object_set_new(out, "events", json_integer(a->res.events));
            json_object_set(out, "errors", a->res.errors);
        }

        loyalty_batch_free(&a->res);
        fprintf(stderr, "loyaltyctl: %s: %s; nothing applied\n", a->file,
                w->err);

        return loyaltyctl_print_json(out) == LOYALTYCTL_OK
               ? LOYALTYCTL_DATA : LOYALTYCTL_STORE;
    }

    loyalty_batch_free(&a->res);

    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    out = json_object();
    if (out) {
        json_object_set_new(out, "events", json_integer(a->res.events));
        json_object_set_new(out, "applied", json_integer(a->res.applied));
        json_object_set_new(out, "duplicates",
                            json_integer(a->res.duplicates));
    }

    return loyaltyctl_print_json(out);
}
