/*
 * loyaltyctl stats: the conversion counters, as the admin API's
 * GET .../stats answers them (the same core question), in JSON or CSV.
 */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "loyalty_member.h"
#include "loyalty_stats.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_OPT_CSV      256


static const char  loyaltyctl_usage_stats_by[] =
    "usage: loyaltyctl -s DIR stats --by code|campaign|referrer|day\n"
    "           [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--top N]\n"
    "           [--sort COUNTER|key] [--offset N] [--csv]\n"
    "       loyaltyctl -s DIR stats --by funnel|cadence [--from DAY]\n"
    "           [--to DAY]\n"
    "Prints what sharing brought per code, campaign, referrer or day over\n"
    "a range of at most 366 days (the 30 days to today by default): clicks\n"
    "(all, unique, bots), attributed visitors, signups, first orders,\n"
    "orders, revenue (net of refunds), refunds and the amount refunded,\n"
    "and points paid to referrers at level 1 and 2.  Rows are sorted by\n"
    "revenue (by day: by day), the first N from --offset (default 20;\n"
    "by day: every day), as one line of JSON, or with --csv a header and\n"
    "one line per row.  --by funnel gives members by stage and lifecycle\n"
    "and the moves between stages per day; --by cadence the touches due\n"
    "from --from on, as cadence-stats.  Days are the shop's, in --tz\n"
    "(UTC without it; give the zone nginx's loyalty_timezone has).\n"
    "Exit 2 on a bad argument.\n";


/* one CSV field: the values are ids, codes and numbers, never quoted */
static void
loyaltyctl_csv_field(json_t *row, const char *name, int first)
{
    json_t  *v;

    v = json_object_get(row, name);

    if (!first) {
        putchar(',');
    }

    if (json_is_string(v)) {
        fputs(json_string_value(v), stdout);

    } else if (json_is_integer(v)) {
        printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
}


static int
loyaltyctl_stats_csv(const loyalty_stats_query_t *q, json_t *doc)
{
    int      i;
    size_t   j;
    json_t  *rows, *row;

    rows = json_object_get(doc, "rows");

    fputs(q->by == LOYALTY_STATS_BY_DAY ? "day" : loyalty_stats_by_names[q->by],
          stdout);

    if (q->by == LOYALTY_STATS_BY_CODE) {
        fputs(",member,campaign", stdout);
    }

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        printf(",%s", loyalty_stats_counter_names[i]);
    }

    putchar('\n');

    json_array_foreach(rows, j, row) {
        loyaltyctl_csv_field(row, "key", 1);

        if (q->by == LOYALTY_STATS_BY_CODE) {
            loyaltyctl_csv_field(row, "member", 0);
            loyaltyctl_csv_field(row, "campaign", 0);
        }

        for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
            loyaltyctl_csv_field(row, loyalty_stats_counter_names[i], 0);
        }

        putchar('\n');
    }

    json_decref(doc);

    return fflush(stdout) == 0 ? LOYALTYCTL_OK : LOYALTYCTL_DATA;
}


/* the options into the question's arguments: -1 on a usage error */
static int
loyaltyctl_stats_args(int argc, char **argv, loyalty_stats_args_t *a,
    int *csv)
{
    int             c;
    const char     *s;
    loyalty_str_t  *v;

    static struct option  opts[] = {
        { "by",     required_argument, NULL, 'b' },
        { "from",   required_argument, NULL, 'f' },
        { "to",     required_argument, NULL, 't' },
        { "top",    required_argument, NULL, 'n' },
        { "sort",   required_argument, NULL, 'o' },
        { "offset", required_argument, NULL, 'k' },
        { "csv",    no_argument,       NULL, LOYALTYCTL_OPT_CSV },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(a, 0, sizeof(loyalty_stats_args_t));
    *csv = 0;
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        s = optarg;

        switch (c) {
        case 'b': v = &a->by; break;
        case 'f': v = &a->from; break;
        case 't': v = &a->to; break;
        case 'n': v = &a->top; break;
        case 'o': v = &a->sort; break;
        case 'k': v = &a->offset; break;
        case LOYALTYCTL_OPT_CSV: *csv = 1; continue;
        case 'h': return 1;
        default: return -1;
        }

        v->data = s;
        v->len = strlen(s);

        /* an empty value would be taken for the default */
        if (*s == '\0') {
            fprintf(stderr, "loyaltyctl: stats: an empty value\n");
            return -1;
        }
    }

    return optind == argc ? 0 : -1;
}


/* a query of the counters, and its answer */
typedef struct {
    loyalty_stats_query_t  q;
    json_t                *doc;
} loyaltyctl_stats_t;


static int
loyaltyctl_stats_read(loyalty_store_t *st, MDB_txn *txn, void *data)
{
    loyaltyctl_stats_t  *s = data;

    return loyalty_stats_query(st, txn, &s->q, time(NULL), &s->doc);
}


int
loyaltyctl_stats(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                    rc, csv;
    char                   err[LOYALTY_ERRLEN];
    loyaltyctl_stats_t     s;
    loyalty_stats_args_t   args;
    const loyalty_tz_t    *tz;

    rc = loyaltyctl_stats_args(argc, argv, &args, &csv);
    if (rc == 1) {
        fputs(loyaltyctl_usage_stats_by, stdout);
        return LOYALTYCTL_OK;
    }

    if (rc != 0) {
        return loyaltyctl_usage(loyaltyctl_usage_stats_by);
    }

    rc = loyaltyctl_tz(o, &tz);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (loyalty_stats_query_parse(&args, tz, time(NULL), &s.q, err,
                                  sizeof(err))
        != 0)
    {
        fprintf(stderr, "loyaltyctl: stats: %s\n", err);
        return LOYALTYCTL_USAGE;
    }

    if (csv && s.q.by > LOYALTY_STATS_BY_DAY) {
        fprintf(stderr, "loyaltyctl: stats: --csv is for --by code, "
                "campaign, referrer or day\n");
        return LOYALTYCTL_USAGE;
    }

    s.doc = NULL;

    rc = loyaltyctl_read(o, "stats", loyaltyctl_stats_read, &s);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (csv) {
        return loyaltyctl_stats_csv(&s.q, s.doc);
    }

    return loyaltyctl_print_json(s.doc);
}


/* a stats key as text: "c/2026-11-01/CODE", or a delta's "z/SEQ" */
static void
loyaltyctl_stats_label(const MDB_val *key, char *buf, size_t size)
{
    char            day[LOYALTY_DAY_LEN + 1];
    const uint8_t  *k = key->mv_data;

    if (key->mv_size == LOYALTY_STATS_PENDING_KEY
        && k[0] == LOYALTY_STATS_KIND_PENDING)
    {
        snprintf(buf, size, "z/%llu",
                 (unsigned long long) loyalty_be_get(k + 1));
        return;
    }

    if (key->mv_size < 5) {
        snprintf(buf, size, "(a key of %zu bytes)", key->mv_size);
        return;
    }

    loyalty_stats_format_day(loyalty_be32_get(k + 1), day);
    snprintf(buf, size, "%c/%s/%.*s", k[0], day,
             (int) (key->mv_size - 5 > 64 ? 64 : key->mv_size - 5),
             (const char *) k + 5);
}


static const char *
loyaltyctl_stats_check(const MDB_val *key, const MDB_val *val)
{
    int64_t         c[LOYALTY_STATS_COUNTERS];
    const uint8_t  *k = key->mv_data, *v = val->mv_data;

    if (key->mv_size > 0 && k[0] == LOYALTY_STATS_KIND_PENDING) {
        return (key->mv_size == LOYALTY_STATS_PENDING_KEY
                && loyalty_stats_pend_check(v, val->mv_size) == 0)
               ? NULL : "pending delta does not decode";
    }

    if (key->mv_size < 5 || key->mv_size > LOYALTY_STATS_KEY_MAX
        || strchr("cprdmCPR", k[0]) == NULL || k[0] == '\0')
    {
        return "not a stats key";
    }

    if ((k[0] == LOYALTY_STATS_KIND_DAY) != (key->mv_size == 5)) {
        return "a name where none belongs, or none where one does";
    }

    if (k[0] == LOYALTY_STATS_KIND_MOVE) {
        return (val->mv_size == LOYALTY_STATS_MOVE_LEN
                && v[0] == LOYALTY_STATS_VERSION
                && memchr(k + 5, '>', key->mv_size - 5) != NULL)
               ? NULL : "move record does not decode";
    }

    if (k[0] >= 'A' && k[0] <= 'Z') {
        if (loyalty_be32_get(k + 1) % LOYALTY_STATS_BLOCK_DAYS != 0) {
            return "block key not at a block's first day";
        }

        return loyalty_stats_block_check(v, val->mv_size) == 0
               ? NULL : "block record does not decode";
    }

    return loyalty_stats_decode(v, val->mv_size, c) == 0
           ? NULL : "record does not decode";
}


int
loyaltyctl_verify_stats(loyalty_store_t *st, MDB_txn *txn, size_t *problems)
{
    int               rc;
    char              label[128];
    MDB_val           key, val, lv, mval;
    MDB_cursor       *cur;
    const char       *what;
    loyalty_attrib_t  a;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        what = loyaltyctl_stats_check(&key, &val);

        if (what) {
            loyaltyctl_stats_label(&key, label, sizeof(label));
            lv.mv_data = label;
            lv.mv_size = strlen(label);
            loyaltyctl_problem(problems, "stats", &lv, what);
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_ATTRIB], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_attrib_decode(val.mv_data, val.mv_size, &a) != 0) {
            loyaltyctl_problem(problems, "attributions", &key,
                               "record does not decode");

        } else if (loyalty_member_find(txn, st, key.mv_data, key.mv_size,
                                       &mval)
                   == MDB_NOTFOUND)
        {
            loyaltyctl_problem(problems, "attributions", &key,
                               "attribution of no member");
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}
