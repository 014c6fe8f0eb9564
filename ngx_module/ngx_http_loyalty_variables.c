/*
 * nginx-loyalty: the variables.  Each is computed when first read and
 * cached for the request; they all share one identification.  The price
 * variables are cached in the context instead (see below).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


/*
 * The data of the variables that are not read at an offset of the
 * context or of the attribution (the strings, the stage and identity)
 */
typedef enum {
    NGX_HTTP_LOYALTY_VAR_TIER_RANK = 0,
    NGX_HTTP_LOYALTY_VAR_POINTS,
    NGX_HTTP_LOYALTY_VAR_BLOCKED,
    NGX_HTTP_LOYALTY_VAR_PRICE,
    NGX_HTTP_LOYALTY_VAR_PRICE_RETAIL,
    NGX_HTTP_LOYALTY_VAR_PRICE_TIER,
    NGX_HTTP_LOYALTY_VAR_REF_AGE,
    NGX_HTTP_LOYALTY_VAR_REF_MISS,
    NGX_HTTP_LOYALTY_VAR_LIFECYCLE,
    NGX_HTTP_LOYALTY_VAR_SEGMENT
} ngx_http_loyalty_var_e;


static ngx_int_t ngx_http_loyalty_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_loyalty_variable_fill(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx);
static ngx_int_t ngx_http_loyalty_ref_field_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_number_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_price_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_ref_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_funnel_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_personal_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_loyalty_personal_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_loyalty_var_set(ngx_http_variable_value_t *v,
    u_char *data, size_t len);


static ngx_http_variable_t  ngx_http_loyalty_vars[] = {

    { ngx_string("loyalty_member"), NULL, ngx_http_loyalty_variable,
      offsetof(ngx_http_loyalty_ctx_t, member), 0, 0 },

    { ngx_string("loyalty_tier"), NULL, ngx_http_loyalty_variable,
      offsetof(ngx_http_loyalty_ctx_t, tier), 0, 0 },

    { ngx_string("loyalty_tier_rank"), NULL, ngx_http_loyalty_number_var,
      NGX_HTTP_LOYALTY_VAR_TIER_RANK, 0, 0 },

    { ngx_string("loyalty_stage"), NULL, ngx_http_loyalty_variable,
      offsetof(ngx_http_loyalty_ctx_t, stage), 0, 0 },

    { ngx_string("loyalty_points"), NULL, ngx_http_loyalty_number_var,
      NGX_HTTP_LOYALTY_VAR_POINTS, 0, 0 },

    { ngx_string("loyalty_identity"), NULL, ngx_http_loyalty_variable,
      offsetof(ngx_http_loyalty_ctx_t, identity), 0, 0 },

    { ngx_string("loyalty_blocked"), NULL, ngx_http_loyalty_number_var,
      NGX_HTTP_LOYALTY_VAR_BLOCKED, 0, 0 },

    /*
     * Subrequests share their parent's cached variables, and each may
     * price another SKU: these two are cached per request in the context.
     */
    { ngx_string("loyalty_price"), NULL, ngx_http_loyalty_price_var,
      NGX_HTTP_LOYALTY_VAR_PRICE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("loyalty_price_retail"), NULL, ngx_http_loyalty_price_var,
      NGX_HTTP_LOYALTY_VAR_PRICE_RETAIL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("loyalty_price_tier"), NULL, ngx_http_loyalty_price_var,
      NGX_HTTP_LOYALTY_VAR_PRICE_TIER, 0, 0 },

    { ngx_string("loyalty_ref_code"), NULL, ngx_http_loyalty_ref_field_var,
      offsetof(ngx_http_loyalty_ref_t, code), 0, 0 },

    { ngx_string("loyalty_referrer"), NULL, ngx_http_loyalty_ref_field_var,
      offsetof(ngx_http_loyalty_ref_t, referrer), 0, 0 },

    { ngx_string("loyalty_referrer2"), NULL, ngx_http_loyalty_ref_field_var,
      offsetof(ngx_http_loyalty_ref_t, referrer2), 0, 0 },

    { ngx_string("loyalty_ref_age"), NULL, ngx_http_loyalty_ref_var,
      NGX_HTTP_LOYALTY_VAR_REF_AGE, 0, 0 },

    { ngx_string("loyalty_ref_status"), NULL, ngx_http_loyalty_ref_field_var,
      offsetof(ngx_http_loyalty_ref_t, status), 0, 0 },

    { ngx_string("loyalty_ref_campaign"), NULL, ngx_http_loyalty_ref_field_var,
      offsetof(ngx_http_loyalty_ref_t, campaign), 0, 0 },

    /* set by the admin handler: read it when logging */
    { ngx_string("loyalty_admin_token_id"), NULL,
      ngx_http_loyalty_admin_token_var, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    /* "1" for a code that finds nothing live: the key of a limit_req */
    { ngx_string("loyalty_ref_miss"), NULL, ngx_http_loyalty_ref_var,
      NGX_HTTP_LOYALTY_VAR_REF_MISS, 0, 0 },

    { ngx_string("loyalty_lifecycle"), NULL, ngx_http_loyalty_funnel_var,
      NGX_HTTP_LOYALTY_VAR_LIFECYCLE, 0, 0 },

    { ngx_string("loyalty_segment"), NULL, ngx_http_loyalty_funnel_var,
      NGX_HTTP_LOYALTY_VAR_SEGMENT, 0, 0 },

    /* read again each time: it tells what the request has read so far */
    { ngx_string("loyalty_personal"), NULL, ngx_http_loyalty_personal_var,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The variables that tell one visitor from another, with what they are
 * for an anonymous visitor without a referrer.  $loyalty_personal is "1"
 * once the request has read one of them with another value: whatever was
 * made with it (a header to the upstream, the page the upstream made from
 * it) is for this visitor alone, and must not be cached for others.  The
 * tier counts (a blocked member's is not their price tier); the price
 * tier, made to key a cache, and the identity's kind do not.
 */
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    anonymous;
} ngx_http_loyalty_personal_t;


/*
 * Where $loyalty_tier's and $loyalty_stage's indexes are in
 * lmcf->personal, for ngx_http_loyalty_variable_fill(): the table below
 * keeps them there.
 */
#define NGX_HTTP_LOYALTY_PERSONAL_TIER   1
#define NGX_HTTP_LOYALTY_PERSONAL_STAGE  4

static ngx_http_loyalty_personal_t  ngx_http_loyalty_personal[] = {
    { ngx_string("loyalty_member"), ngx_null_string },
    { ngx_string("loyalty_tier"), ngx_null_string },
    { ngx_string("loyalty_tier_rank"), ngx_null_string },
    { ngx_string("loyalty_points"), ngx_null_string },
    { ngx_string("loyalty_stage"), ngx_string("prospect") },
    { ngx_string("loyalty_blocked"), ngx_null_string },
    { ngx_string("loyalty_lifecycle"), ngx_string("none") },
    { ngx_string("loyalty_segment"), ngx_null_string },
    { ngx_string("loyalty_ref_code"), ngx_null_string },
    { ngx_string("loyalty_referrer"), ngx_null_string },
    { ngx_string("loyalty_referrer2"), ngx_null_string },
    { ngx_string("loyalty_ref_age"), ngx_null_string },
    { ngx_string("loyalty_ref_campaign"), ngx_null_string },
    { ngx_null_string, ngx_null_string }
};


/* loyalty_stage_names with their lengths, made once (no strlen a read) */
static ngx_str_t  ngx_http_loyalty_stage_names[LOYALTY_STAGE_COUNT];


static ngx_str_t  ngx_http_loyalty_identity_names[] = {
    ngx_string("none"),
    ngx_string("valid"),
    ngx_string("invalid"),
    ngx_string("expired"),
    ngx_string("unknown")
};


ngx_int_t
ngx_http_loyalty_add_variables(ngx_conf_t *cf)
{
    ngx_uint_t            i;
    ngx_http_variable_t  *var, *v;

    for (i = 0; i < LOYALTY_STAGE_COUNT; i++) {
        ngx_http_loyalty_stage_names[i].data =
            (u_char *) loyalty_stage_names[i];
        ngx_http_loyalty_stage_names[i].len =
            ngx_strlen(loyalty_stage_names[i]);
    }

    for (v = ngx_http_loyalty_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return ngx_http_loyalty_personal_init(cf);
}


/* $loyalty_personal looks at the request's variables by their indexes */
static ngx_int_t
ngx_http_loyalty_personal_init(ngx_conf_t *cf)
{
    ngx_uint_t                     i, n;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    n = sizeof(ngx_http_loyalty_personal)
        / sizeof(ngx_http_loyalty_personal_t) - 1;

    lmcf->personal = ngx_pcalloc(cf->pool, (n + 1) * sizeof(ngx_int_t));
    if (lmcf->personal == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        lmcf->personal[i] =
            ngx_http_get_variable_index(cf, &ngx_http_loyalty_personal[i].name);

        if (lmcf->personal[i] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    lmcf->personal[n] = NGX_ERROR;

    return NGX_OK;
}


/*
 * "1" when a variable read so far tells this visitor from others: read
 * by proxy_no_cache, after the request to the upstream was made.
 */
static ngx_int_t
ngx_http_loyalty_personal_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                     i;
    ngx_str_t                     *anon;
    ngx_http_variable_value_t     *vv;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = 0;
    v->data = (u_char *) "";

    for (i = 0; lmcf->personal[i] != NGX_ERROR; i++) {
        vv = &r->variables[lmcf->personal[i]];
        anon = &ngx_http_loyalty_personal[i].anonymous;

        if (!vv->valid || vv->not_found || vv->len == 0
            || (vv->len == anon->len
                && ngx_strncmp(vv->data, anon->data, anon->len) == 0))
        {
            continue;
        }

        v->len = 1;
        v->data = (u_char *) "1";
        break;
    }

    return NGX_OK;
}


/*
 * $loyalty_member, $loyalty_tier, $loyalty_stage, $loyalty_identity: what
 * is at data in the context, an ngx_str_t or a code.  The request's first
 * variable identifies the visitor; a member's $loyalty_member fills the
 * next two, so that it is usually the only call of a request.
 */
static ngx_int_t
ngx_http_loyalty_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    switch (data) {

    case offsetof(ngx_http_loyalty_ctx_t, stage):
        s = &ngx_http_loyalty_stage_names[ctx->stage];
        break;

    case offsetof(ngx_http_loyalty_ctx_t, identity):
        s = &ngx_http_loyalty_identity_names[ctx->identity];
        break;

    case offsetof(ngx_http_loyalty_ctx_t, member):
        s = &ctx->member;

        if (s->len) {
            ngx_http_loyalty_variable_fill(r, ctx);
        }

        break;

    default:
        s = (ngx_str_t *) ((u_char *) ctx + data);
        break;
    }

    return ngx_http_loyalty_var_set(v, s->data, s->len);
}


/*
 * A member's $loyalty_member read: $loyalty_tier and $loyalty_stage,
 * usually read next, are made too, so that nginx need not call their
 * handlers.  $loyalty_personal, which tells the variables read so far,
 * is "1" for a member's $loyalty_member whatever else was read.
 */
static void
ngx_http_loyalty_variable_fill(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx)
{
    ngx_str_t                     *s;
    ngx_int_t                     *index;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);
    index = lmcf->personal;

    (void) ngx_http_loyalty_var_set(
        &r->variables[index[NGX_HTTP_LOYALTY_PERSONAL_TIER]],
        ctx->tier.data, ctx->tier.len);

    s = &ngx_http_loyalty_stage_names[ctx->stage];

    (void) ngx_http_loyalty_var_set(
        &r->variables[index[NGX_HTTP_LOYALTY_PERSONAL_STAGE]],
        s->data, s->len);
}


/* the numbers, empty for anonymous visitors */
static ngx_int_t
ngx_http_loyalty_number_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p, *last;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->identity != NGX_HTTP_LOYALTY_ID_VALID
        || (data == NGX_HTTP_LOYALTY_VAR_TIER_RANK && !ctx->has_rank))
    {
        return ngx_http_loyalty_var_set(v, NULL, 0);
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    switch (data) {

    case NGX_HTTP_LOYALTY_VAR_TIER_RANK:
        last = ngx_sprintf(p, "%D", ctx->rank);
        break;

    case NGX_HTTP_LOYALTY_VAR_POINTS:
        last = ngx_sprintf(p, "%L", ctx->points);
        break;

    default: /* NGX_HTTP_LOYALTY_VAR_BLOCKED */
        *p = ctx->blocked ? '1' : '0';
        last = p + 1;
        break;
    }

    return ngx_http_loyalty_var_set(v, p, last - p);
}


static ngx_int_t
ngx_http_loyalty_price_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p, *last;
    ngx_int_t                rc;
    ngx_str_t               *tier;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (data == NGX_HTTP_LOYALTY_VAR_PRICE_TIER) {
        tier = ngx_http_loyalty_price_tier(ctx);

        return ngx_http_loyalty_var_set(v, tier->data, tier->len);
    }

    rc = ngx_http_loyalty_price_variable(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%L", data == NGX_HTTP_LOYALTY_VAR_PRICE
                                ? ctx->price : ctx->retail);

    return ngx_http_loyalty_var_set(v, p, last - p);
}


/*
 * $loyalty_ref_code, $loyalty_referrer, $loyalty_referrer2,
 * $loyalty_ref_campaign, $loyalty_ref_status: what is at data in the
 * attribution, an ngx_str_t or the status
 */
static ngx_int_t
ngx_http_loyalty_ref_field_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_loyalty_ref_t  *ref;

    ref = ngx_http_loyalty_attribute(r);
    if (ref == NULL) {
        return NGX_ERROR;
    }

    s = (data == offsetof(ngx_http_loyalty_ref_t, status))
        ? &ngx_http_loyalty_ref_status_names[ref->status]
        : (ngx_str_t *) ((u_char *) ref + data);

    return ngx_http_loyalty_var_set(v, s->data, s->len);
}


/* $loyalty_ref_miss and $loyalty_ref_age */
static ngx_int_t
ngx_http_loyalty_ref_var(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                  *p, *last;
    ngx_http_loyalty_ref_t  *ref;

    ref = ngx_http_loyalty_attribute(r);
    if (ref == NULL) {
        return NGX_ERROR;
    }

    /* what walking the code space meets: unknown or dead codes */
    if (data == NGX_HTTP_LOYALTY_VAR_REF_MISS) {
        return ngx_http_loyalty_var_set(v, (u_char *) "1",
                   ref->status == NGX_HTTP_LOYALTY_REF_INVALID
                   || ref->status == NGX_HTTP_LOYALTY_REF_REVOKED
                   || ref->status == NGX_HTTP_LOYALTY_REF_EXPIRED);
    }

    /* NGX_HTTP_LOYALTY_VAR_REF_AGE: empty when not known */
    if (ref->at == 0) {
        return ngx_http_loyalty_var_set(v, NULL, 0);
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%T", ngx_max(ngx_time() - ref->at, 0));

    return ngx_http_loyalty_var_set(v, p, last - p);
}


/* "none" and empty for anonymous visitors and stores without rules */
static ngx_int_t
ngx_http_loyalty_funnel_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char              *s;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify(r);
    if (ctx == NULL || ngx_http_loyalty_funnel(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (data == NGX_HTTP_LOYALTY_VAR_LIFECYCLE) {
        s = loyalty_lifecycle_names[ctx->lifecycle];
        return ngx_http_loyalty_var_set(v, (u_char *) s, ngx_strlen(s));
    }

    return ngx_http_loyalty_var_set(v, ctx->segment.data, ctx->segment.len);
}


/* v found and cacheable: len bytes at data, "" when empty */
static ngx_int_t
ngx_http_loyalty_var_set(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    /* the length and flags in one store, escape cleared as it was */
    *v = (ngx_http_variable_value_t) {
        .len = len,
        .valid = 1,
        .data = len ? data : (u_char *) ""
    };

    return NGX_OK;
}
