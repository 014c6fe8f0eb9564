/*
 * nginx-loyalty: what the price API and the price variables share: a
 * pricing (the visitor's tier in the store's snapshot) and what a SKU
 * costs a tier, from the per-worker price cache or the store.
 */

#ifndef _NGX_HTTP_LOYALTY_PRICE_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_PRICE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"


typedef struct {
    ngx_http_loyalty_store_t  *store;
    MDB_txn                   *txn;
    const loyalty_tierset_t   *tiers;
    int                        tier;    /* index in tiers, -1: public */
    ngx_http_loyalty_ctx_t    *ctx;

    /* without a transaction yet: the snapshots the cache's answers hold */
    size_t                     epoch;
    ngx_uint_t                 gen;

    ngx_http_loyalty_lua_t    *lua;
    /* a hook began the transaction on a later snapshot: answer again */
    ngx_uint_t                 again;
    ngx_log_t                 *log;
} ngx_http_loyalty_pricing_t;


/* "retail":R,"price":P,"saved":S */
#define NGX_HTTP_LOYALTY_AMOUNTS_LEN                                          \
    (sizeof("\"retail\":,\"price\":,\"saved\":") - 1 + 3 * NGX_INT64_LEN)


/*
 * What a SKU costs one tier (-1: the public), what it is sold in, and the
 * amounts of one unit as the price API writes them (without a hook).
 */
typedef struct {
    int64_t                    retail;
    int64_t                    price;   /* the tier's, guarded */
    int64_t                    raw;     /* before the guard */
    char                       currency[3];
    unsigned                   clamped:1;
    u_char                     amounts_len;
    u_char                     amounts[NGX_HTTP_LOYALTY_AMOUNTS_LEN];
} ngx_http_loyalty_price_info_t;


/* clamps by this worker, for the log */
extern ngx_uint_t  ngx_http_loyalty_price_clamps;


/*
 * The visitor's tier and the store's snapshot, for one request's prices;
 * lazy: the read transaction is begun at the first price the cache does
 * not have (a price hook, which may read the store, begins it at once).
 */
ngx_int_t ngx_http_loyalty_price_begin(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_uint_t lazy);
void ngx_http_loyalty_price_end(ngx_http_loyalty_pricing_t *pr);

/* what sku costs tier (-1: the public); NGX_DECLINED: no such SKU */
ngx_int_t ngx_http_loyalty_price_get(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi);

/*
 * The same, of a SKU whose ngx_hash_key() is hash: *pi is the cache's.
 * NGX_AGAIN: pricing lazily, the store changed before this first read.
 */
ngx_int_t ngx_http_loyalty_price_lookup(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, ngx_uint_t hash,
    int tier, const ngx_http_loyalty_price_info_t **pi);

/* "retail":R,"price":TOTAL,"saved":R-TOTAL */
u_char *ngx_http_loyalty_price_amounts(u_char *p, int64_t retail,
    int64_t total);


#endif /* _NGX_HTTP_LOYALTY_PRICE_H_INCLUDED_ */
