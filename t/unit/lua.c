/*
 * Unit tests of the sandbox (loyalty_lua*.c): the script's table and
 * hooks, the budget (instructions and time, in the script, the library
 * and the pattern functions) and the memory cap of a call and what is
 * reported, the sandbox, a member's table, and reading a file; and of
 * the pattern matcher: its answers and errors against LuaJIT's own
 * string functions (t/unit/lua_pattern.lua), and its meter.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "loyalty_lua.h"
#include "loyalty_lua_hook.h"
#include "loyalty_lua_pattern.h"
#include "store_fixture.h"
#include "tap.h"


static const char  script[] =
    "local date = require 'loyalty.date'\n"
    "return {\n"
    "  price = function(n) return n * 2 end,\n"
    "  event = function() while true do end end,\n"
    "  click = function() return string.rep('x', 2^24) end,\n"
    "  cadences = {},\n"
    "}\n";

/* hooks that spend their budget in C, in the library, or in time */
static const char  escapes[] =
    "local cadence = require 'loyalty.cadence'\n"
    "local function rep(f, n)\n"
    "  local t = {} for i = 1, n do t[i] = f end\n"
    "  return cadence.all(unpack(t))\n"
    "end\n"
    "local all = rep(rep(rep(rep(cadence.stage_at_least('member'), 150),\n"
    "                        150), 150), 150)\n"
    "return {\n"
    "  price = function(n) local x = ('a'):rep(n):find('.-.-.-b') end,\n"
    "  click = function() return all({ stage = 'partner' }) end,\n"
    "  event = function(n) local s = ('a'):rep(n)\n"
    "    while true do pcall(string.gsub, s, '.-b', '') end end,\n"
    "}\n";


static size_t  metered;


static void
meter_count(lua_State *L, void *data, size_t steps)
{
    metered += steps;
}


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


/*
 * vm opened with the tests' budget and cap, tz its zone, and source
 * loaded: 0 with the script's table at the top of the stack, or -1
 */
static int
vm_load(loyalty_lua_t *vm, const char *file, const loyalty_tz_t *tz,
    const char *source, size_t len)
{
    char  err[512];

    memset(vm, 0, sizeof(loyalty_lua_t));
    vm->file = file;
    vm->budget = 100000;
    vm->limit = 4 * 1024 * 1024;
    vm->report = report;
    vm->tz = tz;

    if (loyalty_lua_open(vm, err, sizeof(err)) != 0
        || loyalty_lua_script(vm, source, len, err, sizeof(err)) != 0)
    {
        diag("%s", err);
        return -1;
    }

    return 0;
}


/* a price question of a gold member, m1, for ask */
static void
price_question(loyalty_lua_price_t *q, loyalty_lua_ask_t *ask)
{
    memset(q, 0, sizeof(loyalty_lua_price_t));
    q->sku = "tea";
    q->sku_len = 3;
    q->retail = 1000;
    q->price = 900;
    q->tier = "gold";
    q->tier_len = 4;
    q->rank = 2;
    q->has_rank = 1;
    q->member = "m1";
    q->member_len = 2;
    q->member_tier = "gold";
    q->member_tier_len = 4;
    q->member_stage = 3;

    memset(ask, 0, sizeof(loyalty_lua_ask_t));
    ask->price = q;
}


/* the script source loaded from file, and a price question for it */
static void
price_script(loyalty_lua_t *vm, const char *file, const char *what,
    const char *source, size_t len, loyalty_lua_price_t *q,
    loyalty_lua_ask_t *ask)
{
    ok(vm_load(vm, file, NULL, source, len) == 0, "%s: the script loads",
       what);
    lua_settop(vm->L, 0);

    price_question(q, ask);
}


/* calls a hook with a number; the stack holds the call_t at index 1 */
static int
call_hook(lua_State *L)
{
    call_t         *c;
    loyalty_lua_t  *vm;

    c = loyalty_lua_ud(L);
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

    c = loyalty_lua_ud(L);
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


/* t/unit/lua_pattern.lua's groups, each an ok() listing what differs */
static void
patterns(void)
{
    int                  i, j, n, nbad;
    lua_State           *L;
    loyalty_lua_meter_t  meter = { meter_count, NULL };

    L = luaL_newstate();
    luaL_openlibs(L);

    if (luaL_loadfile(L, "t/unit/lua_pattern.lua") != 0) {
        ok(0, "t/unit/lua_pattern.lua: %s", lua_tostring(L, -1));
        lua_close(L);
        return;
    }

    lua_newtable(L);
    loyalty_lua_pattern_open(L, -1, &meter);

    if (lua_pcall(L, 1, 1, 0) != 0) {
        ok(0, "t/unit/lua_pattern.lua: %s", lua_tostring(L, -1));
        lua_close(L);
        return;
    }

    n = (int) lua_objlen(L, -1);

    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "n");
        lua_getfield(L, -3, "bad");
        nbad = (int) lua_objlen(L, -1);

        ok(nbad == 0 && lua_tointeger(L, -2) > 0,
           "patterns: %s: %d cases as LuaJIT's", lua_tostring(L, -3),
           (int) lua_tointeger(L, -2));

        for (j = 1; j <= nbad && j <= 20; j++) {
            lua_rawgeti(L, -1, j);
            diag("%s", lua_tostring(L, -1));
            lua_pop(L, 1);
        }

        lua_pop(L, 4);
    }

    ok(n == 5, "patterns: 5 groups");
    ok(metered > 0, "patterns: the meter charged %zu steps", metered);

    lua_close(L);
}


/* the budget of the pattern functions, of the library and of the time */
static void
escape(void)
{
    int            rc;
    char           err[512];
    call_t         c;
    uint64_t       t0;
    loyalty_lua_t  vm;

    memset(&vm, 0, sizeof(loyalty_lua_t));
    vm.file = "/nonexistent/escape.lua";
    vm.budget = 100000;
    vm.limit = 4 * 1024 * 1024;
    vm.report = report;

    rc = loyalty_lua_open(&vm, err, sizeof(err));
    ok(rc == 0 && vm.msec == LOYALTY_LUA_MSEC, "escape: open, the default "
       "time");
    rc = loyalty_lua_script(&vm, escapes, sizeof(escapes) - 1, err,
                            sizeof(err));
    if (!ok(rc == 0, "escape: the script loads")) {
        diag("%s", err);
        return;
    }

    lua_settop(vm.L, 0);
    memset(&c, 0, sizeof(call_t));

    c.hook = LOYALTY_LUA_HOOK_PRICE;
    c.arg = 10;
    ok(loyalty_lua_call(&vm, call_hook, &c) == 0, "escape: a small find "
       "fits the budget");

    c.arg = 800;
    t0 = loyalty_lua_now();
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1
       && vm.failed == LOYALTY_LUA_BUDGET, "escape: find .-.-.-b in 800 "
       "characters stopped on the budget");
    ok(loyalty_lua_now() - t0 < 2000000000ull, "escape: in under 2 s");
    is_str(reported, "/nonexistent/escape.lua:9: the budget of 100000 "
           "instructions is spent", "escape: reported with its place");

    c.hook = LOYALTY_LUA_HOOK_CLICK;
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1
       && vm.failed == LOYALTY_LUA_BUDGET, "escape: 150^4 calls in the "
       "library's loops stopped");
    has_str(reported, "the budget of 100000 instructions is spent",
            "escape: reported");
    ok(strncmp(reported, "loyalty.", 8) == 0, "escape: at its place in the "
       "library: %s", reported);

    c.hook = LOYALTY_LUA_HOOK_EVENT;
    c.arg = 300;
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1
       && vm.failed == LOYALTY_LUA_BUDGET, "escape: pcall of a gsub that "
       "spends the budget, in a loop, stopped");

    /* the time: a budget of instructions too large to be reached */
    vm.budget = 100000000;
    vm.msec = 5;
    c.hook = LOYALTY_LUA_HOOK_CLICK;
    t0 = loyalty_lua_now();
    ok(loyalty_lua_call(&vm, call_hook, &c) == -1
       && vm.failed == LOYALTY_LUA_BUDGET, "escape: stopped on the time");
    ok(loyalty_lua_now() - t0 < 1000000000ull, "escape: in under 1 s");
    has_str(reported, ": the budget of 5 ms is spent", "escape: reported");

    c.hook = LOYALTY_LUA_HOOK_PRICE;
    c.arg = 10;
    ok(loyalty_lua_call(&vm, call_hook, &c) == 0, "escape: the VM works on");

    loyalty_lua_close(&vm);
}


/* an unknown key's warning, kept */
static char    warned[8][256];
static size_t  nwarned;


static void
warn(void *data, const char *msg)
{
    if (nwarned < 8) {
        snprintf(warned[nwarned], sizeof(warned[0]), "%s", msg);
    }

    nwarned++;
}


/*
 * The core's hook asks (loyalty_lua_hook.c) and what the sandbox tells a
 * script: the unknown keys of its table, a refused answer's place and
 * field, a label that is not UTF-8, and the shop's zone.
 */
static void
hooks(void)
{
    char                 err[512], label[80];
    loyalty_tz_t         tz;
    loyalty_lua_t        vm;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    static const char  source[] =
        "local date = require 'loyalty.date'\n"
        "return {\n"
        "  prcie = 1, clik = 2, notes = 3,\n"
        "  price = function(ctx)\n"
        "    if ctx.sku == 'third' then return ctx.price * 0.333 end\n"
        "    if ctx.sku == 'ff' then return 1, 'caf\\255' end\n"
        "    return ctx.price - 1, date.zone .. ' ' .. date.weekday(ctx.now)\n"
        "  end,\n"
        "}\n";

    ok(loyalty_tz_load(&tz, NULL, "Asia/Shanghai", err, sizeof(err)) == 0,
       "hooks: a zone");

    ok(vm_load(&vm, "/nonexistent/hooks.lua", &tz, source,
               sizeof(source) - 1) == 0, "hooks: the script loads");

    nwarned = 0;
    is_int(loyalty_lua_unknown_keys(&vm, warn, NULL), 3,
           "hooks: three unknown keys");
    is_str(warned[0], "unknown key \"clik\" in the script's table: did you "
           "mean \"click\"?", "hooks: clik, did you mean click");
    is_str(warned[1], "unknown key \"notes\" in the script's table: it is "
           "not read (the keys read are price, click, event and cadences)",
           "hooks: notes, no near name");
    is_str(warned[2], "unknown key \"prcie\" in the script's table: did you "
           "mean \"price\"?", "hooks: prcie, a transposition");
    lua_settop(vm.L, 0);

    memset(&q, 0, sizeof(loyalty_lua_price_t));
    q.sku = "tea";
    q.sku_len = 3;
    q.qty = 1;
    q.retail = 1000;
    q.price = 900;
    q.tier = "public";
    q.tier_len = 6;

    /* Sunday 2026-12-06 16:48 UTC: Monday in Beijing */
    memset(&ask, 0, sizeof(loyalty_lua_ask_t));
    ask.now = 1796575680;
    ask.price = &q;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == 0
       && ask.answered && q.total == 899, "hooks: a price answered");
    snprintf(label, sizeof(label), "%.*s", (int) q.label_len, q.label);
    is_str(label, "Asia/Shanghai 1",
           "hooks: the shop's zone and weekday (Monday) in Lua");

    q.sku = "third";
    q.sku_len = 5;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == -1,
       "hooks: a fractional price fails the call");
    is_str(reported, "/nonexistent/hooks.lua:4 (field price): the price "
           "hook returned a price that is not a whole amount of at least 0 "
           "(round it with loyalty.money): 299.7",
           "hooks: the hook's line and the field");

    q.sku = "ff";
    q.sku_len = 2;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == -1,
       "hooks: a label with 0xFF fails the call");
    is_str(reported, "/nonexistent/hooks.lua:4 (field label): the price "
           "hook returned a label that is not valid UTF-8 text: a string",
           "hooks: refused, not echoed");

    loyalty_lua_close(&vm);
}


/*
 * A price hook's context and member are the VM's own tables, refilled
 * every call: whatever a script writes into them past the fields the
 * call sets (a key of its own, by assignment, rawset, table.insert, a
 * metatable changed or taken) has them made anew, so that the next call
 * sees only its own question; a script that leaves them alone gets the
 * same tables again.
 */
static const char  reuse_script[] =
    "local known = { sku = 1, qty = 1, retail = 1, price = 1, currency = 1,\n"
    "  tier = 1, now = 1, rank = 1, member = 1 }\n"
    "local mknown = { id = 1, tier = 1, rank = 1, stage = 1, points = 1,\n"
    "  blocked = 1 }\n"
    "local function strangers(t, k)\n"
    "  local n = 0\n"
    "  for key in pairs(t) do if not k[key] then n = n + 1 end end\n"
    "  return n\n"
    "end\n"
    "local writes = {\n"
    "  function(ctx) ctx.extra = 1 end,\n"
    "  function(ctx) rawset(ctx, 'extra', 1) end,\n"
    "  function(ctx) table.insert(ctx, 1) end,\n"
    "  function(ctx) ctx.member.extra = 1 end,\n"
    "  function(ctx) rawset(ctx.member, 'extra', 1) end,\n"
    "  function(ctx) table.insert(ctx.member, 1) end,\n"
    "  function(ctx) getmetatable(ctx.member).__newindex = nil\n"
    "    ctx.member.extra = 1 end,\n"
    "  function(ctx) setmetatable(ctx, nil) ctx.extra = 1 end,\n"
    "  function(ctx) setmetatable(ctx.member, {}) ctx.member[1] = 1 end,\n"
    "  function(ctx) setmetatable({}, { __newindex = ctx }).extra = 1 end,\n"
    "  function(ctx) ctx.rank = nil ctx.member = nil ctx.price = 0 end,\n"
    "  function(ctx) ctx.member = { extra = 1 } ctx.sku = 'x' end,\n"
    "  function(ctx) ctx[nil] = 1 end,\n"
    "}\n"
    "local saved\n"
    "return {\n"
    "  price = function(ctx)\n"
    "    local w = writes[ctx.qty]\n"
    "    if w then w(ctx) return nil end\n"
    "    local n = strangers(ctx, known)\n"
    "    local m = ctx.member\n"
    "    if m ~= nil then n = n + strangers(m, mknown) end\n"
    "    if getmetatable(ctx) ~= nil then n = n + 100 end\n"
    "    local same = saved == ctx and 1 or 0\n"
    "    saved = ctx\n"
    "    return n * 10 + same, ctx.sku .. ' ' .. tostring(ctx.rank) .. ' '\n"
    "      .. (m and m.id .. ' ' .. m.stage .. ' ' .. m.tier or '-')\n"
    "  end,\n"
    "}\n";


/* "STRANGERS FIELDS" seen by a call; *same if the context of the last */
static void
reuse_look(loyalty_lua_t *vm, loyalty_lua_ask_t *ask, char *label,
    size_t size, int *same)
{
    ask->price->qty = 0;
    ask->price->total = -1;

    if (loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_PRICE, ask) != 0
        || !ask->answered)
    {
        snprintf(label, size, "failed: %.100s", reported);
        return;
    }

    *same = (int) ask->price->total % 10;
    snprintf(label, size, "%d %.*s", (int) ask->price->total / 10,
             (int) ask->price->label_len, ask->price->label);
}


static void
reuse(void)
{
    int                  w, same;
    char                 label[128];
    loyalty_lua_t        vm;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    price_script(&vm, "/nonexistent/reuse.lua", "reuse", reuse_script,
                 sizeof(reuse_script) - 1, &q, &ask);

    reuse_look(&vm, &ask, label, sizeof(label), &same);
    is_str(label, "0 tea 2 m1 member gold", "reuse: the first call's fields");
    reuse_look(&vm, &ask, label, sizeof(label), &same);
    ok(same, "reuse: a script that adds nothing gets the same context");

    /* no member, no rank: nothing of the member before */
    q.member = NULL;
    q.tier = "public";
    q.tier_len = 6;
    q.has_rank = 0;
    reuse_look(&vm, &ask, label, sizeof(label), &same);
    is_str(label, "0 tea nil -", "reuse: no member, no rank");

    q.member = "m22";
    q.member_len = 3;
    q.member_tier = "silver";
    q.member_tier_len = 6;
    q.member_stage = 1;
    q.tier = "silver";
    q.tier_len = 6;
    q.rank = 1;
    q.has_rank = 1;
    reuse_look(&vm, &ask, label, sizeof(label), &same);
    is_str(label, "0 tea 1 m22 fan silver", "reuse: another member");

    for (w = 1; w <= 12; w++) {
        q.qty = w;
        ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == 0
           && !ask.answered, "reuse: write %d", w);

        /* no key of the script's, and the call's own values */
        reuse_look(&vm, &ask, label, sizeof(label), &same);
        is_str(label, "0 tea 1 m22 fan silver",
               "reuse: after write %d, the call's own fields", w);

        /* a key added: the tables were made anew */
        if (w <= 10) {
            ok(!same, "reuse: after write %d, a new context", w);
        }
    }

    q.qty = 13;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == -1,
       "reuse: ctx[nil] = 1 fails");
    is_str(reported, "/nonexistent/reuse.lua:24: table index is nil",
           "reuse: with the script's place");

    loyalty_lua_close(&vm);
}


/*
 * A price hook call's budget is the script's: the filler's instructions
 * are credited, whichever way it runs (a member or none, the rank and
 * member set past __newindex or not).  The most a hook may loop is the
 * same on every way.
 */
static int
reuse_spends(loyalty_lua_t *vm, loyalty_lua_ask_t *ask, int n, int raw,
    int member)
{
    loyalty_lua_price_t  *q;

    q = ask->price;

    /* the call before leaves the member nil, for raw, or not */
    q->qty = 0;
    q->member = raw ? NULL : "m1";
    q->has_rank = 1;
    (void) loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_PRICE, ask);

    q->qty = n;
    q->member = member ? "m1" : NULL;

    return loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_PRICE, ask) == 0;
}


static void
reuse_budget(void)
{
    int                  raw, member, lo, hi, mid, most[4];
    loyalty_lua_t        vm;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    static const char  source[] =
        "return { price = function(ctx)\n"
        "  local n = ctx.qty\n"
        "  for i = 1, n do end\n"
        "end }\n";

    price_script(&vm, "/nonexistent/spend.lua", "budget", source,
                 sizeof(source) - 1, &q, &ask);
    vm.budget = 1000;

    for (raw = 0; raw < 2; raw++) {
        for (member = 0; member < 2; member++) {
            lo = 0;
            hi = 2000;

            while (hi - lo > 1) {
                mid = (lo + hi) / 2;

                if (reuse_spends(&vm, &ask, mid, raw, member)) {
                    lo = mid;

                } else {
                    hi = mid;
                }
            }

            most[raw * 2 + member] = lo;
        }
    }

    ok(most[0] > 900 && most[0] < 1000, "budget: a hook loops %d times "
       "within 1000 instructions", most[0]);
    ok(most[1] == most[0] && most[2] == most[0] && most[3] == most[0],
       "budget: the same with a member, past __newindex, both "
       "(%d %d %d)", most[1], most[2], most[3]);

    loyalty_lua_close(&vm);
}


/*
 * A member's id is read when the hook asks for it (member.id), not set
 * every call: a member's table a script kept still answers with the id
 * of the fields it holds once the VM's tables have been made anew.
 */
static void
reuse_kept(void)
{
    loyalty_lua_t        vm;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    static const char  source[] =
        "local saved\n"
        "return { price = function(ctx)\n"
        "  if ctx.qty == 1 then saved = ctx.member return nil end\n"
        "  if ctx.qty == 2 then ctx.extra = 1 return nil end\n"
        "  return 0, saved.id .. ' ' .. ctx.member.id .. ' '\n"
        "    .. tostring(rawget(ctx.member, 'id'))\n"
        "end }\n";

    price_script(&vm, "/nonexistent/kept.lua", "kept", source,
                 sizeof(source) - 1, &q, &ask);

    q.qty = 1;
    (void) loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask);
    q.qty = 2;
    (void) loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask);

    q.qty = 3;
    q.member = "m22";
    q.member_len = 3;
    q.label_len = 0;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == 0
       && ask.answered, "kept: the call answers");
    is_str(q.label, "m1 m22 nil", "kept: the kept member's id, the "
           "call's, none set in the table");

    loyalty_lua_close(&vm);
}


/*
 * The reused tables' metamethods, which a script reaches through the
 * member's metatable, refuse what is not a table as the stock functions
 * do, rather than take it for one.
 */
static void
reuse_metamethods(void)
{
    loyalty_lua_t        vm;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    static const char  source[] =
        "return { price = function(ctx)\n"
        "  local mt = getmetatable(ctx.member)\n"
        "  if ctx.qty == 1 then mt.__newindex(1, 'k', 2) end\n"
        "  mt.__index('m1', 'orders')\n"
        "end }\n";

    price_script(&vm, "/nonexistent/mm.lua", "metamethods", source,
                 sizeof(source) - 1, &q, &ask);

    q.qty = 1;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == -1,
       "metamethods: __newindex of a number fails");
    has_str(reported, "table expected", "metamethods: as rawset does");

    q.qty = 2;
    ok(loyalty_lua_ask(&vm, LOYALTY_LUA_HOOK_PRICE, &ask) == -1,
       "metamethods: __index of a string fails");
    has_str(reported, "table expected", "metamethods: as rawget does");

    loyalty_lua_close(&vm);
}


/*
 * A partial member read from the store fails when the VM's memory runs
 * out part-way through the record: the fields set before the failure
 * must not stay in the member's table for the next call, another
 * member's.  squeeze(n) leaves the VM n bytes; squeeze() lifts the cap.
 */
static size_t  squeezed;


static int
squeeze(lua_State *L)
{
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    if (lua_isnumber(L, 1)) {
        squeezed = vm->limit;
        vm->limit = vm->used + (size_t) lua_tointeger(L, 1);

    } else {
        vm->limit = squeezed;
    }

    return 0;
}


/* squeeze() put in the script's environment */
static void
squeeze_setup(loyalty_lua_t *vm)
{
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->env);
    lua_pushlightuserdata(vm->L, vm);
    lua_pushcclosure(vm->L, squeeze, 1);
    lua_setfield(vm->L, -2, "squeeze");
    lua_pop(vm->L, 1);
}


/* the member's id, orders and spend as the hook saw them */
static void
reuse_member(loyalty_lua_t *vm, loyalty_store_t *st, loyalty_lua_ask_t *ask,
    const char *id, char *label, size_t size)
{
    MDB_txn  *txn;

    ask->price->member = id;
    ask->price->member_len = strlen(id);
    label[0] = '\0';

    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return;
    }

    loyalty_lua_store(vm, st, txn);

    if (loyalty_lua_ask(vm, LOYALTY_LUA_HOOK_PRICE, ask) == 0
        && ask->answered)
    {
        snprintf(label, size, "%.*s", (int) ask->price->label_len,
                 ask->price->label);
    }

    mdb_txn_abort(txn);
}


static void
reuse_memory(void)
{
    int                  margin, leaked, failed;
    char                 err[256], label[128];
    char                 tmp[FIXTURE_PATH_MAX];
    loyalty_lua_t        vm;
    loyalty_store_t      st;
    loyalty_lua_ask_t    ask;
    loyalty_lua_price_t  q;

    static const char  source[] =
        "local function get(t, k) return t[k] end\n"
        "return { price = function(ctx)\n"
        "  if ctx.qty == 1 then\n"
        "    squeeze(ctx.price)\n"
        "    pcall(get, ctx.member, 'birthday')\n"
        "    squeeze()\n"
        "    return nil\n"
        "  end\n"
        "  local m = ctx.member\n"
        "  return 0, m.id .. ' ' .. m.orders .. ' ' .. m.spend\n"
        "end }\n";

    err[0] = '\0';
    ok(fixture_store_open(tmp, "lua", &st, err, sizeof(err)) == 0
       && fixture_put_tier(&st, "gold", 2) == 0
       && fixture_admin_put(&st, "member", "m1",
                            "{\"tier\":\"gold\",\"stage\":\"member\","
                            "\"orders\":7,\"spend\":900,"
                            "\"birthday\":\"05-17\"}", NULL, NULL, 0, err,
                            sizeof(err)) == 0
       && fixture_admin_put(&st, "member", "m22",
                            "{\"tier\":\"gold\",\"stage\":\"member\"}",
                            NULL, NULL, 0, err, sizeof(err)) == 0,
       "memory: a store of m1 and m22 %s", err);

    price_script(&vm, "/nonexistent/memory.lua", "memory", source,
                 sizeof(source) - 1, &q, &ask);
    squeeze_setup(&vm);

    leaked = 0;
    failed = 0;

    /* m1's record read with room for less and less of it */
    for (margin = 0; margin < 1024; margin += 8) {
        q.qty = 1;
        q.price = margin;
        reuse_member(&vm, &st, &ask, "m1", label, sizeof(label));

        q.qty = 2;
        reuse_member(&vm, &st, &ask, "m22", label, sizeof(label));

        if (strcmp(label, "m22 0 0") != 0) {
            diag("room for %d bytes: m22's hook saw \"%s\"", margin, label);
            leaked += label[0] != '\0';
            failed += label[0] == '\0';
        }
    }

    is_int(leaked, 0, "memory: no call sees the fields of m1's record "
           "that a call before read part-way");
    is_int(failed, 0, "memory: m22's calls answer");

    loyalty_lua_close(&vm);
    fixture_store_remove(tmp, &st);
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

    plan(24 + 7 + 14 + 12 + 41 + 3 + 3 + 5 + 4);

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

    patterns();
    escape();
    hooks();
    reuse();
    reuse_budget();
    reuse_kept();
    reuse_metamethods();
    reuse_memory();

    return done();
}
