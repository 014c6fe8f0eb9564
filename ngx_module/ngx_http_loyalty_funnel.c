/*
 * nginx-loyalty: where the visitor stands beyond their stage: lifecycle
 * (active, at risk, dormant, lost) and segment, by the store's rules and
 * the time of the request.  Each worker keeps the rules parsed once per
 * change of the store (click flushes aside), and computes both from the
 * member's record when a variable first asks.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_rules.h"


static const loyalty_rules_t *ngx_http_loyalty_funnel_rules(
    ngx_http_loyalty_store_t *store, MDB_txn *txn, ngx_log_t *log);


ngx_int_t
ngx_http_loyalty_funnel(ngx_http_request_t *r, ngx_http_loyalty_ctx_t *ctx)
{
    int                        rc;
    size_t                     len;
    MDB_txn                   *txn;
    const char                *name;
    loyalty_member_t           m;
    const loyalty_rules_t     *rules;
    ngx_http_loyalty_store_t  *store;

    if (ctx->funnel_done) {
        return NGX_OK;
    }

    ctx->funnel_done = 1;
    ctx->lifecycle = LOYALTY_LIFECYCLE_NONE;
    ngx_str_null(&ctx->segment);

    if (ctx->identity != NGX_HTTP_LOYALTY_ID_VALID) {
        return NGX_OK;
    }

    store = ngx_http_loyalty_store_get(r);

    txn = ngx_http_loyalty_store_begin(store, r->connection->log);
    if (txn == NULL) {
        return NGX_OK;
    }

    rules = ngx_http_loyalty_funnel_rules(store, txn, r->connection->log);

    rc = (rules == NULL)
         ? MDB_NOTFOUND
         : loyalty_member_get(txn, &store->st,
                              (const char *) ctx->member.data,
                              ctx->member.len, &m);

    if (rc == 0) {
        ctx->lifecycle = loyalty_lifecycle(rules, &m, ngx_time());

        if (loyalty_segment(rules, &m, ngx_time(), &name, &len) == 0) {
            ctx->segment.data = ngx_pnalloc(r->main->pool, len);
            if (ctx->segment.data == NULL) {
                ngx_http_loyalty_store_end(store);
                return NGX_ERROR;
            }

            ngx_memcpy(ctx->segment.data, name, len);
            ctx->segment.len = len;
        }

    } else if (rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "loyalty_store \"%s\": mdb_get(\"%V\") failed: %s",
                      store->path, &ctx->member, mdb_strerror(rc));
    }

    ngx_http_loyalty_store_end(store);

    return NGX_OK;
}


/* the rules as of this transaction's data; NULL when the store has none */
static const loyalty_rules_t *
ngx_http_loyalty_funnel_rules(ngx_http_loyalty_store_t *store, MDB_txn *txn,
    ngx_log_t *log)
{
    int  rc;

    if (store->rules_txnid != 0 && store->rules_txnid >= store->epoch
        && store->rules_gen == store->gen)
    {
        return store->rules_ok ? store->rules : NULL;
    }

    if (store->rules == NULL) {
        store->rules = ngx_alloc(sizeof(loyalty_rules_t), log);
        if (store->rules == NULL) {
            return NULL;
        }
    }

    store->rules_txnid = mdb_txn_id(txn);
    store->rules_gen = store->gen;

    rc = loyalty_rules_load(&store->st, txn, store->rules);

    store->rules_ok = (rc == 0);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_store \"%s\": cannot read its rules: %s",
                      store->path, rc == MDB_CORRUPTED
                                   ? "they do not validate"
                                   : mdb_strerror(rc));
    }

    return store->rules_ok ? store->rules : NULL;
}
