/*
 * nginx-loyalty: the hooks' contexts and answers (lua/README.md); a
 * member's table and loyalty.store are the core's (core/loyalty_lua.c).
 *
 * Every answer is checked here: a hook that returns something it may not
 * counts as a failed call, and the request or event goes on as if there
 * were no hook.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lua.h>
#include <lauxlib.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"
#include "loyalty_util.h"


#define NGX_HTTP_LOYALTY_LABEL_MAX     64
#define NGX_HTTP_LOYALTY_CAMPAIGN_MAX  64
/* integers a double holds exactly */
#define NGX_HTTP_LOYALTY_LUA_INT_MAX   9007199254740992.0


static int ngx_http_loyalty_lua_price_ask(lua_State *L);
static int ngx_http_loyalty_lua_click_ask(lua_State *L);
static int ngx_http_loyalty_lua_event_ask(lua_State *L);
static void ngx_http_loyalty_lua_event_push(lua_State *L,
    const loyalty_event_hook_in_t *in);
static int ngx_http_loyalty_lua_event_answer(lua_State *L,
    loyalty_event_hook_out_t *out);
static ngx_int_t ngx_http_loyalty_lua_integer(lua_State *L, int idx,
    int64_t min, int64_t max, int64_t *v);
static ngx_int_t ngx_http_loyalty_lua_word(lua_State *L, int idx,
    size_t max, ngx_str_t *s);


/*
 * The hooks' keys beside the core's, added to the VM's keys table; the
 * keys are at stack index 1 while a context is built.
 */
typedef enum {
    NGX_HTTP_LOYALTY_KEY_SKU = LOYALTY_LUA_KEY_MORE,
    NGX_HTTP_LOYALTY_KEY_QTY,
    NGX_HTTP_LOYALTY_KEY_CURRENCY,
    NGX_HTTP_LOYALTY_KEY_CODE,
    NGX_HTTP_LOYALTY_KEY_REFERRER2,
    NGX_HTTP_LOYALTY_KEY_STATUS,
    NGX_HTTP_LOYALTY_KEY_USER_AGENT,
    NGX_HTTP_LOYALTY_KEY_HOST,
    NGX_HTTP_LOYALTY_KEY_URI,
    NGX_HTTP_LOYALTY_KEY_TYPE,
    NGX_HTTP_LOYALTY_KEY_KIND,
    NGX_HTTP_LOYALTY_KEY_AT,
    NGX_HTTP_LOYALTY_KEY_FIRST,
    NGX_HTTP_LOYALTY_KEY_AMOUNT,
    NGX_HTTP_LOYALTY_KEY_ITEMS
} ngx_http_loyalty_lua_key_e;


static const char  *ngx_http_loyalty_lua_key_names[] = {
    "sku", "qty", "currency", "code", "referrer2", "status", "user_agent",
    "host", "uri", "type", "kind", "at", "first", "amount", "items"
};


/* a hook call's question and answer, for the protected functions */
typedef struct {
    ngx_http_loyalty_lua_t         *vm;
    ngx_http_request_t             *r;
    ngx_http_loyalty_lua_price_t   *price;
    ngx_http_loyalty_lua_click_t   *click;
    const loyalty_event_hook_in_t  *in;
    loyalty_event_hook_out_t       *out;
    ngx_int_t                       rc;
} ngx_http_loyalty_lua_ask_t;


/*
 * The hook, below its context at the top of the stack, called; the keys
 * are taken off, so that its answers start at index 1.
 */
#define ngx_http_loyalty_lua_ask_hook(L, vm, hook, nresults)                  \
    lua_rawgeti(L, LUA_REGISTRYINDEX, (vm)->lua.hooks[hook]);                 \
    lua_insert(L, -2);                                                        \
    lua_call(L, 1, nresults);                                                 \
    lua_remove(L, 1)


ngx_int_t
ngx_http_loyalty_lua_price(ngx_http_loyalty_lua_t *vm, ngx_http_request_t *r,
    ngx_http_loyalty_lua_price_t *p)
{
    ngx_http_loyalty_lua_ask_t  ask;

    ngx_memzero(&ask, sizeof(ngx_http_loyalty_lua_ask_t));
    ask.vm = vm;
    ask.r = r;
    ask.price = p;

    if (ngx_http_loyalty_lua_protect(vm, LOYALTY_LUA_HOOK_PRICE,
                                     ngx_http_loyalty_lua_price_ask, &ask,
                                     r->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ask.rc;
}


static int
ngx_http_loyalty_lua_price_ask(lua_State *L)
{
    int                            top;
    size_t                         len;
    ngx_str_t                      label;
    ngx_http_loyalty_lua_ask_t    *ask;
    ngx_http_loyalty_lua_price_t  *p;

    ask = lua_touserdata(L, 1);
    p = ask->price;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->lua.keys);

    lua_createtable(L, 0, 10);
    loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_SKU, p->sku.data, p->sku.len);
    loyalty_lua_set_num(L, NGX_HTTP_LOYALTY_KEY_QTY, p->qty);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RETAIL, p->retail);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_PRICE, p->price);
    loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_CURRENCY, p->currency.data,
                        p->currency.len);
    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_TIER, p->tier.data, p->tier.len);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_NOW, ngx_time());

    if (p->has_rank) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RANK, p->rank);
    }

    /*
     * What the request knows of the member already; the rest of the
     * record is read only if the hook looks for it (see the core's
     * loyalty_lua_member_index).
     */
    if (p->member.len) {
        lua_createtable(L, 0, 14);
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_ID, p->member.data,
                            p->member.len);
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_TIER, p->member_tier.data,
                            p->member_tier.len);
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RANK, p->member_rank);
        lua_rawgeti(L, 1, LOYALTY_LUA_KEY_STAGES + p->member_stage);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_STAGE);
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_POINTS, p->member_points);
        lua_pushboolean(L, 0);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_BLOCKED);

        lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->lua.lazy);
        lua_setmetatable(L, -2);

        loyalty_lua_set(L, LOYALTY_LUA_KEY_MEMBER);
    }

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, LOYALTY_LUA_HOOK_PRICE, 2);

    /* price, label; or { price = N, label = "..." } */
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "price");
        lua_getfield(L, 1, "label");
    }

    top = lua_gettop(L);

    ask->rc = NGX_DECLINED;

    if (lua_isnil(L, top - 1)) {
        return 0;
    }

    if (ngx_http_loyalty_lua_integer(L, top - 1, 0, LOYALTY_PRICE_MAX * 1000,
                                     &p->total)
        != NGX_OK)
    {
        return luaL_error(L, "the hook returned a price that is not a whole "
                          "amount of at least 0");
    }

    ngx_str_null(&p->label);

    if (!lua_isnil(L, top)) {
        if (lua_type(L, top) != LUA_TSTRING) {
            return luaL_error(L, "the hook returned a label that is not a "
                              "string");
        }

        label.data = (u_char *) lua_tolstring(L, top, &len);
        label.len = ngx_min(len, NGX_HTTP_LOYALTY_LABEL_MAX);

        /* whole UTF-8 characters only, as the label goes out in JSON */
        while (label.len < len && label.len
               && (label.data[label.len] & 0xc0) == 0x80)
        {
            label.len--;
        }

        p->label.data = ngx_pstrdup(ask->r->pool, &label);
        if (p->label.data == NULL) {
            return luaL_error(L, "out of memory");
        }

        p->label.len = label.len;
    }

    ask->rc = NGX_OK;

    return 0;
}


ngx_int_t
ngx_http_loyalty_lua_click(ngx_http_loyalty_lua_t *vm, ngx_http_request_t *r,
    ngx_http_loyalty_lua_click_t *c)
{
    ngx_http_loyalty_lua_ask_t  ask;

    ngx_memzero(&ask, sizeof(ngx_http_loyalty_lua_ask_t));
    ask.vm = vm;
    ask.r = r;
    ask.click = c;

    if (ngx_http_loyalty_lua_protect(vm, LOYALTY_LUA_HOOK_CLICK,
                                     ngx_http_loyalty_lua_click_ask, &ask,
                                     r->connection->log)
        != NGX_OK)
    {
        c->refuse = 0;
        ngx_str_null(&c->campaign);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_loyalty_lua_click_ask(lua_State *L)
{
    int                            top;
    ngx_str_t                      campaign;
    ngx_http_request_t            *r;
    ngx_http_loyalty_lua_ask_t    *ask;
    ngx_http_loyalty_lua_click_t  *c;

    ask = lua_touserdata(L, 1);
    c = ask->click;
    r = ask->r;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->lua.keys);

    lua_createtable(L, 0, 9);
    loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_CODE, c->code.data,
                        c->code.len);
    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER, c->referrer.data,
                        c->referrer.len);

    if (c->referrer2.len) {
        loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_REFERRER2,
                            c->referrer2.data, c->referrer2.len);
    }

    lua_pushstring(L, c->status);
    loyalty_lua_set(L, NGX_HTTP_LOYALTY_KEY_STATUS);

    if (r->headers_in.user_agent) {
        loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_USER_AGENT,
                            r->headers_in.user_agent->value.data,
                            r->headers_in.user_agent->value.len);
    }

    if (r->headers_in.server.len) {
        loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_HOST,
                            r->headers_in.server.data,
                            r->headers_in.server.len);
    }

    loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_URI, r->uri.data, r->uri.len);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_NOW, ngx_time());

    if (c->member.len) {
        loyalty_lua_push_member(L, (char *) c->member.data, c->member.len,
                                c->m, c->member_rank, c->has_member_rank);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_MEMBER);
    }

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, LOYALTY_LUA_HOOK_CLICK, 1);

    top = 1;

    /* true or nil: accept; false: refuse; "campaign"; or a table */
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "refuse");
        c->refuse = lua_toboolean(L, -1);
        lua_getfield(L, 1, "campaign");
        top = lua_gettop(L);

    } else if (lua_isboolean(L, 1)) {
        c->refuse = !lua_toboolean(L, 1);
        return 0;
    }

    if (lua_isnil(L, top)) {
        return 0;
    }

    if (ngx_http_loyalty_lua_word(L, top, NGX_HTTP_LOYALTY_CAMPAIGN_MAX,
                                  &campaign)
        != NGX_OK)
    {
        return luaL_error(L, "the hook returned a campaign that is not 1-64 "
                          "characters of [A-Za-z0-9_.-]");
    }

    c->campaign.data = ngx_pstrdup(r->pool, &campaign);
    if (c->campaign.data == NULL) {
        return luaL_error(L, "out of memory");
    }

    c->campaign.len = campaign.len;

    return 0;
}


/* 0 with out filled, or -1 for the defaults */
int
ngx_http_loyalty_lua_event_call(ngx_http_loyalty_lua_t *vm,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    ngx_http_loyalty_lua_ask_t  ask;

    ngx_memzero(&ask, sizeof(ngx_http_loyalty_lua_ask_t));
    ask.vm = vm;
    ask.in = in;
    ask.out = out;

    if (ngx_http_loyalty_lua_protect(vm, LOYALTY_LUA_HOOK_EVENT,
                                     ngx_http_loyalty_lua_event_ask, &ask,
                                     vm->log)
        != NGX_OK
        || ask.rc != NGX_OK)
    {
        /* what a failed call may have set is not kept */
        ngx_memzero(out, sizeof(loyalty_event_hook_out_t));
        out->stage = -1;
        return -1;
    }

    return 0;
}


static int
ngx_http_loyalty_lua_event_ask(lua_State *L)
{
    ngx_http_loyalty_lua_ask_t  *ask;

    ask = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->lua.keys);

    ngx_http_loyalty_lua_event_push(L, ask->in);

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, LOYALTY_LUA_HOOK_EVENT, 1);

    ask->rc = NGX_DECLINED;

    if (lua_isnil(L, 1)) {
        return 0;
    }

    if (!lua_istable(L, 1)) {
        return luaL_error(L, "the hook returned an answer that is not a "
                          "table or nil");
    }

    /* raises the hook's error on an answer that cannot be taken */
    ngx_http_loyalty_lua_event_answer(L, ask->out);

    ask->rc = NGX_OK;

    return 0;
}


/* the event, as the hook sees it, on top of the stack */
static void
ngx_http_loyalty_lua_event_push(lua_State *L,
    const loyalty_event_hook_in_t *in)
{
    size_t                  n;
    json_t                 *item, *v;
    const loyalty_event_t  *ev;

    ev = in->ev;

    lua_createtable(L, 0, 14);

    lua_pushstring(L, loyalty_event_names[ev->type]);
    loyalty_lua_set(L, NGX_HTTP_LOYALTY_KEY_TYPE);

    if (ev->type == LOYALTY_EVENT_ACTION) {
        lua_pushstring(L, loyalty_action_names[ev->action]);
        loyalty_lua_set(L, NGX_HTTP_LOYALTY_KEY_KIND);
    }

    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_ID, ev->id, ev->id_len);
    loyalty_lua_set_num(L, NGX_HTTP_LOYALTY_KEY_AT, ev->at);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_NOW, ngx_time());
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_POINTS, in->points);
    lua_pushboolean(L, in->first);
    loyalty_lua_set(L, NGX_HTTP_LOYALTY_KEY_FIRST);

    if (ev->type == LOYALTY_EVENT_ORDER) {
        loyalty_lua_set_num(L, NGX_HTTP_LOYALTY_KEY_AMOUNT, ev->amount);

        lua_createtable(L, (int) json_array_size(ev->items), 0);

        json_array_foreach(ev->items, n, item) {
            lua_createtable(L, 0, 2);

            v = json_object_get(item, "sku");
            loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_SKU,
                                json_string_value(v), json_string_length(v));

            /* checked whole, but it may be written 3.0 */
            v = json_object_get(item, "qty");
            loyalty_lua_set_num(L, NGX_HTTP_LOYALTY_KEY_QTY,
                                v ? json_number_value(v) : 1);

            lua_rawseti(L, -2, (int) n + 1);
        }

        loyalty_lua_set(L, NGX_HTTP_LOYALTY_KEY_ITEMS);
    }

    if (in->referrer) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER, in->referrer,
                            in->referrer_len);
    }

    if (in->referrer2) {
        loyalty_lua_set_str(L, NGX_HTTP_LOYALTY_KEY_REFERRER2, in->referrer2,
                            in->referrer2_len);
    }

    loyalty_lua_push_member(L, in->member_id, in->member_len, in->member,
                            in->rank, in->has_rank);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_MEMBER);
}


/* the hook's answer, the table at 1: raises an error on a bad one */
static int
ngx_http_loyalty_lua_event_answer(lua_State *L, loyalty_event_hook_out_t *out)
{
    int         i;
    int64_t    *points[3];
    ngx_str_t   s;

    static const char  *fields[3] = {
        "points", "referrer_points", "referrer2_points"
    };

    points[0] = &out->points;
    points[1] = &out->l1_points;
    points[2] = &out->l2_points;

    for (i = 0; i < 3; i++) {
        lua_getfield(L, 1, fields[i]);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }

        if (ngx_http_loyalty_lua_integer(L, -1, -LOYALTY_POINTS_MAX,
                                         LOYALTY_POINTS_MAX, points[i])
            != NGX_OK)
        {
            return luaL_error(L, "the hook returned %s that is not a whole "
                              "number within 10^12", fields[i]);
        }

        if (i == 0) {
            out->has_points = 1;

        } else if (i == 1) {
            out->has_l1 = 1;

        } else {
            out->has_l2 = 1;
        }

        lua_pop(L, 1);
    }

    lua_getfield(L, 1, "stage");

    if (!lua_isnil(L, -1)) {
        s.data = (u_char *) lua_tolstring(L, -1, &s.len);

        if (lua_type(L, -1) != LUA_TSTRING
            || (out->stage = loyalty_stage_parse((char *) s.data, s.len))
               < 0)
        {
            return luaL_error(L, "the hook returned a stage that is not one "
                              "of prospect, fan, customer, member, partner");
        }
    }

    lua_getfield(L, 1, "tier");

    if (!lua_isnil(L, -1)) {
        if (ngx_http_loyalty_lua_word(L, -1, LOYALTY_TIER_MAX, &s) != NGX_OK)
        {
            return luaL_error(L, "the hook returned a tier that is not a tier "
                              "name");
        }

        ngx_memcpy(out->tier, s.data, s.len);
        out->tier_len = s.len;
    }

    return 0;
}


/* the hooks' keys, added to the core's as the VM is made */
void
ngx_http_loyalty_lua_keys(loyalty_lua_t *lua)
{
    int         i, n;
    lua_State  *L;

    L = lua->L;
    n = sizeof(ngx_http_loyalty_lua_key_names) / sizeof(char *);

    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->keys);

    for (i = 0; i < n; i++) {
        lua_pushstring(L, ngx_http_loyalty_lua_key_names[i]);
        lua_rawseti(L, -2, NGX_HTTP_LOYALTY_KEY_SKU + i);
    }

    lua_pop(L, 1);
}


static ngx_int_t
ngx_http_loyalty_lua_integer(lua_State *L, int idx, int64_t min, int64_t max,
    int64_t *v)
{
    lua_Number  n;

    if (lua_type(L, idx) != LUA_TNUMBER) {
        return NGX_ERROR;
    }

    n = lua_tonumber(L, idx);

    /* NaN fails every comparison */
    if (!(n >= (lua_Number) min && n <= (lua_Number) max)
        || n > NGX_HTTP_LOYALTY_LUA_INT_MAX
        || n < -NGX_HTTP_LOYALTY_LUA_INT_MAX
        || n != (lua_Number) (int64_t) n)
    {
        return NGX_ERROR;
    }

    *v = (int64_t) n;

    return NGX_OK;
}


/* a string of [A-Za-z0-9_.-], 1 to max bytes */
static ngx_int_t
ngx_http_loyalty_lua_word(lua_State *L, int idx, size_t max, ngx_str_t *s)
{
    size_t  i;

    if (lua_type(L, idx) != LUA_TSTRING) {
        return NGX_ERROR;
    }

    s->data = (u_char *) lua_tolstring(L, idx, &s->len);

    if (s->len == 0 || s->len > max) {
        return NGX_ERROR;
    }

    for (i = 0; i < s->len; i++) {
        if (!(isalnum(s->data[i]) || s->data[i] == '_'
              || s->data[i] == '.' || s->data[i] == '-'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
