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


/* a sweep in steps: its cadences and time, and where it stands */
typedef struct {
    loyalty_cadences_t  *cads;
    int64_t              now;
    loyalty_sweep_t      sw;
} loyaltyctl_sweep_t;


static int
loyaltyctl_sweep_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    int                  rc;
    loyaltyctl_sweep_t  *s;

    s = w->data;

    rc = loyalty_sweep_step(st, txn, s->cads, s->now, LOYALTY_SWEEP_CHUNK,
                            &s->sw, w->err, sizeof(w->err));
    if (rc != 0) {
        return rc;
    }

    return s->sw.done ? 0 : LOYALTYCTL_WRITE_MORE;
}


int
loyaltyctl_sweep(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  c, rc;
    json_t              *out;
    loyalty_lua_t        vm;
    struct timespec      t0, t1;
    loyaltyctl_sweep_t   sw;
    loyaltyctl_write_t   w;

    static struct option  opts[] = {
        { "now",  required_argument, NULL, 'n' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&sw, 0, sizeof(loyaltyctl_sweep_t));
    sw.now = (int64_t) time(NULL);
    optind = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (loyaltyctl_time(optarg, &sw.now) != 0) {
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

    rc = loyaltyctl_cadences(o, &vm, &sw.cads);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    /* a step at a time, each committed: nginx's writers go on between */
    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "sweep";
    w.regrow = LOYALTYCTL_SWEEP_GROW;
    w.step = loyaltyctl_sweep_step;
    w.data = &sw;
    w.state = &sw.sw;
    w.state_size = sizeof(loyalty_sweep_t);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = loyaltyctl_write(o, &w);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    if (rc != LOYALTYCTL_OK) {
        goto done;
    }

    out = json_object();
    if (out) {
        json_object_set_new(out, "members", json_integer(sw.sw.members));
        json_object_set_new(out, "scheduled", json_integer(sw.sw.scheduled));
        json_object_set_new(out, "declined", json_integer(sw.sw.declined));
        json_object_set_new(out, "failed", json_integer(sw.sw.failed));
        json_object_set_new(out, "rewards", json_integer(sw.sw.rewards));
        json_object_set_new(out, "seconds",
                            json_real((double) (t1.tv_sec - t0.tv_sec)
                                      + (t1.tv_nsec - t0.tv_nsec) / 1e9));
    }

    rc = loyaltyctl_print_json(out);

done:

    loyaltyctl_cadences_free(o, &vm, sw.cads);

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

    rc = loyaltyctl_read_begin(o, "due", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    list = json_array();
    rc = (list == NULL) ? ENOMEM
                        : loyalty_due_list(&st, txn, until, limit, list);

    loyaltyctl_read_end(&st, txn);

    if (rc != 0) {
        json_decref(list);
        return loyaltyctl_store_failed("due", rc);
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


/* an acknowledgement: the admin API's body, and its answer */
typedef struct {
    json_t  *body;
    json_t  *res;
} loyaltyctl_ack_t;


static int
loyaltyctl_ack_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    loyaltyctl_ack_t  *a;

    a = w->data;

    json_decref(a->res);
    a->res = NULL;

    return loyalty_due_ack_json(st, txn, a->body, (int64_t) time(NULL),
                                &a->res, w->err, sizeof(w->err));
}


int
loyaltyctl_ack(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                 c, rc;
    json_t             *body, *res;
    const char         *by, *status;
    loyaltyctl_ack_t    a;
    loyaltyctl_write_t  w;

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

    a.body = body;
    a.res = NULL;

    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "ack";
    w.step = loyaltyctl_ack_step;
    w.data = &a;

    rc = loyaltyctl_write(o, &w);
    json_decref(body);

    if (rc != LOYALTYCTL_OK) {
        json_decref(a.res);
        return rc;
    }

    res = a.res;

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

            since *= LOYALTY_DAY;
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

    rc = loyaltyctl_read_begin(o, "cadence-stats", &st, &txn);

    /* the shop's day (--tz), as stats --by cadence --from */
    if (rc == LOYALTYCTL_OK && since != LOYALTY_TIME_MIN) {
        since = loyalty_tz_utc(st.tz, since);
    }

    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    out = NULL;
    rc = loyalty_due_stats(&st, txn, since, &out);

    loyaltyctl_read_end(&st, txn);

    if (rc != 0) {
        return loyaltyctl_store_failed("cadence-stats", rc);
    }

    if (since != LOYALTY_TIME_MIN) {
        loyalty_format_rfc3339(since, buf);
        json_object_set_new(out, "since", json_string(buf));
    }

    return loyaltyctl_print_json(out);
}
