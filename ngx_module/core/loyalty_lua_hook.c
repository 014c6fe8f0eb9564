/*
 * nginx-loyalty core: the hooks' contexts and answers (lua/README.md),
 * run in the sandbox by the module and by loyaltyctl's dry runs alike; a
 * member's table and loyalty.store are loyalty_lua_member.c's.
 *
 * Every answer is checked here: a hook that returns something it may not
 * fails its call, and the request or event goes on as if there were no
 * hook.  The error names the place, the hook's FILE:LINE, and the field,
 * so that the operator finds it: "weekend.lua:12 (field price): the price
 * hook returned a price that is not a whole amount of at least 0 (round
 * it with loyalty.money): 1332.666".  A label must be valid UTF-8 (it goes out in the price API's
 * JSON): one that is not is refused, not mended.
 */

#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua_hook.h"
#include "loyalty_util.h"


/* integers a double holds exactly */
#define LOYALTY_LUA_INT_MAX   9007199254740992.0


static int loyalty_lua_price_ask(lua_State *L);
static void loyalty_lua_reused_tables(lua_State *L, loyalty_lua_t *vm);
static void loyalty_lua_reused_member_id(lua_State *L, loyalty_lua_t *vm,
    int k);
static void loyalty_lua_reused_table(lua_State *L, int k, int n,
    const int *keys);
static void loyalty_lua_price_context(lua_State *L, loyalty_lua_ask_t *ask);
static void loyalty_lua_price_arm(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_click_ask(lua_State *L);
static void loyalty_lua_click_context(lua_State *L, loyalty_lua_ask_t *ask);
static int loyalty_lua_event_ask(lua_State *L);
static void loyalty_lua_event_context(lua_State *L, loyalty_lua_ask_t *ask);
static void loyalty_lua_event_items(lua_State *L, const loyalty_event_t *ev);
static void loyalty_lua_event_points(lua_State *L, loyalty_lua_ask_t *ask);
static void loyalty_lua_context(lua_State *L, loyalty_lua_ask_t *ask,
    int nrec);
static void loyalty_lua_push_name(lua_State *L, loyalty_lua_t *vm,
    const char *s, size_t len, int site);
static loyalty_lua_ask_t *loyalty_lua_called(lua_State *L,
    loyalty_lua_hook_e hook);
static int loyalty_lua_refuse(lua_State *L, loyalty_lua_ask_t *ask,
    loyalty_lua_hook_e hook, int idx, const char *field, const char *what);
static int loyalty_lua_integer(lua_State *L, int idx, int64_t min,
    int64_t max, int64_t *v);
static int loyalty_lua_word(lua_State *L, int idx, size_t max, char *buf,
    size_t *len);


const lua_CFunction  loyalty_lua_asks[LOYALTY_LUA_HOOKS] = {
    loyalty_lua_price_ask,
    loyalty_lua_click_ask,
    loyalty_lua_event_ask
};


int
loyalty_lua_ask(loyalty_lua_t *vm, loyalty_lua_hook_e hook,
    loyalty_lua_ask_t *ask)
{
    ask->vm = vm;
    ask->answered = 0;

    return loyalty_lua_call(vm, loyalty_lua_asks[hook], ask);
}


static int
loyalty_lua_price_ask(lua_State *L)
{
    int                   top, type;
    size_t                len, cut;
    const char           *label;
    loyalty_lua_ask_t    *ask;
    loyalty_lua_price_t  *p;

    ask = loyalty_lua_ud(L);
    p = ask->price;

    loyalty_lua_price_context(L, ask);

    /* price, label; or { price = N, label = "..." } */
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "price");
        lua_getfield(L, 1, "label");
    }

    top = lua_gettop(L);

    if (lua_isnil(L, top - 1)) {
        return 0;
    }

    if (loyalty_lua_integer(L, top - 1, 0, LOYALTY_PRICE_MAX * 1000,
                            &p->total)
        != 0)
    {
        return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_PRICE, top - 1,
                                  "price", "a price that is not a whole "
                                  "amount of at least 0 (round it with "
                                  "loyalty.money)");
    }

    p->label_len = 0;
    type = lua_type(L, top);

    if (type != LUA_TNIL) {
        if (type != LUA_TSTRING) {
            return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_PRICE, top,
                                      "label", "a label that is not a "
                                      "string");
        }

        label = lua_tolstring(L, top, &len);

        if (loyalty_utf8_chars(label, len) < 0) {
            return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_PRICE, top,
                                      "label", "a label that is not valid "
                                      "UTF-8 text");
        }

        /* whole characters only */
        cut = len < LOYALTY_LUA_LABEL_MAX ? len : LOYALTY_LUA_LABEL_MAX;

        while (cut < len && cut && (label[cut] & 0xc0) == 0x80) {
            cut--;
        }

        memcpy(p->label, label, cut);
        p->label_len = cut;
    }

    ask->answered = 1;

    return 0;
}


/*
 * The functions that fill a price hook's context and member
 * (loyalty_lua_price_context), which share them and the hook as upvalues
 * (loyalty_lua_price_arm): Lua sets a table's fields faster than the C
 * API, which takes each key from the keys' table.  Every key is in place
 * (loyalty_lua_reused_tables), so that an assignment meets __newindex
 * only where the field is nil (rank, member): rawset there.  One filler
 * by raw and a member, chosen in C, as a branch of the VM's costs more
 * than an argument.  The member's id is not set: member.id is read from
 * the VM when asked (loyalty_lua_member_index), as most hooks never ask,
 * and a string made every call would be garbage for the collector.
 */
#define LOYALTY_LUA_FILL_CTX                                                  \
    "  local c = ctx\n"                                                       \
    "  c.sku = sku\n"                                                         \
    "  c.qty = qty\n"                                                         \
    "  c.retail = retail\n"                                                   \
    "  c.price = price\n"                                                     \
    "  c.currency = currency\n"                                               \
    "  c.tier = tier\n"                                                       \
    "  c.now = now\n"

#define LOYALTY_LUA_FILL_MEMBER                                               \
    "  local m = member\n"                                                    \
    "  m.tier = mtier\n"                                                      \
    "  m.rank = mrank\n"                                                      \
    "  m.stage = stages[stage]\n"                                             \
    "  m.points = points\n"                                                   \
    "  m.blocked = false\n"

#define LOYALTY_LUA_FILL_ARGS                                                 \
    "(sku, qty, retail, price, currency, tier, now, rank)\n"                  \
    LOYALTY_LUA_FILL_CTX

#define LOYALTY_LUA_FILL_MEMBER_ARGS                                          \
    "(sku, qty, retail, price, currency, tier, now, rank, mtier, mrank,\n"    \
    "         stage, points)\n"                                               \
    LOYALTY_LUA_FILL_CTX                                                      \
    LOYALTY_LUA_FILL_MEMBER

static const char  loyalty_lua_price_fill[] =
    "local rawset, stages = rawset, ...\n"
    "local hook, ctx, member\n"
    "return function" LOYALTY_LUA_FILL_ARGS
    "  c.rank = rank\n"
    "  c.member = nil\n"
    "  return hook(c)\n"
    "end, function" LOYALTY_LUA_FILL_MEMBER_ARGS
    "  c.rank = rank\n"
    "  c.member = m\n"
    "  return hook(c)\n"
    "end, function" LOYALTY_LUA_FILL_ARGS
    "  rawset(c, 'rank', rank)\n"
    "  rawset(c, 'member', nil)\n"
    "  return hook(c)\n"
    "end, function" LOYALTY_LUA_FILL_MEMBER_ARGS
    "  rawset(c, 'rank', rank)\n"
    "  rawset(c, 'member', m)\n"
    "  return hook(c)\n"
    "end\n";

/*
 * The VM instructions each runs, up to and with the call of the hook, by
 * raw and a member: credited to the call's budget, which is the script's
 * (a unit test holds them to the fillers' code)
 */
static const unsigned  loyalty_lua_fill_cost[2][2] = {
    { 14, 22 }, { 21, 30 }
};

/* the keys of each, all set every call (the member's id is read) */
static const int  loyalty_lua_ctx_keys[] = {
    LOYALTY_LUA_KEY_SKU, LOYALTY_LUA_KEY_QTY, LOYALTY_LUA_KEY_RETAIL,
    LOYALTY_LUA_KEY_PRICE, LOYALTY_LUA_KEY_CURRENCY, LOYALTY_LUA_KEY_TIER,
    LOYALTY_LUA_KEY_NOW, LOYALTY_LUA_KEY_RANK, LOYALTY_LUA_KEY_MEMBER, 0
};

static const int  loyalty_lua_member_keys[] = {
    LOYALTY_LUA_KEY_TIER, LOYALTY_LUA_KEY_RANK, LOYALTY_LUA_KEY_STAGE,
    LOYALTY_LUA_KEY_POINTS, LOYALTY_LUA_KEY_BLOCKED, 0
};


/* the filler and the tables made, run protected as the VM is made */
void
loyalty_lua_price_setup(lua_State *L, loyalty_lua_t *vm)
{
    int  i;

    if (luaL_loadbuffer(L, loyalty_lua_price_fill,
                        sizeof(loyalty_lua_price_fill) - 1, "=loyalty")
        != 0)
    {
        lua_error(L);
    }

    /* the stage names, by the stage's number from 1 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_createtable(L, LOYALTY_STAGE_COUNT, 0);

    for (i = 0; i < LOYALTY_STAGE_COUNT; i++) {
        lua_rawgeti(L, -2, LOYALTY_LUA_KEY_STAGES + i);
        lua_rawseti(L, -2, i + 1);
    }

    lua_remove(L, -2);
    lua_call(L, 1, 4);

    /* the last returned, raw with a member, is at the top */
    for (i = 3; i >= 0; i--) {
        vm->fill[i >> 1][i & 1] = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    loyalty_lua_reused_tables(L, vm);
}


/*
 * A price hook's context and member are the VM's own tables, refilled
 * every call, with metatables: the context's holds only __newindex, the
 * member's __index reads the rest of a partial member's record as well.
 * Their keys are set to false, for the filler to overwrite; their slots
 * in the registry take the new ones, and renew is cleared once all four
 * are in place.
 */
static void
loyalty_lua_reused_tables(lua_State *L, loyalty_lua_t *vm)
{
    int  k;

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    k = lua_gettop(L);

    loyalty_lua_reused_member_id(L, vm, k);

    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_reused_newindex, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__newindex");

    /* the context's metatable, the __newindex; the member's */
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "__newindex");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_member_index, 1);
    lua_setfield(L, -2, "__index");

    loyalty_lua_reused_table(L, k, 14, loyalty_lua_member_keys);
    lua_rawseti(L, LUA_REGISTRYINDEX, vm->member);
    lua_rawseti(L, LUA_REGISTRYINDEX, vm->lazy);

    loyalty_lua_reused_table(L, k, 10, loyalty_lua_ctx_keys);
    lua_rawseti(L, LUA_REGISTRYINDEX, vm->ctx);
    lua_rawseti(L, LUA_REGISTRYINDEX, vm->ctx_mt);

    lua_pop(L, 1);

    vm->nil_rank = 0;
    vm->nil_member = 0;
    vm->armed = 0;
    vm->renew = 0;
}


/*
 * The member's table about to be replaced, which a script may have kept:
 * the id its fields are of set in it, unless it has one, as its __index
 * takes the id of the VM's new member only
 */
static void
loyalty_lua_reused_member_id(lua_State *L, loyalty_lua_t *vm, int k)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->member);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->lazy);

    if (vm->member_id_len && lua_istable(L, k + 1)
        && lua_getmetatable(L, k + 1) && lua_rawequal(L, -1, -2))
    {
        lua_rawgeti(L, k, LOYALTY_LUA_KEY_ID);
        lua_rawget(L, k + 1);

        if (lua_isnil(L, -1)) {
            lua_rawgeti(L, k, LOYALTY_LUA_KEY_ID);
            lua_pushlstring(L, vm->member_id, vm->member_id_len);
            lua_rawset(L, k + 1);
        }
    }

    lua_settop(L, k);
}


/*
 * A table pushed, room made for n keys, keys (from the keys' table at k)
 * set to false, and the metatable below it set
 */
static void
loyalty_lua_reused_table(lua_State *L, int k, int n, const int *keys)
{
    int  i;

    lua_createtable(L, 0, n);

    for (i = 0; keys[i]; i++) {
        lua_rawgeti(L, k, keys[i]);
        lua_pushboolean(L, 0);
        lua_rawset(L, -3);
    }

    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
}


/*
 * The price hook's context: the VM's own table and member (vm->ctx,
 * vm->member) filled, every key set, to nil if the question has none, so
 * that nothing of the call before is left.  A script that adds a key of
 * its own has them made anew for the next call; fresh tables every call
 * would be garbage, and hashing their keys in, more work than the hook's.
 * The count of the budget begins after.
 */
static void
loyalty_lua_price_context(lua_State *L, loyalty_lua_ask_t *ask)
{
    int                   n, raw;
    size_t                len;
    loyalty_lua_t        *vm;
    loyalty_lua_price_t  *p;

    p = ask->price;
    vm = ask->vm;

    /* the stack is empty (loyalty_lua_call()) */

    if (vm->renew) {
        loyalty_lua_reused_tables(L, vm);
    }

    /* a key the last call left nil is set past __newindex */
    raw = vm->nil_rank || vm->nil_member;
    vm->nil_rank = !p->has_rank;
    vm->nil_member = (p->member == NULL);

    if (!vm->armed) {
        loyalty_lua_price_arm(L, vm);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->fill[raw][p->member != NULL]);

    loyalty_lua_push_name(L, vm, p->sku, p->sku_len, 0);
    lua_pushnumber(L, (lua_Number) p->qty);
    lua_pushnumber(L, (lua_Number) p->retail);
    lua_pushnumber(L, (lua_Number) p->price);
    loyalty_lua_push_name(L, vm, p->currency, p->currency_len, 1);
    loyalty_lua_push_name(L, vm, p->tier, p->tier_len, 2);
    lua_pushnumber(L, (lua_Number) ask->now);

    if (p->has_rank) {
        lua_pushnumber(L, p->rank);

    } else {
        lua_pushnil(L);
    }

    n = 8;

    /*
     * What the request knows of the member already; the id, and the
     * rest of the record, are read only if the hook looks for them (see
     * loyalty_lua_member_index).  A member's id is a store's, at most
     * LOYALTY_ID_MAX bytes.
     */
    if (p->member) {
        len = p->member_len < LOYALTY_ID_MAX ? p->member_len : LOYALTY_ID_MAX;
        memcpy(vm->member_id, p->member, len);
        vm->member_id_len = len;

        /* the member's tier is mostly the one asked about, at 7 */
        if (p->member_tier_len == p->tier_len
            && memcmp(p->member_tier, p->tier, p->tier_len) == 0)
        {
            lua_pushvalue(L, 7);

        } else {
            loyalty_lua_push_name(L, vm, p->member_tier, p->member_tier_len,
                                  3);
        }

        lua_pushnumber(L, p->member_rank);
        lua_pushnumber(L, p->member_stage + 1);
        lua_pushnumber(L, (lua_Number) p->member_points);
        n = 12;
    }

    vm->credit = loyalty_lua_fill_cost[raw][p->member != NULL];

    lua_call(L, n, 2);
}


/*
 * The fillers given the tables and the hook as their upvalues of those
 * names, once they are made (each its own: a filler without a member has
 * none of it): no VM instruction runs, so the budget's count has nothing
 * to credit.
 */
static void
loyalty_lua_price_arm(lua_State *L, loyalty_lua_t *vm)
{
    int          i, f, ref;
    const char  *name;

    for (f = 0; f < 4; f++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->fill[f >> 1][f & 1]);

        for (i = 1; (name = lua_getupvalue(L, -1, i)) != NULL; i++) {
            lua_pop(L, 1);

            if (strcmp(name, "hook") == 0) {
                ref = vm->hooks[LOYALTY_LUA_HOOK_PRICE];

            } else if (strcmp(name, "ctx") == 0) {
                ref = vm->ctx;

            } else if (strcmp(name, "member") == 0) {
                ref = vm->member;

            } else {
                continue;
            }

            lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
            (void) lua_setupvalue(L, -2, i);
        }

        lua_pop(L, 1);
    }

    vm->armed = 1;
}


static int
loyalty_lua_click_ask(lua_State *L)
{
    int                   top;
    loyalty_lua_ask_t    *ask;
    loyalty_lua_click_t  *c;

    ask = loyalty_lua_called(L, LOYALTY_LUA_HOOK_CLICK);
    c = ask->click;

    top = 1;

    /* true or nil: accept; false: refuse; "campaign"; or a table */
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "refuse");
        c->refuse = lua_toboolean(L, -1);
        lua_getfield(L, 1, "campaign");
        top = lua_gettop(L);

    } else if (lua_isboolean(L, 1)) {
        c->refuse = !lua_toboolean(L, 1);
        ask->answered = 1;
        return 0;
    }

    ask->answered = 1;

    if (lua_isnil(L, top)) {
        return 0;
    }

    if (loyalty_lua_word(L, top, LOYALTY_LUA_CAMPAIGN_MAX, c->campaign,
                         &c->campaign_len)
        != 0)
    {
        c->refuse = 0;
        return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_CLICK, top,
                                  "campaign", "a campaign that is not 1-64 "
                                  "characters of [A-Za-z0-9_.-]");
    }

    return 0;
}


static void
loyalty_lua_click_context(lua_State *L, loyalty_lua_ask_t *ask)
{
    loyalty_lua_click_t  *c;

    c = ask->click;
    loyalty_lua_context(L, ask, 9);
    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_CODE, c->code, c->code_len);
    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER, c->referrer,
                        c->referrer_len);

    if (c->referrer2) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER2, c->referrer2,
                            c->referrer2_len);
    }

    lua_pushstring(L, c->status);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_STATUS);

    if (c->user_agent) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_USER_AGENT, c->user_agent,
                            c->user_agent_len);
    }

    if (c->host) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_HOST, c->host, c->host_len);
    }

    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_URI, c->uri, c->uri_len);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_NOW, ask->now);

    if (c->member) {
        loyalty_lua_push_member(L, c->member, c->member_len, c->m,
                                c->member_rank, c->has_member_rank);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_MEMBER);
    }
}


static int
loyalty_lua_event_ask(lua_State *L)
{
    size_t                     len;
    const char                *s;
    loyalty_lua_ask_t         *ask;
    loyalty_event_hook_out_t  *out;

    ask = loyalty_lua_called(L, LOYALTY_LUA_HOOK_EVENT);
    out = ask->out;

    if (lua_isnil(L, 1)) {
        return 0;
    }

    if (!lua_istable(L, 1)) {
        return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_EVENT, 1,
                                  NULL, "an answer that is not a table or "
                                  "nil");
    }

    loyalty_lua_event_points(L, ask);

    lua_getfield(L, 1, "stage");

    if (!lua_isnil(L, -1)) {
        s = lua_tolstring(L, -1, &len);

        if (lua_type(L, -1) != LUA_TSTRING
            || (out->stage = loyalty_stage_parse(s, len)) < 0)
        {
            return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_EVENT, -1,
                                      "stage", "a stage that is not one of "
                                      "prospect, fan, customer, member, "
                                      "partner");
        }
    }

    lua_getfield(L, 1, "tier");

    if (!lua_isnil(L, -1)) {
        if (loyalty_lua_word(L, -1, LOYALTY_TIER_MAX, out->tier,
                             &out->tier_len)
            != 0)
        {
            return loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_EVENT, -1,
                                      "tier", "a tier that is not a tier "
                                      "name");
        }
    }

    ask->answered = 1;

    return 0;
}


static void
loyalty_lua_event_context(lua_State *L, loyalty_lua_ask_t *ask)
{
    const loyalty_event_t          *ev;
    const loyalty_event_hook_in_t  *in;

    in = ask->in;
    ev = in->ev;
    loyalty_lua_context(L, ask, 14);

    lua_pushstring(L, loyalty_event_names[ev->type]);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_TYPE);

    if (ev->type == LOYALTY_EVENT_ACTION) {
        lua_pushstring(L, loyalty_action_names[ev->action]);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_KIND);
    }

    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_ID, ev->id, ev->id_len);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_AT, ev->at);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_NOW, ask->now);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_POINTS, in->points);
    lua_pushboolean(L, in->first);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_FIRST);

    if (ev->type == LOYALTY_EVENT_ORDER) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_AMOUNT, ev->amount);
        loyalty_lua_event_items(L, ev);
        loyalty_lua_set(L, LOYALTY_LUA_KEY_ITEMS);
    }

    if (in->referrer) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER, in->referrer,
                            in->referrer_len);
    }

    if (in->referrer2) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER2, in->referrer2,
                            in->referrer2_len);
    }

    loyalty_lua_push_member(L, in->member_id, in->member_len, in->member,
                            in->rank, in->has_rank);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_MEMBER);
}


/* an order's items, { { sku = "...", qty = N }, ... }, pushed */
static void
loyalty_lua_event_items(lua_State *L, const loyalty_event_t *ev)
{
    size_t   n;
    json_t  *item, *v;

    lua_createtable(L, (int) json_array_size(ev->items), 0);

    json_array_foreach(ev->items, n, item) {
        lua_createtable(L, 0, 2);

        v = json_object_get(item, "sku");
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_SKU, json_string_value(v),
                            json_string_length(v));

        /* checked whole, but it may be written 3.0 */
        v = json_object_get(item, "qty");
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_QTY,
                            v ? json_number_value(v) : 1);

        lua_rawseti(L, -2, (int) n + 1);
    }
}


/* the points of the event hook's answer, the table at index 1 */
static void
loyalty_lua_event_points(lua_State *L, loyalty_lua_ask_t *ask)
{
    int                        i;
    int64_t                   *points[3];
    loyalty_event_hook_out_t  *out;

    static const char  *fields[3] = {
        "points", "referrer_points", "referrer2_points"
    };

    out = ask->out;
    points[0] = &out->points;
    points[1] = &out->l1_points;
    points[2] = &out->l2_points;

    for (i = 0; i < 3; i++) {
        lua_getfield(L, 1, fields[i]);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }

        if (loyalty_lua_integer(L, -1, -LOYALTY_POINTS_MAX,
                                LOYALTY_POINTS_MAX, points[i])
            != 0)
        {
            lua_pushfstring(L, "%s that is not a whole number within "
                            "10^12", fields[i]);
            loyalty_lua_refuse(L, ask, LOYALTY_LUA_HOOK_EVENT, -2, fields[i],
                               lua_tostring(L, -1));
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
}


/*
 * A hook's context begun, on the call's empty stack: the keys at index 1
 * and the context's table, room made for nrec fields, at 2.
 */
static void
loyalty_lua_context(lua_State *L, loyalty_lua_ask_t *ask, int nrec)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->keys);
    lua_createtable(L, 0, nrec);
}


/*
 * s pushed: from the registry if one of the last names pushed (the one
 * this call site pushed last, else a lookup by its hash, then a
 * compare), else interned and kept there in place of the name its slot
 * held.  Run protected, as every ask: a failed luaL_ref() fails the call.
 */
static void
loyalty_lua_push_name(lua_State *L, loyalty_lua_t *vm, const char *s,
    size_t len, int site)
{
    size_t               i;
    uint32_t             h;
    loyalty_lua_name_t  *n;

    if (len == 0 || len > LOYALTY_LUA_NAME_LEN) {
        lua_pushlstring(L, s, len);
        return;
    }

    n = &vm->names[vm->name_sites[site]];

    if (n->len == len && memcmp(n->s, s, len) == 0) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref);
        return;
    }

    /* FNV-1a: the names a shop has (tiers, currencies) rarely collide */
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }

    h %= LOYALTY_LUA_NAMES;
    vm->name_sites[site] = (uint8_t) h;
    n = &vm->names[h];

    if (n->len == len && memcmp(n->s, s, len) == 0) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref);
        return;
    }

    lua_pushlstring(L, s, len);
    lua_pushvalue(L, -1);
    n->len = 0;

    if (n->ref == LUA_NOREF) {
        n->ref = luaL_ref(L, LUA_REGISTRYINDEX);

    } else {
        lua_rawseti(L, LUA_REGISTRYINDEX, n->ref);
    }

    memcpy(n->s, s, len);
    n->len = len;
}


/*
 * A click or event hook's ask: its context built, below it the keys, and
 * the hook called with it; the keys are taken off, so that its one
 * answer is at index 1.
 */
static loyalty_lua_ask_t *
loyalty_lua_called(lua_State *L, loyalty_lua_hook_e hook)
{
    loyalty_lua_ask_t  *ask;

    ask = loyalty_lua_ud(L);

    if (hook == LOYALTY_LUA_HOOK_CLICK) {
        loyalty_lua_click_context(L, ask);

    } else {
        loyalty_lua_event_context(L, ask);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->hooks[hook]);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_remove(L, 1);

    return ask;
}


/*
 * Fails the call for an answer at idx: "FILE:LINE (field FIELD): the HOOK
 * hook returned WHAT: VALUE", FILE:LINE where the hook is defined.
 */
static int
loyalty_lua_refuse(lua_State *L, loyalty_lua_ask_t *ask,
    loyalty_lua_hook_e hook, int idx, const char *field, const char *what)
{
    lua_Debug  ar;

    if (idx < 0) {
        idx = lua_gettop(L) + idx + 1;
    }

    memset(&ar, 0, sizeof(lua_Debug));
    lua_rawgeti(L, LUA_REGISTRYINDEX, ask->vm->hooks[hook]);

    if (lua_getinfo(L, ">S", &ar) == 0) {
        ar.short_src[0] = '?';
        ar.short_src[1] = '\0';
    }

    /* "FILE:LINE (field F):", the place that the module logs once */
    if (field) {
        lua_pushfstring(L, "%s:%d (field %s): the %s hook returned %s",
                        ar.short_src, ar.linedefined, field,
                        loyalty_lua_hook_names[hook], what);

    } else {
        lua_pushfstring(L, "%s:%d (answer): the %s hook returned %s",
                        ar.short_src, ar.linedefined,
                        loyalty_lua_hook_names[hook], what);
    }

    /* a number as it is; other values by their type, bytes not echoed */
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_pushfstring(L, ": %f", lua_tonumber(L, idx));

    } else {
        lua_pushfstring(L, ": a %s", luaL_typename(L, idx));
    }

    lua_concat(L, 2);

    return lua_error(L);
}


static int
loyalty_lua_integer(lua_State *L, int idx, int64_t min, int64_t max,
    int64_t *v)
{
    lua_Number  n;

    if (lua_type(L, idx) != LUA_TNUMBER) {
        return -1;
    }

    n = lua_tonumber(L, idx);

    /* NaN fails every comparison */
    if (!(n >= (lua_Number) min && n <= (lua_Number) max)
        || n > LOYALTY_LUA_INT_MAX
        || n < -LOYALTY_LUA_INT_MAX
        || n != (lua_Number) (int64_t) n)
    {
        return -1;
    }

    *v = (int64_t) n;

    return 0;
}


/* a string of [A-Za-z0-9_.-], 1 to max bytes, copied into buf */
static int
loyalty_lua_word(lua_State *L, int idx, size_t max, char *buf, size_t *len)
{
    size_t       n;
    const char  *p;

    if (lua_type(L, idx) != LUA_TSTRING) {
        return -1;
    }

    p = lua_tolstring(L, idx, &n);

    if (!loyalty_valid_chars(p, n, max, 1)) {
        return -1;
    }

    memcpy(buf, p, n);
    *len = n;

    return 0;
}
