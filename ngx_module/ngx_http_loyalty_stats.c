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
 * request here.  A question reads the worker's read transaction in the
 * event loop like the admin API's other reads: the counters are summed
 * from one cursor range per day, with no scan of members or events
 * (by=funnel's census of members aside).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_stats.h"


static const char *ngx_http_loyalty_stats_args(ngx_http_request_t *r,
    loyalty_stats_args_t *args);
static ngx_int_t ngx_http_loyalty_stats_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);


ngx_int_t
ngx_http_loyalty_stats_handler(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store)
{
    int                     rc;
    char                    err[LOYALTY_ERRLEN];
    json_t                 *doc;
    const char             *why;
    MDB_txn                *txn;
    loyalty_stats_args_t    args;
    loyalty_stats_query_t   q;

    why = ngx_http_loyalty_stats_args(r, &args);
    if (why != NULL) {
        return ngx_http_loyalty_stats_error(r, NGX_HTTP_BAD_REQUEST, why);
    }

    if (loyalty_stats_query_parse(&args, ngx_time(), &q, err, sizeof(err))
        != 0)
    {
        return ngx_http_loyalty_stats_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    txn = ngx_http_loyalty_store_begin(store, r->connection->log);
    if (txn == NULL) {
        return ngx_http_loyalty_stats_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "the store cannot be read now");
    }

    doc = NULL;
    rc = loyalty_stats_query(&store->st, txn, &q, ngx_time(), &doc);

    ngx_http_loyalty_store_end(store);

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "loyalty_store \"%s\": cannot count the stats: %s",
                      store->path, mdb_strerror(rc));
        return ngx_http_loyalty_stats_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "the stats cannot be read");
    }

    return ngx_http_loyalty_admin_json(r, NGX_HTTP_OK, doc);
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
    u_char      *p, *end, *amp, *eq;
    size_t       len;
    ngx_uint_t   i, seen;

    static const struct {
        const char  *name;
        size_t       off;
        size_t       len;
    }  names[] = {
        { "by", offsetof(loyalty_stats_args_t, by),
          offsetof(loyalty_stats_args_t, by_len) },
        { "from", offsetof(loyalty_stats_args_t, from),
          offsetof(loyalty_stats_args_t, from_len) },
        { "to", offsetof(loyalty_stats_args_t, to),
          offsetof(loyalty_stats_args_t, to_len) },
        { "sort", offsetof(loyalty_stats_args_t, sort),
          offsetof(loyalty_stats_args_t, sort_len) },
        { "top", offsetof(loyalty_stats_args_t, top),
          offsetof(loyalty_stats_args_t, top_len) },
        { "offset", offsetof(loyalty_stats_args_t, offset),
          offsetof(loyalty_stats_args_t, offset_len) }
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

            *(const char **) ((u_char *) args + names[i].off) =
                (const char *) eq + 1;
            *(size_t *) ((u_char *) args + names[i].len) =
                (size_t) (amp - eq - 1);
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_loyalty_stats_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    json_t  *doc;

    doc = json_pack("{s:s}", "error", message);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_json(r, status, doc);
}
