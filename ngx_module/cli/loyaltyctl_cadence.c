/*
 * loyaltyctl: reward cadences: sweep, due, ack and cadence-stats.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_cadence.h"
#include "loyalty_due.h"
#include "loyalty_lua_cadence.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_SWEEP_GROW    (64 * 1024 * 1024)


static const char  loyaltyctl_usage_sweep[] =
    "usage: loyaltyctl -s DIR --lua FILE sweep [--now TIME]\n"
    "Runs the cadences that time triggers (birthday, inactive, calendar,\n"
    "yearly_top) of the script over every member, as loyalty_cadence_sweep\n"
    "does in nginx, and credits the rewards of touches that fell due.\n"
    "TIME is RFC 3339 (default: now).  Never schedules a touch twice.\n"
    "Prints {\"members\":N,\"scheduled\":N,\"declined\":N,\"failed\":N,\n"
    "\"rewards\":N,\"seconds\":S}; a condition that fails is reported on\n"
    "stderr and skipped.  Without --lua, only credits the rewards.\n";

static const char  loyaltyctl_usage_due[] =
    "usage: loyaltyctl -s DIR due [--until TIME] [--limit N]\n"
    "Lists the touches not yet acknowledged that are due by TIME (default:\n"
    "now), oldest first, as JSON Lines, leased or not, without claiming\n"
    "them.  --limit defaults to 1000.\n";

static const char  loyaltyctl_usage_ack[] =
    "usage: loyaltyctl -s DIR ack ID done|skipped|failed [--by STAFF]\n"
    "Acknowledges a touch as the admin API's POST .../due/ack does.\n"
    "Prints {\"id\":ID,\"status\":\"acked\"} (\"already\" when it was\n"
    "acknowledged so before).  Exit 1 for an unknown touch or one\n"
    "acknowledged with another outcome.\n";

static const char  loyaltyctl_usage_stats[] =
    "usage: loyaltyctl -s DIR cadence-stats [--since YYYY-MM-DD]\n"
    "Counts the touches due since the day (default: all) per cadence\n"
    "(scheduled, pending, done, skipped, failed, points rewarded) and per\n"
    "member of staff who acknowledged them (done, skipped, failed).\n";


/* --now, --until: RFC 3339; -1 when malformed */
static int
loyaltyctl_time(const char *arg, int64_t *t)
{
    return loyalty_parse_rfc3339(arg, strlen(arg), t);
}


int
loyaltyctl_cadences(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t **cads)
{
    int   rc;
    char  err[LOYALTY_ERRLEN];

    *cads = calloc(1, sizeof(loyalty_cadences_t));
    if (*cads == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    if (o->lua == NULL) {
        return LOYALTYCTL_OK;
    }

    rc = loyaltyctl_lua_open(o, vm);

    if (rc == LOYALTYCTL_OK
        && loyalty_lua_cadences(vm, *cads, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "loyaltyctl: --lua \"%s\": %s\n", o->lua, err);
        loyalty_lua_close(vm);
        rc = LOYALTYCTL_DATA;
    }

    if (rc != LOYALTYCTL_OK) {
        free(*cads);

    } else {
        /* the shop's days, as nginx's loyalty_timezone */
        (void) loyaltyctl_tz(o, &(*cads)->tz);
    }

    return rc;
}


void
loyaltyctl_cadences_free(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t *cads)
{
    if (o->lua) {
        loyalty_lua_close(vm);
    }

    free(cads);
}


int
loyaltyctl_sweep(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  c, rc;
    char                 err[LOYALTY_ERRLEN];
    json_t              *out;
    int64_t              now;
    MDB_txn             *txn;
    loyalty_lua_t        vm;
    loyalty_sweep_t      sw, before;
    loyalty_store_t      st;
    struct timespec      t0, t1;
    loyalty_cadences_t  *cads;

    static struct option  opts[] = {
        { "now",  required_argument, NULL, 'n' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    now = (int64_t) time(NULL);
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (loyaltyctl_time(optarg, &now) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --now \"%s\"\n",
                        optarg);
                return LOYALTYCTL_USAGE;
            }

            break;

        case 'h':
            fputs(loyaltyctl_usage_sweep, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_sweep);
        }
    }

    if (optind != argc) {
        return loyaltyctl_usage(loyaltyctl_usage_sweep);
    }

    rc = loyaltyctl_cadences(o, &vm, &cads);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        goto done;
    }

    memset(&sw, 0, sizeof(loyalty_sweep_t));
    err[0] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &t0);

    /* a step at a time, each committed: nginx's writers go on between */
    while (!sw.done) {
        before = sw;

        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
        if (rc != 0) {
            break;
        }

        rc = loyalty_sweep_step(&st, txn, cads, now, LOYALTY_SWEEP_CHUNK,
                                &sw, err, sizeof(err));

        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }

        if (rc == MDB_MAP_FULL) {
            sw = before;
            rc = loyalty_store_grow(&st, LOYALTYCTL_SWEEP_GROW);
        }

        if (rc != 0) {
            break;
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    loyalty_store_close(&st);

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: sweep: %s\n",
                err[0] ? err : mdb_strerror(rc));
        rc = LOYALTYCTL_STORE;
        goto done;
    }

    out = json_object();
    if (out) {
        json_object_set_new(out, "members", json_integer(sw.members));
        json_object_set_new(out, "scheduled", json_integer(sw.scheduled));
        json_object_set_new(out, "declined", json_integer(sw.declined));
        json_object_set_new(out, "failed", json_integer(sw.failed));
        json_object_set_new(out, "rewards", json_integer(sw.rewards));
        json_object_set_new(out, "seconds",
                            json_real((double) (t1.tv_sec - t0.tv_sec)
                                      + (t1.tv_nsec - t0.tv_nsec) / 1e9));
    }

    rc = loyaltyctl_print_json(out);

done:

    loyaltyctl_cadences_free(o, &vm, cads);

    return rc;
}


int
loyaltyctl_due(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               c, rc;
    char             *end;
    size_t            i;
    json_t           *list, *e;
    int64_t           until;
    MDB_txn          *txn;
    unsigned long     limit;
    loyalty_store_t   st;

    static struct option  opts[] = {
        { "until", required_argument, NULL, 'u' },
        { "limit", required_argument, NULL, 'l' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    until = (int64_t) time(NULL);
    limit = LOYALTY_DUE_LIMIT_MAX;
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (loyaltyctl_time(optarg, &until) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --until \"%s\"\n",
                        optarg);
                return LOYALTYCTL_USAGE;
            }

            break;

        case 'l':
            limit = strtoul(optarg, &end, 10);
            if (*end != '\0' || optarg[0] < '1' || optarg[0] > '9') {
                fprintf(stderr, "loyaltyctl: invalid --limit \"%s\"\n",
                        optarg);
                return LOYALTYCTL_USAGE;
            }

            break;

        case 'h':
            fputs(loyaltyctl_usage_due, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_due);
        }
    }

    if (optind != argc) {
        return loyaltyctl_usage(loyaltyctl_usage_due);
    }

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    list = json_array();
    rc = (list == NULL) ? ENOMEM
                        : mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    if (rc == 0) {
        rc = loyalty_due_list(&st, txn, until, limit, list);
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc != 0) {
        json_decref(list);
        fprintf(stderr, "loyaltyctl: due: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    rc = LOYALTYCTL_OK;

    json_array_foreach(list, i, e) {
        if (rc == LOYALTYCTL_OK) {
            rc = loyaltyctl_print_json(json_incref(e));
        }
    }

    json_decref(list);

    return rc;
}


int
loyaltyctl_ack(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               c, rc;
    json_t           *body, *res;
    MDB_txn          *txn;
    const char       *by, *status;
    loyalty_store_t   st;
    char              err[LOYALTY_ERRLEN];

    static struct option  opts[] = {
        { "by",   required_argument, NULL, 'b' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    by = NULL;
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            by = optarg;
            break;

        case 'h':
            fputs(loyaltyctl_usage_ack, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_ack);
        }
    }

    if (argc - optind != 2) {
        return loyaltyctl_usage(loyaltyctl_usage_ack);
    }

    /* the same checks as the admin API's, from the same JSON */
    body = json_pack("{ssss}", "id", argv[optind], "outcome",
                     argv[optind + 1]);
    if (body && by) {
        json_object_set_new(body, "by", json_string(by));
    }

    if (body == NULL) {
        fprintf(stderr, "loyaltyctl: ack: arguments must be UTF-8\n");
        return LOYALTYCTL_USAGE;
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        json_decref(body);
        return rc;
    }

    res = NULL;
    rc = mdb_txn_begin(st.env, NULL, 0, &txn);

    if (rc == 0) {
        rc = loyalty_due_ack_json(&st, txn, body, (int64_t) time(NULL),
                                  &res, err, sizeof(err));

        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
    }

    loyalty_store_close(&st);
    json_decref(body);

    if (rc != 0) {
        json_decref(res);
        fprintf(stderr, "loyaltyctl: ack: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    status = json_string_value(json_object_get(res, "status"));

    if (strcmp(status, "acked") != 0 && strcmp(status, "already") != 0) {
        fprintf(stderr, "loyaltyctl: ack: %s\n",
                json_string_value(json_object_get(res, "error")));
        loyaltyctl_print_json(res);
        return LOYALTYCTL_DATA;
    }

    return loyaltyctl_print_json(res);
}


int
loyaltyctl_cadence_stats(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               c, rc;
    char              buf[LOYALTY_RFC3339_LEN + 1];
    json_t           *out;
    int64_t           since;
    MDB_txn          *txn;
    loyalty_store_t   st;

    static struct option  opts[] = {
        { "since", required_argument, NULL, 's' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    since = LOYALTY_TIME_MIN;
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (loyaltyctl_parse_day(optarg, &since) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --since \"%s\": "
                        "YYYY-MM-DD\n", optarg);
                return LOYALTYCTL_USAGE;
            }

            since *= 86400;
            break;

        case 'h':
            fputs(loyaltyctl_usage_stats, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_stats);
        }
    }

    if (optind != argc) {
        return loyaltyctl_usage(loyaltyctl_usage_stats);
    }

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    out = NULL;
    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    if (rc == 0) {
        rc = loyalty_due_stats(&st, txn, since, &out);
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: cadence-stats: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    if (since != LOYALTY_TIME_MIN) {
        loyalty_format_rfc3339(since, buf);
        json_object_set_new(out, "since", json_string(buf));
    }

    return loyaltyctl_print_json(out);
}
