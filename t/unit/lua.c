/*
 * Unit tests of loyalty_lua.c: the script's table and hooks, the budget
 * and the memory cap of a call and what is reported, the sandbox, a
 * member's table, and reading a file.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua.h"
#include "tap.h"


static const char  script[] =
    "local date = require 'loyalty.date'\n"
    "return {\n"
    "  price = function(n) return n * 2 end,\n"
    "  event = function() while true do end end,\n"
    "  click = function() return string.rep('x', 2^24) end,\n"
    "  cadences = {},\n"
    "}\n";


typedef struct {
    int                      hook;
    double                   arg;
    double                   result;
    const loyalty_member_t  *m;
    char                     stage[16];
    char                     birthday[8];
} call_t;


static char    reported[512];
static size_t  nreported;


static void
report(loyalty_lua_t *vm, const char *msg, size_t len)
{
    snprintf(reported, sizeof(reported), "%.*s", (int) len, msg);
    nreported++;
}


/* calls a hook with a number; the stack holds the call_t at index 1 */
static int
call_hook(lua_State *L)
{
    call_t         *c;
    loyalty_lua_t  *vm;

    c = lua_touserdata(L, 1);
    (void) lua_getallocf(L, (void **) &vm);

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->hooks[c->hook]);
    lua_pushnumber(L, c->arg);
    lua_call(L, 1, 1);
    c->result = lua_tonumber(L, -1);

    return 0;
}


static int
call_member(lua_State *L)
{
    call_t         *c;
    loyalty_lua_t  *vm;

    c = lua_touserdata(L, 1);
    (void) lua_getallocf(L, (void **) &vm);

    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    loyalty_lua_push_member(L, "mem1", 4, c->m, 3, 1);

    lua_getfield(L, -1, "stage");
    snprintf(c->stage, sizeof(c->stage), "%s", lua_tostring(L, -1));
    lua_getfield(L, -2, "birthday");
    snprintf(c->birthday, sizeof(c->birthday), "%s", lua_tostring(L, -1));
    lua_getfield(L, -3, "rank");
    c->result = lua_tonumber(L, -1);

    return 0;
}


static int
load(const char *source, char *err, size_t errlen)
{
    int            rc;
    loyalty_lua_t  vm;

    memset(&vm, 0, sizeof(loyalty_lua_t));
    vm.file = "/nonexistent/t.lua";
    vm.budget = 1000;
    vm.limit = 4 * 1024 * 1024;

    if (loyalty_lua_open(&vm, err, errlen) != 0) {
        return -1;
    }

    rc = loyalty_lua_script(&vm, source, strlen(source), err, errlen);
    loyalty_lua_close(&vm);

    return rc;
}


int
main(void)
{
    int               rc;
    char              err[512], *data;
    size_t            len;
    call_t            c;
    loyalty_lua_t     vm;
    loyalty_member_t  m;

    plan(24);

    memset(&vm, 0, sizeof(loyalty_lua_t));
    vm.file = "/nonexistent/hooks.lua";
    vm.budget = 1000;
    vm.limit = 4 * 1024 * 1024;
    vm.report = report;

    ok(loyalty_lua_open(&vm, err, sizeof(err)) == 0, "open");
    rc = loyalty_lua_script(&vm, script, sizeof(script) - 1, err,
                            sizeof(err));
    if (!ok(rc == 0, "the script loads")) {
        diag("%s", err);
    }

    ok(lua_istable(vm.L, -1), "its table is at the top of the stack");
    lua_getfield(vm.L, -1, "cadences");
    ok(lua_istable(vm.L, -1), "with what is not a hook");
    lua_settop(vm.L, 0);

    ok(vm.hooks[LOYALTY_LUA_HOOK_PRICE] != LUA_NOREF
       && vm.hooks[LOYALTY_LUA_HOOK_CLICK] != LUA_NOREF
       && vm.hooks[LOYALTY_LUA_HOOK_EVENT] != LUA_NOREF, "the hooks taken");

    memset(&c, 0, sizeof(call_t));
    c.hook = LOYALTY_LUA_HOOK_PRICE;
    c.arg = 21;
    ok(loyalty_lua_call(&vm, call_hook, &c) == 0, "a call");
    ok(c.result == 42, "its answer");
    is_int(lua_gettop(vm.L), 0, "the stack left empty");

    c.hook = LOYALTY_LUA_HOOK_EVENT;
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1, "a runaway call fails");
    is_int(vm.failed, LOYALTY_LUA_BUDGET, "on the budget");
    is_str(reported, "/nonexistent/hooks.lua:4: the budget of 1000 "
           "instructions is spent", "reported with its place");

    c.hook = LOYALTY_LUA_HOOK_CLICK;
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1, "a greedy call fails");
    is_int(vm.failed, LOYALTY_LUA_MEMORY, "on memory");
    is_str(reported, "not enough memory", "reported");

    c.hook = LOYALTY_LUA_HOOK_PRICE;
    ok(loyalty_lua_call(&vm, call_hook, &c) == 0 && c.result == 42,
       "the VM works on");
    is_int(nreported, 2, "two reports");

    memset(&m, 0, sizeof(loyalty_member_t));
    m.stage = 2;
    m.flags = LOYALTY_MEMBER_BIRTHDAY;
    m.birth_month = 3;
    m.birth_day = 7;
    c.m = &m;
    ok(loyalty_lua_call(&vm, call_member, &c) == 0, "a member's table");
    is_str(c.stage, loyalty_stage_names[2], "its stage by name");
    is_str(c.birthday, "03-07", "its birthday");
    ok(c.result == 3, "its rank");

    loyalty_lua_close(&vm);

    ok(load("return { price = io.open }", err, sizeof(err)) == -1,
       "no io in the sandbox");
    ok(load("return assert(loadstring(string.dump(function() end)))",
            err, sizeof(err)) == -1
       && strstr(err, "attempt to call field 'dump'") != NULL,
       "no string.dump");

    ok(loyalty_lua_read_file("/nonexistent/x.lua", &data, &len, err,
                             sizeof(err)) == -1
       && strcmp(err, "cannot open \"/nonexistent/x.lua\": No such file "
                 "or directory") == 0, "a missing file");
    ok(loyalty_lua_read_file("/", &data, &len, err, sizeof(err)) == -1
       && strcmp(err, "\"/\" is not a file") == 0, "a directory");

    return done();
}
