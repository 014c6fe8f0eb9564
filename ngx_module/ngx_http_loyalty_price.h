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
    /* the guard's clamps of this answer, counted when it is made */
    ngx_uint_t                 clamps;
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
 * not have (a price hook, which may read the store, begins it at once);
 * NGX_HTTP_LOYALTY_PRICE_PEEKED: lazy, and the visitor was identified
 * just now with a peek at the store (ngx_http_loyalty_identify_peeked()),
 * whose snapshot is taken up without looking again.
 */
#define NGX_HTTP_LOYALTY_PRICE_LAZY    1
#define NGX_HTTP_LOYALTY_PRICE_PEEKED  2

ngx_int_t ngx_http_loyalty_price_begin(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_uint_t lazy);
void ngx_http_loyalty_price_end(ngx_http_loyalty_pricing_t *pr);
/* the first read's transaction (data: the pricing); NULL or pr->again */
MDB_txn *ngx_http_loyalty_price_snapshot(void *data);

/* what sku costs tier (-1: the public); NGX_DECLINED: no such SKU */
ngx_int_t ngx_http_loyalty_price_get(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi);

/*
 * The key of a SKU in the price cache: its bytes a word at a time (not
 * one by one, as ngx_hash_key()), mixed by multiplication.
 */
static ngx_inline ngx_uint_t
ngx_http_loyalty_price_hash(const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  a, b;
    uint64_t  h, w;

    h = len;

    if (len >= sizeof(uint64_t)) {
        for (i = 0; i + sizeof(uint64_t) < len; i += sizeof(uint64_t)) {
            ngx_memcpy(&w, p + i, sizeof(uint64_t));
            h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        }

        /* the last word, overlapping the one before */
        ngx_memcpy(&w, p + len - sizeof(uint64_t), sizeof(uint64_t));

    } else if (len >= sizeof(uint32_t)) {
        ngx_memcpy(&a, p, sizeof(uint32_t));
        ngx_memcpy(&b, p + len - sizeof(uint32_t), sizeof(uint32_t));
        w = (uint64_t) a << 32 | b;

    } else {
        for (w = 0, i = 0; i < len; i++) {
            w = w << 8 | p[i];
        }
    }

    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;

    return (ngx_uint_t) (h >> 32);
}

/*
 * The same, of a SKU whose ngx_http_loyalty_price_hash() is hash: *pi is
 * the cache's.  NGX_AGAIN: pricing lazily, the store changed before this
 * first read.
 */
ngx_int_t ngx_http_loyalty_price_lookup(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, ngx_uint_t hash,
    int tier, const ngx_http_loyalty_price_info_t **pi);

/* "retail":R,"price":TOTAL,"saved":R-TOTAL */
u_char *ngx_http_loyalty_price_amounts(u_char *p, int64_t retail,
    int64_t total);


#endif /* _NGX_HTTP_LOYALTY_PRICE_H_INCLUDED_ */
