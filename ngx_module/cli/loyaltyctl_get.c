/*
 * loyaltyctl get: a record of the store, or what events left there (the
 * rules, a member's ledger and downline), as one line of JSON.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_json.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyaltyctl.h"


static int loyaltyctl_get_events(const loyaltyctl_opts_t *o, int argc,
    char **argv);


static int
loyaltyctl_print_price(loyalty_store_t *st, MDB_txn *txn, const char *sku,
    const loyalty_price_t *p, const char *tier)
{
    int                rc, i, clamped;
    json_t            *obj;
    int64_t            price;
    loyalty_tierset_t  ts;

    if (tier == NULL) {
        return loyaltyctl_print_json(loyalty_price_to_json(sku, strlen(sku),
                                                           p));
    }

    rc = loyalty_tierset_load(txn, st->dbi[LOYALTY_DB_TIERS], &ts);
    if (rc != 0) {
        return loyaltyctl_store_failed("tiers", rc);
    }

    price = p->retail;

    if (strcmp(tier, "public") != 0) {
        i = loyalty_tierset_find(&ts, tier, strlen(tier));
        if (i < 0) {
            fprintf(stderr, "loyaltyctl: no tier \"%s\"\n", tier);
            return LOYALTYCTL_DATA;
        }

        price = loyalty_price_guard(p, &ts, (size_t) i,
                                    loyalty_price_raw(p, &ts.tiers[i]),
                                    &clamped);
    }

    obj = json_object();
    if (obj) {
        json_object_set_new(obj, "sku", json_string(sku));
        json_object_set_new(obj, "tier", json_string(tier));
        json_object_set_new(obj, "retail", json_integer(p->retail));
        json_object_set_new(obj, "price", json_integer(price));
        json_object_set_new(obj, "saved", json_integer(p->retail - price));
    }

    return loyaltyctl_print_json(obj);
}


/* what get looks up: the word, its database, what its key is called */
static const struct {
    const char  *name;
    int          db;
    const char  *what;
} loyaltyctl_get_kinds[] = {
    { "member", LOYALTY_DB_MEMBERS, "member id" },
    { "tier",   LOYALTY_DB_TIERS,   "tier name" },
    { "price",  LOYALTY_DB_PRICES,  "sku" },
    { "code",   LOYALTY_DB_CODES,   "code" },
    { NULL, 0, NULL }
};


/* the key of arg in db (a code in code[]): 1, or 0 if it is not valid */
static int
loyaltyctl_get_key(int db, const char *arg, MDB_val *key, char *code)
{
    long  n;

    key->mv_data = (void *) arg;
    key->mv_size = strlen(arg);

    if (db == LOYALTY_DB_CODES) {
        /* codes are keyed in upper case */
        n = loyalty_code_normalize(arg, key->mv_size, code);
        key->mv_data = code;
        key->mv_size = n >= 0 ? (size_t) n : 0;
        return n >= 0;
    }

    if (db == LOYALTY_DB_TIERS) {
        return loyalty_valid_tier_name(arg, key->mv_size);
    }

    return loyalty_valid_id(arg, key->mv_size);
}


/* the record found: an exit code, or -1 if it does not decode */
static int
loyaltyctl_get_print(loyalty_store_t *st, MDB_txn *txn, int db,
    const char *arg, MDB_val *key, MDB_val *val, const char *tier)
{
    loyalty_tier_t    t;
    loyalty_code_t    c;
    loyalty_price_t   price;
    loyalty_member_t  m;

    if (db == LOYALTY_DB_PRICES) {
        return (loyalty_price_decode(val->mv_data, val->mv_size, &price)
                == 0)
               ? loyaltyctl_print_price(st, txn, arg, &price, tier) : -1;
    }

    if (db == LOYALTY_DB_CODES) {
        return (loyalty_code_decode(val->mv_data, val->mv_size, &c) == 0)
               ? loyaltyctl_print_json(loyalty_code_to_json(key->mv_data,
                                                            key->mv_size,
                                                            &c))
               : -1;
    }

    if (db == LOYALTY_DB_MEMBERS) {
        return (loyalty_member_decode(val->mv_data, val->mv_size, &m) == 0)
               ? loyaltyctl_print_json(loyalty_member_to_json(arg,
                                                              key->mv_size,
                                                              &m))
               : -1;
    }

    return (loyalty_tier_decode(val->mv_data, val->mv_size, &t) == 0)
           ? loyaltyctl_print_json(loyalty_tier_to_json(arg, key->mv_size,
                                                        &t))
           : -1;
}


int
loyaltyctl_get(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               rc, i;
    char              code[LOYALTY_CODE_MAX];
    MDB_txn          *txn;
    MDB_val           key, val;
    const char       *tier;
    loyalty_store_t   st;

    tier = NULL;

    if (o->lua && argc >= 2 && strcmp(argv[1], "price") == 0) {
        fprintf(stderr, "loyaltyctl: get price does not run the --lua "
                "script: its dry run is \"loyaltyctl --lua FILE price SKU "
                "--tier NAME\"\n");
        return LOYALTYCTL_USAGE;
    }

    if (argc == 5 && strcmp(argv[1], "price") == 0
        && strcmp(argv[3], "--tier") == 0)
    {
        tier = argv[4];
        argc = 3;
    }

    if (argc >= 2 && (strcmp(argv[1], "rules") == 0
                      || strcmp(argv[1], "ledger") == 0
                      || strcmp(argv[1], "referrals") == 0))
    {
        rc = loyaltyctl_get_events(o, argc, argv);
        return rc == -1 ? loyaltyctl_usage(o->usage) : rc;
    }

    if (argc != 3) {
        return loyaltyctl_usage(o->usage);
    }

    for (i = 0; loyaltyctl_get_kinds[i].name; i++) {
        if (strcmp(argv[1], loyaltyctl_get_kinds[i].name) == 0) {
            break;
        }
    }

    if (loyaltyctl_get_kinds[i].name == NULL) {
        return loyaltyctl_usage(o->usage);
    }

    if (!loyaltyctl_get_key(loyaltyctl_get_kinds[i].db, argv[2], &key, code))
    {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid %s\n", argv[2],
                loyaltyctl_get_kinds[i].what);
        return LOYALTYCTL_DATA;
    }

    rc = loyaltyctl_read_begin(o, "get", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = mdb_get(txn, st.dbi[loyaltyctl_get_kinds[i].db], &key, &val);

    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no %s \"%s\"\n", argv[1], argv[2]);
        rc = LOYALTYCTL_DATA;

    } else if (rc != 0) {
        rc = loyaltyctl_store_failed("get", rc);

    } else {
        rc = loyaltyctl_get_print(&st, txn, loyaltyctl_get_kinds[i].db,
                                  argv[2], &key, &val, tier);
    }

    if (rc == -1) {
        fprintf(stderr, "loyaltyctl: %s \"%s\" does not decode\n", argv[1],
                argv[2]);
        rc = LOYALTYCTL_DATA;
    }

    loyaltyctl_read_end(&st, txn);

    return rc;
}


/* argv: "rules" | "ledger" MEMBER [--limit N] | "referrals" MEMBER */
static int
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

    rc = loyaltyctl_read_begin(o, "get", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
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
        rc = loyaltyctl_store_failed("rules", rc);

    } else if ((obj = loyalty_admin_get_member(&st, txn, id, len)) == NULL)
    {
        rc = loyaltyctl_absent("member", id, len);

    } else {
        json_decref(obj);
        fprintf(stderr, "loyaltyctl: %s of \"%s\" cannot be read\n", what,
                id);
        rc = LOYALTYCTL_STORE;
    }

    loyaltyctl_read_end(&st, txn);

    return rc;
}
