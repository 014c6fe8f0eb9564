/*
 * nginx-loyalty: who the visitor is.
 *
 * The member cookie is verified (HMAC-SHA256, constant-time compare) and
 * the member and their tier are read in place from the store, once per
 * request, the first time a variable asks.  Bad cookies make the visitor
 * anonymous and are logged at info at most, so that a flood of them
 * cannot fill the error log.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


/* not inlined: a returning visitor's path is spared its frame */
static ngx_http_loyalty_ctx_t *ngx_http_loyalty_identify_cookie(
    ngx_http_request_t *r, ngx_http_loyalty_ctx_t *ctx,
    ngx_http_loyalty_store_t *store, ngx_str_t *value, ngx_int_t rc,
    int64_t expires) __attribute__((noinline));
static void ngx_http_loyalty_identity_refused(ngx_http_request_t *r,
    loyalty_keyring_t *keys, ngx_str_t *value);
static ngx_int_t ngx_http_loyalty_lookup(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn,
    ngx_http_loyalty_ctx_t *ctx, const char *id, size_t id_len);


/*
 * The first time something asks (ngx_http_loyalty_identify()): the
 * context is made, and a returning visitor's cookie found in the member
 * cache; any other cookie is verified (ngx_http_loyalty_identify_cookie()).
 */
ngx_http_loyalty_ctx_t *
ngx_http_loyalty_identify_first(ngx_http_request_t *r)
{
    int64_t                         expires;
    ngx_int_t                       rc;
    ngx_str_t                       value;
    ngx_http_request_t             *mr;
    ngx_http_loyalty_ctx_t         *ctx;
    ngx_http_loyalty_store_t       *store;
    ngx_http_loyalty_loc_conf_t    *llcf;
    ngx_http_loyalty_main_conf_t   *lmcf;

    mr = r->main;

    ctx = ngx_palloc(mr->pool, sizeof(ngx_http_loyalty_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    /*
     * Zeroed in line from lifecycle up to the tier's bytes (read through
     * ctx->tier): the identity's fields are set by whoever identifies.
     */
    ngx_memzero(&ctx->lifecycle, offsetof(ngx_http_loyalty_ctx_t, tier_data)
                                 - offsetof(ngx_http_loyalty_ctx_t,
                                            lifecycle));

    ngx_http_set_ctx(mr, ctx, ngx_http_loyalty_module);

    /* the main request's location decides, whoever asks first */
    llcf = ngx_http_get_module_loc_conf(mr, ngx_http_loyalty_module);

    if (ngx_http_loyalty_get_cookie(mr, &llcf->member_cookie, &value)
        != NGX_OK)
    {
        ngx_http_loyalty_ctx_anonymous(ctx, NGX_HTTP_LOYALTY_ID_NONE);
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_IDENTITY);
        return ctx;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /*
     * A cookie that cannot verify need not touch the store; a cached one
     * needs no read transaction (see ngx_http_loyalty_store_peek()).
     */
    store = (lmcf->keys && value.len <= LOYALTY_COOKIE_MAX
             && ngx_http_loyalty_store_peek(lmcf->store, r->connection->log)
                == NGX_OK)
            ? lmcf->store : NULL;

    expires = 0;

    rc = store ? ngx_http_loyalty_cache_get(store, &value, ctx, &expires)
               : NGX_DECLINED;

    if (rc != NGX_OK || expires < ngx_time()) {
        return ngx_http_loyalty_identify_cookie(r, ctx, store, &value, rc,
                                                expires);
    }

    /*
     * A returning visitor: the cache's answer, ctx filled, as it was.
     * Whoever reads the store next in this call may take up the snapshot
     * just peeked at (ngx_http_loyalty_identify_peeked()): nothing else
     * touched the store since.
     */
    ctx->peeked = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "loyalty: member cookie for \"%*s\" cached",
                   (size_t) (ngx_strlchr(value.data, value.data + value.len,
                                         '~')
                             - value.data),
                   value.data);

    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_IDENTITY + ctx->identity);

    return ctx;
}


/*
 * A cookie the member cache did not answer for (rc of
 * ngx_http_loyalty_cache_get()): verified, unless the cache knows it
 * verified (NGX_AGAIN: the member is read again; an expired one), and its
 * member read from the store (store NULL: none to read).
 */
static ngx_http_loyalty_ctx_t *
ngx_http_loyalty_identify_cookie(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx, ngx_http_loyalty_store_t *store,
    ngx_str_t *value, ngx_int_t rc, int64_t expires)
{
    size_t                          id_len;
    MDB_txn                        *txn;
    const char                     *id;
    loyalty_cookie_status_e         status;
    ngx_http_loyalty_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /* a cache hit filled the identity (an expired cookie's, read below) */
    if (rc != NGX_OK) {
        ngx_http_loyalty_ctx_anonymous(ctx, NGX_HTTP_LOYALTY_ID_NONE);
    }

    if (rc == NGX_OK || rc == NGX_AGAIN) {
        status = (expires < ngx_time()) ? LOYALTY_COOKIE_EXPIRED
                                        : LOYALTY_COOKIE_VALID;
        /* a cached cookie verified: its id runs to the first "~" */
        id = (char *) value->data;
        id_len = (rc == NGX_OK && ctx->identity == NGX_HTTP_LOYALTY_ID_VALID)
                 ? ctx->member.len
                 : (size_t) (ngx_strlchr(value->data,
                                         value->data + value->len, '~')
                             - value->data);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "loyalty: member cookie for \"%*s\" cached%s",
                       id_len, id, rc == NGX_OK ? "" : ", member changed");

    } else {
        status = loyalty_member_cookie_verify(lmcf->keys,
                                              (char *) value->data,
                                              value->len, ngx_time(), &id,
                                              &id_len, &expires);
    }

    if (rc != NGX_OK && status == LOYALTY_COOKIE_VALID) {
        ctx->identity = NGX_HTTP_LOYALTY_ID_UNKNOWN;

        txn = store ? ngx_http_loyalty_store_begin(store, r->connection->log)
                    : NULL;

        if (txn) {
            if (ngx_http_loyalty_lookup(r, store, txn, ctx, id, id_len)
                == NGX_OK)
            {
                ngx_http_loyalty_cache_put(store, value, expires, ctx);
            }

            ngx_http_loyalty_store_end(store);
        }
    }

    switch (status) {

    case LOYALTY_COOKIE_VALID:
        break;

    case LOYALTY_COOKIE_EXPIRED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: expired member cookie for \"%*s\"",
                      id_len, id);
        ngx_http_loyalty_ctx_anonymous(ctx, NGX_HTTP_LOYALTY_ID_EXPIRED);
        break;

    default:
        ngx_http_loyalty_identity_refused(r, lmcf->keys, value);
        ctx->identity = NGX_HTTP_LOYALTY_ID_INVALID;
        break;
    }

    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_IDENTITY + ctx->identity);

    return ctx;
}


/* a refused cookie, logged with why at info: a flood fills no log */
static void
ngx_http_loyalty_identity_refused(ngx_http_request_t *r,
    loyalty_keyring_t *keys, ngx_str_t *value)
{
    if (keys == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: invalid member cookie (no loyalty_keys)");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: invalid member cookie: %s",
                  loyalty_member_cookie_why(keys, (char *) value->data,
                                            value->len, ngx_time()));
}


/*
 * The first cookie of that name in the request's Cookie headers, as
 * nginx's own parser finds it (name matched without regard to case,
 * spaces around "=", the value up to ";", pairs split at ";" or ",").
 * Up to 1.29.5 nginx parses the same way, byte by byte: this one
 * compares the name with memcmp() first and lets memchr() find the ends,
 * for an eighth of the instructions.
 */

#if (nginx_version < 1029006)

static ngx_int_t
ngx_http_loyalty_cookie_in(ngx_str_t *header, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *start, *end, *last, *p;

    if (name->len > header->len) {
        return NGX_DECLINED;
    }

    start = header->data;
    end = start + header->len;

    while (start < end) {

        /* what ngx_strncasecmp() finds, its usual answer tried first */
        if ((size_t) (end - start) < name->len
            || (name->len && (start[0] | 0x20) != (name->data[0] | 0x20))
            || (!ngx_http_loyalty_equal(start, name->data, name->len)
                && ngx_strncasecmp(start, name->data, name->len) != 0))
        {
            goto skip;
        }

        for (start += name->len; start < end && *start == ' '; start++) {
            /* void */
        }

        /* as nginx: a character other than "=" is passed over too */
        if (start == end || *start++ != '=') {
            goto skip;
        }

        while (start < end && *start == ' ') {
            start++;
        }

        p = memchr(start, ';', end - start);

        value->data = start;
        value->len = (p ? p : end) - start;

        return NGX_OK;

    skip:

        /* past the first ";" or ",", whichever comes first */
        p = memchr(start, ';', end - start);
        last = memchr(start, ',', (p ? p : end) - start);
        p = last ? last : p;
        start = p ? p + 1 : end;

        while (start < end && *start == ' ') {
            start++;
        }
    }

    return NGX_DECLINED;
}

#endif


ngx_int_t
ngx_http_loyalty_get_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    /* the cookie parser's interface changed in 1.23.0 and in 1.29.6 */

#if (nginx_version >= 1029006)

    if (ngx_http_parse_cookie_lines(r, r->headers_in.cookie, name, value)
        == NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;

#elif (nginx_version >= 1023000)

    ngx_table_elt_t  *h;

    for (h = r->headers_in.cookie; h; h = h->next) {
        if (ngx_http_loyalty_cookie_in(&h->value, name, value) == NGX_OK) {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;

#else

    ngx_uint_t         i;
    ngx_table_elt_t  **h;

    h = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        if (ngx_http_loyalty_cookie_in(&h[i]->value, name, value) == NGX_OK)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;

#endif
}


/*
 * ngx_strncasecmp() == 0 in line, for a name without NUL bytes (nginx's
 * stops at one): only ASCII letters are folded, as nginx folds them.
 */
static ngx_inline ngx_uint_t
ngx_http_loyalty_caseless(u_char *a, u_char *name, size_t n)
{
    u_char  c, d;

    while (n--) {
        c = *a++;
        d = *name++;

        if (c != d) {
            c = (c >= 'A' && c <= 'Z') ? (c | 0x20) : c;
            d = (d >= 'A' && d <= 'Z') ? (d | 0x20) : d;

            if (c != d) {
                return 0;
            }
        }
    }

    return 1;
}


/*
 * ngx_http_arg() as nginx has it (the first NAME=VALUE, the name matched
 * without regard to case at the start of the arguments or after "&"),
 * looking only where an argument starts: nginx searches the name all
 * through the arguments, a thousand instructions for a long query.
 */
ngx_int_t
ngx_http_loyalty_arg(ngx_http_request_t *r, u_char *name, size_t len,
    ngx_str_t *value)
{
    u_char  *p, *last, *amp;

    if (r->args.len == 0) {
        return NGX_DECLINED;    /* and args.data may be NULL */
    }

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        if ((size_t) (last - p) > len && p[len] == '='
            && ngx_http_loyalty_caseless(p, name, len))
        {
            value->data = p + len + 1;
            amp = memchr(value->data, '&', last - value->data);
            value->len = (amp ? amp : last) - value->data;
            return NGX_OK;
        }

        amp = memchr(p, '&', last - p);
        if (amp == NULL) {
            break;
        }

        p = amp + 1;
    }

    return NGX_DECLINED;
}


/*
 * Within the transaction begun by the caller.  NGX_OK: the store's answer
 * (found, absent or damaged), which holds for the whole snapshot;
 * NGX_ERROR: a failure of the moment, not to be remembered.
 */
static ngx_int_t
ngx_http_loyalty_lookup(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn,
    ngx_http_loyalty_ctx_t *ctx, const char *id, size_t id_len)
{
    int                       rc, i;
    size_t                    tier_len;
    uint8_t                   stage;
    int64_t                   points;
    uint16_t                  flags;
    MDB_val                   val;
    const char               *tier;
    const loyalty_tierset_t  *tiers;

    rc = loyalty_member_find(txn, &store->st, id, id_len, &val);

    if (rc == MDB_NOTFOUND) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "loyalty: member \"%*s\" not in store", id_len, id);
        return NGX_OK;
    }

    if (rc != 0) {
        return ngx_http_loyalty_store_read_failed(store, r->connection->log,
                                                  id, id_len, rc);
    }

    if (loyalty_member_peek(val.mv_data, val.mv_size, &stage, &flags,
                            &points, &tier, &tier_len)
        != 0)
    {
        if (ngx_http_loyalty_store_problem(store, NGX_HTTP_LOYALTY_DAMAGED))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": member \"%*s\" does not "
                          "decode (%ui damaged records seen by this worker)",
                          store->path, id_len, id,
                          store->problems[NGX_HTTP_LOYALTY_DAMAGED]);
        }
        return NGX_OK;
    }

    /* the id is the cookie's, the tier copied out of the map */
    ctx->identity = NGX_HTTP_LOYALTY_ID_VALID;
    ctx->member.data = (u_char *) id;
    ctx->member.len = id_len;
    ctx->tier.data = ctx->tier_data;
    ctx->tier.len = tier_len;
    ngx_memcpy(ctx->tier_data, tier, tier_len);
    ctx->stage = stage;
    ctx->points = points;
    ctx->blocked = (flags & LOYALTY_MEMBER_BLOCKED) ? 1 : 0;

    tiers = ngx_http_loyalty_store_tiers(store, r->connection->log);
    if (tiers == NULL) {
        return NGX_ERROR;
    }

    i = loyalty_tierset_find(tiers, tier, tier_len);

    if (i >= 0) {
        ctx->rank = tiers->tiers[i].rank;
        ctx->has_rank = 1;

    } else if (ngx_http_loyalty_store_problem(store,
                                              NGX_HTTP_LOYALTY_MISSING_TIER))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "loyalty_store \"%s\": tier \"%V\" of member \"%V\" "
                      "is missing (%ui members without their tier seen by "
                      "this worker)", store->path, &ctx->tier, &ctx->member,
                      store->problems[NGX_HTTP_LOYALTY_MISSING_TIER]);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "loyalty: member \"%V\" tier \"%V\" stage %ui rank %D",
                   &ctx->member, &ctx->tier, (ngx_uint_t) stage, ctx->rank);

    return NGX_OK;
}
