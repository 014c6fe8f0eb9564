/*
 * nginx-loyalty: GET .../stats on the admin location, the conversion
 * counters (core/loyalty_stats.h) as JSON:
 *
 *   ?by=code|campaign|referrer|day&from=DAY&to=DAY&top=N&offset=N
 *       &sort=COUNTER|key
 *   ?by=funnel&from=DAY&to=DAY     members by stage and lifecycle, and
 *                                  the moves between stages per day
 *   ?by=cadence&from=DAY           touches per cadence and staff member
 *
 * The admin handler has checked the token (read scope) and routed the
 * request here.  The arguments are checked in the event loop; the
 * question, which reads a record per name and day of its range (tens of
 * milliseconds over a busy month), is the store writer's read: in nginx's
 * thread pool, in a read transaction of its own, so that no visitor's
 * request waits for it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_stats.h"


typedef struct {
    ngx_http_loyalty_write_t      read;
    loyalty_stats_query_t         q;
    int64_t                       now;

    /* the outcome, made in the thread */
    json_t                       *doc;
} ngx_http_loyalty_stats_t;


static const char *ngx_http_loyalty_stats_args(ngx_http_request_t *r,
    loyalty_stats_args_t *args);
static int ngx_http_loyalty_stats_count(ngx_http_loyalty_write_t *w,
    MDB_txn *txn);
static void ngx_http_loyalty_stats_counted(ngx_http_loyalty_write_t *w);
static ngx_int_t ngx_http_loyalty_stats_answer(ngx_http_request_t *r,
    ngx_http_loyalty_stats_t *s);
static void ngx_http_loyalty_stats_cleanup(void *data);


/* a long read: in the thread pool, never committed nor published */
static const ngx_http_loyalty_writer_t  ngx_http_loyalty_stats_reader = {
    NGX_HTTP_LOYALTY_WRITE_ADMIN, ngx_http_loyalty_stats_count, NULL,
    ngx_http_loyalty_stats_counted, NULL
};


ngx_int_t
ngx_http_loyalty_stats_handler(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store)
{
    char                           err[LOYALTY_ERRLEN];
    MDB_txn                       *txn;
    const char                    *why;
    ngx_pool_cleanup_t            *cln;
    loyalty_stats_args_t           args;
    ngx_http_loyalty_stats_t      *s;
    ngx_http_loyalty_main_conf_t  *lmcf;

    s = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_stats_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (s == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a document the thread made for a request gone meanwhile */
    cln->handler = ngx_http_loyalty_stats_cleanup;
    cln->data = s;

    s->now = ngx_time();

    why = ngx_http_loyalty_stats_args(r, &args);
    if (why != NULL) {
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_BAD_REQUEST, why);
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /* the shop's today (loyalty_timezone) */
    if (loyalty_stats_query_parse(&args, lmcf->tz, s->now, &s->q, err,
                                  sizeof(err))
        != 0)
    {
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    /* takes up a replaced or grown store before the thread uses it */
    txn = ngx_http_loyalty_store_begin(store, r->connection->log);
    if (txn == NULL) {
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "the store cannot be read now");
    }

    ngx_http_loyalty_store_end(store);

    ngx_http_loyalty_write_request(&s->read, &ngx_http_loyalty_stats_reader,
                                   store, s, r);
    s->read.read = 1;

    if (ngx_http_loyalty_write_post(&s->read) == NGX_DONE) {
        return ngx_http_loyalty_posted(r, NGX_DONE);
    }

    return ngx_http_loyalty_stats_answer(r, s);
}


/* in the thread pool: the question, in the writer's read transaction */
static int
ngx_http_loyalty_stats_count(ngx_http_loyalty_write_t *w, MDB_txn *txn)
{
    ngx_http_loyalty_stats_t *s = w->data;

    json_decref(s->doc);
    s->doc = NULL;

    return loyalty_stats_query(&w->store->st, txn, &s->q, s->now, &s->doc);
}


/* back in the event loop */
static void
ngx_http_loyalty_stats_counted(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_finish(w->request,
                            ngx_http_loyalty_stats_answer(w->request,
                                                          w->data));
}


static ngx_int_t
ngx_http_loyalty_stats_answer(ngx_http_request_t *r,
    ngx_http_loyalty_stats_t *s)
{
    int      rc;
    json_t  *doc;

    rc = s->read.rc;

    /* the pool full, the store grown meanwhile: the client retries */
    if (rc == NGX_EAGAIN || rc == MDB_MAP_RESIZED || rc == MDB_READERS_FULL)
    {
        if (ngx_http_loyalty_add_header(r, "Retry-After", (u_char *) "1", 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            rc == NGX_EAGAIN
                                            ? "too busy, try again"
                                            : "the store cannot be read now");
    }

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "loyalty_store \"%s\": cannot count the stats: %s",
                      s->read.store->path,
                      ngx_http_loyalty_write_strerror(&s->read));
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "the stats cannot be read");
    }

    doc = s->doc;
    s->doc = NULL;

    return ngx_http_loyalty_admin_json(r, NGX_HTTP_OK, doc);
}


static void
ngx_http_loyalty_stats_cleanup(void *data)
{
    ngx_http_loyalty_stats_t *s = data;

    json_decref(s->doc);
    s->doc = NULL;
}


/*
 * The query's arguments, as they come: anything escaped is no day, no
 * number and no name, and is refused by the core's checks.  An argument
 * given twice is refused rather than one of them picked, and one given
 * empty rather than taken for the default.  NULL, or what is wrong.
 */
static const char *
ngx_http_loyalty_stats_args(ngx_http_request_t *r,
    loyalty_stats_args_t *args)
{
    u_char         *p, *end, *amp, *eq;
    size_t          len;
    ngx_uint_t      i, seen;
    loyalty_str_t  *v;

    static const struct {
        const char  *name;
        size_t       off;
    }  names[] = {
        { "by", offsetof(loyalty_stats_args_t, by) },
        { "from", offsetof(loyalty_stats_args_t, from) },
        { "to", offsetof(loyalty_stats_args_t, to) },
        { "sort", offsetof(loyalty_stats_args_t, sort) },
        { "top", offsetof(loyalty_stats_args_t, top) },
        { "offset", offsetof(loyalty_stats_args_t, offset) }
    };

    ngx_memzero(args, sizeof(loyalty_stats_args_t));
    seen = 0;

    if (r->args.len == 0) {
        return NULL;
    }

    end = r->args.data + r->args.len;

    for (p = r->args.data; p < end; p = amp + 1) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');
        len = (eq ? eq : amp) - p;

        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (ngx_strlen(names[i].name) != len
                || ngx_strncmp(p, names[i].name, len) != 0)
            {
                continue;
            }

            if (seen & (1 << i)) {
                return "an argument is given twice";
            }

            if (eq == NULL || eq + 1 == amp) {
                return "an argument is given without a value";
            }

            seen |= 1 << i;

            v = (loyalty_str_t *) ((u_char *) args + names[i].off);
            v->data = (const char *) eq + 1;
            v->len = (size_t) (amp - eq - 1);
        }
    }

    return NULL;
}

