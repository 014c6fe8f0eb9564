/*
 * nginx-loyalty: the hooks asked from a request or an event; their
 * contexts and the checks of their answers are the core's
 * (core/loyalty_lua_hook.c), which loyaltyctl's dry runs run as well.
 *
 * A hook that fails (or answers what it may not) counts as a failed
 * call, and the request or event goes on as if there were no hook.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"
#include "loyalty_lua_hook.h"


static ngx_inline const char *ngx_http_loyalty_lua_str(ngx_str_t *s,
    size_t *len);
static ngx_int_t ngx_http_loyalty_lua_copy(ngx_http_request_t *r,
    ngx_str_t *to, const char *s, size_t len);
static ngx_int_t ngx_http_loyalty_lua_ask(ngx_http_loyalty_lua_t *vm,
    ngx_uint_t hook, loyalty_lua_ask_t *ask, ngx_log_t *log);


ngx_int_t
ngx_http_loyalty_lua_price(ngx_http_loyalty_lua_t *vm, ngx_http_request_t *r,
    ngx_http_loyalty_lua_price_t *p)
{
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    ngx_memzero(&q, sizeof(loyalty_lua_price_t));
    q.sku = ngx_http_loyalty_lua_str(&p->sku, &q.sku_len);
    q.qty = p->qty;
    q.retail = p->retail;
    q.price = p->price;
    q.currency = ngx_http_loyalty_lua_str(&p->currency, &q.currency_len);
    q.tier = ngx_http_loyalty_lua_str(&p->tier, &q.tier_len);
    q.rank = p->rank;
    q.has_rank = p->has_rank;

    if (p->member.len) {
        q.member = ngx_http_loyalty_lua_str(&p->member, &q.member_len);
        q.member_tier = ngx_http_loyalty_lua_str(&p->member_tier,
                                                 &q.member_tier_len);
        q.member_rank = p->member_rank;
        q.member_points = p->member_points;
        q.member_stage = p->member_stage;
    }

    ngx_memzero(&ask, sizeof(loyalty_lua_ask_t));
    ask.price = &q;

    if (ngx_http_loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_PRICE, &ask,
                                 r->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ask.answered) {
        return NGX_DECLINED;
    }

    p->total = q.total;

    return ngx_http_loyalty_lua_copy(r, &p->label, q.label, q.label_len);
}


ngx_int_t
ngx_http_loyalty_lua_click(ngx_http_loyalty_lua_t *vm, ngx_http_request_t *r,
    ngx_http_loyalty_lua_click_t *c)
{
    ngx_table_elt_t      *ua;
    loyalty_lua_ask_t     ask;
    loyalty_lua_click_t   q;

    ngx_memzero(&q, sizeof(loyalty_lua_click_t));
    q.code = ngx_http_loyalty_lua_str(&c->code, &q.code_len);
    q.referrer = ngx_http_loyalty_lua_str(&c->referrer, &q.referrer_len);

    if (c->referrer2.len) {
        q.referrer2 = ngx_http_loyalty_lua_str(&c->referrer2,
                                               &q.referrer2_len);
    }

    q.status = c->status;

    ua = r->headers_in.user_agent;

    if (ua) {
        q.user_agent = ngx_http_loyalty_lua_str(&ua->value,
                                                &q.user_agent_len);
    }

    if (r->headers_in.server.len) {
        q.host = ngx_http_loyalty_lua_str(&r->headers_in.server,
                                          &q.host_len);
    }

    q.uri = ngx_http_loyalty_lua_str(&r->uri, &q.uri_len);

    if (c->member.len) {
        q.member = ngx_http_loyalty_lua_str(&c->member, &q.member_len);
        q.m = c->m;
        q.member_rank = c->member_rank;
        q.has_member_rank = c->has_member_rank;
    }

    ngx_memzero(&ask, sizeof(loyalty_lua_ask_t));
    ask.click = &q;

    c->refuse = 0;
    ngx_str_null(&c->campaign);

    if (ngx_http_loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_CLICK, &ask,
                                 r->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    c->refuse = q.refuse;

    return ngx_http_loyalty_lua_copy(r, &c->campaign, q.campaign,
                                     q.campaign_len);
}


/* 0 with out filled, or -1 for the defaults */
int
ngx_http_loyalty_lua_event_call(ngx_http_loyalty_lua_t *vm,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    loyalty_lua_ask_t  ask;

    ngx_memzero(&ask, sizeof(loyalty_lua_ask_t));
    ask.in = in;
    ask.out = out;

    if (ngx_http_loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_EVENT, &ask, vm->log)
        != NGX_OK
        || !ask.answered)
    {
        /* what a failed call may have set is not kept */
        ngx_memzero(out, sizeof(loyalty_event_hook_out_t));
        out->stage = -1;
        return -1;
    }

    return 0;
}


/* an nginx string as the core's pointer and length */
static ngx_inline const char *
ngx_http_loyalty_lua_str(ngx_str_t *s, size_t *len)
{
    *len = s->len;

    return (const char *) s->data;
}


/*
 * A string of the hook's answer (a label, a campaign) kept in the
 * request's pool; most answers have none, which needs no copy
 */
static ngx_int_t
ngx_http_loyalty_lua_copy(ngx_http_request_t *r, ngx_str_t *to,
    const char *s, size_t len)
{
    ngx_str_null(to);

    if (len == 0) {
        return NGX_OK;
    }

    to->data = ngx_pnalloc(r->pool, len);
    if (to->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, s, len);
    to->len = len;

    return NGX_OK;
}


/* one hook's call: ask holds what the caller set for that hook */
static ngx_int_t
ngx_http_loyalty_lua_ask(ngx_http_loyalty_lua_t *vm, ngx_uint_t hook,
    loyalty_lua_ask_t *ask, ngx_log_t *log)
{
    ask->vm = &vm->lua;
    ask->now = ngx_time();

    return ngx_http_loyalty_lua_protect(vm, hook, loyalty_lua_asks[hook], ask,
                                        log);
}
