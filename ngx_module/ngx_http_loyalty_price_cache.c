/*
 * nginx-loyalty: what a SKU costs a tier, per worker.  The visitor's tier
 * resolved once a request; a SKU's price record read in place and
 * guarded, then kept in a direct-mapped cache that is never staler than
 * the store (its entries are of the current epoch).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_price.h"


ngx_uint_t  ngx_http_loyalty_price_clamps;


/*
 * The price cache: what a SKU costs a tier, as the store said in a
 * snapshot of the current epoch (see ngx_http_loyalty_store_epoch(): only
 * click flushes came after it), so never staler than LMDB.  A product
 * page asks the same few SKUs again and again; a hit spares the B-tree
 * walk, the record's decoding and the guard over every lower tier.
 * Direct-mapped, by the SKU and the tier; 208 KiB a worker.
 */
typedef struct {
    size_t                         txnid;   /* 0: empty */
    ngx_uint_t                     gen;
    ngx_http_loyalty_price_info_t  info;
    int                            tier;
    u_char                         found;   /* 0: no such SKU */
    u_char                         sku_len;
    u_char                         sku[LOYALTY_ID_MAX];
} ngx_http_loyalty_price_entry_t;

#define NGX_HTTP_LOYALTY_PRICE_CACHE  1024


static ngx_int_t ngx_http_loyalty_price_fill(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_entry_t *e) __attribute__((noinline));
static void ngx_http_loyalty_price_clamped(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi) __attribute__((noinline));
static ngx_int_t ngx_http_loyalty_price_read(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi);

static ngx_http_loyalty_price_entry_t
    ngx_http_loyalty_price_cache[NGX_HTTP_LOYALTY_PRICE_CACHE];

/* the store the entries are of: a reload in one process makes another */
static ngx_http_loyalty_store_t  *ngx_http_loyalty_price_cache_store;
static volatile ngx_cycle_t      *ngx_http_loyalty_price_cache_cycle;


static ngx_str_t  ngx_http_loyalty_public = ngx_string("public");


/*
 * The tier whose prices apply: the member's, unless the visitor is
 * anonymous, blocked, or their tier is missing from the store.
 */

ngx_str_t *
ngx_http_loyalty_price_tier(ngx_http_loyalty_ctx_t *ctx)
{
    if (ctx->identity == NGX_HTTP_LOYALTY_ID_VALID && ctx->has_rank
        && !ctx->blocked)
    {
        return &ctx->tier;
    }

    return &ngx_http_loyalty_public;
}


ngx_int_t
ngx_http_loyalty_price_begin(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_uint_t lazy)
{
    ngx_str_t                 *tier;
    ngx_http_loyalty_ctx_t    *ctx;
    ngx_http_loyalty_store_t  *store;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    store = ngx_http_loyalty_store_get(r);

    pr->store = store;
    pr->txn = NULL;
    pr->lua = ngx_http_loyalty_lua_get(LOYALTY_LUA_HOOK_PRICE);
    pr->again = 0;
    pr->clamps = 0;
    pr->log = r->connection->log;

    /*
     * Prices the cache has need no read transaction, once the epochs
     * are the last snapshot's (see ngx_http_loyalty_store_peek()), and
     * neither do the tiers, copied at this epoch or later; nor does a
     * price hook that does not read the store.  A visitor identified
     * just now took up the last snapshot already.
     */
    if (lazy
        && (lazy == NGX_HTTP_LOYALTY_PRICE_PEEKED
            || ngx_http_loyalty_store_peek(store, r->connection->log)
               == NGX_OK)
        && store->tiers_txnid >= store->epoch && store->tiers_txnid != 0)
    {
        pr->epoch = store->epoch;
        pr->gen = store->gen;

    } else {
        pr->txn = ngx_http_loyalty_store_begin(store, r->connection->log);
        if (pr->txn == NULL) {
            return NGX_ERROR;
        }
    }

    pr->tiers = ngx_http_loyalty_store_tiers(store, r->connection->log);
    if (pr->tiers == NULL) {
        ngx_http_loyalty_price_end(pr);
        return NGX_ERROR;
    }

    pr->ctx = ctx;

    tier = ngx_http_loyalty_price_tier(ctx);

    pr->tier = (tier == &ngx_http_loyalty_public)
               ? -1
               : loyalty_tierset_find(pr->tiers, (char *) tier->data,
                                      tier->len);

    return NGX_OK;
}


/*
 * The pricing over: its transaction ended, the guard's clamps of the
 * answer counted (an answer made again zeroes those of its first try, so
 * that a clamp is counted once, as the answer sent holds it).
 */
void
ngx_http_loyalty_price_end(ngx_http_loyalty_pricing_t *pr)
{
    if (pr->txn) {
        ngx_http_loyalty_store_end(pr->store);
        pr->txn = NULL;
    }

    if (pr->clamps) {
        ngx_http_loyalty_price_clamps += pr->clamps;
        ngx_http_loyalty_metric_add(NGX_HTTP_LOYALTY_M_PRICE_CLAMP,
                                    pr->clamps);
        pr->clamps = 0;
    }
}


/*
 * What sku costs tier (-1: the public), from the cache or the store;
 * NGX_DECLINED: no such SKU, or a record that does not decode.  A guard
 * that lowered the tier's price is counted and logged for every answer
 * of the member's own tier, as when every answer read the store.
 */
ngx_int_t
ngx_http_loyalty_price_get(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi)
{
    ngx_int_t                             rc;
    const ngx_http_loyalty_price_info_t  *info;

    rc = ngx_http_loyalty_price_lookup(r, pr, sku,
                                       ngx_http_loyalty_price_hash(sku->data,
                                                                   sku->len),
                                       tier, &info);
    if (rc == NGX_OK) {
        *pi = *info;
    }

    return rc;
}


/*
 * ngx_http_loyalty_price_get() of a SKU whose ngx_http_loyalty_price_hash()
 * the caller has: *pi points into the cache, valid until the next lookup.
 * A hit takes no frame: a miss and a clamp's log are functions of their
 * own.
 */
ngx_int_t
ngx_http_loyalty_price_lookup(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, ngx_uint_t hash,
    int tier, const ngx_http_loyalty_price_info_t **pi)
{
    ngx_int_t                        rc;
    ngx_http_loyalty_store_t        *store;
    ngx_http_loyalty_price_entry_t  *e;

    store = pr->store;

    if (ngx_http_loyalty_price_cache_store != store
        || ngx_http_loyalty_price_cache_cycle != ngx_cycle)
    {
        ngx_memzero(ngx_http_loyalty_price_cache,
                    sizeof(ngx_http_loyalty_price_cache));
        ngx_http_loyalty_price_cache_store = store;
        ngx_http_loyalty_price_cache_cycle = ngx_cycle;
    }

    e = &ngx_http_loyalty_price_cache[(hash ^ (ngx_uint_t) (tier + 1) * 7)
                                      & (NGX_HTTP_LOYALTY_PRICE_CACHE - 1)];

    if (e->txnid >= store->epoch && e->txnid != 0 && e->gen == store->gen
        && e->tier == tier && e->sku_len == sku->len
        && ngx_http_loyalty_equal(e->sku, sku->data, sku->len))
    {
        rc = e->found ? NGX_OK : NGX_DECLINED;

    } else {
        rc = ngx_http_loyalty_price_fill(r, pr, sku, tier, e);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }
    }

    *pi = &e->info;

    if (rc == NGX_OK && e->info.clamped && tier == pr->tier) {
        ngx_http_loyalty_price_clamped(r, pr, sku, tier, &e->info);
    }

    return rc;
}


/*
 * The first read's transaction, a miss's or a price hook's (its store
 * reads begin it lazily): if its snapshot is not of the epoch the cache's
 * answers were, pr->again is set and the answer is made again, all from
 * one snapshot (NGX_AGAIN of the render).
 */
MDB_txn *
ngx_http_loyalty_price_snapshot(void *data)
{
    ngx_http_loyalty_pricing_t  *pr = data;

    if (pr->txn == NULL) {
        pr->txn = ngx_http_loyalty_store_begin(pr->store, pr->log);

        if (pr->txn == NULL || pr->store->epoch != pr->epoch
            || pr->store->gen != pr->gen)
        {
            pr->again = 1;
        }
    }

    return pr->txn;
}


/*
 * A miss: e filled from the store, NGX_OK or NGX_DECLINED (no such SKU,
 * or not read: left empty), or NGX_AGAIN (pricing lazily, the store
 * changed before this first read).
 */
static ngx_int_t
ngx_http_loyalty_price_fill(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_entry_t *e)
{
    ngx_int_t                  rc;
    ngx_http_loyalty_store_t  *store;

    store = pr->store;

    if (pr->txn == NULL
        && (ngx_http_loyalty_price_snapshot(pr) == NULL || pr->again))
    {
        return NGX_AGAIN;
    }

    /* emptied first: a failed read leaves no entry */
    e->txnid = 0;

    rc = ngx_http_loyalty_price_read(r, pr, sku, tier, &e->info);

    if (rc == NGX_ERROR) {
        return NGX_DECLINED;
    }

    e->txnid = mdb_txn_id(pr->txn);
    e->gen = store->gen;
    e->tier = tier;
    e->found = (rc == NGX_OK);
    e->sku_len = (u_char) sku->len;
    ngx_memcpy(e->sku, sku->data, sku->len);

    return rc;
}


/* a guard that lowered the tier's price: counted and logged each time */
static void
ngx_http_loyalty_price_clamped(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi)
{
    pr->clamps++;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: privilege guard lowered sku \"%V\" for tier "
                  "\"%*s\" from %L to %L (%ui in this worker)", sku,
                  pr->tiers->tiers[tier].name_len,
                  pr->tiers->tiers[tier].name, pi->raw, pi->price,
                  ngx_http_loyalty_price_clamps + pr->clamps);
}


/*
 * sku's record read and priced for tier: NGX_OK, NGX_DECLINED (no such
 * SKU: cached as such), NGX_ERROR (not cached: a failed read, or a record
 * that does not decode, logged as each time it is met).
 */
static ngx_int_t
ngx_http_loyalty_price_read(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, int tier,
    ngx_http_loyalty_price_info_t *pi)
{
    int                        rc, clamped;
    MDB_val                    key, val;
    loyalty_price_t            p;
    ngx_http_loyalty_store_t  *store;

    store = pr->store;

    key.mv_data = sku->data;
    key.mv_size = sku->len;

    rc = mdb_get(pr->txn, store->st.dbi[LOYALTY_DB_PRICES], &key, &val);

    if (rc != 0) {
        if (rc != MDB_NOTFOUND) {
            return ngx_http_loyalty_store_read_failed(store,
                                                      r->connection->log,
                                                      sku->data, sku->len,
                                                      rc);
        }

        ngx_memzero(pi, sizeof(ngx_http_loyalty_price_info_t));
        return NGX_DECLINED;
    }

    if (loyalty_price_decode(val.mv_data, val.mv_size, &p) != 0) {
        if (ngx_http_loyalty_store_problem(store, NGX_HTTP_LOYALTY_DAMAGED))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": price \"%V\" does not "
                          "decode (%ui damaged records seen by this worker)",
                          store->path, sku,
                          store->problems[NGX_HTTP_LOYALTY_DAMAGED]);
        }
        return NGX_ERROR;
    }

    ngx_memzero(pi, sizeof(ngx_http_loyalty_price_info_t));
    pi->retail = p.retail;
    ngx_memcpy(pi->currency, p.currency, 3);

    if (tier < 0) {
        pi->raw = p.retail;
        pi->price = p.retail;

    } else {
        pi->raw = loyalty_price_raw(&p, &pr->tiers->tiers[tier]);
        pi->price = loyalty_price_guard(&p, pr->tiers, (size_t) tier,
                                        pi->raw, &clamped);
        pi->clamped = clamped ? 1 : 0;
    }

    pi->amounts_len = (u_char) (ngx_http_loyalty_price_amounts(pi->amounts,
                                                               pi->retail,
                                                               pi->price)
                                - pi->amounts);

    return NGX_OK;
}
