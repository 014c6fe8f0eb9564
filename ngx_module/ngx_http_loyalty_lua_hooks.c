/*
 * nginx-loyalty: the hooks' contexts and answers (lua/README.md), and
 * loyalty.store, the look-ups scripts may make during a call.
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


static void ngx_http_loyalty_lua_push_member(lua_State *L, const u_char *id,
    size_t len, const loyalty_member_t *m, int32_t rank, ngx_uint_t has_rank);
static int ngx_http_loyalty_lua_price_ask(lua_State *L);
static int ngx_http_loyalty_lua_click_ask(lua_State *L);
static int ngx_http_loyalty_lua_event_ask(lua_State *L);
static ngx_int_t ngx_http_loyalty_lua_integer(lua_State *L, int idx,
    int64_t min, int64_t max, int64_t *v);
static ngx_int_t ngx_http_loyalty_lua_word(lua_State *L, int idx,
    size_t max, ngx_str_t *s);
static int ngx_http_loyalty_lua_rank(loyalty_store_t *st, MDB_txn *txn,
    const char *tier, size_t len, int32_t *rank);
static int ngx_http_loyalty_lua_store_member(lua_State *L);
static int ngx_http_loyalty_lua_store_price(lua_State *L);


#define ngx_http_loyalty_lua_set_str(L, k, s, n)                              \
    lua_pushlstring(L, (const char *) (s), n);                                \
    lua_setfield(L, -2, k)

#define ngx_http_loyalty_lua_set_num(L, k, v)                                 \
    lua_pushnumber(L, (lua_Number) (v));                                      \
    lua_setfield(L, -2, k)


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


/* the hook, below its context at the top of the stack, called */
#define ngx_http_loyalty_lua_ask_hook(L, vm, hook, nresults)                  \
    lua_rawgeti(L, LUA_REGISTRYINDEX, (vm)->hooks[hook]);                     \
    lua_insert(L, -2);                                                        \
    lua_call(L, 1, nresults)


ngx_int_t
ngx_http_loyalty_lua_price(ngx_http_loyalty_lua_t *vm, ngx_http_request_t *r,
    ngx_http_loyalty_lua_price_t *p)
{
    ngx_http_loyalty_lua_ask_t  ask;

    ngx_memzero(&ask, sizeof(ngx_http_loyalty_lua_ask_t));
    ask.vm = vm;
    ask.r = r;
    ask.price = p;

    if (ngx_http_loyalty_lua_protect(vm, NGX_HTTP_LOYALTY_HOOK_PRICE,
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

    lua_createtable(L, 0, 10);
    ngx_http_loyalty_lua_set_str(L, "sku", p->sku.data, p->sku.len);
    ngx_http_loyalty_lua_set_num(L, "qty", p->qty);
    ngx_http_loyalty_lua_set_num(L, "retail", p->retail);
    ngx_http_loyalty_lua_set_num(L, "price", p->price);
    ngx_http_loyalty_lua_set_str(L, "currency", p->currency.data,
                                 p->currency.len);
    ngx_http_loyalty_lua_set_str(L, "tier", p->tier.data, p->tier.len);
    ngx_http_loyalty_lua_set_num(L, "now", ngx_time());

    if (p->has_rank) {
        ngx_http_loyalty_lua_set_num(L, "rank", p->rank);
    }

    if (p->member.len) {
        ngx_http_loyalty_lua_push_member(L, p->member.data, p->member.len,
                                         p->m, p->member_rank, 1);
        lua_setfield(L, -2, "member");
    }

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, NGX_HTTP_LOYALTY_HOOK_PRICE, 2);

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

    if (ngx_http_loyalty_lua_protect(vm, NGX_HTTP_LOYALTY_HOOK_CLICK,
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

    lua_createtable(L, 0, 9);
    ngx_http_loyalty_lua_set_str(L, "code", c->code.data, c->code.len);
    ngx_http_loyalty_lua_set_str(L, "referrer", c->referrer.data,
                                 c->referrer.len);

    if (c->referrer2.len) {
        ngx_http_loyalty_lua_set_str(L, "referrer2", c->referrer2.data,
                                     c->referrer2.len);
    }

    lua_pushstring(L, c->status);
    lua_setfield(L, -2, "status");

    if (r->headers_in.user_agent) {
        ngx_http_loyalty_lua_set_str(L, "user_agent",
                                     r->headers_in.user_agent->value.data,
                                     r->headers_in.user_agent->value.len);
    }

    if (r->headers_in.server.len) {
        ngx_http_loyalty_lua_set_str(L, "host", r->headers_in.server.data,
                                     r->headers_in.server.len);
    }

    ngx_http_loyalty_lua_set_str(L, "uri", r->uri.data, r->uri.len);
    ngx_http_loyalty_lua_set_num(L, "now", ngx_time());

    if (c->member.len) {
        ngx_http_loyalty_lua_push_member(L, c->member.data, c->member.len,
                                         c->m, c->member_rank,
                                         c->has_member_rank);
        lua_setfield(L, -2, "member");
    }

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, NGX_HTTP_LOYALTY_HOOK_CLICK, 1);

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

    if (ngx_http_loyalty_lua_protect(vm, NGX_HTTP_LOYALTY_HOOK_EVENT,
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
    int                              i;
    size_t                           n;
    json_t                          *item, *v;
    int64_t                         *points[3];
    ngx_str_t                        s;
    const loyalty_event_t           *ev;
    ngx_http_loyalty_lua_ask_t      *ask;
    loyalty_event_hook_out_t        *out;
    const loyalty_event_hook_in_t   *in;

    static const char  *fields[3] = {
        "points", "referrer_points", "referrer2_points"
    };

    ask = lua_touserdata(L, 1);
    in = ask->in;
    out = ask->out;
    ev = in->ev;
    lua_settop(L, 0);

    lua_createtable(L, 0, 14);

    lua_pushstring(L, loyalty_event_names[ev->type]);
    lua_setfield(L, -2, "type");

    if (ev->type == LOYALTY_EVENT_ACTION) {
        lua_pushstring(L, loyalty_action_names[ev->action]);
        lua_setfield(L, -2, "kind");
    }

    ngx_http_loyalty_lua_set_str(L, "id", ev->id, ev->id_len);
    ngx_http_loyalty_lua_set_num(L, "at", ev->at);
    ngx_http_loyalty_lua_set_num(L, "now", ngx_time());
    ngx_http_loyalty_lua_set_num(L, "points", in->points);
    lua_pushboolean(L, in->first);
    lua_setfield(L, -2, "first");

    if (ev->type == LOYALTY_EVENT_ORDER) {
        ngx_http_loyalty_lua_set_num(L, "amount", ev->amount);

        lua_createtable(L, (int) json_array_size(ev->items), 0);

        json_array_foreach(ev->items, n, item) {
            lua_createtable(L, 0, 2);

            v = json_object_get(item, "sku");
            ngx_http_loyalty_lua_set_str(L, "sku", json_string_value(v),
                                         json_string_length(v));

            /* checked whole, but it may be written 3.0 */
            v = json_object_get(item, "qty");
            ngx_http_loyalty_lua_set_num(L, "qty",
                                         v ? json_number_value(v) : 1);

            lua_rawseti(L, -2, (int) n + 1);
        }

        lua_setfield(L, -2, "items");
    }

    if (in->referrer) {
        ngx_http_loyalty_lua_set_str(L, "referrer", in->referrer,
                                     in->referrer_len);
    }

    if (in->referrer2) {
        ngx_http_loyalty_lua_set_str(L, "referrer2", in->referrer2,
                                     in->referrer2_len);
    }

    ngx_http_loyalty_lua_push_member(L, (u_char *) in->member_id,
                                     in->member_len, in->member, in->rank,
                                     in->has_rank);
    lua_setfield(L, -2, "member");

    ngx_http_loyalty_lua_ask_hook(L, ask->vm, NGX_HTTP_LOYALTY_HOOK_EVENT, 1);

    ask->rc = NGX_DECLINED;

    if (lua_isnil(L, 1)) {
        return 0;
    }

    if (!lua_istable(L, 1)) {
        return luaL_error(L, "the hook returned an answer that is not a "
                          "table or nil");
    }

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

    ask->rc = NGX_OK;

    return 0;
}


static void
ngx_http_loyalty_lua_push_member(lua_State *L, const u_char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, ngx_uint_t has_rank)
{
    char  birthday[sizeof("MM-DD")];

    lua_createtable(L, 0, 14);

    ngx_http_loyalty_lua_set_str(L, "id", id, len);
    ngx_http_loyalty_lua_set_str(L, "tier", m->tier, m->tier_len);

    if (has_rank) {
        ngx_http_loyalty_lua_set_num(L, "rank", rank);
    }

    lua_pushstring(L, loyalty_stage_names[m->stage]);
    lua_setfield(L, -2, "stage");

    ngx_http_loyalty_lua_set_num(L, "points", m->points);
    ngx_http_loyalty_lua_set_num(L, "orders", m->orders);
    ngx_http_loyalty_lua_set_num(L, "spend", m->spend);

    lua_pushboolean(L, (m->flags & LOYALTY_MEMBER_BLOCKED) != 0);
    lua_setfield(L, -2, "blocked");

    if (m->flags & LOYALTY_MEMBER_BIRTHDAY) {
        ngx_sprintf((u_char *) birthday, "%02d-%02d", (int) m->birth_month,
                    (int) m->birth_day);
        ngx_http_loyalty_lua_set_str(L, "birthday", birthday, 5);
    }

    if (m->flags & LOYALTY_MEMBER_JOINED) {
        ngx_http_loyalty_lua_set_num(L, "joined_at", m->joined_at);
    }

    if (m->flags & LOYALTY_MEMBER_FIRST_ORDER) {
        ngx_http_loyalty_lua_set_num(L, "first_order_at", m->first_order_at);
    }

    if (m->flags & LOYALTY_MEMBER_LAST_ORDER) {
        ngx_http_loyalty_lua_set_num(L, "last_order_at", m->last_order_at);
    }

    if (m->referrer_len) {
        ngx_http_loyalty_lua_set_str(L, "referrer", m->referrer,
                                     m->referrer_len);
    }
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


/* loyalty.store */

void
ngx_http_loyalty_lua_store_lib(lua_State *L, ngx_http_loyalty_lua_t *vm)
{
    lua_createtable(L, 0, 2);

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, ngx_http_loyalty_lua_store_member, 1);
    lua_setfield(L, -2, "member");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, ngx_http_loyalty_lua_store_price, 1);
    lua_setfield(L, -2, "price");
}


static int
ngx_http_loyalty_lua_rank(loyalty_store_t *st, MDB_txn *txn,
    const char *tier, size_t len, int32_t *rank)
{
    MDB_val         key, val;
    loyalty_tier_t  t;

    key.mv_data = (void *) tier;
    key.mv_size = len;

    if (mdb_get(txn, st->dbi[LOYALTY_DB_TIERS], &key, &val) != 0
        || loyalty_tier_decode(val.mv_data, val.mv_size, &t) != 0)
    {
        return 0;
    }

    *rank = t.rank;

    return 1;
}


/* member(id): the member as hooks see one, or nil */
static int
ngx_http_loyalty_lua_store_member(lua_State *L)
{
    int                      has_rank;
    size_t                   len;
    int32_t                  rank;
    MDB_val                  key, val;
    const char              *id;
    loyalty_member_t         m;
    ngx_http_loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    id = luaL_checklstring(L, 1, &len);

    if (vm->txn == NULL) {
        return luaL_error(L, "the store is only read during a hook");
    }

    if (!loyalty_valid_id(id, len)) {
        lua_pushnil(L);
        return 1;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    if (mdb_get(vm->txn, vm->st->dbi[LOYALTY_DB_MEMBERS], &key, &val) != 0
        || loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0)
    {
        lua_pushnil(L);
        return 1;
    }

    rank = 0;
    has_rank = ngx_http_loyalty_lua_rank(vm->st, vm->txn, m.tier,
                                         m.tier_len, &rank);

    ngx_http_loyalty_lua_push_member(L, (u_char *) id, len, &m, rank,
                                     has_rank);

    return 1;
}


/* price(sku [, tier]): { retail = N, price = N } for the tier, or nil */
static int
ngx_http_loyalty_lua_store_price(lua_State *L)
{
    int                      i, clamped;
    size_t                   len, tlen;
    int64_t                  price;
    MDB_val                  key, val;
    const char              *sku, *tier;
    loyalty_price_t          p;
    loyalty_tierset_t       *ts;
    ngx_http_loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    sku = luaL_checklstring(L, 1, &len);
    tier = luaL_optlstring(L, 2, "public", &tlen);

    if (vm->txn == NULL) {
        return luaL_error(L, "the store is only read during a hook");
    }

    key.mv_data = (void *) sku;
    key.mv_size = len;

    if (!loyalty_valid_id(sku, len)
        || mdb_get(vm->txn, vm->st->dbi[LOYALTY_DB_PRICES], &key, &val) != 0
        || loyalty_price_decode(val.mv_data, val.mv_size, &p) != 0)
    {
        lua_pushnil(L);
        return 1;
    }

    price = p.retail;

    if (!(tlen == 6 && ngx_strncmp(tier, "public", 6) == 0)) {
        ts = lua_newuserdata(L, sizeof(loyalty_tierset_t));

        if (loyalty_tierset_load(vm->txn, vm->st->dbi[LOYALTY_DB_TIERS], ts)
            != 0)
        {
            return luaL_error(L, "the tiers cannot be read");
        }

        i = loyalty_tierset_find(ts, tier, tlen);
        if (i < 0) {
            lua_pushnil(L);
            return 1;
        }

        price = loyalty_price_guard(&p, ts, (size_t) i,
                                    loyalty_price_raw(&p, &ts->tiers[i]),
                                    &clamped);
    }

    lua_createtable(L, 0, 2);
    ngx_http_loyalty_lua_set_num(L, "retail", p.retail);
    ngx_http_loyalty_lua_set_num(L, "price", price);

    return 1;
}
