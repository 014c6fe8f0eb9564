/*
 * nginx-loyalty core: string.find, match, gmatch and gsub for the sandbox,
 * with the stock functions' arguments, answers and errors, on the metered
 * matcher of loyalty_lua_pattern.c.
 */

#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua_pattern.h"


static int loyalty_pat_find_aux(lua_State *L, int find);
static int loyalty_pat_find(lua_State *L);
static int loyalty_pat_match_f(lua_State *L);
static int loyalty_pat_gmatch(lua_State *L);
static int loyalty_pat_gmatch_next(lua_State *L);
static void loyalty_pat_add_s(loyalty_pat_t *ms, luaL_Buffer *b,
    const char *s, const char *e);
static void loyalty_pat_add_value(loyalty_pat_t *ms, luaL_Buffer *b,
    const char *s, const char *e, int tr);
static int loyalty_pat_gsub(lua_State *L);


void
loyalty_lua_pattern_open(lua_State *L, int idx, loyalty_lua_meter_t *meter)
{
    int  i;

    static const luaL_Reg  funcs[] = {
        { "find", loyalty_pat_find },
        { "match", loyalty_pat_match_f },
        { "gmatch", loyalty_pat_gmatch },
        { "gsub", loyalty_pat_gsub }
    };

    if (idx < 0) {
        idx = lua_gettop(L) + idx + 1;
    }

    for (i = 0; i < (int) (sizeof(funcs) / sizeof(funcs[0])); i++) {
        lua_pushlightuserdata(L, meter);
        lua_pushcclosure(L, funcs[i].func, 1);
        lua_setfield(L, idx, funcs[i].name);
    }
}


static int
loyalty_pat_find_aux(lua_State *L, int find)
{
    int            anchor, n;
    size_t         ls, lp;
    lua_Integer    init;
    const char    *s, *p, *q, *e;
    loyalty_pat_t  ms;

    s = luaL_checklstring(L, 1, &ls);
    p = luaL_checklstring(L, 2, &lp);
    init = luaL_optinteger(L, 3, 1);

    /* as LuaJIT: from the end if negative, past the end is the end */
    init = (init < 0) ? init + (lua_Integer) ls : init - 1;

    if (init < 0) {
        init = 0;

    } else if ((size_t) init > ls) {
        init = (lua_Integer) ls;
    }

    loyalty_pat_init(&ms, L, s, ls, 1);

    if (find && (lua_toboolean(L, 4) || !loyalty_pat_has_specials(p, lp))) {
        q = loyalty_pat_plain(&ms, s + init, ls - (size_t) init, p, lp);
        loyalty_pat_charge(&ms);

        if (q == NULL) {
            lua_pushnil(L);
            return 1;
        }

        lua_pushinteger(L, q - s + 1);
        lua_pushinteger(L, q - s + (lua_Integer) lp);
        return 2;
    }

    anchor = (*p == '^');
    p += anchor;
    q = s + init;

    do {
        ms.level = 0;
        ms.depth = 0;

        e = loyalty_pat_match(&ms, q, p);

        if (e) {
            loyalty_pat_charge(&ms);

            if (!find) {
                return loyalty_pat_push(&ms, q, e);
            }

            lua_pushinteger(L, q - s + 1);
            lua_pushinteger(L, e - s);
            n = loyalty_pat_push(&ms, NULL, NULL);
            return n + 2;
        }

    } while (q++ < ms.src_end && !anchor);

    loyalty_pat_charge(&ms);
    lua_pushnil(L);

    return 1;
}


static int
loyalty_pat_find(lua_State *L)
{
    return loyalty_pat_find_aux(L, 1);
}


static int
loyalty_pat_match_f(lua_State *L)
{
    return loyalty_pat_find_aux(L, 0);
}


/* gmatch(s, p): an iterator whose upvalues are s, p, where it is, meter */
static int
loyalty_pat_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushinteger(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, loyalty_pat_gmatch_next, 4);

    return 1;
}


static int
loyalty_pat_gmatch_next(lua_State *L)
{
    size_t         ls;
    lua_Integer    pos;
    const char    *s, *p, *src, *e;
    loyalty_pat_t  ms;

    s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    p = lua_tostring(L, lua_upvalueindex(2));
    pos = lua_tointeger(L, lua_upvalueindex(3));

    loyalty_pat_init(&ms, L, s, ls, 4);

    /* a "^" is an ordinary character here, as in Lua 5.1 */
    for (src = s + pos; src <= ms.src_end; src++) {
        ms.level = 0;
        ms.depth = 0;

        e = loyalty_pat_match(&ms, src, p);

        if (e) {
            /* an empty match moves on by one */
            pos = (e - s) + (e == src);
            lua_pushinteger(L, pos);
            lua_replace(L, lua_upvalueindex(3));
            loyalty_pat_charge(&ms);

            return loyalty_pat_push(&ms, src, e);
        }
    }

    loyalty_pat_charge(&ms);

    return 0;
}


/* a string replacement: %0 to %9 are captures, %x is x */
static void
loyalty_pat_add_s(loyalty_pat_t *ms, luaL_Buffer *b, const char *s,
    const char *e)
{
    size_t       i, len;
    const char  *r;

    r = lua_tolstring(ms->L, 3, &len);

    loyalty_pat_add(ms, 1 + len / 16);

    for (i = 0; i < len; i++) {
        if (r[i] != LOYALTY_PAT_ESC) {
            luaL_addchar(b, r[i]);
            continue;
        }

        /* "%" at the end adds the string's terminating NUL, as stock */
        i++;

        if (r[i] < '0' || r[i] > '9') {
            luaL_addchar(b, r[i]);

        } else if (r[i] == '0') {
            luaL_addlstring(b, s, (size_t) (e - s));

        } else {
            loyalty_pat_push_one(ms, r[i] - '1', s, e);
            luaL_addvalue(b);
        }
    }
}


static void
loyalty_pat_add_value(loyalty_pat_t *ms, luaL_Buffer *b, const char *s,
    const char *e, int tr)
{
    int         n;
    lua_State  *L;

    L = ms->L;

    switch (tr) {

    case LUA_TFUNCTION:
        lua_pushvalue(L, 3);
        n = loyalty_pat_push(ms, s, e);
        lua_call(L, n, 1);
        break;

    case LUA_TTABLE:
        loyalty_pat_push_one(ms, 0, s, e);
        lua_gettable(L, 3);
        break;

    default:
        loyalty_pat_add_s(ms, b, s, e);
        return;
    }

    if (!lua_toboolean(L, -1)) {
        /* nil or false: the match stays */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t) (e - s));

    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)",
                   luaL_typename(L, -1));
    }

    luaL_addvalue(b);
}


static int
loyalty_pat_gsub(lua_State *L)
{
    int            tr, anchor;
    size_t         ls;
    lua_Integer    max, n;
    const char    *src, *p, *e;
    luaL_Buffer    b;
    loyalty_pat_t  ms;

    src = luaL_checklstring(L, 1, &ls);
    p = luaL_checkstring(L, 2);
    tr = lua_type(L, 3);
    max = luaL_optinteger(L, 4, (lua_Integer) ls + 1);

    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING
                     || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                  "string/function/table expected");

    anchor = (*p == '^');
    p += anchor;
    n = 0;

    loyalty_pat_init(&ms, L, src, ls, 1);
    luaL_buffinit(L, &b);

    while (n < max) {
        ms.level = 0;
        ms.depth = 0;

        e = loyalty_pat_match(&ms, src, p);

        if (e) {
            n++;
            loyalty_pat_add_value(&ms, &b, src, e, tr);
        }

        if (e && e > src) {
            src = e;

        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);

        } else {
            break;
        }

        if (anchor) {
            break;
        }
    }

    loyalty_pat_charge(&ms);

    luaL_addlstring(&b, src, (size_t) (ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);

    return 2;
}
