/*
 * nginx-loyalty: the verified-cookie cache.
 *
 * Most requests come from visitors seen moments ago.  Each worker keeps,
 * in a 4-way set-associative table, the member cookies it has verified
 * and what
 * the store said about their members, tagged with the store snapshot it
 * read.  A hit needs the very same cookie bytes (compared in constant
 * time) and a snapshot with the same data: after any write to the store
 * other than a click flush, a reload or a reopen, the member is read
 * again (though the cookie need not be verified again), so the cache is
 * never staler than LMDB itself.  Expiry is checked on every hit.  Only
 * cookies that passed the full HMAC are stored.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_CACHE_WAYS  4


typedef struct {
    size_t                       txnid;     /* 0: empty */
    ngx_uint_t                   gen;
    int64_t                      expires;
    int64_t                      points;
    int32_t                      rank;
    uint8_t                      value_len;
    uint8_t                      id_len;
    uint8_t                      tier_len;
    uint8_t                      stage;
    uint8_t                      identity;
    unsigned                     has_rank:1;
    unsigned                     blocked:1;
    u_char                       value[LOYALTY_COOKIE_MAX];
    u_char                       tier[LOYALTY_TIER_MAX];
} ngx_http_loyalty_cache_entry_t;


struct ngx_http_loyalty_cache_s {
    ngx_uint_t                       mask;      /* sets - 1 */
    ngx_uint_t                       victim;    /* round-robin replacement */
    ngx_http_loyalty_cache_entry_t   entries[1];
};


ngx_int_t
ngx_http_loyalty_cache_init(ngx_http_loyalty_store_t *store, ngx_uint_t size,
    ngx_log_t *log)
{
    ngx_uint_t  n;

    if (size == 0 || store->cache) {
        return NGX_OK;
    }

    /* whole sets, a power of two of them */
    for (n = NGX_HTTP_LOYALTY_CACHE_WAYS; n < size; n <<= 1) { /* void */ }

    store->cache = ngx_calloc(sizeof(ngx_http_loyalty_cache_t)
                              + (n - 1)
                                * sizeof(ngx_http_loyalty_cache_entry_t),
                              log);
    if (store->cache == NULL) {
        return NGX_ERROR;
    }

    store->cache->mask = n / NGX_HTTP_LOYALTY_CACHE_WAYS - 1;

    return NGX_OK;
}


void
ngx_http_loyalty_cache_free(ngx_http_loyalty_store_t *store)
{
    if (store->cache) {
        ngx_free(store->cache);
        store->cache = NULL;
    }
}


static ngx_http_loyalty_cache_entry_t *ngx_http_loyalty_cache_find(
    ngx_http_loyalty_store_t *store, ngx_str_t *value);


static ngx_http_loyalty_cache_entry_t *
ngx_http_loyalty_cache_set(ngx_http_loyalty_store_t *store, ngx_str_t *value)
{
    return &store->cache->entries[(ngx_murmur_hash2(value->data, value->len)
                                   & store->cache->mask)
                                  * NGX_HTTP_LOYALTY_CACHE_WAYS];
}


static ngx_uint_t
ngx_http_loyalty_cache_current(ngx_http_loyalty_store_t *store,
    ngx_http_loyalty_cache_entry_t *e)
{
    return e->txnid != 0 && e->txnid >= store->epoch
           && e->gen == store->gen;
}


/* the entry of these cookie bytes, current or not (compared in constant
 * time: the bytes are a secret's MAC) */
static ngx_http_loyalty_cache_entry_t *
ngx_http_loyalty_cache_find(ngx_http_loyalty_store_t *store, ngx_str_t *value)
{
    ngx_uint_t                       i;
    ngx_http_loyalty_cache_entry_t  *e;

    e = ngx_http_loyalty_cache_set(store, value);

    for (i = 0; i < NGX_HTTP_LOYALTY_CACHE_WAYS; i++, e++) {
        if (e->txnid != 0 && e->value_len == value->len
            && CRYPTO_memcmp(e->value, value->data, value->len) == 0)
        {
            return e;
        }
    }

    return NULL;
}


/*
 * Between ngx_http_loyalty_store_begin() and _end(): fills ctx and the
 * cookie's expiry on a hit; NGX_AGAIN and the expiry for a cookie that
 * verified before but whose member must be read again (the store has
 * changed since: a verification outlives any write, member data does
 * not); else NGX_DECLINED.
 */

ngx_int_t
ngx_http_loyalty_cache_get(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, ngx_str_t *value,
    ngx_http_loyalty_ctx_t *ctx, int64_t *expires)
{
    u_char                          *p;
    ngx_http_loyalty_cache_entry_t  *e;

    if (store->cache == NULL || value->len > LOYALTY_COOKIE_MAX) {
        return NGX_DECLINED;
    }

    e = ngx_http_loyalty_cache_find(store, value);

    if (e == NULL) {
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_MISS);
        return NGX_DECLINED;
    }

    *expires = e->expires;

    /* verified once, but the member may have changed since */
    if (!ngx_http_loyalty_cache_current(store, e)) {
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_MISS);
        return NGX_AGAIN;
    }

    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_HIT);

    ctx->identity = e->identity;

    if (e->identity != NGX_HTTP_LOYALTY_ID_VALID) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->main->pool, e->id_len + e->tier_len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the member id is the cookie's first field */
    ctx->member.data = p;
    ctx->member.len = e->id_len;
    ctx->tier.data = ngx_cpymem(p, e->value, e->id_len);
    ctx->tier.len = e->tier_len;
    ngx_memcpy(ctx->tier.data, e->tier, e->tier_len);
    ctx->stage = e->stage;
    ctx->points = e->points;
    ctx->rank = e->rank;
    ctx->has_rank = e->has_rank;
    ctx->blocked = e->blocked;

    return NGX_OK;
}


/* keeps what a verified cookie's lookup found, valid or unknown */
void
ngx_http_loyalty_cache_put(ngx_http_loyalty_store_t *store, ngx_str_t *value,
    int64_t expires, ngx_http_loyalty_ctx_t *ctx)
{
    ngx_uint_t                       i;
    ngx_http_loyalty_cache_entry_t  *set, *e;

    if (store->cache == NULL || value->len > LOYALTY_COOKIE_MAX
        || (ctx->identity != NGX_HTTP_LOYALTY_ID_VALID
            && ctx->identity != NGX_HTTP_LOYALTY_ID_UNKNOWN))
    {
        return;
    }

    e = ngx_http_loyalty_cache_find(store, value);

    if (e == NULL) {
        set = ngx_http_loyalty_cache_set(store, value);

        /* an entry of an older snapshot is free; else replace in turn */
        for (i = 0; i < NGX_HTTP_LOYALTY_CACHE_WAYS; i++) {
            if (!ngx_http_loyalty_cache_current(store, &set[i])) {
                break;
            }
        }

        if (i == NGX_HTTP_LOYALTY_CACHE_WAYS) {
            i = store->cache->victim++ % NGX_HTTP_LOYALTY_CACHE_WAYS;
        }

        e = &set[i];
    }

    e->txnid = mdb_txn_id(store->txn);
    e->gen = store->gen;
    e->expires = expires;
    e->identity = (uint8_t) ctx->identity;
    e->value_len = (uint8_t) value->len;
    ngx_memcpy(e->value, value->data, value->len);
    e->id_len = (uint8_t) ctx->member.len;
    e->tier_len = (uint8_t) ctx->tier.len;
    loyalty_cpymem(e->tier, ctx->tier.data, ctx->tier.len);
    e->stage = ctx->stage;
    e->points = ctx->points;
    e->rank = ctx->rank;
    e->has_rank = ctx->has_rank;
    e->blocked = ctx->blocked;
}
