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


/* a sweep in steps: its cadences and time, and where it stands */
typedef struct {
    loyalty_cadences_t  *cads;
    int64_t              now;
    loyalty_sweep_t      sw;
} loyaltyctl_sweep_t;


static int
loyaltyctl_sweep_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                  rc;
    loyalty_sweep_t      before;
    loyaltyctl_sweep_t  *s;

    s = w->data;
    before = s->sw;

    rc = loyalty_sweep_step(&w->st, txn, s->cads, s->now, LOYALTY_SWEEP_CHUNK,
                            &s->sw, w->err, sizeof(w->err));
    if (rc != 0) {
        return rc;
    }

    /* the members it rewarded retire from the workers' caches, no more */
    rc = loyalty_sweep_seal(&w->st, txn, &before, &s->sw, w->err,
                            sizeof(w->err));
    if (rc != 0) {
        return rc;
    }

    return s->sw.done ? 0 : LOYALTYCTL_WRITE_MORE;
}


int
loyaltyctl_sweep(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    json_t              *out;
    loyalty_lua_t        vm;
    struct timespec      t0, t1;
    loyaltyctl_sweep_t   sw;
    loyaltyctl_write_t   w;

    loyaltyctl_option_t  opts[] = {
        { "now", 0, 1, loyaltyctl_time, &sw.now, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    memset(&sw, 0, sizeof(loyaltyctl_sweep_t));

    rc = loyaltyctl_options(o, argc, argv, opts, 0, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
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


/* due --limit: digits, the first not 0 */
static int
loyaltyctl_due_limit(const char *arg, void *dest)
{
    char  *end;

    *(unsigned long *) dest = strtoul(arg, &end, 10);

    return (*end != '\0' || arg[0] < '1' || arg[0] > '9') ? -1 : 0;
}


/* due's list of touches, and what it takes */
typedef struct {
    int64_t         until;
    unsigned long   limit;
    json_t         *list;
} loyaltyctl_due_t;


static int
loyaltyctl_due_read(loyalty_store_t *st, MDB_txn *txn, void *data)
{
    loyaltyctl_due_t  *d = data;

    d->list = json_array();
    if (d->list == NULL) {
        return ENOMEM;
    }

    return loyalty_due_list(st, txn, d->until, d->limit, d->list);
}


int
loyaltyctl_due(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    size_t               i;
    json_t              *e;
    loyaltyctl_due_t     d;

    loyaltyctl_option_t  opts[] = {
        { "until", 0, 1, loyaltyctl_time, &d.until, NULL },
        { "limit", 0, 1, loyaltyctl_due_limit, &d.limit, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    d.limit = LOYALTY_DUE_LIMIT_MAX;
    d.list = NULL;

    rc = loyaltyctl_options(o, argc, argv, opts, 0, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyaltyctl_read(o, "due", loyaltyctl_due_read, &d);

    json_array_foreach(d.list, i, e) {
        if (rc == LOYALTYCTL_OK) {
            rc = loyaltyctl_print_json(json_incref(e));
        }
    }

    json_decref(d.list);

    return rc;
}


/* an acknowledgement: the admin API's body, and its answer */
typedef struct {
    json_t  *body;
    json_t  *res;
} loyaltyctl_ack_t;


static int
loyaltyctl_ack_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    loyaltyctl_ack_t  *a;

    a = w->data;

    json_decref(a->res);
    a->res = NULL;

    return loyalty_due_ack_json(&w->st, txn, a->body, (int64_t) time(NULL),
                                &a->res, w->err, sizeof(w->err));
}


int
loyaltyctl_ack(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    json_t              *body, *res;
    const char          *by, *status;
    loyaltyctl_ack_t     a;
    loyaltyctl_write_t   w;

    loyaltyctl_option_t  opts[] = {
        { "by", 0, 1, loyaltyctl_set_string, &by, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    by = NULL;

    rc = loyaltyctl_options(o, argc, argv, opts, 2, 2);
    if (rc != LOYALTYCTL_OK) {
        return rc;
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


/* cadence-stats --since: the day's first second */
static int
loyaltyctl_since_time(const char *arg, void *dest)
{
    if (loyaltyctl_parse_day(arg, dest) != 0) {
        return -1;
    }

    *(int64_t *) dest *= LOYALTY_DAY;
    return 0;
}


/* cadence-stats: the counts since a day of the shop's (--tz) */
typedef struct {
    int64_t   since;
    json_t   *out;
} loyaltyctl_cadence_stats_t;


static int
loyaltyctl_cadence_stats_read(loyalty_store_t *st, MDB_txn *txn,
    void *data)
{
    loyaltyctl_cadence_stats_t  *c = data;

    /* the shop's day (--tz), as stats --by cadence --from */
    if (c->since != LOYALTY_TIME_MIN) {
        c->since = loyalty_tz_utc(st->tz, c->since);
    }

    c->out = NULL;

    return loyalty_due_stats(st, txn, c->since, &c->out);
}


int
loyaltyctl_cadence_stats(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                         rc;
    char                        buf[LOYALTY_RFC3339_LEN + 1];
    loyaltyctl_cadence_stats_t  c;

    loyaltyctl_option_t  opts[] = {
        { "since", 0, 1, loyaltyctl_since_time, &c.since, ": YYYY-MM-DD" },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    c.since = LOYALTY_TIME_MIN;

    rc = loyaltyctl_options(o, argc, argv, opts, 0, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyaltyctl_read(o, "cadence-stats", loyaltyctl_cadence_stats_read,
                         &c);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (c.since != LOYALTY_TIME_MIN) {
        loyalty_format_rfc3339(c.since, buf);
        json_object_set_new(c.out, "since", json_string(buf));
    }

    return loyaltyctl_print_json(c.out);
}
