/*
 * nginx-loyalty: share codes as a worker sees them.
 *
 * A click needs its code's record, the owner's own referrer (level 2)
 * and the code's counter slot: two B-tree lookups and a probe.  Each
 * worker keeps what it found, in a 16-way set-associative table, tagged
 * with the store snapshot it read.  An entry holds while the store's
 * codes and members are unchanged: snapshots that only added click counts
 * (see ngx_http_loyalty_store_epoch()) keep it, any other write, a reload
 * or a reopen retires it.  Unknown codes are not kept.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


/* 16 hashes, a cache line: at 10,000 codes in 16,384 entries, 0.6% of
 * lookups miss, against 6% with 4 */
#define NGX_HTTP_LOYALTY_CODE_WAYS  16
#define NGX_HTTP_LOYALTY_HUGE_PAGE  (2 * 1024 * 1024)


struct ngx_http_loyalty_code_cache_s {
    ngx_uint_t                 mask;        /* sets - 1 */
    ngx_uint_t                 victim;
    /* a hash per entry, a set's in one cache line: one miss to look */
    uint32_t                  *tags;
    ngx_http_loyalty_code_t    entries[1];
};


static ngx_int_t ngx_http_loyalty_code_read(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, const u_char *name,
    size_t len, ngx_http_loyalty_code_t *e);


ngx_int_t
ngx_http_loyalty_code_cache_init(ngx_http_loyalty_store_t *store,
    ngx_uint_t size, ngx_log_t *log)
{
    ngx_uint_t  n;

    if (size == 0 || store->codes) {
        return NGX_OK;
    }

    for (n = NGX_HTTP_LOYALTY_CODE_WAYS; n < size; n <<= 1) { /* void */ }

    store->codes = ngx_http_loyalty_huge_alloc(
                       sizeof(ngx_http_loyalty_code_cache_t)
                       + (n - 1) * sizeof(ngx_http_loyalty_code_t), log);
    if (store->codes == NULL) {
        return NGX_ERROR;
    }

    store->codes->mask = n / NGX_HTTP_LOYALTY_CODE_WAYS - 1;

    store->codes->tags = ngx_memalign(64, n * sizeof(uint32_t), log);
    if (store->codes->tags == NULL) {
        ngx_free(store->codes);
        store->codes = NULL;
        return NGX_ERROR;
    }

    ngx_memzero(store->codes->tags, n * sizeof(uint32_t));

    return NGX_OK;
}


/*
 * Zeroed, in huge pages where the kernel gives them on request
 * (transparent huge pages "madvise"): a click's random entry then costs
 * no TLB miss, which in a virtual machine costs more than the rest of
 * the lookup.  The attribution cookies' table takes them too.
 */
void *
ngx_http_loyalty_huge_alloc(size_t size, ngx_log_t *log)
{
#if (NGX_HAVE_POSIX_MEMALIGN && defined MADV_HUGEPAGE)

    void  *p;

    p = ngx_memalign(NGX_HTTP_LOYALTY_HUGE_PAGE, size, log);

    if (p) {
        (void) madvise(p, size, MADV_HUGEPAGE);
        ngx_memzero(p, size);
    }

    return p;

#else

    return ngx_calloc(size, log);

#endif
}


void
ngx_http_loyalty_code_cache_free(ngx_http_loyalty_store_t *store)
{
    if (store->codes) {
        ngx_free(store->codes->tags);
        ngx_free(store->codes);
        store->codes = NULL;
    }
}


/* the first entry of the set of a code of that hash */
static ngx_inline ngx_uint_t
ngx_http_loyalty_code_set(ngx_http_loyalty_code_cache_t *cc, uint32_t hash)
{
    return (hash & cc->mask) * NGX_HTTP_LOYALTY_CODE_WAYS;
}


/*
 * A normalized code of that hash (ngx_http_loyalty_code_hash()), between
 * ngx_http_loyalty_store_begin() and _end():
 * NGX_OK and *code (valid for the request), NGX_DECLINED for a code that
 * is unknown or does not decode, NGX_ERROR.  Without a transaction (txn
 * NULL, after ngx_http_loyalty_store_peek()): NGX_AGAIN for a code that
 * must be read.
 */

ngx_int_t
ngx_http_loyalty_code_find(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, const u_char *name,
    size_t len, uint32_t hash, ngx_http_loyalty_code_t **code)
{
    uint32_t                 *tags;
    ngx_int_t                 rc;
    ngx_uint_t                i, first;
    ngx_http_loyalty_code_t  *set, *e;

    if (store->codes == NULL) {
        if (txn == NULL) {
            return NGX_AGAIN;
        }

        e = ngx_palloc(r->pool, sizeof(ngx_http_loyalty_code_t));
        if (e == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_loyalty_code_read(r, store, txn, name, len, e);
        *code = e;
        return rc;
    }

    first = ngx_http_loyalty_code_set(store->codes, hash);
    hash |= 1;                  /* 0 tags a free entry */
    set = &store->codes->entries[first];
    tags = &store->codes->tags[first];

    for (i = 0; i < NGX_HTTP_LOYALTY_CODE_WAYS; i++) {
        e = &set[i];

        if (tags[i] == hash && e->len == len && e->gen == store->gen
            && e->txnid >= store->epoch
            && ngx_memcmp(e->code, name, len) == 0)
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "loyalty: share code \"%*s\" cached", len, name);
            *code = e;
            return NGX_OK;
        }
    }

    if (txn == NULL) {
        return NGX_AGAIN;
    }

    /* an entry of an older snapshot is free; else replace in turn */
    for (i = 0; i < NGX_HTTP_LOYALTY_CODE_WAYS; i++) {
        if (set[i].gen != store->gen || set[i].txnid < store->epoch) {
            break;
        }
    }

    if (i == NGX_HTTP_LOYALTY_CODE_WAYS) {
        i = store->codes->victim++ % NGX_HTTP_LOYALTY_CODE_WAYS;
    }

    e = &set[i];
    e->txnid = 0;
    tags[i] = 0;

    rc = ngx_http_loyalty_code_read(r, store, txn, name, len, e);

    if (rc != NGX_OK) {
        e->len = 0;
        return rc;
    }

    if (e->target_len > NGX_HTTP_LOYALTY_TARGET_CACHED) {
        /* a long target was read into the request's pool: not kept */
        *code = ngx_palloc(r->pool, sizeof(ngx_http_loyalty_code_t));
        if (*code == NULL) {
            return NGX_ERROR;
        }

        **code = *e;
        e->len = 0;
        return NGX_OK;
    }

    e->txnid = mdb_txn_id(txn);
    e->gen = store->gen;
    tags[i] = hash;
    *code = e;

    return NGX_OK;
}


/* the tags of a code's set, asked for ahead */
void
ngx_http_loyalty_code_prefetch(ngx_http_loyalty_store_t *store,
    uint32_t hash)
{
    ngx_http_loyalty_code_cache_t  *cc;

    cc = store->codes;

    if (cc) {
        ngx_http_loyalty_prefetch(
            &cc->tags[ngx_http_loyalty_code_set(cc, hash)]);
    }
}


static ngx_int_t
ngx_http_loyalty_code_read(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, const u_char *name,
    size_t len, ngx_http_loyalty_code_t *e)
{
    int              rc;
    size_t           referrer_len;
    u_char          *target;
    MDB_val          key, val;
    const char      *referrer;
    loyalty_code_t   c;

    key.mv_data = (void *) name;
    key.mv_size = len;

    rc = mdb_get(txn, store->st.dbi[LOYALTY_DB_CODES], &key, &val);

    if (rc == MDB_NOTFOUND) {
        return NGX_DECLINED;
    }

    if (rc != 0) {
        return ngx_http_loyalty_store_read_failed(store, r->connection->log,
                                                  name, len, rc);
    }

    if (loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0) {
        if (ngx_http_loyalty_store_problem(store, NGX_HTTP_LOYALTY_DAMAGED))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": code \"%*s\" does not "
                          "decode (%ui damaged records seen by this "
                          "worker)", store->path, len, name,
                          store->problems[NGX_HTTP_LOYALTY_DAMAGED]);
        }

        return NGX_DECLINED;
    }

    e->len = (u_char) len;
    ngx_memcpy(e->code, name, len);
    e->flags = c.flags;
    e->expires_at = c.expires_at;
    e->max_clicks = c.max_clicks;
    e->slot = NGX_DECLINED;
    e->member_len = c.member_len;
    ngx_memcpy(e->member, c.member, c.member_len);
    e->target_len = c.target_len;

    if (c.target_len <= NGX_HTTP_LOYALTY_TARGET_CACHED) {
        loyalty_cpymem(e->target_buf, c.target, c.target_len);
        e->target = e->target_buf;

    } else {
        /* the map's pages may be reused once the transaction ends */
        target = ngx_pnalloc(r->pool, c.target_len);
        if (target == NULL) {
            return NGX_ERROR;
        }

        e->target = ngx_cpymem(target, c.target, c.target_len)
                    - c.target_len;
    }

    /* the owner's own referrer: level 2 of whoever the code attributes */
    if (ngx_http_loyalty_store_referrer(store, txn, r->connection->log,
                                        (u_char *) c.member, c.member_len,
                                        &referrer, &referrer_len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    e->referrer2_len = (u_char) referrer_len;
    loyalty_cpymem(e->referrer2, referrer, referrer_len);

    return NGX_OK;
}


/*
 * A member's referrer, pointing into the map (valid until the transaction
 * ends); empty when the member or their referrer is absent, or the record
 * is damaged (the identity lookup logs those).
 */
ngx_int_t
ngx_http_loyalty_store_referrer(ngx_http_loyalty_store_t *store,
    MDB_txn *txn, ngx_log_t *log, u_char *id, size_t len,
    const char **referrer, size_t *referrer_len)
{
    int               rc;
    loyalty_member_t  m;

    *referrer = NULL;
    *referrer_len = 0;

    rc = loyalty_member_get(txn, &store->st, (const char *) id, len, &m);

    if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) {
        return NGX_OK;
    }

    if (rc != 0) {
        return ngx_http_loyalty_store_read_failed(store, log, id, len, rc);
    }

    *referrer = m.referrer;
    *referrer_len = m.referrer_len;

    return NGX_OK;
}
