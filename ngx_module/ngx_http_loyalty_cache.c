/*
 * nginx-loyalty: the verified-cookie cache.
 *
 * Most requests come from visitors seen moments ago.  Each worker keeps,
 * in an 8-way set-associative table, the member cookies it has verified
 * and what the store said about their members, tagged with the store
 * snapshot it read.  A hit needs the very same cookie bytes (compared in
 * constant time) and no change to the member since that snapshot, so
 * the cache is never staler than LMDB itself:
 *
 *   - a commit that sealed the list of members it wrote (a batch of
 *     events, through the admin API or loyaltyctl, a step of nginx's
 *     cadence sweep: the "changes" database, schema/lmdb-layout.md)
 *     retires those members only.  The
 *     worker reads the list when it first sees the snapshot and keeps,
 *     per bucket of member ids (a hash, NGX_HTTP_LOYALTY_CACHE_VERSIONS
 *     of them), the last snapshot that changed one of them: an entry
 *     older than its bucket's is read again;
 *   - any other commit but a click flush (a member put or deleted one
 *     by one, tiers, an import, a writer that does not seal), a reload
 *     or a reopen retires every entry (member_epoch);
 *
 * in both cases the cookie need not be verified again.  A hit needs no
 * read transaction (ngx_http_loyalty_store_peek()).  Expiry is checked
 * on every hit.  Only cookies that passed the full HMAC are stored.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_CACHE_WAYS      8
#define NGX_HTTP_LOYALTY_CACHE_NONE      ((ngx_uint_t) -1)
/*
 * Buckets of member ids, a power of two: 256 KB a worker.  A batch of a
 * hundred orders retires a bucket for each member it wrote (a few
 * hundred with the referrers): with 4,096 buckets that was one cached
 * member in twenty a batch, read again for no change of theirs; with
 * 32,768, one in two hundred.
 */
#define NGX_HTTP_LOYALTY_CACHE_VERSIONS  32768


/*
 * What a lookup reads of each way of its set, a set's in one cache line:
 * the tag of the entry's cookie, and the bucket of its member, so that
 * the entry and its bucket's version are read at once, not one after
 * the other.
 */
typedef struct {
    uint32_t                     tag;       /* 0: none */
    uint32_t                     bucket;    /* of the member id */
} ngx_http_loyalty_cache_way_t;


/* what a hit reads: these fields and the tier first, then the cookie */
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
    u_char                       tier[LOYALTY_TIER_MAX];
    u_char                       value[LOYALTY_COOKIE_MAX];
} ngx_http_loyalty_cache_entry_t;


struct ngx_http_loyalty_cache_s {
    ngx_uint_t                       mask;      /* sets - 1 */
    ngx_uint_t                       victim;    /* round-robin replacement */
    ngx_uint_t                       gen;       /* of the versions */
    /*
     * Each entry's way: a lookup reads its set's line of them and only
     * the entry whose tag matches, not the first line of every way.
     */
    ngx_http_loyalty_cache_way_t    *ways;
    /* the last snapshot that changed a member of each bucket */
    size_t                           versions[
                                         NGX_HTTP_LOYALTY_CACHE_VERSIONS];
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

    /*
     * In huge pages where the kernel gives them, zeroed: every returning
     * member's lookup is a random set of the table, whose TLB miss in a
     * virtual machine cost more than the rest of the lookup.
     */
    store->cache = ngx_http_loyalty_huge_alloc(
                       sizeof(ngx_http_loyalty_cache_t)
                       + (n - 1) * sizeof(ngx_http_loyalty_cache_entry_t)
                       + n * sizeof(ngx_http_loyalty_cache_way_t)
                       + NGX_CPU_CACHE_LINE,
                       log);
    if (store->cache == NULL) {
        return NGX_ERROR;
    }

    store->cache->mask = n / NGX_HTTP_LOYALTY_CACHE_WAYS - 1;
    store->cache->ways = (ngx_http_loyalty_cache_way_t *)
                             ngx_align_ptr(&store->cache->entries[n],
                                           NGX_CPU_CACHE_LINE);

    return NGX_OK;
}


void
ngx_http_loyalty_cache_free(ngx_http_loyalty_store_t *store)
{
    /* free(NULL) is nothing */
    ngx_free(store->cache);
    store->cache = NULL;
}


static ngx_inline ngx_uint_t ngx_http_loyalty_cache_find(
    ngx_http_loyalty_store_t *store, ngx_str_t *value);


/*
 * The first entry of a cookie's set, and its tag: both from its last 8
 * bytes, which are the MAC's (random to whoever lacks the key), rather
 * than from all its bytes.  A cookie too short to be valid goes to the
 * first set: it finds nothing.
 */
static ngx_inline ngx_uint_t
ngx_http_loyalty_cache_set(ngx_http_loyalty_store_t *store, ngx_str_t *value,
    uint32_t *tag)
{
    uint64_t  h;

    h = 0;

    if (value->len >= sizeof(uint64_t)) {
        ngx_memcpy(&h, value->data + value->len - sizeof(uint64_t),
                   sizeof(uint64_t));
        h *= 0x9e3779b97f4a7c15ULL;
    }

    *tag = (uint32_t) h | 1;

    return ((h >> 32) & store->cache->mask) * NGX_HTTP_LOYALTY_CACHE_WAYS;
}


/* the bucket of a member id */
static uint32_t
ngx_http_loyalty_cache_bucket(u_char *id, size_t len)
{
    return ngx_murmur_hash2(id, len) & (NGX_HTTP_LOYALTY_CACHE_VERSIONS - 1);
}


/* versions of another store's snapshots mean nothing: forgotten */
static void
ngx_http_loyalty_cache_sync(ngx_http_loyalty_store_t *store)
{
    if (store->cache->gen != store->gen) {
        ngx_memzero(store->cache->versions, sizeof(store->cache->versions));
        store->cache->gen = store->gen;
    }
}


/* whether entry i holds what the store has now */
static ngx_uint_t
ngx_http_loyalty_cache_current(ngx_http_loyalty_store_t *store, ngx_uint_t i)
{
    ngx_http_loyalty_cache_entry_t  *e;

    e = &store->cache->entries[i];

    return e->txnid != 0 && e->txnid >= store->member_epoch
           && e->gen == store->gen
           && e->txnid
              >= store->cache->versions[store->cache->ways[i].bucket];
}


/*
 * In the store's read transaction, for a snapshot t not yet seen that is
 * not a click flush: NGX_OK when its commit sealed the list of members it
 * wrote, their buckets then retired; else NGX_DECLINED (every entry is).
 */
ngx_int_t
ngx_http_loyalty_cache_changed(ngx_http_loyalty_store_t *store, size_t t)
{
    int          rc;
    u_char       seal[8];
    MDB_dbi      dbi;
    MDB_val      key, val;
    ngx_uint_t   n;
    MDB_cursor  *cur;

    dbi = store->st.dbi[LOYALTY_DB_CHANGES];

    if (store->cache == NULL || dbi == 0) {
        return NGX_DECLINED;
    }

    ngx_http_loyalty_cache_sync(store);

    loyalty_be_put(seal, t);

    key.mv_data = seal;
    key.mv_size = sizeof(seal);

    if (mdb_get(store->txn, dbi, &key, &val) != 0
        || mdb_cursor_open(store->txn, dbi, &cur) != 0)
    {
        return NGX_DECLINED;
    }

    /* the seal sorts first, its members after it */
    n = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (key.mv_size < sizeof(seal)
            || ngx_memcmp(key.mv_data, seal, sizeof(seal)) != 0)
        {
            break;
        }

        if (key.mv_size > sizeof(seal)) {
            store->cache->versions[ngx_http_loyalty_cache_bucket(
                (u_char *) key.mv_data + sizeof(seal),
                key.mv_size - sizeof(seal))] = t;
            n++;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "loyalty: snapshot %uz changed %ui members", t, n);

    return NGX_OK;
}


/*
 * The entry of these cookie bytes, current or not, compared in constant
 * time: the bytes are a secret's MAC.  The cookie's last 8 bytes (the
 * MAC's) are compared first, as one word, and that compare is not in
 * constant time on purpose: another way's cookie, whose length is the
 * same as often as not, then costs no loyalty_ct_equal().  It is safe:
 * the word is compared whole (one instruction, no early exit within
 * it), so its timing tells only whether all 8 characters (48 bits of
 * the MAC, in base64url) are right at once, never how many: about 2^47
 * guesses to learn them, not 8 times 64.  And they would grant nothing:
 * an entry is returned only when every byte matches, in constant time,
 * and a cookie that matches none is verified in full (HMAC, constant
 * time).  The lengths compared are not secret (the cookie's form).  The
 * ways' tags, a hash of that word, are compared before it, for the same
 * reason and as safely.  The entry's index, or NGX_HTTP_LOYALTY_CACHE_NONE.
 */
static ngx_inline ngx_uint_t
ngx_http_loyalty_cache_find(ngx_http_loyalty_store_t *store, ngx_str_t *value)
{
    uint32_t                         tag;
    uint64_t                         tail, t;
    ngx_uint_t                       i, set;
    ngx_http_loyalty_cache_entry_t  *e;

    set = ngx_http_loyalty_cache_set(store, value, &tag);

    if (value->len < sizeof(uint64_t)) {
        return NGX_HTTP_LOYALTY_CACHE_NONE;  /* too short to verify: never
                                                stored */
    }

    ngx_memcpy(&tail, value->data + value->len - sizeof(uint64_t),
               sizeof(uint64_t));

    for (i = set; i < set + NGX_HTTP_LOYALTY_CACHE_WAYS; i++) {
        if (store->cache->ways[i].tag != tag) {
            continue;
        }

        e = &store->cache->entries[i];

        if (e->txnid == 0 || e->value_len != value->len) {
            continue;
        }

        ngx_memcpy(&t, e->value + value->len - sizeof(uint64_t),
                   sizeof(uint64_t));

        if (t == tail && loyalty_ct_equal(e->value, value->data, value->len))
        {
            return i;
        }
    }

    return NGX_HTTP_LOYALTY_CACHE_NONE;
}


/*
 * After ngx_http_loyalty_store_peek(), with no transaction: fills ctx and
 * the cookie's expiry on a hit; NGX_AGAIN and the expiry for a cookie
 * that verified before but whose member must be read again (the store
 * has changed since: a verification outlives any write, member data does
 * not); else NGX_DECLINED.
 */

ngx_int_t
ngx_http_loyalty_cache_get(ngx_http_loyalty_store_t *store, ngx_str_t *value,
    ngx_http_loyalty_ctx_t *ctx, int64_t *expires)
{
    ngx_uint_t                       i;
    ngx_http_loyalty_cache_entry_t  *e;

    if (store->cache == NULL || value->len > LOYALTY_COOKIE_MAX) {
        return NGX_DECLINED;
    }

    ngx_http_loyalty_cache_sync(store);

    i = ngx_http_loyalty_cache_find(store, value);

    if (i == NGX_HTTP_LOYALTY_CACHE_NONE) {
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_MISS);
        return NGX_DECLINED;
    }

    e = &store->cache->entries[i];
    *expires = e->expires;

    /* verified once, but the member may have changed since */
    if (!ngx_http_loyalty_cache_current(store, i)) {
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_MISS);
        return NGX_AGAIN;
    }

    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CACHE_HIT);

    if (e->identity != NGX_HTTP_LOYALTY_ID_VALID) {
        ngx_http_loyalty_ctx_anonymous(ctx, e->identity);
        return NGX_OK;
    }

    ctx->identity = NGX_HTTP_LOYALTY_ID_VALID;

    /*
     * The member id is the cookie's first field, the request's own bytes;
     * the tier is copied (the entry may be replaced while the request
     * lasts).
     */
    ctx->member.data = value->data;
    ctx->member.len = e->id_len;
    ctx->tier.data = ctx->tier_data;
    ctx->tier.len = e->tier_len;
    ngx_memcpy(ctx->tier_data, e->tier, LOYALTY_TIER_MAX);  /* no call */
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
    uint32_t                         tag;
    ngx_uint_t                       i, set;
    ngx_http_loyalty_cache_entry_t  *e;

    if (store->cache == NULL || value->len > LOYALTY_COOKIE_MAX
        || (ctx->identity != NGX_HTTP_LOYALTY_ID_VALID
            && ctx->identity != NGX_HTTP_LOYALTY_ID_UNKNOWN))
    {
        return;
    }

    ngx_http_loyalty_cache_sync(store);

    i = ngx_http_loyalty_cache_find(store, value);

    if (i == NGX_HTTP_LOYALTY_CACHE_NONE) {
        set = ngx_http_loyalty_cache_set(store, value, &tag);

        /* an entry of an older snapshot is free; else replace in turn */
        for (i = set; i < set + NGX_HTTP_LOYALTY_CACHE_WAYS; i++) {
            if (!ngx_http_loyalty_cache_current(store, i)) {
                break;
            }
        }

        if (i == set + NGX_HTTP_LOYALTY_CACHE_WAYS) {
            i = set + store->cache->victim++ % NGX_HTTP_LOYALTY_CACHE_WAYS;
        }

        store->cache->ways[i].tag = tag;
    }

    /* the member id is the cookie's first field, valid or unknown */
    store->cache->ways[i].bucket = ngx_http_loyalty_cache_bucket(value->data,
                    ngx_strlchr(value->data, value->data + value->len, '~')
                    - value->data);

    e = &store->cache->entries[i];
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
