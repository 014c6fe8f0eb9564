/*
 * nginx-loyalty: member prices.  The price API answers a list of SKUs as
 * JSON; the price variables carry one SKU's price into headers, SSI or an
 * upstream.  Both resolve the visitor's tier once, read the price records
 * in place, and keep the privilege guard: a higher-ranked tier never pays
 * more than a lower one, nobody more than retail.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_SKUS_MAX     100
#define NGX_HTTP_LOYALTY_SKU_ARG_MAX  (NGX_HTTP_LOYALTY_SKUS_MAX \
                                       * (LOYALTY_ID_MAX + 1))

/* {"sku":"","retail":,"price":,"saved":,"label":"","currency":"CNY"}, */
#define NGX_HTTP_LOYALTY_ITEM_LEN     (70 + LOYALTY_ID_MAX + 3 * NGX_INT64_LEN)


typedef struct {
    ngx_http_loyalty_store_t  *store;
    MDB_txn                   *txn;
    const loyalty_tierset_t   *tiers;
    int                        tier;    /* index in tiers, -1: public */
} ngx_http_loyalty_pricing_t;


static ngx_int_t ngx_http_loyalty_price_begin(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr);
static ngx_int_t ngx_http_loyalty_price_get(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, loyalty_price_t *p,
    int64_t *price);
static ngx_int_t ngx_http_loyalty_price_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_loyalty_price_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *msg);


/* clamps by this worker, for the log */
static ngx_uint_t  ngx_http_loyalty_price_clamps;


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
ngx_http_loyalty_price_handler(ngx_http_request_t *r)
{
    u_char                       *p, *last, *body, *label;
    size_t                        len, n, label_len, label_esc;
    ngx_int_t                     rc;
    ngx_str_t                     arg, list, sku, *tier;
    ngx_uint_t                    nskus, i;
    ngx_str_t                     tier_name;
    int64_t                       price;
    loyalty_price_t               rec;
    ngx_http_loyalty_ctx_t       *ctx;
    ngx_http_loyalty_loc_conf_t  *llcf;
    ngx_http_loyalty_pricing_t    pr;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "sku", 3, &arg) != NGX_OK
        || arg.len == 0)
    {
        return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST,
                                            "the sku argument is required");
    }

    if (arg.len > NGX_HTTP_LOYALTY_SKU_ARG_MAX * 3) {
        return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST,
                                            "the sku argument is too long");
    }

    /* clients may percent-encode the commas */
    list.data = ngx_pnalloc(r->pool, arg.len);
    if (list.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = list.data;
    last = arg.data;
    ngx_unescape_uri(&p, &last, arg.len, 0);
    list.len = p - list.data;

    if (list.len > NGX_HTTP_LOYALTY_SKU_ARG_MAX) {
        return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST,
                                            "the sku argument is too long");
    }

    nskus = 1;
    for (p = list.data; p < list.data + list.len; p++) {
        if (*p == ',') {
            nskus++;
        }
    }

    if (nskus > NGX_HTTP_LOYALTY_SKUS_MAX) {
        return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST,
                                            "more than 100 skus");
    }

    for (p = list.data, i = 0; i < nskus; i++, p = last + 1) {
        last = ngx_strlchr(p, list.data + list.len, ',');
        if (last == NULL) {
            last = list.data + list.len;
        }

        if (!loyalty_valid_id((char *) p, last - p)) {
            return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST,
                       last == p ? "an empty sku"
                                 : "a sku is not 1-64 characters of "
                                   "[A-Za-z0-9_.-]");
        }
    }

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_loyalty_price_begin(r, &pr) != NGX_OK) {
        return ngx_http_loyalty_price_error(r,
                                            NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "the store is unavailable");
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    /* the tier of this snapshot: it may have gone since identification */
    if (pr.tier >= 0) {
        tier_name.data = (u_char *) pr.tiers->tiers[pr.tier].name;
        tier_name.len = pr.tiers->tiers[pr.tier].name_len;
        label = (u_char *) pr.tiers->tiers[pr.tier].label;
        label_len = pr.tiers->tiers[pr.tier].label_len;

    } else {
        ngx_str_set(&tier_name, "public");
        label = (u_char *) "";
        label_len = 0;
    }

    tier = &tier_name;

    label_esc = label_len + ngx_escape_json(NULL, label, label_len);

    len = sizeof("{\"tier\":\"\",\"currency\":\"\",\"items\":[]}\n") - 1
          + tier->len + llcf->currency.len
          + nskus * (NGX_HTTP_LOYALTY_ITEM_LEN + label_esc);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        ngx_http_loyalty_store_end(pr.store);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"tier\":\"%V\",\"currency\":\"%V\",\"items\":[",
                    tier, &llcf->currency);

    for (sku.data = list.data, i = 0; i < nskus; i++) {
        last = ngx_strlchr(sku.data, list.data + list.len, ',');
        sku.len = (last ? last : list.data + list.len) - sku.data;

        if (i) {
            *p++ = ',';
        }

        rc = ngx_http_loyalty_price_get(r, &pr, &sku, &rec, &price);

        if (rc == NGX_DECLINED) {
            p = ngx_sprintf(p, "{\"sku\":\"%V\",\"error\":\"unknown sku\"}",
                            &sku);

        } else {
            p = ngx_sprintf(p, "{\"sku\":\"%V\",\"retail\":%L,\"price\":%L,"
                            "\"saved\":%L,\"label\":\"", &sku, rec.retail,
                            price, rec.retail - price);
            p = (u_char *) ngx_escape_json(p, label, label_len);
            *p++ = '"';

            if (rec.currency[0]
                && ngx_memcmp(rec.currency, llcf->currency.data, 3) != 0)
            {
                p = ngx_sprintf(p, ",\"currency\":\"%*s\"", (size_t) 3,
                                rec.currency);
            }

            *p++ = '}';
        }

        sku.data += sku.len + 1;
    }

    ngx_http_loyalty_store_end(pr.store);

    p = ngx_cpymem(p, "]}\n", 3);
    n = p - body;

    return ngx_http_loyalty_price_send(r, NGX_HTTP_OK, body, n);
}


/* the price of the location's loyalty_price_sku, once per request */
ngx_int_t
ngx_http_loyalty_price_variable(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_str_t                     sku;
    loyalty_price_t               rec;
    ngx_http_loyalty_loc_conf_t  *llcf;
    ngx_http_loyalty_pricing_t    pr;

    if (ctx->price_r == r) {
        return ctx->price_found ? NGX_OK : NGX_DECLINED;
    }

    ctx->price_r = r;
    ctx->price_found = 0;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (llcf->price_sku == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_complex_value(r, llcf->price_sku, &sku) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!loyalty_valid_id((char *) sku.data, sku.len)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "loyalty: price sku \"%V\" is not valid", &sku);
        return NGX_DECLINED;
    }

    if (ngx_http_loyalty_price_begin(r, &pr) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = ngx_http_loyalty_price_get(r, &pr, &sku, &rec, &ctx->price);

    ngx_http_loyalty_store_end(pr.store);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    ctx->retail = rec.retail;
    ctx->price_found = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_price_begin(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr)
{
    ngx_str_t               *tier;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    pr->store = ngx_http_loyalty_store_get(r);

    pr->txn = ngx_http_loyalty_store_begin(pr->store, r->connection->log);
    if (pr->txn == NULL) {
        return NGX_ERROR;
    }

    pr->tiers = ngx_http_loyalty_store_tiers(pr->store, r->connection->log);
    if (pr->tiers == NULL) {
        ngx_http_loyalty_store_end(pr->store);
        return NGX_ERROR;
    }

    tier = ngx_http_loyalty_price_tier(ctx);

    pr->tier = (tier == &ngx_http_loyalty_public)
               ? -1
               : loyalty_tierset_find(pr->tiers, (char *) tier->data,
                                      tier->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_price_get(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, loyalty_price_t *p,
    int64_t *price)
{
    int                        rc, clamped;
    int64_t                    raw;
    MDB_val                    key, val;
    ngx_http_loyalty_store_t  *store;

    store = pr->store;

    key.mv_data = sku->data;
    key.mv_size = sku->len;

    rc = mdb_get(pr->txn, store->st.dbi[LOYALTY_DB_PRICES], &key, &val);

    if (rc != 0) {
        if (rc != MDB_NOTFOUND) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": mdb_get(\"%V\") failed: %s",
                          store->path, sku, mdb_strerror(rc));
        }

        return NGX_DECLINED;
    }

    if (loyalty_price_decode(val.mv_data, val.mv_size, p) != 0) {
        if (ngx_http_loyalty_store_problem(store, NGX_HTTP_LOYALTY_DAMAGED))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": price \"%V\" does not "
                          "decode (%ui damaged records seen by this worker)",
                          store->path, sku,
                          store->problems[NGX_HTTP_LOYALTY_DAMAGED]);
        }
        return NGX_DECLINED;
    }

    if (pr->tier < 0) {
        *price = p->retail;
        return NGX_OK;
    }

    raw = loyalty_price_raw(p, &pr->tiers->tiers[pr->tier]);
    *price = loyalty_price_guard(p, pr->tiers, pr->tier, raw, &clamped);

    if (clamped) {
        ngx_http_loyalty_price_clamps++;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: privilege guard lowered sku \"%V\" for tier "
                      "\"%*s\" from %L to %L (%ui in this worker)", sku,
                      pr->tiers->tiers[pr->tier].name_len,
                      pr->tiers->tiers[pr->tier].name, raw, *price,
                      ngx_http_loyalty_price_clamps);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_price_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    u_char      *body, *p;
    size_t       len;
    ngx_uint_t   level;

    /* a client's mistake is not the operator's problem */
    level = (status == NGX_HTTP_BAD_REQUEST) ? NGX_LOG_INFO : NGX_LOG_ERR;

    ngx_log_error(level, r->connection->log, 0, "loyalty price api: %s", msg);

    len = sizeof("{\"error\":\"\"}\n") - 1 + ngx_strlen(msg);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"error\":\"%s\"}\n", msg);

    return ngx_http_loyalty_price_send(r, status, body, p - body);
}


static ngx_int_t
ngx_http_loyalty_price_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    /* a price depends on who asks: shared caches must not keep it */
    if (ngx_http_loyalty_add_header(r, "Cache-Control", (u_char *) "private",
                                    sizeof("private") - 1)
           != NGX_OK
        || ngx_http_loyalty_add_header(r, "Vary", (u_char *) "Cookie",
                                       sizeof("Cookie") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_send_json(r, status, body, len);
}
