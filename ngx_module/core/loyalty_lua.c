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
 * The module's own Lua code that fills a price hook's context runs in
 * the call too; its instructions are the call's credit (vm->credit), so
 * that the budget is the script's.
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
 *
 * This file holds the VM and its budget; the sandbox's environment and
 * require are loyalty_lua_sandbox.c's, members and loyalty.store
 * loyalty_lua_member.c's.
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


/* the count hook's interval, in VM instructions */
#define LOYALTY_LUA_SLICE     1000
/* bytes allocated in a call that count as one instruction */
#define LOYALTY_LUA_ALLOC_SHIFT  10


static void *loyalty_lua_alloc(void *ud, void *ptr, size_t osize,
    size_t nsize);
static void loyalty_lua_start(loyalty_lua_t *vm);
static void loyalty_lua_budget(lua_State *L, lua_Debug *ar);
static int loyalty_lua_over(loyalty_lua_t *vm);
static void loyalty_lua_stop(lua_State *L, loyalty_lua_t *vm,
    lua_Debug *ar);
static void loyalty_lua_charge(lua_State *L, void *data, size_t steps);
static int loyalty_lua_run(loyalty_lua_t *vm, int nargs, int nresults);
static int loyalty_lua_hooks(loyalty_lua_t *vm, char *err, size_t errlen);
static void loyalty_lua_fail(loyalty_lua_t *vm, const char *msg);
static int loyalty_lua_strcmp(const void *a, const void *b);
static size_t loyalty_lua_distance(const char *a, const char *b);


const char  *loyalty_lua_hook_names[LOYALTY_LUA_HOOKS] = {
    "price", "click", "event"
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

    for (i = 0; i < LOYALTY_LUA_NAMES; i++) {
        vm->names[i].ref = LUA_NOREF;
        vm->names[i].len = 0;
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

    /* the price hook's filler is given it at its next call */
    vm->armed = 0;

    return 0;
}


/* the keys a script's table may hold: the hooks, and its cadences */
static const char  *loyalty_lua_script_keys[] = {
    "price", "click", "event", "cadences", NULL
};


/*
 * Every key of the script's table (at the top of the stack) that is none
 * of loyalty_lua_script_keys, in byte order, told to warn() with the
 * nearest known key if it is a likely typo ("prcie": did you mean
 * "price"?).  A warning, not an error: a table may carry the script's own
 * data beside its hooks, and a script that ran yesterday keeps running;
 * but a misspelt hook is never called, and the operator is told where.
 * Returns the number of unknown keys.
 */
int
loyalty_lua_unknown_keys(loyalty_lua_t *vm, loyalty_lua_warn_pt warn,
    void *data)
{
    int          i, n, best, d, bestd;
    char         msg[LOYALTY_LUA_WARN_LEN];
    size_t       len;
    lua_State   *L;
    const char  *key, *keys[LOYALTY_LUA_UNKNOWN_MAX];

    L = vm->L;
    n = 0;

    if (!lua_istable(L, -1)) {
        return 0;
    }

    lua_pushnil(L);

    while (lua_next(L, -2)) {
        lua_pop(L, 1);

        if (lua_type(L, -1) != LUA_TSTRING) {
            snprintf(msg, sizeof(msg), "the script's table has a %s key: "
                     "only hooks (price, click, event) and cadences are "
                     "read", luaL_typename(L, -1));
            warn(data, msg);
            continue;
        }

        key = lua_tolstring(L, -1, &len);

        for (i = 0; loyalty_lua_script_keys[i]; i++) {
            if (strcmp(key, loyalty_lua_script_keys[i]) == 0) {
                break;
            }
        }

        if (loyalty_lua_script_keys[i] == NULL
            && n < LOYALTY_LUA_UNKNOWN_MAX)
        {
            /* the table holds its keys: they live as long as it does */
            keys[n++] = key;
        }
    }

    qsort(keys, (size_t) n, sizeof(char *), loyalty_lua_strcmp);

    for (i = 0; i < n; i++) {
        best = -1;
        bestd = 3;

        for (d = 0; loyalty_lua_script_keys[d]; d++) {
            len = loyalty_lua_distance(keys[i], loyalty_lua_script_keys[d]);

            if ((int) len < bestd
                && len < strlen(loyalty_lua_script_keys[d]))
            {
                bestd = (int) len;
                best = d;
            }
        }

        if (best >= 0) {
            snprintf(msg, sizeof(msg), "unknown key \"%.64s\" in the "
                     "script's table: did you mean \"%s\"?", keys[i],
                     loyalty_lua_script_keys[best]);

        } else {
            snprintf(msg, sizeof(msg), "unknown key \"%.64s\" in the "
                     "script's table: it is not read (the keys read are "
                     "price, click, event and cadences)", keys[i]);
        }

        warn(data, msg);
    }

    return n;
}


static int
loyalty_lua_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/*
 * The edit distance of a and b, a transposition one edit (optimal string
 * alignment), ASCII case ignored; keys are short, longer ones are far.
 */
static size_t
loyalty_lua_distance(const char *a, const char *b)
{
    size_t  i, j, la, lb, cost, v;
    size_t  d[LOYALTY_LUA_KEY_LEN + 1][LOYALTY_LUA_KEY_LEN + 1];

    la = strlen(a);
    lb = strlen(b);

    if (la > LOYALTY_LUA_KEY_LEN || lb > LOYALTY_LUA_KEY_LEN) {
        return (size_t) -1;
    }

    for (i = 0; i <= la; i++) {
        d[i][0] = i;
    }

    for (j = 0; j <= lb; j++) {
        d[0][j] = j;
    }

    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = tolower((unsigned char) a[i - 1])
                   != tolower((unsigned char) b[j - 1]);

            v = d[i - 1][j] + 1;
            v = d[i][j - 1] + 1 < v ? d[i][j - 1] + 1 : v;
            v = d[i - 1][j - 1] + cost < v ? d[i - 1][j - 1] + cost : v;

            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < v)
            {
                v = d[i - 2][j - 2] + 1;
            }

            d[i][j] = v;
        }
    }

    return d[la][lb];
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

        if (vm->spent >= vm->budget + vm->credit && vm->slice != 1) {
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
    vm->credit = 0;
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
    left = vm->budget + vm->credit - vm->spent;

    if (left < (size_t) vm->slice) {
        vm->slice = (int) left;
        lua_sethook(L, loyalty_lua_budget, LUA_MASKCOUNT, vm->slice);
    }
}


/* the call has spent its instructions, or its time */
static int
loyalty_lua_over(loyalty_lua_t *vm)
{
    if (vm->spent >= vm->budget + vm->credit) {
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
 * f of loyalty_lua_call(), the VM's one C function for it (vm->call):
 * lua_cpcall() would make a closure every call, garbage for the collector
 */
int
loyalty_lua_protected(lua_State *L)
{
    void           *ud;
    loyalty_lua_t  *vm;

    (void) lua_getallocf(L, &ud);
    vm = ud;

    return vm->call_f(L);
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
            vm->begin = NULL;
            loyalty_lua_fail(vm, "the script keeps its VM's memory nearly "
                             "full: not called");
            return -1;
        }
    }

    /* a call runs no other: the script cannot make one */
    vm->call_f = f;
    vm->call_ud = ud;

    loyalty_lua_start(vm);

    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->call);

    rc = lua_pcall(vm->L, 0, 0, 0);

    vm->running = 0;

    vm->txn = NULL;
    vm->begin = NULL;

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
    vm->begin = NULL;
}


void
loyalty_lua_store_lazy(loyalty_lua_t *vm, loyalty_store_t *st,
    loyalty_lua_begin_pt begin, void *data)
{
    vm->st = st;
    vm->txn = NULL;
    vm->begin = begin;
    vm->begin_data = data;
}


MDB_txn *
loyalty_lua_txn(lua_State *L, loyalty_lua_t *vm, const char *what)
{
    if (vm->txn == NULL && vm->begin) {
        /* asked once a call: a snapshot that cannot begin stays so */
        vm->txn = vm->begin(vm->begin_data);
        vm->begin = NULL;

        if (vm->txn == NULL) {
            luaL_error(L, "the store cannot be read");
        }
    }

    if (vm->txn == NULL) {
        luaL_error(L, "the %s is only read during a hook", what);
    }

    return vm->txn;
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
