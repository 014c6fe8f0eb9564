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
static void ngx_http_loyalty_lua_fill_member(lua_State *L, const u_char *id,
    size_t len, const loyalty_member_t *m, int32_t rank, ngx_uint_t has_rank);
static int ngx_http_loyalty_lua_member_index(lua_State *L);
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


/*
 * The contexts' keys, and the stage names after them, made once per VM
 * and kept in a table at stack index 1 while a context is built: setting
 * a field by a C string would hash and intern the key on every call.
 */
typedef enum {
    NGX_HTTP_LOYALTY_KEY_SKU = 1,
    NGX_HTTP_LOYALTY_KEY_QTY,
    NGX_HTTP_LOYALTY_KEY_RETAIL,
    NGX_HTTP_LOYALTY_KEY_PRICE,
    NGX_HTTP_LOYALTY_KEY_CURRENCY,
    NGX_HTTP_LOYALTY_KEY_TIER,
    NGX_HTTP_LOYALTY_KEY_RANK,
    NGX_HTTP_LOYALTY_KEY_NOW,
    NGX_HTTP_LOYALTY_KEY_MEMBER,
    NGX_HTTP_LOYALTY_KEY_ID,
    NGX_HTTP_LOYALTY_KEY_STAGE,
    NGX_HTTP_LOYALTY_KEY_POINTS,
    NGX_HTTP_LOYALTY_KEY_ORDERS,
    NGX_HTTP_LOYALTY_KEY_SPEND,
    NGX_HTTP_LOYALTY_KEY_BLOCKED,
    NGX_HTTP_LOYALTY_KEY_BIRTHDAY,
    NGX_HTTP_LOYALTY_KEY_JOINED_AT,
    NGX_HTTP_LOYALTY_KEY_FIRST_ORDER_AT,
    NGX_HTTP_LOYALTY_KEY_LAST_ORDER_AT,
    NGX_HTTP_LOYALTY_KEY_REFERRER,
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
    NGX_HTTP_LOYALTY_KEY_ITEMS,
    NGX_HTTP_LOYALTY_KEY_STAGES
} ngx_http_loyalty_lua_key_e;


static const char  *ngx_http_loyalty_lua_key_names[] = {
    "sku", "qty", "retail", "price", "currency", "tier", "rank", "now",
    "member", "id", "stage", "points", "orders", "spend", "blocked",
    "birthday", "joined_at", "first_order_at", "last_order_at", "referrer",
    "code", "referrer2", "status", "user_agent", "host", "uri", "type",
    "kind", "at", "first", "amount", "items",
};

#define ngx_http_loyalty_lua_set(L, k)                                        \
    lua_rawgeti(L, 1, NGX_HTTP_LOYALTY_KEY_##k);                              \
    lua_insert(L, -2);                                                        \
    lua_rawset(L, -3)

#define ngx_http_loyalty_lua_set_str(L, k, s, n)                              \
    lua_pushlstring(L, (const char *) (s), n);                                \
    ngx_http_loyalty_lua_set(L, k)

#define ngx_http_loyalty_lua_set_num(L, k, v)                                 \
    lua_pushnumber(L, (lua_Number) (v));                                      \
    ngx_http_loyalty_lua_set(L, k)


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
    lua_rawgeti(L, LUA_REGISTRYINDEX, (vm)->hooks[hook]);                     \
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
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->keys);

    lua_createtable(L, 0, 10);
    ngx_http_loyalty_lua_set_str(L, SKU, p->sku.data, p->sku.len);
    ngx_http_loyalty_lua_set_num(L, QTY, p->qty);
    ngx_http_loyalty_lua_set_num(L, RETAIL, p->retail);
    ngx_http_loyalty_lua_set_num(L, PRICE, p->price);
    ngx_http_loyalty_lua_set_str(L, CURRENCY, p->currency.data,
                                 p->currency.len);
    ngx_http_loyalty_lua_set_str(L, TIER, p->tier.data, p->tier.len);
    ngx_http_loyalty_lua_set_num(L, NOW, ngx_time());

    if (p->has_rank) {
        ngx_http_loyalty_lua_set_num(L, RANK, p->rank);
    }

    /*
     * What the request knows of the member already; the rest of the
     * record is read only if the hook looks for it (see member_index).
     */
    if (p->member.len) {
        lua_createtable(L, 0, 14);
        ngx_http_loyalty_lua_set_str(L, ID, p->member.data, p->member.len);
        ngx_http_loyalty_lua_set_str(L, TIER, p->member_tier.data,
                                     p->member_tier.len);
        ngx_http_loyalty_lua_set_num(L, RANK, p->member_rank);
        lua_rawgeti(L, 1, NGX_HTTP_LOYALTY_KEY_STAGES + p->member_stage);
        ngx_http_loyalty_lua_set(L, STAGE);
        ngx_http_loyalty_lua_set_num(L, POINTS, p->member_points);
        lua_pushboolean(L, 0);
        ngx_http_loyalty_lua_set(L, BLOCKED);

        lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->lazy);
        lua_setmetatable(L, -2);

        ngx_http_loyalty_lua_set(L, MEMBER);
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
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->keys);

    lua_createtable(L, 0, 9);
    ngx_http_loyalty_lua_set_str(L, CODE, c->code.data, c->code.len);
    ngx_http_loyalty_lua_set_str(L, REFERRER, c->referrer.data,
                                 c->referrer.len);

    if (c->referrer2.len) {
        ngx_http_loyalty_lua_set_str(L, REFERRER2, c->referrer2.data,
                                     c->referrer2.len);
    }

    lua_pushstring(L, c->status);
    ngx_http_loyalty_lua_set(L, STATUS);

    if (r->headers_in.user_agent) {
        ngx_http_loyalty_lua_set_str(L, USER_AGENT,
                                     r->headers_in.user_agent->value.data,
                                     r->headers_in.user_agent->value.len);
    }

    if (r->headers_in.server.len) {
        ngx_http_loyalty_lua_set_str(L, HOST, r->headers_in.server.data,
                                     r->headers_in.server.len);
    }

    ngx_http_loyalty_lua_set_str(L, URI, r->uri.data, r->uri.len);
    ngx_http_loyalty_lua_set_num(L, NOW, ngx_time());

    if (c->member.len) {
        ngx_http_loyalty_lua_push_member(L, c->member.data, c->member.len,
                                         c->m, c->member_rank,
                                         c->has_member_rank);
        ngx_http_loyalty_lua_set(L, MEMBER);
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
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->keys);

    lua_createtable(L, 0, 14);

    lua_pushstring(L, loyalty_event_names[ev->type]);
    ngx_http_loyalty_lua_set(L, TYPE);

    if (ev->type == LOYALTY_EVENT_ACTION) {
        lua_pushstring(L, loyalty_action_names[ev->action]);
        ngx_http_loyalty_lua_set(L, KIND);
    }

    ngx_http_loyalty_lua_set_str(L, ID, ev->id, ev->id_len);
    ngx_http_loyalty_lua_set_num(L, AT, ev->at);
    ngx_http_loyalty_lua_set_num(L, NOW, ngx_time());
    ngx_http_loyalty_lua_set_num(L, POINTS, in->points);
    lua_pushboolean(L, in->first);
    ngx_http_loyalty_lua_set(L, FIRST);

    if (ev->type == LOYALTY_EVENT_ORDER) {
        ngx_http_loyalty_lua_set_num(L, AMOUNT, ev->amount);

        lua_createtable(L, (int) json_array_size(ev->items), 0);

        json_array_foreach(ev->items, n, item) {
            lua_createtable(L, 0, 2);

            v = json_object_get(item, "sku");
            ngx_http_loyalty_lua_set_str(L, SKU, json_string_value(v),
                                         json_string_length(v));

            /* checked whole, but it may be written 3.0 */
            v = json_object_get(item, "qty");
            ngx_http_loyalty_lua_set_num(L, QTY,
                                         v ? json_number_value(v) : 1);

            lua_rawseti(L, -2, (int) n + 1);
        }

        ngx_http_loyalty_lua_set(L, ITEMS);
    }

    if (in->referrer) {
        ngx_http_loyalty_lua_set_str(L, REFERRER, in->referrer,
                                     in->referrer_len);
    }

    if (in->referrer2) {
        ngx_http_loyalty_lua_set_str(L, REFERRER2, in->referrer2,
                                     in->referrer2_len);
    }

    ngx_http_loyalty_lua_push_member(L, (u_char *) in->member_id,
                                     in->member_len, in->member, in->rank,
                                     in->has_rank);
    ngx_http_loyalty_lua_set(L, MEMBER);

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


/* the keys and stage names of the contexts, for the VM's registry */
void
ngx_http_loyalty_lua_keys(lua_State *L, ngx_http_loyalty_lua_t *vm)
{
    int  i, n;

    n = sizeof(ngx_http_loyalty_lua_key_names) / sizeof(char *);

    lua_createtable(L, n + LOYALTY_STAGE_COUNT, 0);

    for (i = 0; i < n; i++) {
        lua_pushstring(L, ngx_http_loyalty_lua_key_names[i]);
        lua_rawseti(L, -2, i + 1);
    }

    for (i = 0; i < LOYALTY_STAGE_COUNT; i++) {
        lua_pushstring(L, loyalty_stage_names[i]);
        lua_rawseti(L, -2, NGX_HTTP_LOYALTY_KEY_STAGES + i);
    }

    vm->keys = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, ngx_http_loyalty_lua_member_index, 1);
    lua_setfield(L, -2, "__index");
    vm->lazy = luaL_ref(L, LUA_REGISTRYINDEX);
}


/*
 * member[key] for a field a price hook's member table was made without:
 * the whole record is read, the table filled and made an ordinary one.
 */
static int
ngx_http_loyalty_lua_member_index(lua_State *L)
{
    char                     id[LOYALTY_ID_MAX];
    size_t                   len;
    MDB_val                  key, val;
    const char              *s;
    loyalty_member_t         m;
    ngx_http_loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    lua_settop(L, 2);

    if (vm->txn == NULL) {
        return luaL_error(L, "the member is only read during a hook");
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

    /* keys, the member's table, the key asked for */
    lua_rawgeti(L, 1, NGX_HTTP_LOYALTY_KEY_ID);
    lua_rawget(L, 2);
    s = lua_tolstring(L, -1, &len);

    if (s == NULL || !loyalty_valid_id(s, len)) {
        return 0;
    }

    ngx_memcpy(id, s, len);
    lua_pop(L, 1);

    key.mv_data = id;
    key.mv_size = len;

    lua_pushvalue(L, 2);

    if (mdb_get(vm->txn, vm->st->dbi[LOYALTY_DB_MEMBERS], &key, &val) == 0
        && loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0)
    {
        ngx_http_loyalty_lua_fill_member(L, (u_char *) id, len, &m, 0, 0);
    }

    lua_pushnil(L);
    lua_setmetatable(L, 2);

    lua_pushvalue(L, 3);
    lua_rawget(L, 2);

    return 1;
}


/* a member's table; the keys are at stack index 1 */
static void
ngx_http_loyalty_lua_push_member(lua_State *L, const u_char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, ngx_uint_t has_rank)
{
    lua_createtable(L, 0, 14);

    ngx_http_loyalty_lua_fill_member(L, id, len, m, rank, has_rank);
}


/* sets the member's fields in the table at the top of the stack */
static void
ngx_http_loyalty_lua_fill_member(lua_State *L, const u_char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, ngx_uint_t has_rank)
{
    char  birthday[sizeof("MM-DD")];

    ngx_http_loyalty_lua_set_str(L, ID, id, len);
    ngx_http_loyalty_lua_set_str(L, TIER, m->tier, m->tier_len);

    if (has_rank) {
        ngx_http_loyalty_lua_set_num(L, RANK, rank);
    }

    lua_rawgeti(L, 1, NGX_HTTP_LOYALTY_KEY_STAGES + m->stage);
    ngx_http_loyalty_lua_set(L, STAGE);

    ngx_http_loyalty_lua_set_num(L, POINTS, m->points);
    ngx_http_loyalty_lua_set_num(L, ORDERS, m->orders);
    ngx_http_loyalty_lua_set_num(L, SPEND, m->spend);

    lua_pushboolean(L, (m->flags & LOYALTY_MEMBER_BLOCKED) != 0);
    ngx_http_loyalty_lua_set(L, BLOCKED);

    if (m->flags & LOYALTY_MEMBER_BIRTHDAY) {
        ngx_sprintf((u_char *) birthday, "%02d-%02d", (int) m->birth_month,
                    (int) m->birth_day);
        ngx_http_loyalty_lua_set_str(L, BIRTHDAY, birthday, 5);
    }

    if (m->flags & LOYALTY_MEMBER_JOINED) {
        ngx_http_loyalty_lua_set_num(L, JOINED_AT, m->joined_at);
    }

    if (m->flags & LOYALTY_MEMBER_FIRST_ORDER) {
        ngx_http_loyalty_lua_set_num(L, FIRST_ORDER_AT, m->first_order_at);
    }

    if (m->flags & LOYALTY_MEMBER_LAST_ORDER) {
        ngx_http_loyalty_lua_set_num(L, LAST_ORDER_AT, m->last_order_at);
    }

    if (m->referrer_len) {
        ngx_http_loyalty_lua_set_str(L, REFERRER, m->referrer,
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

    /* the keys below the id, which stays referenced */
    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

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

    lua_settop(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

    lua_createtable(L, 0, 2);
    ngx_http_loyalty_lua_set_num(L, RETAIL, p.retail);
    ngx_http_loyalty_lua_set_num(L, PRICE, price);

    return 1;
}
