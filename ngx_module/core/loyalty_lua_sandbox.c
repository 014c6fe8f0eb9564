/*
 * nginx-loyalty core: the sandbox's environment (the safe functions and
 * libraries, the charged C functions, the keys) and how chunks get in:
 * the script, loadstring, and require of the project's library or of a
 * file beside the script.  The VM and its budget are loyalty_lua.c's.
 */

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "loyalty_lua.h"
#include "loyalty_lua_pattern.h"
#include "loyalty_util.h"


#define LOYALTY_LUA_NAME_MAX  64
#define LOYALTY_LUA_ERR_MAX   2048


typedef struct {
    const char  *name;
    const char  *source;
    size_t       len;
} loyalty_lua_lib_t;

#include "loyalty_lua_lib.h"


static int loyalty_lua_charged(lua_State *L);
static size_t loyalty_lua_cost(lua_State *L, int kind);
static int loyalty_lua_maxn(lua_State *L);
static void loyalty_lua_meter_libs(lua_State *L, loyalty_lua_t *vm);
static void loyalty_lua_keys(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_xpcall(lua_State *L);
static int loyalty_lua_loadstring(lua_State *L);
static int loyalty_lua_require(lua_State *L);
static void loyalty_lua_require_lib(lua_State *L, loyalty_lua_t *vm,
    const char *name);
static void loyalty_lua_require_file(lua_State *L, loyalty_lua_t *vm,
    const char *name, size_t len);
static void loyalty_lua_zone_lib(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_zone_offset(lua_State *L);


/* in the order of loyalty_lua_key_e */
static const char  *loyalty_lua_key_names[] = {
    "id", "tier", "rank", "stage", "points", "orders", "spend", "blocked",
    "birthday", "joined_at", "first_order_at", "last_order_at", "referrer",
    "retail", "price", "member", "now",
    "sku", "qty", "currency", "code", "referrer2", "status", "user_agent",
    "host", "uri", "type", "kind", "at", "first", "amount", "items"
};


static const char  *loyalty_lua_safe[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "rawequal", "rawget", NULL
};

static int loyalty_lua_rawset(lua_State *L);
static int loyalty_lua_setmetatable(lua_State *L);
static int loyalty_lua_getmetatable(lua_State *L);

static const luaL_Reg  loyalty_lua_raw[] = {
    { "rawset", loyalty_lua_rawset },
    { "setmetatable", loyalty_lua_setmetatable },
    { "getmetatable", loyalty_lua_getmetatable },
    { NULL, NULL }
};

static const char  *loyalty_lua_libs[] = {
    "string", "table", "math", "bit", NULL
};


/*
 * Builds the environment of every chunk the VM loads: safe functions,
 * copies of the safe libraries, os.time, os.date and os.clock, and our
 * require, xpcall and loadstring; then the keys and the caller's setup.
 * Runs protected, as it allocates.
 */
int
loyalty_lua_sandbox(lua_State *L)
{
    int             i;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    luaL_openlibs(L);

    /*
     * Every path interpreted, where the count hook fires (the top of the
     * file); after the libraries, as opening "jit" turns the JIT on.
     */
    if (!luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE|LUAJIT_MODE_OFF)) {
        return luaL_error(L, "cannot turn the JIT compiler off");
    }

    /* scripts reach the string library through every string's metatable */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    loyalty_lua_meter_libs(L, vm);

    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_newtable(L);

    for (i = 0; loyalty_lua_safe[i]; i++) {
        lua_getglobal(L, loyalty_lua_safe[i]);
        lua_setfield(L, -2, loyalty_lua_safe[i]);
    }

    /* the same, and they see the tables the VM reuses */
    for (i = 0; loyalty_lua_raw[i].name; i++) {
        lua_pushlightuserdata(L, vm);
        lua_pushcclosure(L, loyalty_lua_raw[i].func, 1);
        lua_setfield(L, -2, loyalty_lua_raw[i].name);
    }

    for (i = 0; loyalty_lua_libs[i]; i++) {
        lua_newtable(L);
        lua_getglobal(L, loyalty_lua_libs[i]);
        lua_pushnil(L);

        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }

        lua_pop(L, 1);
        lua_setfield(L, -2, loyalty_lua_libs[i]);
    }

    lua_newtable(L);
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "time");
    lua_setfield(L, -3, "time");
    lua_getfield(L, -1, "date");
    lua_setfield(L, -3, "date");
    lua_getfield(L, -1, "clock");
    lua_setfield(L, -3, "clock");
    lua_pop(L, 1);
    lua_setfield(L, -2, "os");

    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_require, 1);
    lua_setfield(L, -2, "require");

    lua_pushcfunction(L, loyalty_lua_xpcall);
    lua_setfield(L, -2, "xpcall");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_loadstring, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "loadstring");
    lua_setfield(L, -2, "load");

    vm->env = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_newtable(L);
    vm->loaded = luaL_ref(L, LUA_REGISTRYINDEX);

    loyalty_lua_keys(L, vm);

    if (vm->setup) {
        vm->setup(vm);
    }

    return 0;
}


/*
 * rawset, setmetatable and getmetatable as the stock ones, with their
 * errors, but a table the VM reuses (a price hook's context or member)
 * that they write into past its __newindex, or whose metatable they
 * hand out, is made anew before the next call (loyalty_lua_reused_touch)
 */
static int
loyalty_lua_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);

    loyalty_lua_reused_touch(L, lua_touserdata(L, lua_upvalueindex(1)));

    lua_settop(L, 3);
    lua_rawset(L, 1);

    return 1;
}


static int
loyalty_lua_setmetatable(lua_State *L)
{
    int  t;

    luaL_checktype(L, 1, LUA_TTABLE);

    t = lua_type(L, 2);

    if (t != LUA_TNIL && t != LUA_TTABLE) {
        return luaL_typerror(L, 2, "table");
    }

    if (luaL_getmetafield(L, 1, "__metatable")) {
        return luaL_error(L, "cannot change a protected metatable");
    }

    loyalty_lua_reused_touch(L, lua_touserdata(L, lua_upvalueindex(1)));

    lua_settop(L, 2);
    lua_setmetatable(L, 1);

    return 1;
}


/* the context's metatable is not the script's: it had none */
static int
loyalty_lua_getmetatable(lua_State *L)
{
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    luaL_checkany(L, 1);
    lua_settop(L, 1);

    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ctx_mt);

    if (lua_rawequal(L, -1, -2)) {
        lua_pushnil(L);
        return 1;
    }

    lua_pop(L, 1);

    loyalty_lua_reused_touch(L, vm);

    luaL_getmetafield(L, 1, "__metatable");

    return 1;
}


/* the C functions that charge their work, in C's names */
typedef enum {
    LOYALTY_LUA_COST_SORT = 0,
    LOYALTY_LUA_COST_INSERT,
    LOYALTY_LUA_COST_CONCAT,
    LOYALTY_LUA_COST_TONUMBER
} loyalty_lua_cost_e;


/*
 * The stock functions that can walk much for one call, replaced in the
 * libraries the sandbox copies: the pattern functions by ours, the others
 * by a closure that charges their walk before it calls them.
 */
static void
loyalty_lua_meter_libs(lua_State *L, loyalty_lua_t *vm)
{
    int  i;

    static const struct {
        const char  *lib;
        const char  *name;
        int          cost;
    } charged[] = {
        { "table", "sort", LOYALTY_LUA_COST_SORT },
        { "table", "insert", LOYALTY_LUA_COST_INSERT },
        { "table", "concat", LOYALTY_LUA_COST_CONCAT },
        { "_G", "tonumber", LOYALTY_LUA_COST_TONUMBER }
    };

    lua_getglobal(L, "string");
    loyalty_lua_pattern_open(L, -1, &vm->meter);
    lua_pop(L, 1);

    for (i = 0; i < (int) (sizeof(charged) / sizeof(charged[0])); i++) {
        lua_getglobal(L, charged[i].lib);
        lua_getfield(L, -1, charged[i].name);
        lua_pushlightuserdata(L, vm);
        lua_pushinteger(L, charged[i].cost);
        lua_pushcclosure(L, loyalty_lua_charged, 3);
        lua_setfield(L, -2, charged[i].name);
        lua_pop(L, 1);
    }

    lua_getglobal(L, "table");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_maxn, 1);
    lua_setfield(L, -2, "maxn");
    lua_pop(L, 1);
}


/* upvalues: the stock function, the VM, what it costs */
static int
loyalty_lua_charged(lua_State *L)
{
    int             kind;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(2));

    kind = (int) lua_tointeger(L, lua_upvalueindex(3));

    vm->meter.charge(L, vm, loyalty_lua_cost(L, kind));

    /* it writes past __newindex */
    if (kind == LOYALTY_LUA_COST_INSERT) {
        loyalty_lua_reused_touch(L, vm);
    }

    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);

    return lua_gettop(L);
}


/* the walk of a call, from its arguments, before it runs; 1 at least */
static size_t
loyalty_lua_cost(lua_State *L, int kind)
{
    size_t       n, bits;
    lua_Number   i, j;

    if (kind == LOYALTY_LUA_COST_TONUMBER) {
        return lua_type(L, 1) == LUA_TSTRING ? 1 + lua_objlen(L, 1) / 16 : 1;
    }

    /* here, where the error names the function as the script called it */
    luaL_checktype(L, 1, LUA_TTABLE);

    n = lua_objlen(L, 1);

    switch (kind) {

    case LOYALTY_LUA_COST_SORT:
        for (bits = 1; (n >> bits) != 0; bits++) { /* void */ }
        return 1 + n * bits;

    case LOYALTY_LUA_COST_INSERT:
        return lua_gettop(L) > 2 ? 1 + n : 1;

    default: /* LOYALTY_LUA_COST_CONCAT */
        /* it stops at the first element that is not a string or number */
        i = lua_isnumber(L, 3) ? lua_tonumber(L, 3) : 1;
        j = lua_isnumber(L, 4) ? lua_tonumber(L, 4) : (lua_Number) n;

        if (j > (lua_Number) n) {
            j = (lua_Number) n;
        }

        return (j >= i) ? 1 + (size_t) (j - i) : 1;
    }
}


/* table.maxn(t): the largest positive numeric key, each key charged */
static int
loyalty_lua_maxn(lua_State *L)
{
    size_t          n;
    lua_Number      max, k;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    luaL_checktype(L, 1, LUA_TTABLE);

    max = 0;
    n = 0;

    lua_pushnil(L);

    while (lua_next(L, 1)) {
        lua_pop(L, 1);

        if (lua_type(L, -1) == LUA_TNUMBER) {
            k = lua_tonumber(L, -1);
            if (k > max) {
                max = k;
            }
        }

        if (++n == LOYALTY_LUA_PATTERN_TICK) {
            vm->meter.charge(L, vm, n);
            n = 0;
        }
    }

    vm->meter.charge(L, vm, n + 1);
    lua_pushnumber(L, max);

    return 1;
}


/*
 * The keys and stage names, loyalty_lua_call()'s function, and the
 * tables a price hook's calls reuse
 */
static void
loyalty_lua_keys(lua_State *L, loyalty_lua_t *vm)
{
    int   i, n;
    int  *refs[4];

    n = sizeof(loyalty_lua_key_names) / sizeof(char *);

    lua_createtable(L, LOYALTY_LUA_KEY_MORE - 1, 0);

    for (i = 0; i < n; i++) {
        lua_pushstring(L, loyalty_lua_key_names[i]);
        lua_rawseti(L, -2, i + 1);
    }

    for (i = 0; i < LOYALTY_STAGE_COUNT; i++) {
        lua_pushstring(L, loyalty_stage_names[i]);
        lua_rawseti(L, -2, LOYALTY_LUA_KEY_STAGES + i);
    }

    vm->keys = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_pushcfunction(L, loyalty_lua_protected);
    vm->call = luaL_ref(L, LUA_REGISTRYINDEX);

    /* the slots of the reused tables, which are filled at once */
    refs[0] = &vm->ctx;
    refs[1] = &vm->member;
    refs[2] = &vm->ctx_mt;
    refs[3] = &vm->lazy;

    for (i = 0; i < 4; i++) {
        lua_pushboolean(L, 0);
        *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    loyalty_lua_price_setup(L, vm);
}


/*
 * The reused tables' __newindex: a key the script adds is set, and the
 * tables are made anew for the next call, which must not see it.  (A
 * key of the context's own is overwritten by the next call.)
 */
int
loyalty_lua_reused_newindex(lua_State *L)
{
    lua_Number      n;
    loyalty_lua_t  *vm;

    /* a script can call it: it is in the member's metatable */
    luaL_checktype(L, 1, LUA_TTABLE);

    vm = lua_touserdata(L, lua_upvalueindex(1));
    vm->renew = 1;

    /* the errors of an assignment, with the script's place */
    if (lua_isnil(L, 2)) {
        return luaL_error(L, "table index is nil");
    }

    n = lua_tonumber(L, 2);

    if (lua_type(L, 2) == LUA_TNUMBER && n != n) {
        return luaL_error(L, "table index is NaN");
    }

    lua_settop(L, 3);
    lua_rawset(L, 1);

    return 0;
}


/*
 * For the functions that write into a table past its __newindex
 * (rawset, setmetatable, table.insert) or hand out its metatable
 * (getmetatable): their first argument, if it is a table the VM reuses,
 * is made anew before the next call.
 */
void
loyalty_lua_reused_touch(lua_State *L, loyalty_lua_t *vm)
{
    if (vm->renew || lua_type(L, 1) != LUA_TTABLE || !lua_getmetatable(L, 1))
    {
        return;
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ctx_mt);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->lazy);

    vm->renew = lua_rawequal(L, -3, -2) || lua_rawequal(L, -3, -1);

    lua_pop(L, 3);
}


/*
 * Loads a chunk of text into the sandbox, bytecode refused: 0 with the
 * function on the stack, or an error message.
 */
int
loyalty_lua_chunk(lua_State *L, loyalty_lua_t *vm, const char *source,
    size_t len, const char *chunkname)
{
    if (len && source[0] == LUA_SIGNATURE[0]) {
        lua_pushfstring(L, "%s: bytecode is not loaded",
                        (chunkname[0] == '@' || chunkname[0] == '=')
                        ? chunkname + 1 : chunkname);
        return LUA_ERRSYNTAX;
    }

    if (luaL_loadbuffer(L, source, len, chunkname) != 0) {
        return LUA_ERRSYNTAX;
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->env);
    lua_setfenv(L, -2);

    return 0;
}


/*
 * xpcall(f, handler, ...): LuaJIT runs a handler where the error was
 * raised, and an error of the budget is raised inside the count hook,
 * where no hook fires: a looping handler would run unbudgeted.  This one
 * calls the handler once the error has unwound, where the budget holds.
 * Scripts cannot tell: they have no debug library to look at the stack.
 */
static int
loyalty_lua_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);

    /* handler, f, arguments */
    lua_pushvalue(L, 2);
    lua_remove(L, 2);
    lua_insert(L, 1);

    if (lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0) == 0) {
        lua_pushboolean(L, 1);
        lua_replace(L, 1);
        return lua_gettop(L);
    }

    lua_call(L, 1, 1);
    lua_pushboolean(L, 0);
    lua_insert(L, 1);

    return 2;
}


/* loadstring(text [, name]) and load(text [, name]): text only */
static int
loyalty_lua_loadstring(lua_State *L)
{
    size_t          len;
    const char     *s, *name;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    s = luaL_checklstring(L, 1, &len);
    name = luaL_optstring(L, 2, "=(load)");

    if (loyalty_lua_chunk(L, vm, s, len, name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }

    return 1;
}


/*
 * require "loyalty.NAME": the project's library, loyalty.store or
 * loyalty.zone; any
 * other NAME is NAME.lua (dots for slashes) in the script's directory,
 * its source from vm->source.
 */
static int
loyalty_lua_require(lua_State *L)
{
    size_t          len, i;
    const char     *name;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    name = luaL_checklstring(L, 1, &len);

    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->loaded);
    lua_getfield(L, 2, name);

    if (!lua_isnil(L, -1)) {
        return 1;
    }

    lua_pop(L, 1);

    if (len == 0 || len > LOYALTY_LUA_NAME_MAX
        || name[0] == '.' || name[len - 1] == '.'
        || strstr(name, "..") != NULL)
    {
        return luaL_error(L, "module name \"%s\" is not allowed", name);
    }

    for (i = 0; i < len; i++) {
        if (!(isalnum((unsigned char) name[i]) || name[i] == '_'
              || name[i] == '.'))
        {
            return luaL_error(L, "module name \"%s\" is not allowed: only "
                              "letters, digits, \"_\" and \".\"", name);
        }
    }

    if (strcmp(name, "loyalty.store") == 0) {
        loyalty_lua_store_lib(L, vm);

    } else if (strcmp(name, "loyalty.zone") == 0) {
        loyalty_lua_zone_lib(L, vm);

    } else {
        if (strncmp(name, "loyalty.", 8) == 0) {
            loyalty_lua_require_lib(L, vm, name);

        } else {
            loyalty_lua_require_file(L, vm, name, len);
        }

        /* the chunk, called with its name */
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
    }

    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);

    return 1;
}


/* a module of the project's library, compiled in, loaded on the stack */
static void
loyalty_lua_require_lib(lua_State *L, loyalty_lua_t *vm, const char *name)
{
    size_t  i;

    for (i = 0; loyalty_lua_lib[i].name; i++) {
        if (strcmp(loyalty_lua_lib[i].name, name) == 0) {
            break;
        }
    }

    if (loyalty_lua_lib[i].name == NULL) {
        luaL_error(L, "module \"%s\" not found in the loyalty library",
                   name);
    }

    lua_pushfstring(L, "=%s", name);

    if (loyalty_lua_chunk(L, vm, loyalty_lua_lib[i].source,
                          loyalty_lua_lib[i].len, lua_tostring(L, -1))
        != 0)
    {
        lua_error(L);
    }

    lua_remove(L, -2);
}


/* NAME.lua of the script's directory, dots for slashes, on the stack */
static void
loyalty_lua_require_file(lua_State *L, loyalty_lua_t *vm, const char *name,
    size_t len)
{
    int     rc;
    char    err[LOYALTY_LUA_ERR_MAX];
    char   *path, *p, *source;
    size_t  slen, i;

    path = lua_newuserdata(L, vm->dir_len + len + sizeof(".lua"));
    memcpy(path, vm->file, vm->dir_len);
    p = path + vm->dir_len;

    for (i = 0; i < len; i++) {
        *p++ = (name[i] == '.') ? '/' : name[i];
    }

    memcpy(p, ".lua", sizeof(".lua"));

    /* the chunk name first: nothing may raise while the source is held */
    lua_pushfstring(L, "@%s", path);

    rc = vm->source ? vm->source(vm, name, path, &source, &slen, err,
                                 sizeof(err))
                    : loyalty_lua_read_file(path, &source, &slen, err,
                                            sizeof(err));
    if (rc != 0) {
        luaL_error(L, "module \"%s\": %s", name, err);
    }

    rc = loyalty_lua_chunk(L, vm, source, slen, lua_tostring(L, -1));

    free(source);

    if (rc != 0) {
        lua_error(L);
    }

    /* the chunk in place of its name, above the path */
    lua_remove(L, -2);
    lua_remove(L, -2);
}


/*
 * loyalty.zone: the shop's time zone (loyalty_timezone, loyaltyctl --tz),
 * { name = "Asia/Shanghai", offset = function(t) }, offset(t) the seconds
 * east of UTC at Unix time t; "UTC" and 0 without one.  loyalty.date
 * counts the shop's days with it.
 */
static void
loyalty_lua_zone_lib(lua_State *L, loyalty_lua_t *vm)
{
    lua_createtable(L, 0, 2);

    lua_pushstring(L, vm->tz ? vm->tz->name : "UTC");
    lua_setfield(L, -2, "name");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_zone_offset, 1);
    lua_setfield(L, -2, "offset");
}


static int
loyalty_lua_zone_offset(lua_State *L)
{
    lua_Number      t;
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    t = luaL_checknumber(L, 1);

    /* NaN fails both; years 0000-9999 and a margin */
    if (!(t > -1e12 && t < 1e12)) {
        return luaL_error(L, "offset: time must be a number of Unix "
                          "seconds");
    }

    lua_pushinteger(L, loyalty_tz_offset(vm->tz, (int64_t) floor(t)));

    return 1;
}
