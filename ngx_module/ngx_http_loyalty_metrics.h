/*
 * nginx-loyalty: the counters behind loyalty_metrics, and how the other
 * files count (ngx_http_loyalty_metrics.c says the design).
 *
 * Included by ngx_http_loyalty_module.h once the enums it counts by are
 * declared.  An event is one line at the place it happens:
 *
 *     ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_HIT);
 *
 * from the event loop only (the slot is the worker's own, not locked).
 */

#ifndef _NGX_HTTP_LOYALTY_METRICS_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the sizes of the request path's enums that metrics are indexed by */
#define NGX_HTTP_LOYALTY_ID_OUTCOMES   (NGX_HTTP_LOYALTY_ID_UNKNOWN + 1)
#define NGX_HTTP_LOYALTY_REF_STATUSES  (NGX_HTTP_LOYALTY_REF_REFUSED + 1)


/* what an answer was, by its HTTP status: a label's values */
typedef enum {
    NGX_HTTP_LOYALTY_RESULT_OK = 0,         /* 2xx */
    NGX_HTTP_LOYALTY_RESULT_BAD_REQUEST,    /* 400 */
    NGX_HTTP_LOYALTY_RESULT_NOT_FOUND,      /* 404 */
    NGX_HTTP_LOYALTY_RESULT_CONFLICT,       /* 409 */
    NGX_HTTP_LOYALTY_RESULT_TOO_LARGE,      /* 413 */
    NGX_HTTP_LOYALTY_RESULT_INVALID,        /* 422 */
    NGX_HTTP_LOYALTY_RESULT_UNAVAILABLE,    /* 503 */
    NGX_HTTP_LOYALTY_RESULT_ERROR,          /* anything else */
    NGX_HTTP_LOYALTY_RESULTS
} ngx_http_loyalty_result_e;


/* a worker's counters: runs indexed by the enums above */
typedef enum {
    NGX_HTTP_LOYALTY_M_IDENTITY = 0,
    NGX_HTTP_LOYALTY_M_CACHE_HIT = NGX_HTTP_LOYALTY_ID_OUTCOMES,
    NGX_HTTP_LOYALTY_M_CACHE_MISS,
    NGX_HTTP_LOYALTY_M_CLICK,
    NGX_HTTP_LOYALTY_M_PRICE = NGX_HTTP_LOYALTY_M_CLICK
                               + NGX_HTTP_LOYALTY_REF_STATUSES,
    NGX_HTTP_LOYALTY_M_PRICE_CLAMP = NGX_HTTP_LOYALTY_M_PRICE
                                     + NGX_HTTP_LOYALTY_RESULTS,
    NGX_HTTP_LOYALTY_M_WRITE,
    NGX_HTTP_LOYALTY_M_DENIED_TOKEN = NGX_HTTP_LOYALTY_M_WRITE
                                      + NGX_HTTP_LOYALTY_RESULTS,
    NGX_HTTP_LOYALTY_M_DENIED_LOOPBACK,
    NGX_HTTP_LOYALTY_M_DENIED_SCOPE,
    NGX_HTTP_LOYALTY_METRICS
} ngx_http_loyalty_metric_e;


/* this process's counters in the "loyalty_metrics" zone; NULL: none */
extern ngx_atomic_t  *ngx_http_loyalty_metrics_slot;


#define ngx_http_loyalty_metric(m)                                            \
    ngx_http_loyalty_metric_add(m, 1)

#define ngx_http_loyalty_metric_add(m, n)                                     \
    do {                                                                      \
        if (ngx_http_loyalty_metrics_slot) {                                  \
            ngx_http_loyalty_metrics_slot[m] += (n);                          \
        }                                                                     \
    } while (0)


/* counts an answer in the run that starts at base, by its status */
void ngx_http_loyalty_metrics_answer(ngx_uint_t base, ngx_uint_t status);

char *ngx_http_loyalty_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_loyalty_metrics_init_worker(ngx_cycle_t *cycle);
void ngx_http_loyalty_metrics_exit_worker(void);

/* how full the click zone is, for the gauges (ngx_http_loyalty_clicks.c) */
void ngx_http_loyalty_clicks_fill(ngx_http_loyalty_clicks_t *clicks,
    ngx_uint_t *used, ngx_uint_t *size, ngx_uint_t *lost);


#endif /* _NGX_HTTP_LOYALTY_METRICS_H_INCLUDED_ */
