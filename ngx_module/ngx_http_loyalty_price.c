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
#include "ngx_http_loyalty_price.h"
#include "ngx_http_loyalty_lua.h"
#include "loyalty_lua_hook.h"


#define NGX_HTTP_LOYALTY_SKUS_MAX     100
#define NGX_HTTP_LOYALTY_SKU_ARG_MAX  (NGX_HTTP_LOYALTY_SKUS_MAX \
                                       * (LOYALTY_ID_MAX + 1))

/* a line of a cart: sku:qty */
#define NGX_HTTP_LOYALTY_QTY_MAX      1000

/*
 * {"sku":"","qty":,"retail":,"price":,"saved":,"label":"","promo":"",
 * "currency":"CNY"},  without the sku, the tier's label and the promo
 * label (a price hook's only: escaped, 6 bytes a byte at most)
 */
#define NGX_HTTP_LOYALTY_ITEM_LEN     (90 + 4 * NGX_INT64_LEN)
#define NGX_HTTP_LOYALTY_PROMO_LEN    (6 * LOYALTY_LUA_LABEL_MAX)


/*
 * a line of the sku argument: SKU, or SKU:QTY (qty 0: none given), and
 * the SKU's ngx_http_loyalty_price_hash()
 */
typedef struct {
    ngx_str_t                  sku;
    int64_t                    qty;
    ngx_uint_t                 hash;
} ngx_http_loyalty_price_ask_t;

typedef struct ngx_http_loyalty_price_memo_s  ngx_http_loyalty_price_memo_t;


static ngx_int_t ngx_http_loyalty_price_parse(ngx_http_request_t *r,
    ngx_str_t *list, const char **why);
static ngx_int_t ngx_http_loyalty_price_split(ngx_str_t *list,
    ngx_http_loyalty_price_ask_t *asks, ngx_uint_t *nskus);
static ngx_int_t ngx_http_loyalty_price_count(ngx_str_t *list,
    ngx_uint_t *nskus, const char **why);
static ngx_int_t ngx_http_loyalty_price_validate(ngx_str_t *list,
    ngx_http_loyalty_price_ask_t *asks, ngx_uint_t nskus, const char **why);
static ngx_int_t ngx_http_loyalty_price_render(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_price_ask_t *asks,
    ngx_uint_t nskus, ngx_str_t *body);
static u_char *ngx_http_loyalty_price_item(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_loc_conf_t *llcf,
    u_char *p, ngx_http_loyalty_price_ask_t *ask, ngx_str_t *label);
static void ngx_http_loyalty_price_line(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, ngx_uint_t hash,
    ngx_http_loyalty_price_info_t *pi, int64_t qty, int64_t *total,
    ngx_str_t *promo);
static ngx_int_t ngx_http_loyalty_price_other(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_lua_price_t *lp,
    ngx_uint_t hash, int tier, int64_t retail, int64_t *total,
    ngx_str_t *promo);
static ngx_http_loyalty_price_memo_t *ngx_http_loyalty_price_memo_get(
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_lua_price_t *lp,
    ngx_uint_t hash, int tier, size_t *txnid, ngx_uint_t *hit);
static void ngx_http_loyalty_price_memo_set(ngx_http_loyalty_price_memo_t *m,
    size_t txnid, ngx_http_loyalty_lua_price_t *lp, int tier, int64_t total,
    ngx_str_t *promo);
static ngx_int_t ngx_http_loyalty_price_hook(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_lua_price_t *lp,
    int tier, int64_t unit, int64_t *total, ngx_str_t *promo);
static ngx_int_t ngx_http_loyalty_price_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_loyalty_price_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *msg);


/*
 * What the price hook said the public, or a tier, pays for a line, kept
 * for the rest of the second and the store's snapshot: every member's
 * request asks it of each tier below theirs.  An entry for the tiers
 * below one (NGX_HTTP_LOYALTY_PRICE_BELOW) says that the hook lowered
 * the price of none of them: nothing for the guard to do.
 */
struct ngx_http_loyalty_price_memo_s {
    time_t                     sec;
    size_t                     txnid;
    int64_t                    qty;
    int64_t                    total;       /* -1: no lower price */
    int                        tier;
    u_char                     sku_len;
    u_char                     label_len;
    u_char                     sku[LOYALTY_ID_MAX];
    u_char                     label[LOYALTY_LUA_LABEL_MAX];
};

#define NGX_HTTP_LOYALTY_PRICE_MEMO  512
/* the memo's tier of the tiers below tier, never a tier (-1: public) */
#define NGX_HTTP_LOYALTY_PRICE_BELOW(tier)  (-2 - (tier))


static ngx_http_loyalty_price_memo_t
    ngx_http_loyalty_price_memo[NGX_HTTP_LOYALTY_PRICE_MEMO];


/* the price API: GET ?sku=A,B:QTY,... parsed, validated, rendered */
ngx_int_t
ngx_http_loyalty_price_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     list, body;
    ngx_uint_t                    nskus, peeked;
    const char                   *why;
    ngx_http_loyalty_pricing_t    pr;
    ngx_http_loyalty_price_ask_t  asks[NGX_HTTP_LOYALTY_SKUS_MAX];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    nskus = 0;
    rc = ngx_http_loyalty_price_parse(r, &list, &why);

    if (rc == NGX_OK
        && ngx_http_loyalty_price_split(&list, asks, &nskus) != NGX_OK)
    {
        /* not a plain list: the lines counted and checked one by one */
        rc = ngx_http_loyalty_price_count(&list, &nskus, &why);

        if (rc == NGX_OK) {
            rc = ngx_http_loyalty_price_validate(&list, asks, nskus, &why);
        }
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_loyalty_price_error(r, NGX_HTTP_BAD_REQUEST, why);
    }

    if (ngx_http_loyalty_identify_peeked(r, &peeked) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_loyalty_price_begin(r, &pr,
                                     peeked ? NGX_HTTP_LOYALTY_PRICE_PEEKED
                                            : NGX_HTTP_LOYALTY_PRICE_LAZY)
        != NGX_OK)
    {
        return ngx_http_loyalty_price_error(r,
                                            NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "the store is unavailable");
    }

    rc = ngx_http_loyalty_price_render(r, &pr, asks, nskus, &body);

    if (rc == NGX_AGAIN) {
        /* the store changed before the first read: all from one snapshot */
        if (ngx_http_loyalty_price_begin(r, &pr, 0) != NGX_OK) {
            return ngx_http_loyalty_price_error(r,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                "the store is unavailable");
        }

        rc = ngx_http_loyalty_price_render(r, &pr, asks, nskus, &body);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    /* sent once: the output filter's NGX_AGAIN is a slow client's */
    return ngx_http_loyalty_price_send(r, NGX_HTTP_OK, body.data, body.len);
}


#define ngx_http_loyalty_price_lit(p, s)                                      \
    ngx_cpymem(p, s, sizeof(s) - 1)


/* ngx_strlchr() by memchr(), which looks at many bytes at once */
#define ngx_http_loyalty_price_chr(p, last, c)                                \
    ((u_char *) memchr(p, c, (last) - (p)))


/*
 * The sku argument, unescaped (clients may percent-encode the commas):
 * NGX_OK, NGX_DECLINED with why, NGX_ERROR.
 */
static ngx_int_t
ngx_http_loyalty_price_parse(ngx_http_request_t *r, ngx_str_t *list,
    const char **why)
{
    u_char     *p, *last;
    ngx_str_t   arg;

    if (ngx_http_loyalty_arg(r, (u_char *) "sku", 3, &arg) != NGX_OK
        || arg.len == 0)
    {
        *why = "the sku argument is required";
        return NGX_DECLINED;
    }

    if (arg.len > NGX_HTTP_LOYALTY_SKU_ARG_MAX * 3) {
        *why = "the sku argument is too long";
        return NGX_DECLINED;
    }

    if (memchr(arg.data, '%', arg.len) == NULL) {
        /* nothing escaped: the argument as it is */
        *list = arg;

    } else {
        list->data = ngx_pnalloc(r->pool, arg.len);
        if (list->data == NULL) {
            return NGX_ERROR;
        }

        p = list->data;
        last = arg.data;
        ngx_unescape_uri(&p, &last, arg.len, 0);
        list->len = p - list->data;
    }

    if (list->len > NGX_HTTP_LOYALTY_SKU_ARG_MAX) {
        *why = "the sku argument is too long";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The lines of a plain list of up to 100 valid SKUs, each with a
 * quantity of 1 to 1000 digits or none, in one pass: NGX_OK, or
 * NGX_DECLINED for anything else, which the line-by-line checks then
 * find, or take.
 */
static ngx_int_t
ngx_http_loyalty_price_split(ngx_str_t *list,
    ngx_http_loyalty_price_ask_t *asks, ngx_uint_t *nskus)
{
    u_char      *p, *last, *start, *digits;
    int64_t      q;
    ngx_uint_t   n;

    p = list->data;
    last = p + list->len;

    for (n = 0; n < NGX_HTTP_LOYALTY_SKUS_MAX; n++) {
        /* the characters of loyalty_valid_id() */
        for (start = p; p < last && loyalty_name_chars[*p]; p++) {
            /* void */
        }

        if (p == start || p - start > LOYALTY_ID_MAX) {
            return NGX_DECLINED;
        }

        asks[n].sku.data = start;
        asks[n].sku.len = p - start;
        asks[n].hash = ngx_http_loyalty_price_hash(start, p - start);
        q = 0;

        if (p < last && *p == ':') {
            for (digits = ++p;
                 p < last && p - digits < 4 && *p >= '0' && *p <= '9';
                 p++)
            {
                q = q * 10 + (*p - '0');
            }

            if (q < 1 || q > NGX_HTTP_LOYALTY_QTY_MAX) {
                return NGX_DECLINED;
            }
        }

        asks[n].qty = q;

        if (p == last) {
            *nskus = n + 1;
            return NGX_OK;
        }

        if (*p++ != ',') {
            return NGX_DECLINED;
        }
    }

    return NGX_DECLINED;
}


/* how many lines the list has: NGX_OK, or NGX_DECLINED with why */
static ngx_int_t
ngx_http_loyalty_price_count(ngx_str_t *list, ngx_uint_t *nskus,
    const char **why)
{
    u_char  *p, *last;

    *nskus = 1;
    last = list->data + list->len;

    for (p = list->data;
         (p = ngx_http_loyalty_price_chr(p, last, ',')) != NULL;
         p++)
    {
        (*nskus)++;
    }

    if (*nskus > NGX_HTTP_LOYALTY_SKUS_MAX) {
        *why = "more than 100 skus";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * every line is SKU or SKU:QTY, split into asks: NGX_OK, or NGX_DECLINED
 * with why
 */
static ngx_int_t
ngx_http_loyalty_price_validate(ngx_str_t *list,
    ngx_http_loyalty_price_ask_t *asks, ngx_uint_t nskus, const char **why)
{
    u_char      *p, *last, *colon;
    ngx_int_t    q;
    ngx_uint_t   i;

    for (p = list->data, i = 0; i < nskus; i++, p = last + 1) {
        last = ngx_http_loyalty_price_chr(p, list->data + list->len, ',');
        if (last == NULL) {
            last = list->data + list->len;
        }

        colon = ngx_http_loyalty_price_chr(p, last, ':');
        q = 0;

        if (colon) {
            q = ngx_atoi(colon + 1, last - colon - 1);

            if (q < 1 || q > NGX_HTTP_LOYALTY_QTY_MAX) {
                *why = "a quantity is not a whole number from 1 to 1000";
                return NGX_DECLINED;
            }
        }

        asks[i].sku.data = p;
        asks[i].sku.len = (colon ? colon : last) - p;
        asks[i].qty = q;
        asks[i].hash = ngx_http_loyalty_price_hash(p, asks[i].sku.len);

        if (!loyalty_valid_id((char *) p, (colon ? colon : last) - p)) {
            *why = last == p ? "an empty sku"
                             : "a sku is not 1-64 characters of "
                               "[A-Za-z0-9_.-]";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * The answer's body, from the store's snapshot that pr began: ends it.
 * NGX_OK, NGX_AGAIN: the store changed before the first price not cached
 * was read; or NGX_HTTP_INTERNAL_SERVER_ERROR.
 */
static ngx_int_t
ngx_http_loyalty_price_render(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_price_ask_t *asks,
    ngx_uint_t nskus, ngx_str_t *out)
{
    u_char                       *p, *body;
    size_t                        len, esc, skus;
    ngx_str_t                     tier, label, escaped;
    ngx_uint_t                    i;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    /* the tier of this snapshot: it may have gone since identification */
    if (pr->tier >= 0) {
        tier.data = (u_char *) pr->tiers->tiers[pr->tier].name;
        tier.len = pr->tiers->tiers[pr->tier].name_len;
        label.data = (u_char *) pr->tiers->tiers[pr->tier].label;
        label.len = pr->tiers->tiers[pr->tier].label_len;

    } else {
        ngx_str_set(&tier, "public");
        ngx_str_set(&label, "");
    }

    esc = label.len + ngx_escape_json(NULL, label.data, label.len);

    for (skus = 0, i = 0; i < nskus; i++) {
        skus += asks[i].sku.len;
    }

    /* a body that fits the request's pool is no malloc() */
    len = sizeof("{\"tier\":\"\",\"currency\":\"\",\"items\":[]}\n") - 1
          + tier.len + llcf->currency.len + skus
          + nskus * (NGX_HTTP_LOYALTY_ITEM_LEN + esc
                     + (pr->lua ? NGX_HTTP_LOYALTY_PROMO_LEN : 0));

    /* the label escaped once, copied into every item */
    body = ngx_pnalloc(r->pool, len + esc);
    if (body == NULL) {
        ngx_http_loyalty_price_end(pr);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    escaped.data = body + len;
    escaped.len = (u_char *) ngx_escape_json(escaped.data, label.data,
                                             label.len)
                  - escaped.data;

    p = ngx_http_loyalty_price_lit(body, "{\"tier\":\"");
    p = ngx_cpymem(p, tier.data, tier.len);
    p = ngx_http_loyalty_price_lit(p, "\",\"currency\":\"");
    p = ngx_cpymem(p, llcf->currency.data, llcf->currency.len);
    p = ngx_http_loyalty_price_lit(p, "\",\"items\":[");

    for (i = 0; i < nskus; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_loyalty_price_item(r, pr, llcf, p, &asks[i], &escaped);

        if (p == NULL) {
            /* made again: the clamps are counted by the answer sent */
            pr->clamps = 0;
            ngx_http_loyalty_price_end(pr);
            return NGX_AGAIN;
        }
    }

    ngx_http_loyalty_price_end(pr);

    p = ngx_cpymem(p, "]}\n", 3);

    out->data = body;
    out->len = p - body;

    return NGX_OK;
}


/* n in decimal, as ngx_sprintf("%L") writes it, without its format */
static u_char *
ngx_http_loyalty_price_int(u_char *p, int64_t n)
{
    uint64_t  u;

    u = (uint64_t) n;

    if (n < 0) {
        *p++ = '-';
        u = (uint64_t) 0 - u;
    }

    return p + loyalty_format_u64(u, (char *) p);
}


/* "retail":R,"price":TOTAL,"saved":R-TOTAL */
u_char *
ngx_http_loyalty_price_amounts(u_char *p, int64_t retail, int64_t total)
{
    p = ngx_http_loyalty_price_lit(p, "\"retail\":");
    p = ngx_http_loyalty_price_int(p, retail);
    p = ngx_http_loyalty_price_lit(p, ",\"price\":");
    p = ngx_http_loyalty_price_int(p, total);
    p = ngx_http_loyalty_price_lit(p, ",\"saved\":");

    return ngx_http_loyalty_price_int(p, retail - total);
}


/*
 * One item of the answer; qty 0: none given, the amounts are for one.
 * label is escaped already.  A sku is of [A-Za-z0-9_.-] (validated):
 * copied as it is.  Without a price hook the cache's entry is all it
 * takes.
 */
static u_char *
ngx_http_loyalty_price_item(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_loc_conf_t *llcf,
    u_char *p, ngx_http_loyalty_price_ask_t *ask, ngx_str_t *label)
{
    int64_t                               total, n, qty;
    ngx_str_t                             promo;
    ngx_http_loyalty_price_info_t         copy;
    const ngx_http_loyalty_price_info_t  *pi;

    qty = ask->qty;

    p = ngx_http_loyalty_price_lit(p, "{\"sku\":\"");
    p = ngx_http_loyalty_copy(p, ask->sku.data, ask->sku.len);

    switch (ngx_http_loyalty_price_lookup(r, pr, &ask->sku, ask->hash,
                                          pr->tier, &pi))
    {
    case NGX_AGAIN:
        return NULL;

    case NGX_DECLINED:
        return ngx_http_loyalty_price_lit(p, "\",\"error\":\"unknown sku\"}");

    default:
        break;
    }

    n = qty ? qty : 1;
    ngx_str_null(&promo);

    if (pr->lua) {
        /* the hook's lookups of lower tiers may take the entry's place */
        copy = *pi;
        pi = &copy;
        ngx_http_loyalty_price_line(r, pr, &ask->sku, ask->hash, &copy, n,
                                    &total, &promo);

        if (pr->again) {
            return NULL;
        }

    } else {
        total = pi->price * n;
    }

    p = ngx_http_loyalty_price_lit(p, "\",");

    /* with a quantity, the amounts are the line's */
    if (qty) {
        p = ngx_http_loyalty_price_lit(p, "\"qty\":");
        p = ngx_http_loyalty_price_int(p, qty);
        *p++ = ',';
    }

    if (qty == 0 && pr->lua == NULL) {
        /* one unit, no hook: the amounts as the cache wrote them */
        p = ngx_http_loyalty_copy(p, pi->amounts, pi->amounts_len);

    } else {
        p = ngx_http_loyalty_price_amounts(p, pi->retail * n, total);
    }

    p = ngx_http_loyalty_price_lit(p, ",\"label\":\"");
    p = ngx_http_loyalty_copy(p, label->data, label->len);
    *p++ = '"';

    if (promo.len) {
        p = ngx_cpymem(p, ",\"promo\":\"", sizeof(",\"promo\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, promo.data, promo.len);
        *p++ = '"';
    }

    if (pi->currency[0]
        && !ngx_http_loyalty_equal((u_char *) pi->currency,
                                   llcf->currency.data, 3))
    {
        p = ngx_sprintf(p, ",\"currency\":\"%*s\"", (size_t) 3,
                        pi->currency);
    }

    *p++ = '}';

    return p;
}


ngx_int_t
ngx_http_loyalty_price_variable(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_str_t                       sku, promo;
    ngx_http_loyalty_pricing_t      pr;
    ngx_http_loyalty_loc_conf_t    *llcf;
    ngx_http_loyalty_price_info_t   pi;

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

    if (ngx_http_loyalty_price_begin(r, &pr, 0) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = ngx_http_loyalty_price_get(r, &pr, &sku, pr.tier, &pi);

    if (rc == NGX_OK) {
        ngx_http_loyalty_price_line(r, &pr, &sku,
                                    ngx_http_loyalty_price_hash(sku.data,
                                                                sku.len),
                                    &pi, 1, &ctx->price, &promo);
    }

    ngx_http_loyalty_price_end(&pr);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    ctx->retail = pi.retail;
    ctx->price_found = 1;

    return NGX_OK;
}


/*
 * The price of qty units, from unit, the tier's guarded price of one, and
 * the price hook.  The hook may only lower a price, and what it gives a
 * lower tier, or anyone, caps what a higher tier pays: a member never
 * pays more than a visitor, even while a script's promotion runs.
 */
static void
ngx_http_loyalty_price_line(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_str_t *sku, ngx_uint_t hash,
    ngx_http_loyalty_price_info_t *pi, int64_t qty, int64_t *total,
    ngx_str_t *promo)
{
    int                             i, below;
    size_t                          txnid;
    int64_t                         other, unit;
    ngx_int_t                       rc;
    ngx_str_t                       other_promo;
    ngx_uint_t                      hit, lowered;
    ngx_http_loyalty_lua_price_t    lp;
    ngx_http_loyalty_loc_conf_t    *llcf;
    ngx_http_loyalty_price_memo_t  *m;

    unit = pi->price;
    *total = unit * qty;
    ngx_str_null(promo);

    if (pr->lua == NULL) {
        return;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    ngx_memzero(&lp, sizeof(ngx_http_loyalty_lua_price_t));
    lp.sku = *sku;
    lp.qty = qty;
    lp.retail = pi->retail;
    lp.currency = llcf->currency;

    if (pi->currency[0]) {
        lp.currency.data = (u_char *) pi->currency;
        lp.currency.len = 3;
    }

    /* a member with a tier: the rest of their record is read if asked */
    if (pr->tier >= 0) {
        lp.member = pr->ctx->member;
        lp.member_tier = pr->ctx->tier;
        lp.member_rank = pr->tiers->tiers[pr->tier].rank;
        lp.member_points = pr->ctx->points;
        lp.member_stage = pr->ctx->stage;
    }

    (void) ngx_http_loyalty_price_hook(r, pr, &lp, pr->tier, unit, total,
                                       promo);

    if (pr->tier < 0) {
        return;
    }

    /* what the public, and every lower tier, would pay */
    ngx_str_null(&lp.member);

    below = NGX_HTTP_LOYALTY_PRICE_BELOW(pr->tier);
    m = ngx_http_loyalty_price_memo_get(pr, &lp, hash, below, &txnid,
                                        &hit);

    if (hit) {
        return;
    }

    lowered = 0;

    for (i = -1; i < (int) pr->tiers->n; i++) {
        if (i >= 0
            && pr->tiers->tiers[i].rank >= pr->tiers->tiers[pr->tier].rank)
        {
            continue;
        }

        rc = ngx_http_loyalty_price_other(r, pr, &lp, hash, i, pi->retail,
                                          &other, &other_promo);

        if (rc == NGX_AGAIN) {
            pr->again = 1;
            return;
        }

        lowered |= (rc == NGX_OK);

        if (rc == NGX_OK && other < *total) {
            /* the guard at work, not a fault: counted, not logged */
            pr->clamps++;

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "loyalty: sku \"%V\" lowered to %L, what tier %d "
                           "pays with the price hook", sku, other, i);
            *total = other;
            *promo = other_promo;
        }
    }

    if (!lowered) {
        ngx_str_null(&other_promo);
        ngx_http_loyalty_price_memo_set(m, txnid, &lp, below, -1,
                                        &other_promo);
    }
}


/*
 * What tier (-1: public) pays with the hook, remembered for the second;
 * the tier's own price (retail for the public) is read only to ask the
 * hook.  hash: ngx_http_loyalty_price_hash() of the SKU.  NGX_AGAIN:
 * the store changed before it was read.
 */
static ngx_int_t
ngx_http_loyalty_price_other(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_lua_price_t *lp,
    ngx_uint_t hash, int tier, int64_t retail, int64_t *total,
    ngx_str_t *promo)
{
    size_t                                txnid;
    int64_t                               unit;
    ngx_int_t                             rc;
    ngx_str_t                             label;
    ngx_uint_t                            hit;
    ngx_http_loyalty_price_memo_t        *m;
    const ngx_http_loyalty_price_info_t  *lower;

    m = ngx_http_loyalty_price_memo_get(pr, lp, hash, tier, &txnid, &hit);

    if (hit) {
        if (m->total < 0) {
            return NGX_DECLINED;
        }

        *total = m->total;
        ngx_str_null(promo);

        if (m->label_len == 0) {
            return NGX_OK;
        }

        label.len = m->label_len;
        label.data = m->label;

        promo->len = label.len;
        promo->data = ngx_pstrdup(r->pool, &label);

        return promo->data ? NGX_OK : NGX_DECLINED;
    }

    /* the same snapshot read it for the member's tier */
    if (tier >= 0) {
        rc = ngx_http_loyalty_price_lookup(r, pr, &lp->sku, hash, tier,
                                           &lower);

        if (rc != NGX_OK) {
            return rc;
        }

        unit = lower->price;

    } else {
        unit = retail;
    }

    *total = unit * lp->qty;

    rc = ngx_http_loyalty_price_hook(r, pr, lp, tier, unit, total, promo);

    ngx_http_loyalty_price_memo_set(m, txnid, lp, tier,
                                    rc == NGX_OK ? *total : -1, promo);

    return rc;
}


/*
 * The memo's entry for lp's line and tier, and whether it holds them
 * (*hit): of this second and snapshot, *txnid, taken before the hook may
 * begin one
 */
static ngx_http_loyalty_price_memo_t *
ngx_http_loyalty_price_memo_get(ngx_http_loyalty_pricing_t *pr,
    ngx_http_loyalty_lua_price_t *lp, ngx_uint_t hash, int tier,
    size_t *txnid, ngx_uint_t *hit)
{
    ngx_uint_t                      key;
    ngx_http_loyalty_price_memo_t  *m;

    /* without a transaction, the epoch: the snapshots of the same data */
    *txnid = pr->txn ? mdb_txn_id(pr->txn) : pr->epoch;

    key = (hash ^ (ngx_uint_t) lp->qty * 31 ^ (ngx_uint_t) (tier + 1) * 131)
          % NGX_HTTP_LOYALTY_PRICE_MEMO;

    m = &ngx_http_loyalty_price_memo[key];

    *hit = m->sec == ngx_time() && m->txnid == *txnid && m->qty == lp->qty
           && m->tier == tier && m->sku_len == lp->sku.len
           && ngx_memcmp(m->sku, lp->sku.data, lp->sku.len) == 0;

    return m;
}


/* total (-1: no lower price) and promo remembered in m */
static void
ngx_http_loyalty_price_memo_set(ngx_http_loyalty_price_memo_t *m,
    size_t txnid, ngx_http_loyalty_lua_price_t *lp, int tier, int64_t total,
    ngx_str_t *promo)
{
    m->sec = ngx_time();
    m->txnid = txnid;
    m->qty = lp->qty;
    m->tier = tier;
    m->sku_len = (u_char) lp->sku.len;
    ngx_memcpy(m->sku, lp->sku.data, lp->sku.len);
    m->total = total;
    /* a hook's label is LOYALTY_LUA_LABEL_MAX bytes at most */
    m->label_len = (u_char) promo->len;
    loyalty_cpymem(m->label, promo->data, promo->len);
}


/* the hook asked what tier (-1: public) pays; NGX_OK if it lowered *total */
static ngx_int_t
ngx_http_loyalty_price_hook(ngx_http_request_t *r,
    ngx_http_loyalty_pricing_t *pr, ngx_http_loyalty_lua_price_t *lp,
    int tier, int64_t unit, int64_t *total, ngx_str_t *promo)
{
    ngx_str_null(promo);

    lp->price = unit;

    if (tier >= 0) {
        lp->tier.data = (u_char *) pr->tiers->tiers[tier].name;
        lp->tier.len = pr->tiers->tiers[tier].name_len;
        lp->rank = pr->tiers->tiers[tier].rank;
        lp->has_rank = 1;

    } else {
        ngx_str_set(&lp->tier, "public");
        lp->has_rank = 0;
    }

    if (pr->txn) {
        ngx_http_loyalty_lua_store(pr->lua, &pr->store->st, pr->txn);

    } else {
        ngx_http_loyalty_lua_store_lazy(pr->lua, &pr->store->st,
                                        ngx_http_loyalty_price_snapshot, pr);
    }

    if (ngx_http_loyalty_lua_price(pr->lua, r, lp) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (lp->total > *total) {
        pr->clamps++;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: privilege guard lowered the price hook's %L "
                      "for sku \"%V\" and tier \"%V\" to %L (%ui in this "
                      "worker)", lp->total, &lp->sku, &lp->tier, *total,
                      ngx_http_loyalty_price_clamps + pr->clamps);
    }

    if (lp->total >= *total) {
        return NGX_DECLINED;
    }

    *total = lp->total;
    *promo = lp->label;

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
    ngx_http_loyalty_metrics_answer(NGX_HTTP_LOYALTY_M_PRICE, status);

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
