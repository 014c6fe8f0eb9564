/*
 * nginx-loyalty: the LuaJIT sandbox that runs the operator's script, in
 * nginx's workers and in loyaltyctl alike.
 *
 * Scripts run in a sandbox with a budget per call, of VM instructions and
 * of wall time, and a memory cap per VM.  The budget holds whatever a
 * call runs:
 *
 *   - The VM runs with the JIT engine off: count hooks do not fire in
 *     compiled traces, so every Lua function (the script, the project's
 *     library in lua/loyalty, loadstring'd chunks) is interpreted.  The
 *     count hook fires every LOYALTY_LUA_SLICE instructions, adds them to
 *     the call's count and reads the monotonic clock.  The price is the
 *     library's speed: the buy-5-get-1 price hook takes 0.57 us a call
 *     interpreted, 0.40 us with the library compiled.
 *   - A C function is one instruction to the hook, so those whose work
 *     grows with their arguments charge it to the count: the pattern
 *     functions are our own (loyalty_lua_pattern.c), charging every step
 *     of the matcher; table.sort, insert, concat and maxn and tonumber
 *     charge what they will walk before they run; every KiB the VM
 *     allocates in a call is one instruction, and an allocation that
 *     spends the budget makes the hook fire at the next instruction.
 *
 * What is left uncharged is bounded by the memory cap (a string compared,
 * a table's length) and caught by the clock at the next slice.  A call
 * over its budget is stopped with the error "FILE:LINE: the budget of N
 * instructions is spent" (or "of N ms"); from then on the hook fires at
 * every instruction, so a script cannot pcall its way on.
 *
 * What differs between the module and loyaltyctl (where a module's source
 * comes from, more keys, how a failure is told) goes through the VM's
 * callbacks.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "loyalty_lua.h"
#include "loyalty_lua_pattern.h"
#include "loyalty_price.h"
#include "loyalty_util.h"


#define LOYALTY_LUA_NAME_MAX  64
#define LOYALTY_LUA_ERR_MAX   2048

/* the count hook's interval, in VM instructions */
#define LOYALTY_LUA_SLICE     1000
/* bytes allocated in a call that count as one instruction */
#define LOYALTY_LUA_ALLOC_SHIFT  10


typedef struct {
    const char  *name;
    const char  *source;
    size_t       len;
} loyalty_lua_lib_t;

#include "loyalty_lua_lib.h"


static void *loyalty_lua_alloc(void *ud, void *ptr, size_t osize,
    size_t nsize);
static void loyalty_lua_start(loyalty_lua_t *vm);
static void loyalty_lua_budget(lua_State *L, lua_Debug *ar);
static int loyalty_lua_over(loyalty_lua_t *vm);
static void loyalty_lua_stop(lua_State *L, loyalty_lua_t *vm,
    lua_Debug *ar);
static void loyalty_lua_charge(lua_State *L, void *data, size_t steps);
static int loyalty_lua_charged(lua_State *L);
static size_t loyalty_lua_cost(lua_State *L, int kind);
static int loyalty_lua_maxn(lua_State *L);
static void loyalty_lua_meter_libs(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_run(loyalty_lua_t *vm, int nargs, int nresults);
static int loyalty_lua_hooks(loyalty_lua_t *vm, char *err, size_t errlen);
static void loyalty_lua_fail(loyalty_lua_t *vm, const char *msg);
static int loyalty_lua_sandbox(lua_State *L);
static void loyalty_lua_keys(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_chunk(lua_State *L, loyalty_lua_t *vm,
    const char *source, size_t len, const char *chunkname);
static int loyalty_lua_xpcall(lua_State *L);
static int loyalty_lua_loadstring(lua_State *L);
static int loyalty_lua_require(lua_State *L);
static void loyalty_lua_require_lib(lua_State *L, loyalty_lua_t *vm,
    const char *name);
static void loyalty_lua_require_file(lua_State *L, loyalty_lua_t *vm,
    const char *name, size_t len);
static int loyalty_lua_member_index(lua_State *L);
static void loyalty_lua_store_lib(lua_State *L, loyalty_lua_t *vm);
static int loyalty_lua_rank(loyalty_store_t *st, MDB_txn *txn,
    const char *tier, size_t len, int32_t *rank);
static int loyalty_lua_store_member(lua_State *L);
static int loyalty_lua_store_price(lua_State *L);


const char  *loyalty_lua_hook_names[LOYALTY_LUA_HOOKS] = {
    "price", "click", "event"
};

/* in the order of loyalty_lua_key_e */
static const char  *loyalty_lua_key_names[] = {
    "id", "tier", "rank", "stage", "points", "orders", "spend", "blocked",
    "birthday", "joined_at", "first_order_at", "last_order_at", "referrer",
    "retail", "price", "member", "now"
};


int
loyalty_lua_open(loyalty_lua_t *vm, char *err, size_t errlen)
{
    int         i;
    lua_State  *L;
    const char *slash;

    for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
        vm->hooks[i] = LUA_NOREF;
    }

    slash = strrchr(vm->file, '/');
    vm->dir_len = slash ? (size_t) (slash + 1 - vm->file) : 0;

    L = luaL_newstate();
    if (L == NULL) {
        snprintf(err, errlen, "cannot create a Lua VM");
        return -1;
    }

    vm->L = L;

    if (vm->msec == 0) {
        vm->msec = LOYALTY_LUA_MSEC;
    }

    vm->meter.charge = loyalty_lua_charge;
    vm->meter.data = vm;

    /*
     * LuaJIT's own allocator, counted: it suits the VM's many small
     * blocks better than malloc().  What the state took to start with is
     * the GC's count so far.
     */
    vm->alloc = lua_getallocf(L, &vm->alloc_ud);
    vm->used = (size_t) lua_gc(L, LUA_GCCOUNT, 0) * 1024
               + (size_t) lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, loyalty_lua_alloc, vm);

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_sandbox, 1);

    if (lua_pcall(L, 0, 0, 0) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        loyalty_lua_close(vm);
        return -1;
    }

    return 0;
}


void
loyalty_lua_close(loyalty_lua_t *vm)
{
    if (vm->L) {
        lua_close(vm->L);
        vm->L = NULL;
    }
}


int
loyalty_lua_script(loyalty_lua_t *vm, const char *source, size_t len,
    char *err, size_t errlen)
{
    int         rc;
    char       *text;
    lua_State  *L;

    L = vm->L;
    text = NULL;

    if (source == NULL) {
        if (loyalty_lua_read_file(vm->file, &text, &len, err, errlen) != 0) {
            return -1;
        }

        source = text;
    }

    lua_pushfstring(L, "@%s", vm->file);
    rc = loyalty_lua_chunk(L, vm, source, len, lua_tostring(L, -1));
    lua_remove(L, -2);

    free(text);

    if (rc != 0 || loyalty_lua_run(vm, 0, 1) != 0) {
        snprintf(err, errlen, "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1)
                                     : "the script raised an error that is "
                                       "not a string");
        lua_settop(L, 0);
        return -1;
    }

    if (loyalty_lua_hooks(vm, err, errlen) != 0) {
        lua_settop(L, 0);
        return -1;
    }

    return 0;
}


/* the hooks of the table the script returned, at the top of the stack */
static int
loyalty_lua_hooks(loyalty_lua_t *vm, char *err, size_t errlen)
{
    int         i;
    lua_State  *L;

    L = vm->L;

    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "the script must return a table of hooks, "
                 "not %s", luaL_typename(L, -1));
        return -1;
    }

    for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
        lua_getfield(L, -1, loyalty_lua_hook_names[i]);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }

        if (!lua_isfunction(L, -1)) {
            snprintf(err, errlen, "the hook \"%s\" must be a function, "
                     "not %s", loyalty_lua_hook_names[i],
                     luaL_typename(L, -1));
            return -1;
        }

        vm->hooks[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    return 0;
}


/*
 * The allocator keeps the VM under its cap; at the cap an allocation
 * fails, and Lua raises "not enough memory" in the code that asked.
 * During a call, what is allocated is charged to the budget, and the
 * allocation that spends it makes the count hook fire at the next
 * instruction: a C function that allocates much (string.rep, a long
 * concatenation) is a short one, but not one the budget can loop over.
 */
static void *
loyalty_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void           *p;
    loyalty_lua_t  *vm = ud;

    if (nsize > osize && vm->used + (nsize - osize) > vm->limit) {
        vm->failed = LOYALTY_LUA_MEMORY;
        return NULL;
    }

    p = vm->alloc(vm->alloc_ud, ptr, osize, nsize);

    if (p == NULL && nsize != 0) {
        return NULL;
    }

    vm->used = vm->used - osize + nsize;

    if (vm->running && nsize > osize) {
        vm->spent += (nsize - osize) >> LOYALTY_LUA_ALLOC_SHIFT;

        if (vm->spent >= vm->budget && vm->slice != 1) {
            /* the hook, not the allocator, raises the error */
            vm->slice = 1;
            lua_sethook(vm->L, loyalty_lua_budget, LUA_MASKCOUNT, 1);
        }
    }

    return p;
}


/* a call's budget: nothing spent, the clock started, the hook set */
static void
loyalty_lua_start(loyalty_lua_t *vm)
{
    vm->failed = 0;
    vm->spent = 0;
    vm->timed_out = 0;
    vm->deadline = loyalty_lua_now() + (uint64_t) vm->msec * 1000000;
    vm->slice = vm->budget < LOYALTY_LUA_SLICE ? (int) vm->budget
                                               : LOYALTY_LUA_SLICE;
    vm->running = 1;

    lua_sethook(vm->L, loyalty_lua_budget, LUA_MASKCOUNT, vm->slice);
}


uint64_t
loyalty_lua_now(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


/*
 * The count hook, every slice: the slice counted, the budget and the
 * clock checked.  Once a call is stopped it fires at every instruction.
 */
static void
loyalty_lua_budget(lua_State *L, lua_Debug *ar)
{
    void           *ud;
    size_t          left;
    loyalty_lua_t  *vm;

    (void) lua_getallocf(L, &ud);
    vm = ud;

    vm->spent += (size_t) vm->slice;

    if (vm->failed == LOYALTY_LUA_BUDGET || loyalty_lua_over(vm)) {
        loyalty_lua_stop(L, vm, ar);
    }

    /* the last slice may be shorter, so that the count is exact */
    left = vm->budget - vm->spent;

    if (left < (size_t) vm->slice) {
        vm->slice = (int) left;
        lua_sethook(L, loyalty_lua_budget, LUA_MASKCOUNT, vm->slice);
    }
}


/* the call has spent its instructions, or its time */
static int
loyalty_lua_over(loyalty_lua_t *vm)
{
    if (vm->spent >= vm->budget) {
        return 1;
    }

    if (loyalty_lua_now() >= vm->deadline) {
        vm->timed_out = 1;
        return 1;
    }

    return 0;
}


/*
 * Stops the call with its place: ar's, in the hook, or else that of the
 * innermost Lua function on the stack, which called the C function.
 */
static void
loyalty_lua_stop(lua_State *L, loyalty_lua_t *vm, lua_Debug *ar)
{
    int        level;
    lua_Debug  d;

    vm->failed = LOYALTY_LUA_BUDGET;

    if (vm->slice != 1) {
        vm->slice = 1;
        lua_sethook(L, loyalty_lua_budget, LUA_MASKCOUNT, 1);
    }

    if (ar) {
        (void) lua_getinfo(L, "Sl", ar);

    } else {
        for (level = 0; lua_getstack(L, level, &d); level++) {
            (void) lua_getinfo(L, "Sl", &d);

            if (d.currentline > 0) {
                ar = &d;
                break;
            }
        }
    }

    if (ar) {
        lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);

    } else {
        lua_pushliteral(L, "");
    }

    if (vm->timed_out) {
        lua_pushfstring(L, "the budget of %d ms is spent", (int) vm->msec);

    } else {
        lua_pushfstring(L, "the budget of %d instructions is spent",
                        (int) vm->budget);
    }

    lua_concat(L, 2);
    lua_error(L);
}


/* the meter of C functions: their work charged, the call stopped if over */
static void
loyalty_lua_charge(lua_State *L, void *data, size_t steps)
{
    loyalty_lua_t  *vm = data;

    vm->spent += steps;

    if (vm->failed == LOYALTY_LUA_BUDGET || loyalty_lua_over(vm)) {
        loyalty_lua_stop(L, vm, NULL);
    }
}


/* a protected call within the budget: 0, or an error message on the stack */
static int
loyalty_lua_run(loyalty_lua_t *vm, int nargs, int nresults)
{
    int  rc;

    loyalty_lua_start(vm);

    rc = lua_pcall(vm->L, nargs, nresults, 0);

    vm->running = 0;

    if (rc != 0 && vm->failed == LOYALTY_LUA_MEMORY) {
        /* what the failed call left behind is garbage by now */
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }

    return rc;
}


/*
 * f builds what it hands the script, calls it and reads its answer, all
 * protected, so that running out of memory anywhere in it is an error
 * like any other.
 */
int
loyalty_lua_call(loyalty_lua_t *vm, lua_CFunction f, void *ud)
{
    int     rc;
    size_t  room;

    /* the error paths must not be the ones to find memory short */
    room = vm->limit / 8 > 65536 ? vm->limit / 8 : 65536;

    if (vm->used + room > vm->limit) {
        lua_gc(vm->L, LUA_GCCOLLECT, 0);

        if (vm->used + room > vm->limit) {
            vm->failed = LOYALTY_LUA_MEMORY;
            vm->txn = NULL;
            loyalty_lua_fail(vm, "the script keeps its VM's memory nearly "
                             "full: not called");
            return -1;
        }
    }

    loyalty_lua_start(vm);

    rc = lua_cpcall(vm->L, f, ud);

    vm->running = 0;

    vm->txn = NULL;

    if (rc == 0) {
        lua_settop(vm->L, 0);
        return 0;
    }

    if (vm->failed == LOYALTY_LUA_MEMORY) {
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }

    loyalty_lua_fail(vm, NULL);

    return -1;
}


/* msg, or the message at the top of the stack, reported; the stack cleared */
static void
loyalty_lua_fail(loyalty_lua_t *vm, const char *msg)
{
    size_t  len;

    if (msg) {
        len = strlen(msg);

    } else if (lua_type(vm->L, -1) == LUA_TSTRING) {
        /* a string already: reading it allocates nothing */
        msg = lua_tolstring(vm->L, -1, &len);

    } else {
        msg = "an error that is not a string";
        len = strlen(msg);
    }

    if (vm->report) {
        vm->report(vm, msg, len);
    }

    lua_settop(vm->L, 0);
}


void
loyalty_lua_store(loyalty_lua_t *vm, loyalty_store_t *st, MDB_txn *txn)
{
    vm->st = st;
    vm->txn = txn;
}


int
loyalty_lua_read_file(const char *path, char **data, size_t *len, char *err,
    size_t errlen)
{
    int          fd, e;
    char        *p;
    size_t       size, got;
    ssize_t      n;
    struct stat  sb;

    fd = open(path, O_RDONLY);

    if (fd == -1) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "\"%s\" is not a file", path);
        close(fd);
        return -1;
    }

    if (sb.st_size > LOYALTY_LUA_SOURCE_MAX) {
        snprintf(err, errlen, "\"%s\" is larger than %d bytes", path,
                 LOYALTY_LUA_SOURCE_MAX);
        close(fd);
        return -1;
    }

    size = (size_t) sb.st_size;

    p = malloc(size + 1);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -1;
    }

    for (got = 0; got < size; got += (size_t) n) {
        n = read(fd, p + got, size - got);

        if (n <= 0) {
            e = errno;
            free(p);
            close(fd);
            snprintf(err, errlen, "cannot read \"%s\": %s", path,
                     n < 0 ? strerror(e) : "it changed while read");
            return -1;
        }
    }

    close(fd);

    p[size] = '\0';
    *data = p;
    *len = size;

    return 0;
}


/* the sandbox */

static const char  *loyalty_lua_safe[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "rawequal", "rawget",
    "rawset", "setmetatable", "getmetatable", NULL
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
static int
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
    loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(2));

    loyalty_lua_charge(L, vm,
                       loyalty_lua_cost(L, (int) lua_tointeger(L,
                                                lua_upvalueindex(3))));

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
            loyalty_lua_charge(L, vm, n);
            n = 0;
        }
    }

    loyalty_lua_charge(L, vm, n + 1);
    lua_pushnumber(L, max);

    return 1;
}


/* the keys and stage names, and a partial member's metatable */
static void
loyalty_lua_keys(lua_State *L, loyalty_lua_t *vm)
{
    int  i, n;

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

    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, loyalty_lua_member_index, 1);
    lua_setfield(L, -2, "__index");
    vm->lazy = luaL_ref(L, LUA_REGISTRYINDEX);
}


/*
 * Loads a chunk of text into the sandbox, bytecode refused: 0 with the
 * function on the stack, or an error message.
 */
static int
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
 * require "loyalty.NAME": the project's library, or loyalty.store; any
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


/* members */

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
 * price hook's holds what the request knows): the whole record is read,
 * the table filled and made an ordinary one.
 */
static int
loyalty_lua_member_index(lua_State *L)
{
    char              id[LOYALTY_ID_MAX];
    size_t            len;
    MDB_val           key, val;
    const char       *s;
    loyalty_lua_t    *vm;
    loyalty_member_t  m;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    lua_settop(L, 2);

    if (vm->txn == NULL) {
        return luaL_error(L, "the member is only read during a hook");
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->keys);
    lua_insert(L, 1);

    /* keys, the member's table, the key asked for */
    lua_rawgeti(L, 1, LOYALTY_LUA_KEY_ID);
    lua_rawget(L, 2);
    s = lua_tolstring(L, -1, &len);

    if (s == NULL || !loyalty_valid_id(s, len)) {
        return 0;
    }

    memcpy(id, s, len);
    lua_pop(L, 1);

    key.mv_data = id;
    key.mv_size = len;

    lua_pushvalue(L, 2);

    if (mdb_get(vm->txn, vm->st->dbi[LOYALTY_DB_MEMBERS], &key, &val) == 0
        && loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0)
    {
        loyalty_lua_fill_member(L, id, len, &m, 0, 0);
    }

    lua_pushnil(L);
    lua_setmetatable(L, 2);

    lua_pushvalue(L, 3);
    lua_rawget(L, 2);

    return 1;
}


/* loyalty.store */

static void
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
    MDB_val           key, val;
    const char       *id;
    loyalty_lua_t    *vm;
    loyalty_member_t  m;

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
    has_rank = loyalty_lua_rank(vm->st, vm->txn, m.tier, m.tier_len, &rank);

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
    const char         *sku, *tier;
    loyalty_lua_t      *vm;
    loyalty_price_t     p;
    loyalty_tierset_t  *ts;

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

    if (!(tlen == 6 && strncmp(tier, "public", 6) == 0)) {
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
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_RETAIL, p.retail);
    loyalty_lua_set_num(L, LOYALTY_LUA_KEY_PRICE, price);

    return 1;
}
