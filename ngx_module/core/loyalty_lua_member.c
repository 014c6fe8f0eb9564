/*
 * nginx-loyalty core: members as hooks see them (a whole record, or what
 * the request knows with the rest read if the hook looks), and
 * loyalty.store, the script's read-only view of the store during a call.
 */

#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua.h"
#include "loyalty_member.h"
#include "loyalty_price.h"
#include "loyalty_util.h"


static int loyalty_lua_rank(loyalty_store_t *st, MDB_txn *txn,
    const char *tier, size_t len, int32_t *rank);
static int loyalty_lua_store_member(lua_State *L);
static int loyalty_lua_store_price(lua_State *L);


void
loyalty_lua_push_member(lua_State *L, const char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, int has_rank)
{
    lua_createtable(L, 0, 14);

    loyalty_lua_fill_member(L, id, len, m, rank, has_rank);
}


void
loyalty_lua_fill_member(lua_State *L, const char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, int has_rank)
{
    char  birthday[16];

    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_ID, id, len);
    loyalty_lua_set_str(L, LOYALTY_LUA_KEY_TIER, m->tier, m->tier_len);

    if (has_rank) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RANK, rank);
    }

    lua_rawgeti(L, 1, LOYALTY_LUA_KEY_STAGES + m->stage);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_STAGE);

    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_POINTS, m->points);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_ORDERS, m->orders);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_SPEND, m->spend);

    lua_pushboolean(L, (m->flags & LOYALTY_MEMBER_BLOCKED) != 0);
    loyalty_lua_set(L, LOYALTY_LUA_KEY_BLOCKED);

    if (m->flags & LOYALTY_MEMBER_BIRTHDAY) {
        snprintf(birthday, sizeof(birthday), "%02d-%02d",
                 (int) m->birth_month, (int) m->birth_day);
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_BIRTHDAY, birthday, 5);
    }

    if (m->flags & LOYALTY_MEMBER_JOINED) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_JOINED_AT, m->joined_at);
    }

    if (m->flags & LOYALTY_MEMBER_FIRST_ORDER) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_FIRST_ORDER_AT,
                            m->first_order_at);
    }

    if (m->flags & LOYALTY_MEMBER_LAST_ORDER) {
        loyalty_lua_set_num(L, LOYALTY_LUA_KEY_LAST_ORDER_AT,
                            m->last_order_at);
    }

    if (m->referrer_len) {
        loyalty_lua_set_str(L, LOYALTY_LUA_KEY_REFERRER, m->referrer,
                            m->referrer_len);
    }
}


/*
 * member[key] for a field a partial member's table was made without (a
 * price hook's holds what the request knows): its id, from the VM, or
 * else the whole record read, the table filled and made an ordinary one.
 */
int
loyalty_lua_member_index(lua_State *L)
{
    int               own, found;
    char              id[LOYALTY_ID_MAX];
    size_t            len;
    const char       *s;
    loyalty_lua_t    *vm;
    loyalty_member_t  m;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    /* a script can call it: it is in the member's metatable */
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

    /* keys, the member's table, the key asked for; the id's key */
    lua_rawgeti(L, 1, LOYALTY_LUA_KEY_ID);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->member);
    own = lua_rawequal(L, 2, -1);
    lua_pop(L, 1);

    /* the VM's member has the last call's id; another table, its own */
    if (own) {
        len = vm->member_id_len;
        memcpy(id, vm->member_id, len);

        if (lua_rawequal(L, 3, 4)) {
            if (len) {
                lua_pushlstring(L, id, len);

            } else {
                lua_pushnil(L);
            }

            return 1;
        }

    } else {
        lua_rawget(L, 2);
        s = lua_tolstring(L, -1, &len);

        if (s == NULL || !loyalty_valid_id(s, len)) {
            return 0;
        }

        memcpy(id, s, len);
    }

    lua_pop(L, 1);

    if (!loyalty_valid_id(id, len)) {
        return 0;
    }

    /* the record first: a snapshot that cannot begin changes no table */
    found = loyalty_member_get(loyalty_lua_txn(L, vm, "member"), vm->st, id,
                               len, &m)
            == 0;

    /*
     * A table of the VM's gets more keys than the next call sets: made
     * anew for it, even if running out of memory stops the filling
     */
    vm->renew = 1;

    lua_pushvalue(L, 2);

    if (found) {
        loyalty_lua_fill_member(L, id, len, &m, 0, 0);
    }

    lua_pushnil(L);
    lua_setmetatable(L, 2);

    lua_pushvalue(L, 3);
    lua_rawget(L, 2);

    return 1;
}


/* loyalty.store */

void
loyalty_lua_store_lib(lua_State *L, loyalty_lua_t *vm)
{
    lua_createtable(L, 0, 2);

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_store_member, 1);
    lua_setfield(L, -2, "member");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_store_price, 1);
    lua_setfield(L, -2, "price");
}


static int
loyalty_lua_rank(loyalty_store_t *st, MDB_txn *txn, const char *tier,
    size_t len, int32_t *rank)
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
loyalty_lua_store_member(lua_State *L)
{
    int               has_rank;
    size_t            len;
    int32_t           rank;
    MDB_txn          *txn;
    const char       *id;
    loyalty_lua_t    *vm;
    loyalty_member_t  m;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    id = luaL_checklstring(L, 1, &len);
    txn = loyalty_lua_txn(L, vm, "store");

    if (!loyalty_valid_id(id, len)) {
        lua_pushnil(L);
        return 1;
    }

    if (loyalty_member_get(txn, vm->st, id, len, &m) != 0) {
        lua_pushnil(L);
        return 1;
    }

    rank = 0;
    has_rank = loyalty_lua_rank(vm->st, txn, m.tier, m.tier_len, &rank);

    /* the keys below the id, which stays referenced */
    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

    loyalty_lua_push_member(L, id, len, &m, rank, has_rank);

    return 1;
}


/* price(sku [, tier]): { retail = N, price = N } for the tier, or nil */
static int
loyalty_lua_store_price(lua_State *L)
{
    int                 i, clamped;
    size_t              len, tlen;
    int64_t             price;
    MDB_val             key, val;
    MDB_txn            *txn;
    const char         *sku, *tier;
    loyalty_lua_t      *vm;
    loyalty_price_t     p;
    loyalty_tierset_t  *ts;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    sku = luaL_checklstring(L, 1, &len);
    tier = luaL_optlstring(L, 2, "public", &tlen);

    txn = loyalty_lua_txn(L, vm, "store");

    key.mv_data = (void *) sku;
    key.mv_size = len;

    if (!loyalty_valid_id(sku, len)
        || mdb_get(txn, vm->st->dbi[LOYALTY_DB_PRICES], &key, &val) != 0
        || loyalty_price_decode(val.mv_data, val.mv_size, &p) != 0)
    {
        lua_pushnil(L);
        return 1;
    }

    price = p.retail;

    if (!(tlen == 6 && strncmp(tier, "public", 6) == 0)) {
        ts = lua_newuserdata(L, sizeof(loyalty_tierset_t));

        if (loyalty_tierset_load(txn, vm->st->dbi[LOYALTY_DB_TIERS], ts)
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
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RETAIL, p.retail);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_PRICE, price);

    return 1;
}
