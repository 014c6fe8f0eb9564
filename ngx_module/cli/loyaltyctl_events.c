/*
 * loyaltyctl: events (apply), and what they leave in the store: the
 * rules, a member's ledger and downline (get rules, ledger, referrals);
 * delete member.
 */

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_admin.h"
#include "loyalty_cadence.h"
#include "loyalty_batch.h"
#include "loyalty_rules.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_GROW_TRIES    8


static int loyaltyctl_applied(const char *file, int rc,
    loyalty_batch_t *res, const char *err);


static const char  loyaltyctl_usage_apply[] =
    "usage: loyaltyctl -s DIR apply FILE\n"
    "Applies events (schema/event.schema.json) from FILE (\"-\" reads\n"
    "stdin): a JSON array, or JSON Lines, as the admin API takes them, in\n"
    "one transaction.  Prints {\"events\":N,\"applied\":N,\"duplicates\":N};\n"
    "an event whose id was applied before is a duplicate and changes\n"
    "nothing.  If any event is invalid (bad JSON, a wrong field, an\n"
    "unknown member or order, a refund of more than is left to refund),\n"
    "nothing is applied: prints {\"events\":N,\"errors\":[{\"index\":I,\n"
    "\"error\":\"...\"}]}, I counting events from 0, and exits 1.  An\n"
    "order_id, refund_id or action id applied before with another member,\n"
    "amount, order or kind is such an error, with \"conflict\":{\"field\",\n"
    "\"stored\",\"given\"}; an exact replay is a duplicate.\n"
    "Without rules in the store, orders count orders and spend and make\n"
    "customers, but give no points, stages beyond customer or tiers.\n"
    "With --lua FILE, the script's cadences that orders trigger are\n"
    "scheduled in the same transaction, as nginx does; its event hook is\n"
    "not run.\n";


static int
loyaltyctl_apply_buffer(loyalty_store_t *st, const char *buf, size_t len,
    const loyalty_event_hook_t *hook, loyalty_batch_t *res, char *err,
    size_t errlen)
{
    int       rc;
    MDB_txn  *txn;

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
        return rc;
    }

    rc = loyalty_batch_apply(st, txn, buf, len, SIZE_MAX,
                             (int64_t) time(NULL), hook, res, err, errlen);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
    }

    return rc;
}


int
loyaltyctl_apply(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                    rc, tries;
    char                  *buf, err[LOYALTY_ERRLEN];
    size_t                 len;
    loyalty_lua_t          vm;
    loyalty_store_t        st;
    loyalty_batch_t        res;
    loyalty_cadences_t    *cads;
    loyalty_event_hook_t   hook;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_apply)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 2) {
        return loyaltyctl_usage(loyaltyctl_usage_apply);
    }

    rc = loyaltyctl_cadences(o, &vm, &cads);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    hook.handler = NULL;
    hook.data = NULL;
    hook.cadences = cads->n ? cads : NULL;

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        goto done;
    }

    buf = loyaltyctl_read_all(argv[1], &len);
    if (buf == NULL) {
        loyalty_store_close(&st);
        rc = LOYALTYCTL_DATA;
        goto done;
    }

    /* an event writes its record, the member's and a ledger entry or two */
    err[0] = '\0';
    rc = loyalty_store_grow(&st, len * 4);
    res.errors = NULL;

    for (tries = 0; rc == 0 && tries < LOYALTYCTL_GROW_TRIES; tries++) {
        loyalty_batch_free(&res);
        rc = loyaltyctl_apply_buffer(&st, buf, len, &hook, &res, err,
                                     sizeof(err));

        if (rc != MDB_MAP_FULL) {
            break;
        }

        rc = loyalty_store_grow(&st, len * 8 << tries);
    }

    free(buf);
    loyalty_store_close(&st);
    rc = loyaltyctl_applied(argv[1], rc, &res, err);

done:

    loyaltyctl_cadences_free(o, &vm, cads);

    return rc;
}


static const char  loyaltyctl_usage_delete[] =
    "usage: loyaltyctl -s DIR delete member ID\n"
    "Deletes a member as DELETE .../members/ID does: with them go their\n"
    "ledger, share codes and their click counts, touches and due entries,\n"
    "and the referrals index on both sides; the members they referred no\n"
    "longer have a referrer.  A member made again under the id inherits\n"
    "nothing.  Exit 1 if there is no such member.\n";


int
loyaltyctl_delete(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc;
    MDB_txn         *txn;
    loyalty_store_t  st;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_delete)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 3 || strcmp(argv[1], "member") != 0) {
        return loyaltyctl_usage(loyaltyctl_usage_delete);
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyalty_store_grow(&st, (size_t) 1 << 20);
    if (rc == 0) {
        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
    }

    if (rc == 0) {
        rc = loyalty_admin_delete_member(&st, txn, argv[2], strlen(argv[2]));

        if (rc == 0) {
            rc = mdb_txn_commit(txn);

        } else {
            mdb_txn_abort(txn);
        }
    }

    loyalty_store_close(&st);

    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%s\"\n", argv[2]);
        return LOYALTYCTL_DATA;
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: delete: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    printf("deleted member %s\n", argv[2]);

    return LOYALTYCTL_OK;
}


/* what apply prints, and its exit code */
static int
loyaltyctl_applied(const char *file, int rc, loyalty_batch_t *res,
    const char *err)
{
    json_t  *out;

    if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT) {
        out = json_object();
        if (out) {
            json_object_set_new(out, "events", json_integer(res->events));
            json_object_set(out, "errors", res->errors);
        }

        loyalty_batch_free(res);
        fprintf(stderr, "loyaltyctl: %s: %s; nothing applied\n", file,
                err);

        return loyaltyctl_print_json(out) == LOYALTYCTL_OK
               ? LOYALTYCTL_DATA : LOYALTYCTL_STORE;
    }

    loyalty_batch_free(res);

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: apply: %s; nothing applied\n",
                rc == MDB_MAP_FULL || err[0] == '\0' ? mdb_strerror(rc)
                                                    : err);
        return LOYALTYCTL_STORE;
    }

    out = json_object();
    if (out) {
        json_object_set_new(out, "events", json_integer(res->events));
        json_object_set_new(out, "applied", json_integer(res->applied));
        json_object_set_new(out, "duplicates",
                            json_integer(res->duplicates));
    }

    return loyaltyctl_print_json(out);
}


/* argv: "rules" | "ledger" MEMBER [--limit N] | "referrals" MEMBER */
int
loyaltyctl_get_events(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc;
    char            *end;
    size_t           len;
    json_t          *obj;
    MDB_txn         *txn;
    const char      *what, *id;
    unsigned long    limit;
    loyalty_store_t  st;

    what = argv[1];
    id = argc > 2 ? argv[2] : "";
    len = strlen(id);
    limit = 0;

    if (argc == 5 && strcmp(what, "ledger") == 0
        && strcmp(argv[3], "--limit") == 0)
    {
        limit = strtoul(argv[4], &end, 10);
        if (*end != '\0' || argv[4][0] == '\0' || argv[4][0] == '-'
            || limit == 0)
        {
            fprintf(stderr, "loyaltyctl: invalid --limit \"%s\"\n",
                    argv[4]);
            return LOYALTYCTL_USAGE;
        }

        argc = 3;
    }

    if (argc != (strcmp(what, "rules") == 0 ? 2 : 3)) {
        return -1;
    }

    if (argc == 3 && !loyalty_valid_id(id, len)) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid member id\n", id);
        return LOYALTYCTL_DATA;
    }

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        loyalty_store_close(&st);
        return LOYALTYCTL_STORE;
    }

    if (strcmp(what, "rules") == 0) {
        obj = loyalty_rules_get(&st, txn, &rc);

    } else if (strcmp(what, "ledger") == 0) {
        obj = loyalty_admin_ledger(&st, txn, id, len, limit);

    } else {
        obj = loyalty_admin_referrals(&st, txn, id, len);
    }

    if (obj) {
        rc = loyaltyctl_print_json(obj);

    } else if (argc == 2 && rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: the store has no rules\n");
        rc = LOYALTYCTL_DATA;

    } else if (argc == 2) {
        fprintf(stderr, "loyaltyctl: rules: %s\n", mdb_strerror(rc));
        rc = LOYALTYCTL_STORE;

    } else if ((obj = loyalty_admin_get_member(&st, txn, id, len)) == NULL)
    {
        fprintf(stderr, "loyaltyctl: no member \"%s\"\n", id);
        rc = LOYALTYCTL_DATA;

    } else {
        json_decref(obj);
        fprintf(stderr, "loyaltyctl: %s of \"%s\" cannot be read\n", what,
                id);
        rc = LOYALTYCTL_STORE;
    }

    mdb_txn_abort(txn);
    loyalty_store_close(&st);

    return rc;
}
