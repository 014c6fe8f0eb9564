/*
 * loyaltyctl: the command-line tool for nginx-loyalty stores.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "loyalty_code.h"
#include "loyalty_json.h"
#include "loyalty_ledger.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_sign.h"
#include "loyaltyctl.h"

/* LOYALTY_VERSION, from debian/changelog */
#include "loyalty_version.h"


static const char  loyaltyctl_usage_main[] =
    "usage: loyaltyctl [-s DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  init                      create the store (idempotent)\n"
    "  import members|tiers|prices|codes FILE [--hosts HOST[,HOST...]]\n"
    "                            import JSON Lines (\"-\" for stdin)\n"
    "  import rules FILE         import the rules document\n"
    "  apply FILE                apply events (a JSON array or JSON Lines);\n"
    "                            with --lua, schedule their cadences\n"
    "  get member ID             print a member as JSON\n"
    "  get tier NAME             print a tier as JSON\n"
    "  get price SKU [--tier T]  print a price, or a tier's price, as JSON\n"
    "  get code CODE             print a share code as JSON\n"
    "  get rules                 print the rules document\n"
    "  get ledger ID [--limit N] print a member's points ledger as JSON\n"
    "  get referrals ID          print a member's downline as JSON\n"
    "  mint-code MEMBER [--campaign C] [--target T] [--expires DURATION]\n"
    "            [--max-clicks N] [--hosts HOST[,HOST...]]\n"
    "                            mint a member's share code and print it\n"
    "  revoke-code CODE          revoke a share code\n"
    "  delete member ID          delete a member, their ledger, codes,\n"
    "                            clicks and touches\n"
    "  clicks [CODE] [--since YYYY-MM-DD]\n"
    "                            print click counts per code and day as "
    "JSON\n"
    "  stat                      entries per database, schema, map use\n"
    "  verify                    check every record and reference\n"
    "  sign-member ID --keys FILE [--ttl DURATION]\n"
    "                            print a signed member cookie value\n"
    "  lua-check                 load the --lua script, print its hooks\n"
    "  sweep [--now TIME]        run the --lua script's time-triggered\n"
    "                            cadences; credit rewards that fell due\n"
    "  due [--until TIME] [--limit N]\n"
    "                            list touches due, as JSON Lines\n"
    "  ack ID done|skipped|failed [--by STAFF]\n"
    "                            acknowledge a touch\n"
    "  cadence-stats [--since YYYY-MM-DD]\n"
    "                            count touches per cadence and staff\n"
    "  stats --by code|campaign|referrer|day [--from DAY] [--to DAY]\n"
    "        [--top N] [--csv]   conversions per code, campaign, referrer\n"
    "                            or day; --by funnel|cadence\n"
    "\n"
    "options:\n"
    "  -s, --store DIR           the store directory (default: "
    "$LOYALTY_STORE)\n"
    "      --lua FILE            the operator's Lua script, as nginx's\n"
    "                            loyalty_lua_file\n"
    "      --lua-budget N        VM instructions per call (default 100000)\n"
    "      --lua-time TIME       wall time per call, ms or s for units\n"
    "                            (default 50ms)\n"
    "      --lua-memory SIZE     bytes per VM, k or m for units (default "
    "16m)\n"
    "  -h, --help                this help; COMMAND --help for a command's\n"
    "      --version             print the name and version\n"
    "\n"
    "exit status: 0 success, 1 rejected input, absent record or problems\n"
    "found, 2 usage error, 3 the store cannot be opened or written.\n";

static const char  loyaltyctl_usage_init[] =
    "usage: loyaltyctl -s DIR init\n"
    "Creates the store directory and its databases.  On an existing store,\n"
    "adds any database it lacks and leaves the rest as it is.  Exit 3 if\n"
    "it cannot be created or has another schema.\n";

static const char  loyaltyctl_usage_get[] =
    "usage: loyaltyctl -s DIR get member ID\n"
    "       loyaltyctl -s DIR get tier NAME\n"
    "       loyaltyctl -s DIR get price SKU [--tier TIER]\n"
    "       loyaltyctl -s DIR get code CODE\n"
    "       loyaltyctl -s DIR get rules\n"
    "       loyaltyctl -s DIR get ledger ID [--limit N]\n"
    "       loyaltyctl -s DIR get referrals ID\n"
    "Prints the record as one line of JSON.  Exit 1 if it is absent.\n"
    "With --tier, prints the price that tier pays, after the privilege\n"
    "guard; the tier \"public\" pays retail.  Codes are looked up without\n"
    "regard to case and printed in upper case.  A ledger is the member's\n"
    "balance and points entries, oldest first (with --limit, the last N);\n"
    "referrals are the members the member referred (level1) and those\n"
    "they referred (level2, with the level-1 member they came via).\n";

static const char  loyaltyctl_usage_stat[] =
    "usage: loyaltyctl -s DIR stat\n"
    "Prints the schema version, creation time, map size and use, and the\n"
    "entries in each database (codes: one per share code; clicks: one per\n"
    "code and day with clicks).\n";

static const char  loyaltyctl_usage_verify[] =
    "usage: loyaltyctl -s DIR verify\n"
    "Decodes every record and resolves every reference (a member's tier\n"
    "and referrer, a price's tiers, a code's member), and checks that\n"
    "every price keeps the privilege guard and every member's points are\n"
    "the sum of their ledger.  Lists each problem on stdout; exit 1 if\n"
    "any.\n";

static const char  loyaltyctl_usage_sign[] =
    "usage: loyaltyctl sign-member ID --keys FILE [--ttl DURATION]\n"
    "Prints a member cookie value signed with the first key in FILE.\n"
    "DURATION uses nginx's units (30m, 12h, 30d); the default is 30d.\n";


int
loyaltyctl_usage(const char *usage)
{
    fputs(usage, stderr);
    return LOYALTYCTL_USAGE;
}


int
loyaltyctl_wants_help(int argc, char **argv, const char *usage)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
    }

    return 0;
}


int
loyaltyctl_open(const loyaltyctl_opts_t *o, loyalty_store_t *st,
    unsigned flags)
{
    char  err[LOYALTY_ERRLEN];

    if (o->store == NULL) {
        fprintf(stderr, "loyaltyctl: no store: use -s DIR or set "
                "LOYALTY_STORE\n");
        return LOYALTYCTL_USAGE;
    }

    if (loyalty_store_open(st, o->store, flags, err, sizeof(err)) != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", err);
        return LOYALTYCTL_STORE;
    }

    return LOYALTYCTL_OK;
}


static int
loyaltyctl_init(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc;
    loyalty_store_t  st;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_init)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 1) {
        return loyaltyctl_usage(loyaltyctl_usage_init);
    }

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_CREATE);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_store_close(&st);
    return LOYALTYCTL_OK;
}


int
loyaltyctl_print_json(json_t *obj)
{
    int  rc;

    if (obj == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    rc = json_dumpf(obj, stdout, JSON_COMPACT);
    json_decref(obj);
    fputc('\n', stdout);

    return rc == 0 ? LOYALTYCTL_OK : LOYALTYCTL_STORE;
}


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
        fprintf(stderr, "loyaltyctl: tiers: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
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


static int
loyaltyctl_get(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               rc, db, valid;
    char              code[LOYALTY_CODE_MAX];
    long              n;
    MDB_txn          *txn;
    MDB_val           key, val;
    const char       *tier, *what;
    loyalty_tier_t    t;
    loyalty_code_t    c;
    loyalty_price_t   price;
    loyalty_store_t   st;
    loyalty_member_t  m;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_get)) {
        return LOYALTYCTL_OK;
    }

    tier = NULL;

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
        return rc == -1 ? loyaltyctl_usage(loyaltyctl_usage_get) : rc;
    }

    if (argc != 3) {
        return loyaltyctl_usage(loyaltyctl_usage_get);
    }

    if (strcmp(argv[1], "member") == 0) {
        db = LOYALTY_DB_MEMBERS;
        what = "member id";

    } else if (strcmp(argv[1], "tier") == 0) {
        db = LOYALTY_DB_TIERS;
        what = "tier name";

    } else if (strcmp(argv[1], "price") == 0) {
        db = LOYALTY_DB_PRICES;
        what = "sku";

    } else if (strcmp(argv[1], "code") == 0) {
        db = LOYALTY_DB_CODES;
        what = "code";

    } else {
        return loyaltyctl_usage(loyaltyctl_usage_get);
    }

    key.mv_data = argv[2];
    key.mv_size = strlen(argv[2]);

    if (db == LOYALTY_DB_CODES) {
        /* codes are keyed in upper case */
        n = loyalty_code_normalize(argv[2], key.mv_size, code);
        valid = (n >= 0);
        key.mv_data = code;
        key.mv_size = valid ? (size_t) n : 0;

    } else if (db == LOYALTY_DB_TIERS) {
        valid = loyalty_valid_tier_name(argv[2], key.mv_size);

    } else {
        valid = loyalty_valid_id(argv[2], key.mv_size);
    }

    if (!valid) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid %s\n", argv[2],
                what);
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

    rc = mdb_get(txn, st.dbi[db], &key, &val);

    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no %s \"%s\"\n", argv[1], argv[2]);
        rc = LOYALTYCTL_DATA;

    } else if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        rc = LOYALTYCTL_STORE;

    } else if (db == LOYALTY_DB_PRICES) {
        rc = (loyalty_price_decode(val.mv_data, val.mv_size, &price) == 0)
             ? loyaltyctl_print_price(&st, txn, argv[2], &price, tier)
             : -1;

    } else if (db == LOYALTY_DB_CODES) {
        rc = (loyalty_code_decode(val.mv_data, val.mv_size, &c) == 0)
             ? loyaltyctl_print_json(loyalty_code_to_json(code, key.mv_size,
                                                          &c))
             : -1;

    } else if (db == LOYALTY_DB_MEMBERS) {
        rc = (loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0)
             ? loyaltyctl_print_json(loyalty_member_to_json(argv[2],
                                                            key.mv_size, &m))
             : -1;

    } else {
        rc = (loyalty_tier_decode(val.mv_data, val.mv_size, &t) == 0)
             ? loyaltyctl_print_json(loyalty_tier_to_json(argv[2],
                                                          key.mv_size, &t))
             : -1;
    }

    if (rc == -1) {
        fprintf(stderr, "loyaltyctl: %s \"%s\" does not decode\n", argv[1],
                argv[2]);
        rc = LOYALTYCTL_DATA;
    }

    mdb_txn_abort(txn);
    loyalty_store_close(&st);

    return rc;
}


static int
loyaltyctl_stat(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc, i;
    char             created_at[LOYALTY_RFC3339_LEN + 1];
    size_t           used;
    int64_t          created;
    uint32_t         version;
    MDB_txn         *txn;
    MDB_stat         ms;
    MDB_envinfo      info;
    loyalty_store_t  st;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_stat)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 1) {
        return loyaltyctl_usage(loyaltyctl_usage_stat);
    }

    txn = NULL;

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = loyalty_store_meta(&st, txn, &version, &created);
    }
    if (rc == 0) {
        rc = mdb_env_info(st.env, &info);
    }
    if (rc == 0) {
        rc = mdb_env_stat(st.env, &ms);
    }

    if (rc != 0) {
        goto failed;
    }

    used = (info.me_last_pgno + 1) * (size_t) ms.ms_psize;
    loyalty_format_rfc3339(created, created_at);

    printf("store           %s\n", o->store);
    printf("schema_version  %u\n", version);
    printf("created_at      %s\n", created_at);
    printf("map_size        %zu\n", info.me_mapsize);
    printf("map_used        %zu (%.1f%%)\n", used,
           100.0 * (double) used / (double) info.me_mapsize);
    printf("readers         %u of %u\n", info.me_numreaders,
           info.me_maxreaders);

    for (i = 0; i < LOYALTY_DB_COUNT; i++) {
        if (st.dbi[i] == 0) {
            continue;       /* optional, absent from an older store */
        }

        rc = mdb_stat(txn, st.dbi[i], &ms);
        if (rc != 0) {
            goto failed;
        }

        printf("db %-12s %zu\n", loyalty_store_dbs[i], ms.ms_entries);
    }

    mdb_txn_abort(txn);
    loyalty_store_close(&st);

    return LOYALTYCTL_OK;

failed:

    fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
    if (txn) {
        mdb_txn_abort(txn);
    }
    loyalty_store_close(&st);

    return LOYALTYCTL_STORE;
}


void
loyaltyctl_problem(size_t *n, const char *db, MDB_val *key, const char *what)
{
    (*n)++;
    printf("%s/%.*s: %s\n", db, (int) (key->mv_size > 80 ? 80 : key->mv_size),
           (const char *) key->mv_data, what);
}


static void
loyaltyctl_verify_price(const loyalty_tierset_t *ts, MDB_val *key,
    MDB_val *val, size_t *problems)
{
    char                      what[LOYALTY_ERRLEN];
    size_t                    i;
    loyalty_price_t           p;
    loyalty_price_override_t  ov;

    if (!loyalty_valid_id(key->mv_data, key->mv_size)) {
        loyaltyctl_problem(problems, "prices", key, "invalid sku");
        return;
    }

    if (loyalty_price_decode(val->mv_data, val->mv_size, &p) != 0) {
        loyaltyctl_problem(problems, "prices", key, "record does not decode");
        return;
    }

    for (i = 0; i < p.noverrides; i++) {
        loyalty_price_override_at(&p, i, &ov);

        if (loyalty_tierset_find(ts, ov.tier, ov.tier_len) < 0) {
            snprintf(what, sizeof(what), "unknown tier \"%.*s\"",
                     (int) ov.tier_len, ov.tier);
            loyaltyctl_problem(problems, "prices", key, what);
        }
    }

    if (loyalty_price_check(&p, ts, what, sizeof(what)) != 0) {
        loyaltyctl_problem(problems, "prices", key, what);
    }
}


static int
loyaltyctl_verify_db(loyalty_store_t *st, MDB_txn *txn, int db,
    const loyalty_tierset_t *ts, size_t *problems)
{
    int                rc;
    char               what[LOYALTY_ERRLEN];
    size_t             entries;
    int64_t            sum;
    MDB_val            key, val, ref, tmp;
    MDB_cursor        *cur;
    loyalty_tier_t     tier;
    loyalty_member_t   m;
    const char        *name;

    name = loyalty_store_dbs[db];

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {

        if (db == LOYALTY_DB_PRICES) {
            loyaltyctl_verify_price(ts, &key, &val, problems);
            continue;
        }

        if (db == LOYALTY_DB_TIERS) {
            if (!loyalty_valid_tier_name(key.mv_data, key.mv_size)) {
                loyaltyctl_problem(problems, name, &key, "invalid name");

            } else if (loyalty_tier_decode(val.mv_data, val.mv_size, &tier))
            {
                loyaltyctl_problem(problems, name, &key,
                                   "record does not decode");
            }

            continue;
        }

        if (!loyalty_valid_id(key.mv_data, key.mv_size)) {
            loyaltyctl_problem(problems, name, &key, "invalid id");
            continue;
        }

        if (loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0) {
            loyaltyctl_problem(problems, name, &key,
                               "record does not decode");
            continue;
        }

        /* a member's points are the sum of their ledger */
        rc = loyalty_ledger_sum(st, txn, key.mv_data, key.mv_size, &sum,
                                &entries);
        if (rc != 0) {
            break;
        }

        if (sum != m.points) {
            snprintf(what, sizeof(what), "points %lld, but the ledger's %zu "
                     "entries sum to %lld", (long long) m.points, entries,
                     (long long) sum);
            loyaltyctl_problem(problems, name, &key, what);
        }

        ref.mv_data = (void *) m.tier;
        ref.mv_size = m.tier_len;

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_TIERS], &ref, &tmp);
        if (rc == MDB_NOTFOUND) {
            snprintf(what, sizeof(what), "unknown tier \"%.*s\"",
                     (int) m.tier_len, m.tier);
            loyaltyctl_problem(problems, name, &key, what);

        } else if (rc != 0) {
            break;
        }

        if (m.referrer_len == 0) {
            continue;
        }

        ref.mv_data = (void *) m.referrer;
        ref.mv_size = m.referrer_len;

        if (ref.mv_size == key.mv_size
            && memcmp(ref.mv_data, key.mv_data, key.mv_size) == 0)
        {
            loyaltyctl_problem(problems, name, &key, "refers themselves");
            continue;
        }

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &ref, &tmp);
        if (rc == MDB_NOTFOUND) {
            snprintf(what, sizeof(what), "unknown referrer \"%.*s\"",
                     (int) m.referrer_len, m.referrer);
            loyaltyctl_problem(problems, name, &key, what);

        } else if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/*
 * Entries keyed by an id of another database, up to a zero byte (the
 * ledger by member): each id whose record is gone is one problem,
 * however many entries it has.  (Click counts of a code that is gone are
 * consistent: a code may be counted before it is imported.)
 */
static int
loyaltyctl_verify_orphans(loyalty_store_t *st, MDB_txn *txn, int db,
    int owner, const char *what, size_t *problems)
{
    int          rc;
    size_t       len, last_len;
    uint8_t      last[LOYALTY_ID_MAX];
    MDB_val      key, val, id, tmp;
    MDB_cursor  *cur;
    const void  *zero;

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    last_len = 0;

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        zero = memchr(key.mv_data, '\0', key.mv_size);
        if (zero == NULL) {
            continue;
        }

        len = (size_t) ((const uint8_t *) zero - (uint8_t *) key.mv_data);

        if (len == 0 || len > sizeof(last)
            || (len == last_len && memcmp(last, key.mv_data, len) == 0))
        {
            continue;
        }

        memcpy(last, key.mv_data, len);
        last_len = len;

        id.mv_data = last;
        id.mv_size = len;

        rc = mdb_get(txn, st->dbi[owner], &id, &tmp);
        if (rc == MDB_NOTFOUND) {
            loyaltyctl_problem(problems, loyalty_store_dbs[db], &id, what);

        } else if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


static int
loyaltyctl_verify(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                rc;
    size_t             problems;
    MDB_txn           *txn;
    loyalty_store_t    st;
    loyalty_tierset_t  ts;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_verify)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 1) {
        return loyaltyctl_usage(loyaltyctl_usage_verify);
    }

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    problems = 0;

    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = loyaltyctl_verify_db(&st, txn, LOYALTY_DB_TIERS, NULL,
                                  &problems);

        /*
         * Prices are checked against the tier set the module would use; a
         * damaged tier empties it, and was reported above.
         */
        if (rc == 0) {
            rc = loyalty_tierset_load(txn, st.dbi[LOYALTY_DB_TIERS], &ts);
            if (rc == MDB_CORRUPTED) {
                ts.n = 0;
                rc = 0;
            }
        }

        if (rc == 0) {
            rc = loyaltyctl_verify_db(&st, txn, LOYALTY_DB_MEMBERS, NULL,
                                      &problems);
        }

        if (rc == 0) {
            rc = loyaltyctl_verify_db(&st, txn, LOYALTY_DB_PRICES, &ts,
                                      &problems);
        }

        if (rc == 0) {
            rc = loyaltyctl_verify_codes(&st, txn, &problems);
        }

        if (rc == 0) {
            rc = loyaltyctl_verify_stats(&st, txn, &problems);
        }

        /* what a deleted member leaves would be inherited */
        if (rc == 0) {
            rc = loyaltyctl_verify_orphans(&st, txn, LOYALTY_DB_LEDGER,
                                           LOYALTY_DB_MEMBERS,
                                           "ledger entries of no member",
                                           &problems);
        }

        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    if (problems) {
        fprintf(stderr, "loyaltyctl: %zu problem%s found\n", problems,
                problems == 1 ? "" : "s");
        return LOYALTYCTL_DATA;
    }

    fprintf(stderr, "loyaltyctl: store is consistent\n");
    return LOYALTYCTL_OK;
}


static int
loyaltyctl_sign_member(int argc, char **argv)
{
    int                 c;
    char                err[LOYALTY_ERRLEN], out[LOYALTY_COOKIE_MAX + 1];
    long                n;
    int64_t             ttl;
    const char         *keys, *id;
    loyalty_keyring_t  *kr;

    static const struct option  longopts[] = {
        { "keys", required_argument, NULL, 'k' },
        { "ttl",  required_argument, NULL, 't' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    keys = NULL;
    ttl = 30 * 86400;

    /* 0 restarts glibc's getopt, which then lets options follow the ID */
    optind = 0;

    while ((c = getopt_long(argc, argv, "k:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            keys = optarg;
            break;

        case 't':
            ttl = loyalty_parse_duration(optarg, strlen(optarg));
            if (ttl <= 0 || ttl > LOYALTY_EXPIRES_MAX - time(NULL)) {
                fprintf(stderr, "loyaltyctl: invalid --ttl \"%s\"\n",
                        optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case 'h':
            fputs(loyaltyctl_usage_sign, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_sign);
        }
    }

    if (optind + 1 != argc || keys == NULL) {
        return loyaltyctl_usage(loyaltyctl_usage_sign);
    }

    id = argv[optind];

    if (!loyalty_valid_id(id, strlen(id))) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid member id\n", id);
        return LOYALTYCTL_DATA;
    }

    kr = loyalty_keyring_load(keys, err, sizeof(err));
    if (kr == NULL) {
        fprintf(stderr, "loyaltyctl: keys: %s\n", err);
        return LOYALTYCTL_DATA;
    }

    n = loyalty_member_cookie_sign(kr, id, strlen(id),
                                   (int64_t) time(NULL) + ttl, out);
    loyalty_keyring_free(kr);

    if (n < 0) {
        fprintf(stderr, "loyaltyctl: cannot sign\n");
        return LOYALTYCTL_DATA;
    }

    printf("%s\n", out);
    return LOYALTYCTL_OK;
}


int
main(int argc, char **argv)
{
    int                c;
    const char        *cmd;
    loyaltyctl_opts_t  o;

    enum {
        LOYALTYCTL_OPT_LUA = 256,
        LOYALTYCTL_OPT_LUA_BUDGET,
        LOYALTYCTL_OPT_LUA_TIME,
        LOYALTYCTL_OPT_LUA_MEMORY,
        LOYALTYCTL_OPT_VERSION
    };

    static const struct option  longopts[] = {
        { "store",      required_argument, NULL, 's' },
        { "lua",        required_argument, NULL, LOYALTYCTL_OPT_LUA },
        { "lua-budget", required_argument, NULL, LOYALTYCTL_OPT_LUA_BUDGET },
        { "lua-time",   required_argument, NULL, LOYALTYCTL_OPT_LUA_TIME },
        { "lua-memory", required_argument, NULL, LOYALTYCTL_OPT_LUA_MEMORY },
        { "help",       no_argument,       NULL, 'h' },
        { "version",    no_argument,       NULL, LOYALTYCTL_OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };

    o.store = getenv("LOYALTY_STORE");
    o.lua = NULL;
    o.lua_budget = LOYALTYCTL_LUA_BUDGET;
    o.lua_time = LOYALTYCTL_LUA_TIME;
    o.lua_memory = LOYALTYCTL_LUA_MEMORY;

    /* "+": options after the command belong to the command */
    while ((c = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.store = optarg;
            break;

        case LOYALTYCTL_OPT_LUA:
            o.lua = optarg;
            break;

        case LOYALTYCTL_OPT_LUA_BUDGET:
            if (loyaltyctl_lua_budget(optarg, &o.lua_budget) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-budget \"%s\": "
                        "1000 to 100000000 instructions\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_LUA_TIME:
            if (loyaltyctl_lua_time(optarg, &o.lua_time) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-time \"%s\": "
                        "1ms to 60s\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_LUA_MEMORY:
            if (loyaltyctl_lua_memory(optarg, &o.lua_memory) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-memory \"%s\": "
                        "at least 1m\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case 'h':
            fputs(loyaltyctl_usage_main, stdout);
            return LOYALTYCTL_OK;

        case LOYALTYCTL_OPT_VERSION:
            puts("loyaltyctl (nginx-loyalty) " LOYALTY_VERSION);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_main);
        }
    }

    if (optind == argc) {
        return loyaltyctl_usage(loyaltyctl_usage_main);
    }

    cmd = argv[optind];
    argc -= optind;
    argv += optind;

    if (strcmp(cmd, "init") == 0) {
        return loyaltyctl_init(&o, argc, argv);
    }

    if (strcmp(cmd, "import") == 0) {
        return loyaltyctl_import(&o, argc, argv);
    }

    if (strcmp(cmd, "get") == 0) {
        return loyaltyctl_get(&o, argc, argv);
    }

    if (strcmp(cmd, "apply") == 0) {
        return loyaltyctl_apply(&o, argc, argv);
    }

    if (strcmp(cmd, "stat") == 0) {
        return loyaltyctl_stat(&o, argc, argv);
    }

    if (strcmp(cmd, "verify") == 0) {
        return loyaltyctl_verify(&o, argc, argv);
    }

    if (strcmp(cmd, "sign-member") == 0) {
        return loyaltyctl_sign_member(argc, argv);
    }

    if (strcmp(cmd, "mint-code") == 0) {
        return loyaltyctl_mint_code(&o, argc, argv);
    }

    if (strcmp(cmd, "delete") == 0) {
        return loyaltyctl_delete(&o, argc, argv);
    }

    if (strcmp(cmd, "revoke-code") == 0) {
        return loyaltyctl_revoke_code(&o, argc, argv);
    }

    if (strcmp(cmd, "clicks") == 0) {
        return loyaltyctl_clicks(&o, argc, argv);
    }

    if (strcmp(cmd, "lua-check") == 0) {
        return loyaltyctl_lua_check(&o, argc, argv);
    }

    if (strcmp(cmd, "sweep") == 0) {
        return loyaltyctl_sweep(&o, argc, argv);
    }

    if (strcmp(cmd, "due") == 0) {
        return loyaltyctl_due(&o, argc, argv);
    }

    if (strcmp(cmd, "ack") == 0) {
        return loyaltyctl_ack(&o, argc, argv);
    }

    if (strcmp(cmd, "cadence-stats") == 0) {
        return loyaltyctl_cadence_stats(&o, argc, argv);
    }

    if (strcmp(cmd, "stats") == 0) {
        return loyaltyctl_stats(&o, argc, argv);
    }

    fprintf(stderr, "loyaltyctl: unknown command \"%s\"\n", cmd);
    return loyaltyctl_usage(loyaltyctl_usage_main);
}
