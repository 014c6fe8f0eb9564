/*
 * nginx-loyalty: the store put right under a worker that uses it.
 *
 * Three things change the store beneath an open environment: a snapshot
 * moved into its place (taken up once no write uses the environment), a
 * write that finds the map full (the map grown, one size for every
 * process), and another process that grew it (the map remapped, in
 * ngx_http_loyalty_store.c).  A write is committed only into the store
 * at the configured path; the store writer (ngx_http_loyalty_write.c)
 * calls ngx_http_loyalty_store_recover() after a write that was not, and
 * writes again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


static int ngx_http_loyalty_store_live(ngx_http_loyalty_store_t *store);
static ngx_int_t ngx_http_loyalty_store_grow(ngx_http_loyalty_store_t *store,
    size_t need, ngx_log_t *log);


/*
 * Whether the store open is the one at the configured path; one stat()
 * a second from the request path, and after a write that found it was
 * not.  A store replaced on disk (a new snapshot moved into place) is
 * taken up when no write uses the environment: the new one is opened
 * first, and the old one is closed only once it has.  A store removed is
 * logged once, at crit: reads go on from the snapshot mapped, writes are
 * refused.
 *
 * NGX_OK: the store open is the live one, the same or just opened;
 * NGX_BUSY: replaced, taken up once the writes in the pool are done;
 * NGX_DECLINED: removed; NGX_ERROR: replaced by one that cannot be opened.
 */

ngx_int_t
ngx_http_loyalty_store_replaced(ngx_http_loyalty_store_t *store,
    ngx_log_t *log)
{
    dev_t             dev;
    ino_t             ino;
    MDB_txn          *txn;
    ngx_uint_t        writable, level;
    ngx_file_info_t   fi;
    loyalty_store_t   st;

    if (ngx_file_info(store->data_path, &fi) == NGX_FILE_ERROR) {
        if (!store->gone) {
            store->gone = 1;
            ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                          "loyalty_store \"%s\": the store was removed: "
                          "writes are refused (503) until a store is back "
                          "in its place; reads are served from the snapshot "
                          "opened before; " ngx_file_info_n " \"%s\" failed",
                          store->path, store->data_path);
        }

        return NGX_DECLINED;
    }

    if (fi.st_ino == store->ino && fi.st_dev == store->dev) {
        if (store->gone) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "loyalty_store \"%s\": the store is back in its "
                          "place, writes are accepted again", store->path);
        }

        store->gone = 0;
        store->stale = 0;
        return NGX_OK;
    }

    if (fi.st_ino == store->failed_ino) {
        return NGX_ERROR;
    }

    if (store->busy) {
        store->stale = 1;
        return NGX_BUSY;
    }

    st = store->st;
    txn = store->txn;
    dev = store->dev;
    ino = store->ino;
    writable = store->writable;

    if (ngx_http_loyalty_store_open(store, log) != NGX_OK) {
        /* where writes are refused, crit: the operator must act */
        level = store->write ? NGX_LOG_CRIT : NGX_LOG_ERR;

        ngx_log_error(level, log, 0,
                      "loyalty_store \"%s\": replaced on disk by a store "
                      "that cannot be opened (see above); still serving "
                      "the one opened before%s", store->path,
                      store->write ? ", writes are refused (503)" : "");
        store->st = st;
        store->txn = txn;
        store->dev = dev;
        store->ino = ino;
        store->writable = writable;   /* commits check where they go */
        store->failed_ino = fi.st_ino;
        store->retry = 0;
        return NGX_ERROR;
    }

    mdb_txn_abort(txn);
    loyalty_store_close(&st);

    store->gone = 0;
    store->stale = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "loyalty_store \"%s\": replaced on disk, reopened",
                  store->path);

    return NGX_OK;
}


/*
 * In the thread pool: commits a write transaction if the store open is
 * still the one at the configured path, and checks again once it is
 * committed, so that a write is acknowledged only if it is in the live
 * store.  A write found in a store replaced meanwhile is done again once
 * the replacement is taken up (ngx_http_loyalty_store_recover()): events
 * count as duplicates when repeated, and the other writes put a record.
 * Touches nothing of the event loop, and no field the event loop changes
 * while writes are in the pool.
 */

int
ngx_http_loyalty_store_commit(ngx_http_loyalty_store_t *store, MDB_txn *txn)
{
    int  rc;

    rc = ngx_http_loyalty_store_live(store);

    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);

    if (rc != 0) {
        return rc;
    }

    return ngx_http_loyalty_store_live(store);
}


static int
ngx_http_loyalty_store_live(ngx_http_loyalty_store_t *store)
{
    ngx_file_info_t  fi;

    if (ngx_file_info(store->data_path, &fi) == NGX_FILE_ERROR) {
        return NGX_HTTP_LOYALTY_STORE_GONE;
    }

    if (fi.st_ino != store->ino || fi.st_dev != store->dev) {
        return NGX_HTTP_LOYALTY_STORE_REPLACED;
    }

    return 0;
}


/*
 * Back in the event loop after a write that was not committed: puts the
 * worker's environment right if it can.  NGX_OK: write again now;
 * NGX_BUSY: other writes use the environment, try again later;
 * NGX_DECLINED: not now (the store is gone, or cannot be opened or grown;
 * logged).
 */

ngx_int_t
ngx_http_loyalty_store_recover(ngx_http_loyalty_store_t *store, int rc,
    size_t need, ngx_log_t *log)
{
    switch (rc) {

    case NGX_HTTP_LOYALTY_STORE_GONE:
    case NGX_HTTP_LOYALTY_STORE_REPLACED:
        rc = ngx_http_loyalty_store_replaced(store, log);
        return (rc == NGX_OK || rc == NGX_BUSY) ? rc : NGX_DECLINED;

    case MDB_MAP_RESIZED:
        if (store->busy) {
            return NGX_BUSY;
        }

        return ngx_http_loyalty_store_remap(store, log) == NGX_OK
               ? NGX_OK : NGX_DECLINED;

    case MDB_MAP_FULL:
        if (store->busy) {
            return NGX_BUSY;
        }

        return ngx_http_loyalty_store_grow(store, need, log);

    default:
        return NGX_DECLINED;
    }
}


const char *
ngx_http_loyalty_store_strerror(int rc)
{
    switch (rc) {

    case NGX_HTTP_LOYALTY_STORE_GONE:
        return "the store was removed";

    case NGX_HTTP_LOYALTY_STORE_REPLACED:
        return "the store was replaced on disk";

    default:
        return mdb_strerror(rc);
    }
}


/*
 * The map is full: one size for the store, whichever worker finds it
 * full.  The size in the store's meta page is taken up first: a process
 * that grew the map before wrote it there with its next commit.  Only if
 * that is no larger than this worker's map is the map doubled (until
 * need more bytes fit), and the write that found it full, done again at
 * once, records the new size for the others.  No transaction of this
 * process may be active: the caller's is reset, no write is in the pool.
 */

static ngx_int_t
ngx_http_loyalty_store_grow(ngx_http_loyalty_store_t *store, size_t need,
    ngx_log_t *log)
{
    int          rc;
    size_t       before, shared, size, used;
    MDB_envinfo  info;

    before = 0;
    shared = 0;
    size = 0;
    used = 0;

    rc = mdb_env_info(store->st.env, &info);

    mdb_txn_abort(store->txn);
    store->txn = NULL;

    if (rc == 0) {
        before = info.me_mapsize;
        rc = mdb_env_set_mapsize(store->st.env, 0);
    }

    if (rc == 0) {
        rc = loyalty_store_usage(&store->st, &shared, &used);
    }

    if (rc == 0) {
        /* nobody grew it before: this worker does */
        size = (shared > before) ? shared : before * 2;

        while (used + need > size) {
            size *= 2;
        }

        if (size != shared) {
            rc = mdb_env_set_mapsize(store->st.env, size);
        }
    }

    if (rc == 0) {
        rc = mdb_txn_begin(store->st.env, NULL, MDB_RDONLY, &store->txn);
    }

    if (rc != 0) {
        ngx_http_loyalty_store_lost(store, log, "full, cannot grow it", rc);
        return NGX_DECLINED;
    }

    mdb_txn_reset(store->txn);

    if (size == shared) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "loyalty_store \"%s\": full, took up the map size "
                      "another process set, %uz KB", store->path,
                      size >> 10);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "loyalty_store \"%s\": full, grown from %uz KB to "
                      "%uz KB", store->path, before >> 10, size >> 10);
    }

    return NGX_OK;
}
