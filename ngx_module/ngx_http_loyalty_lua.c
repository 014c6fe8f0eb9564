/*
 * nginx-loyalty: the embedded LuaJIT that runs the operator's hooks.
 *
 * The script named by loyalty_lua_file is loaded once at configuration,
 * so that "nginx -t" and a reload refuse a script that does not load, and
 * again in every worker: one VM for the request path (price, click) and
 * one for the write path (event), which runs in the thread pool inside a
 * write transaction, so that LMDB's writer lock keeps it to one thread.
 *
 * Scripts run in a sandbox with a budget of VM instructions per call and
 * a memory cap per VM.  Count hooks do not fire in JIT-compiled traces,
 * so the operator's functions are kept out of the JIT: the budget stops
 * "while true do end" however hot it gets.  The project's library in
 * lua/loyalty is compiled into the module and stays JIT-compiled.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"


#define NGX_HTTP_LOYALTY_LUA_LOGGED      64
#define NGX_HTTP_LOYALTY_LUA_NAME_MAX    64
#define NGX_HTTP_LOYALTY_LUA_SOURCE_MAX  (1024 * 1024)


typedef struct {
    const char  *name;
    const char  *source;
    size_t       len;
} ngx_http_loyalty_lua_lib_t;

#include "ngx_http_loyalty_lua_lib.h"


/* a module of the operator's directory, read at configuration */
typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     path;
    ngx_str_t                     source;
} ngx_http_loyalty_lua_source_t;


const char  *ngx_http_loyalty_lua_hook_names[NGX_HTTP_LOYALTY_HOOKS] = {
    "price", "click", "event"
};


static ngx_http_loyalty_lua_t *ngx_http_loyalty_lua_new(
    ngx_http_loyalty_lua_conf_t *lcf, ngx_conf_t *cf, ngx_log_t *log,
    char *err, size_t errlen);
static void ngx_http_loyalty_lua_free(ngx_http_loyalty_lua_t *vm);
static void *ngx_http_loyalty_lua_alloc(void *ud, void *ptr, size_t osize,
    size_t nsize);
static void ngx_http_loyalty_lua_budget(lua_State *L, lua_Debug *ar);
static int ngx_http_loyalty_lua_run(ngx_http_loyalty_lua_t *vm, int nargs,
    int nresults);
static void ngx_http_loyalty_lua_fail(ngx_http_loyalty_lua_t *vm,
    ngx_uint_t hook, ngx_log_t *log, const char *msg);
static int ngx_http_loyalty_lua_sandbox(lua_State *L);
static int ngx_http_loyalty_lua_require(lua_State *L);
static int ngx_http_loyalty_lua_xpcall(lua_State *L);
static int ngx_http_loyalty_lua_loadstring(lua_State *L);
static int ngx_http_loyalty_lua_chunk(lua_State *L,
    ngx_http_loyalty_lua_t *vm, const char *source, size_t len,
    const char *chunkname, ngx_uint_t jit);
static ngx_int_t ngx_http_loyalty_lua_keep(ngx_http_loyalty_lua_t *vm,
    const char *name, size_t len, u_char *path, ngx_str_t *source);
static int ngx_http_loyalty_lua_read(ngx_http_loyalty_lua_t *vm,
    const char *path, ngx_str_t *source, char *err, size_t errlen);
static ngx_int_t ngx_http_loyalty_lua_hooks(ngx_http_loyalty_lua_t *vm,
    char *err, size_t errlen);
static ngx_int_t ngx_http_loyalty_lua_stats_init(ngx_shm_zone_t *zone,
    void *data);
static int ngx_http_loyalty_lua_event(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_event_hook_in_t *in,
    loyalty_event_hook_out_t *out);


/* this worker's VMs */
static ngx_http_loyalty_lua_t  *ngx_http_loyalty_lua_vms[2];
static loyalty_event_hook_t     ngx_http_loyalty_lua_event_hook_v;

static ngx_str_t  ngx_http_loyalty_lua_zone_name = ngx_string("loyalty_lua");


/*
 * Checks the script at configuration: it must load, run within the
 * budget and return a table of hooks.  The script and the modules it
 * requires as it loads are kept, so that workers load what was checked.
 */

char *
ngx_http_loyalty_lua_conf(ngx_conf_t *cf, ngx_http_loyalty_lua_conf_t *lcf)
{
    u_char                  *p;
    char                     err[NGX_MAX_ERROR_STR];
    ngx_http_loyalty_lua_t  *vm;

    if (ngx_conf_full_name(cf->cycle, &lcf->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    p = lcf->file.data + lcf->file.len;
    while (p > lcf->file.data && p[-1] != '/') {
        p--;
    }

    lcf->dir.data = lcf->file.data;
    lcf->dir.len = p - lcf->file.data;

    if (ngx_array_init(&lcf->modules, cf->pool, 4,
                       sizeof(ngx_http_loyalty_lua_source_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* messages are cut to fit, the last byte kept for the end */
    err[sizeof(err) - 1] = '\0';

    vm = ngx_http_loyalty_lua_new(lcf, cf, cf->log, err, sizeof(err) - 1);

    if (vm == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_lua_file \"%V\": %s", &lcf->file, err);
        return NGX_CONF_ERROR;
    }

    ngx_http_loyalty_lua_free(vm);

    lcf->zone = ngx_shared_memory_add(cf, &ngx_http_loyalty_lua_zone_name,
                                      8 * ngx_pagesize,
                                      &ngx_http_loyalty_module);
    if (lcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lcf->zone->init = ngx_http_loyalty_lua_stats_init;
    lcf->zone->data = lcf;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_loyalty_lua_stats_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_loyalty_lua_conf_t  *lcf, *olcf;

    lcf = zone->data;

    /* the counts go on across reloads */
    if (data) {
        olcf = data;
        lcf->stats = olcf->stats;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    lcf->stats = ngx_slab_calloc(shpool,
                                 sizeof(ngx_http_loyalty_lua_stats_t));

    return lcf->stats ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_loyalty_lua_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_lua_conf_t *lcf)
{
    char                     err[NGX_MAX_ERROR_STR];
    ngx_uint_t               i;
    ngx_http_loyalty_lua_t  *vm;

    ngx_http_loyalty_lua_vms[0] = NULL;
    ngx_http_loyalty_lua_vms[1] = NULL;
    ngx_http_loyalty_lua_event_hook_v.handler = NULL;

    if (lcf == NULL) {
        return NGX_OK;
    }

    err[sizeof(err) - 1] = '\0';

    for (i = 0; i < 2; i++) {
        vm = ngx_http_loyalty_lua_new(lcf, NULL, cycle->log, err,
                                      sizeof(err) - 1);
        ngx_http_loyalty_lua_vms[i] = vm;

        if (vm == NULL) {
            /* it loaded at configuration: requests go on without hooks */
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "loyalty_lua_file \"%V\": %s; this worker runs "
                          "without hooks", &lcf->file, err);
        }
    }

    vm = ngx_http_loyalty_lua_vms[1];

    if (vm && vm->hooks[NGX_HTTP_LOYALTY_HOOK_EVENT] != LUA_NOREF) {
        ngx_http_loyalty_lua_event_hook_v.handler = ngx_http_loyalty_lua_event;
        ngx_http_loyalty_lua_event_hook_v.data = vm;
    }

    return NGX_OK;
}


void
ngx_http_loyalty_lua_exit_worker(void)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (ngx_http_loyalty_lua_vms[i]) {
            ngx_http_loyalty_lua_free(ngx_http_loyalty_lua_vms[i]);
            ngx_http_loyalty_lua_vms[i] = NULL;
        }
    }

    ngx_http_loyalty_lua_event_hook_v.handler = NULL;
}


/* for the admin API: the script, and each hook's calls and failures */
json_t *
ngx_http_loyalty_lua_report(ngx_http_loyalty_lua_conf_t *lcf)
{
    json_t                           *doc, *hooks, *h;
    ngx_uint_t                        i;
    ngx_http_loyalty_lua_t           *vm;
    ngx_http_loyalty_lua_counters_t  *c;

    doc = json_object();
    hooks = json_object();

    if (doc == NULL || hooks == NULL) {
        json_decref(doc);
        json_decref(hooks);
        return NULL;
    }

    json_object_set_new(doc, "hooks", hooks);

    if (lcf == NULL) {
        json_object_set_new(doc, "file", json_null());
        return doc;
    }

    json_object_set_new(doc, "file",
                        json_stringn((char *) lcf->file.data, lcf->file.len));
    json_object_set_new(doc, "budget", json_integer(lcf->budget));
    json_object_set_new(doc, "memory", json_integer(lcf->memory));

    vm = ngx_http_loyalty_lua_vms[0];

    for (i = 0; i < NGX_HTTP_LOYALTY_HOOKS; i++) {
        if (vm == NULL
            || vm->hooks[i] == LUA_NOREF
            || lcf->stats == NULL)
        {
            continue;
        }

        c = &lcf->stats->hooks[i];
        h = json_object();
        if (h == NULL) {
            json_decref(doc);
            return NULL;
        }

        json_object_set_new(h, "calls", json_integer(c->calls));
        json_object_set_new(h, "errors", json_integer(c->errors));
        json_object_set_new(h, "budget", json_integer(c->budget));
        json_object_set_new(h, "memory", json_integer(c->memory));
        json_object_set_new(hooks, ngx_http_loyalty_lua_hook_names[i], h);
    }

    return doc;
}


/* the request path's VM, if it has the hook */
ngx_http_loyalty_lua_t *
ngx_http_loyalty_lua_get(ngx_uint_t hook)
{
    ngx_http_loyalty_lua_t  *vm;

    vm = ngx_http_loyalty_lua_vms[0];

    if (vm == NULL || vm->hooks[hook] == LUA_NOREF) {
        return NULL;
    }

    return vm;
}


const loyalty_event_hook_t *
ngx_http_loyalty_lua_event_hook(void)
{
    return ngx_http_loyalty_lua_event_hook_v.handler
           ? &ngx_http_loyalty_lua_event_hook_v : NULL;
}


static ngx_http_loyalty_lua_t *
ngx_http_loyalty_lua_new(ngx_http_loyalty_lua_conf_t *lcf, ngx_conf_t *cf,
    ngx_log_t *log, char *err, size_t errlen)
{
    int                      rc;
    ngx_str_t                source;
    lua_State               *L;
    ngx_uint_t               i;
    ngx_http_loyalty_lua_t  *vm;

    vm = ngx_calloc(sizeof(ngx_http_loyalty_lua_t), log);
    if (vm == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NULL;
    }

    vm->conf = lcf;
    vm->cf = cf;
    vm->log = log;
    vm->limit = lcf->memory;

    for (i = 0; i < NGX_HTTP_LOYALTY_HOOKS; i++) {
        vm->hooks[i] = LUA_NOREF;
    }

    L = luaL_newstate();
    if (L == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "cannot create a Lua VM",
                    errlen);
        ngx_free(vm);
        return NULL;
    }

    vm->L = L;

    /*
     * LuaJIT's own allocator, counted: it suits the VM's many small
     * blocks better than malloc().  What the state took to start with is
     * the GC's count so far.
     */
    vm->alloc = lua_getallocf(L, &vm->alloc_ud);
    vm->used = (size_t) lua_gc(L, LUA_GCCOUNT, 0) * 1024
               + (size_t) lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, ngx_http_loyalty_lua_alloc, vm);

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, ngx_http_loyalty_lua_sandbox, 1);

    if (lua_pcall(L, 0, 0, 0) != 0) {
        ngx_snprintf((u_char *) err, errlen, "%s%Z",
                     lua_tostring(L, -1));
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    if (cf) {
        if (ngx_http_loyalty_lua_read(vm, (char *) lcf->file.data, &source,
                                      err, errlen)
            != 0)
        {
            ngx_http_loyalty_lua_free(vm);
            return NULL;
        }

        lcf->source.data = ngx_pstrdup(cf->pool, &source);
        if (lcf->source.data == NULL) {
            ngx_free(source.data);
            ngx_http_loyalty_lua_free(vm);
            return NULL;
        }

        lcf->source.len = source.len;
        ngx_free(source.data);
    }

    lua_pushfstring(L, "@%s", lcf->file.data);

    rc = ngx_http_loyalty_lua_chunk(L, vm, (char *) lcf->source.data,
                                    lcf->source.len, lua_tostring(L, -1), 0);
    lua_remove(L, -2);

    if (rc != 0 || ngx_http_loyalty_lua_run(vm, 0, 1) != 0) {
        ngx_snprintf((u_char *) err, errlen, "%s%Z",
                     lua_isstring(L, -1) ? lua_tostring(L, -1)
                                         : "the script raised an error "
                                           "that is not a string");
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    if (ngx_http_loyalty_lua_hooks(vm, err, errlen) != NGX_OK) {
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    /* configuration is over for this VM: later requires read the disk */
    vm->cf = NULL;

    return vm;
}


static void
ngx_http_loyalty_lua_free(ngx_http_loyalty_lua_t *vm)
{
    if (vm->L) {
        lua_close(vm->L);
    }

    ngx_free(vm);
}


/* the table the script returned, at the top of the stack */
static ngx_int_t
ngx_http_loyalty_lua_hooks(ngx_http_loyalty_lua_t *vm, char *err,
    size_t errlen)
{
    lua_State   *L;
    ngx_uint_t   i;

    L = vm->L;

    if (!lua_istable(L, -1)) {
        ngx_snprintf((u_char *) err, errlen, "the script must return a "
                     "table of hooks, not %s%Z", luaL_typename(L, -1));
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_LOYALTY_HOOKS; i++) {
        lua_getfield(L, -1, ngx_http_loyalty_lua_hook_names[i]);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }

        if (!lua_isfunction(L, -1)) {
            ngx_snprintf((u_char *) err, errlen, "the hook \"%s\" must be a "
                         "function, not %s%Z",
                         ngx_http_loyalty_lua_hook_names[i],
                         luaL_typename(L, -1));
            return NGX_ERROR;
        }

        vm->hooks[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    lua_pop(L, 1);

    return NGX_OK;
}


/*
 * The allocator keeps the VM under its cap; at the cap an allocation
 * fails, and Lua raises "not enough memory" in the hook that asked.
 */
static void *
ngx_http_loyalty_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void                    *p;
    ngx_http_loyalty_lua_t  *vm = ud;

    if (nsize > osize && vm->used + (nsize - osize) > vm->limit) {
        vm->failed = NGX_HTTP_LOYALTY_LUA_MEMORY;
        return NULL;
    }

    p = vm->alloc(vm->alloc_ud, ptr, osize, nsize);

    if (p != NULL || nsize == 0) {
        vm->used = vm->used - osize + nsize;
    }

    return p;
}


/*
 * The count hook fires when a call has spent its budget.  From then on
 * it fires at every instruction, so a script cannot pcall its way on.
 */
static void
ngx_http_loyalty_lua_budget(lua_State *L, lua_Debug *ar)
{
    void                    *ud;
    ngx_http_loyalty_lua_t  *vm;

    (void) lua_getallocf(L, &ud);
    vm = ud;

    vm->failed = NGX_HTTP_LOYALTY_LUA_BUDGET;

    lua_sethook(L, ngx_http_loyalty_lua_budget, LUA_MASKCOUNT, 1);

    (void) lua_getinfo(L, "Sl", ar);

    lua_pushfstring(L, "%s:%d: the budget of %d instructions is spent",
                    ar->short_src, ar->currentline,
                    (int) vm->conf->budget);
    lua_error(L);
}


/* a protected call within the budget: 0, or an error message on the stack */
static int
ngx_http_loyalty_lua_run(ngx_http_loyalty_lua_t *vm, int nargs,
    int nresults)
{
    int  rc;

    vm->failed = 0;

    lua_sethook(vm->L, ngx_http_loyalty_lua_budget, LUA_MASKCOUNT,
                (int) vm->conf->budget);

    rc = lua_pcall(vm->L, nargs, nresults, 0);

    if (rc != 0 && vm->failed == NGX_HTTP_LOYALTY_LUA_MEMORY) {
        /* what the failed call left behind is garbage by now */
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }

    return rc;
}


/*
 * Runs f(ud) protected and within the budget: f builds a hook's context,
 * calls the hook and reads its answer, so that running out of memory
 * anywhere in it is an error like any other.  A failure is logged, once
 * per place in the script, and counted.
 */
ngx_int_t
ngx_http_loyalty_lua_protect(ngx_http_loyalty_lua_t *vm, ngx_uint_t hook,
    lua_CFunction f, void *ud, ngx_log_t *log)
{
    int     rc;
    size_t  room;

    if (vm->conf->stats) {
        (void) ngx_atomic_fetch_add(&vm->conf->stats->hooks[hook].calls, 1);
    }

    /* the error paths must not be the ones to find memory short */
    room = ngx_max(vm->limit / 8, 65536);

    if (vm->used + room > vm->limit) {
        lua_gc(vm->L, LUA_GCCOLLECT, 0);

        if (vm->used + room > vm->limit) {
            vm->failed = NGX_HTTP_LOYALTY_LUA_MEMORY;
            ngx_http_loyalty_lua_fail(vm, hook, log,
                                      "the script keeps its VM's memory "
                                      "nearly full: not called");
            return NGX_ERROR;
        }
    }

    vm->failed = 0;

    lua_sethook(vm->L, ngx_http_loyalty_lua_budget, LUA_MASKCOUNT,
                (int) vm->conf->budget);

    rc = lua_cpcall(vm->L, f, ud);

    /* the snapshot is the caller's: no look-ups into it after the call */
    vm->txn = NULL;

    if (rc == 0) {
        lua_settop(vm->L, 0);
        return NGX_OK;
    }

    if (vm->failed == NGX_HTTP_LOYALTY_LUA_MEMORY) {
        /* what the failed call left behind is garbage by now */
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }

    ngx_http_loyalty_lua_fail(vm, hook, log, NULL);

    return NGX_ERROR;
}


/*
 * A failed call: msg, or the message at the top of the stack, counted,
 * logged once per place in the script; the stack is cleared.
 */
static void
ngx_http_loyalty_lua_fail(ngx_http_loyalty_lua_t *vm, ngx_uint_t hook,
    ngx_log_t *log, const char *msg)
{
    u_char                           *p, *end, *colon;
    size_t                            len;
    uint32_t                          site;
    ngx_uint_t                        i;
    ngx_http_loyalty_lua_counters_t  *c;

    if (msg) {
        len = ngx_strlen(msg);

    } else if (lua_type(vm->L, -1) == LUA_TSTRING) {
        /* a string already: reading it allocates nothing */
        msg = lua_tolstring(vm->L, -1, &len);

    } else {
        msg = "an error that is not a string";
        len = ngx_strlen(msg);
    }

    if (vm->conf->stats) {
        c = &vm->conf->stats->hooks[hook];

        (void) ngx_atomic_fetch_add(&c->errors, 1);

        if (vm->failed == NGX_HTTP_LOYALTY_LUA_BUDGET) {
            (void) ngx_atomic_fetch_add(&c->budget, 1);

        } else if (vm->failed == NGX_HTTP_LOYALTY_LUA_MEMORY) {
            (void) ngx_atomic_fetch_add(&c->memory, 1);
        }
    }

    /* the place is "file:line:", or the whole message if it has none */
    p = (u_char *) msg;
    end = p + len;
    colon = ngx_strlchr(p, end, ':');
    if (colon) {
        colon = ngx_strlchr(colon + 1, end, ':');
    }

    site = ngx_crc32_short(p, colon ? (size_t) (colon - p) : len);
    site ^= (uint32_t) hook;

    for (i = 0; i < vm->nlogged; i++) {
        if (vm->logged[i] == site) {
            lua_settop(vm->L, 0);
            return;
        }
    }

    if (vm->nlogged < NGX_HTTP_LOYALTY_LUA_LOGGED) {
        vm->logged[vm->nlogged++] = site;
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "loyalty_lua_file \"%V\": the %s hook failed: %*s; it is "
                  "skipped (logged once per place in the script)",
                  &vm->conf->file, ngx_http_loyalty_lua_hook_names[hook],
                  len, msg);

    lua_settop(vm->L, 0);
}


/* the store that loyalty.store reads during a call */
void
ngx_http_loyalty_lua_store(ngx_http_loyalty_lua_t *vm, loyalty_store_t *st,
    MDB_txn *txn)
{
    vm->st = st;
    vm->txn = txn;
}


static int
ngx_http_loyalty_lua_event(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    ngx_http_loyalty_lua_t  *vm = data;

    ngx_http_loyalty_lua_store(vm, st, txn);

    return ngx_http_loyalty_lua_event_call(vm, in, out);
}


/* the sandbox */

static const char  *ngx_http_loyalty_lua_safe[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "rawequal", "rawget",
    "rawset", "setmetatable", "getmetatable", NULL
};

static const char  *ngx_http_loyalty_lua_libs[] = {
    "string", "table", "math", "bit", NULL
};


/*
 * Builds the environment of every chunk the VM loads: safe functions,
 * copies of the safe libraries, os.time, os.date and os.clock, and our
 * require and loadstring.  Runs protected, as it allocates.
 */
static int
ngx_http_loyalty_lua_sandbox(lua_State *L)
{
    ngx_uint_t               i;
    ngx_http_loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    luaL_openlibs(L);

    /* scripts reach the string library through every string's metatable */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_newtable(L);

    for (i = 0; ngx_http_loyalty_lua_safe[i]; i++) {
        lua_getglobal(L, ngx_http_loyalty_lua_safe[i]);
        lua_setfield(L, -2, ngx_http_loyalty_lua_safe[i]);
    }

    for (i = 0; ngx_http_loyalty_lua_libs[i]; i++) {
        lua_newtable(L);
        lua_getglobal(L, ngx_http_loyalty_lua_libs[i]);
        lua_pushnil(L);

        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }

        lua_pop(L, 1);
        lua_setfield(L, -2, ngx_http_loyalty_lua_libs[i]);
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
    lua_pushcclosure(L, ngx_http_loyalty_lua_require, 1);
    lua_setfield(L, -2, "require");

    lua_pushcfunction(L, ngx_http_loyalty_lua_xpcall);
    lua_setfield(L, -2, "xpcall");

    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, ngx_http_loyalty_lua_loadstring, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "loadstring");
    lua_setfield(L, -2, "load");

    vm->env = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_newtable(L);
    vm->loaded = luaL_ref(L, LUA_REGISTRYINDEX);

    ngx_http_loyalty_lua_keys(L, vm);

    return 0;
}


/*
 * Loads a chunk of text into the sandbox: bytecode is refused, and the
 * operator's chunks are kept out of the JIT (see the top of the file).
 * 0 with the function on the stack, or an error message.
 */
static int
ngx_http_loyalty_lua_chunk(lua_State *L, ngx_http_loyalty_lua_t *vm,
    const char *source, size_t len, const char *chunkname, ngx_uint_t jit)
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

    if (!jit) {
        luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC|LUAJIT_MODE_OFF);
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
ngx_http_loyalty_lua_xpcall(lua_State *L)
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
ngx_http_loyalty_lua_loadstring(lua_State *L)
{
    size_t                   len;
    const char              *s, *name;
    ngx_http_loyalty_lua_t  *vm;

    vm = lua_touserdata(L, lua_upvalueindex(1));

    s = luaL_checklstring(L, 1, &len);
    name = luaL_optstring(L, 2, "=(load)");

    if (ngx_http_loyalty_lua_chunk(L, vm, s, len, name, 0) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }

    return 1;
}


/*
 * require "loyalty.NAME": the project's library, or loyalty.store; any
 * other NAME is NAME.lua (dots for slashes) in the script's directory.
 */
static int
ngx_http_loyalty_lua_require(lua_State *L)
{
    int                             rc;
    char                            err[NGX_MAX_ERROR_STR];
    u_char                         *p, *path;
    size_t                          len, i;
    ngx_uint_t                      fresh;
    ngx_str_t                       source;
    const char                     *name;
    ngx_http_loyalty_lua_t         *vm;
    ngx_http_loyalty_lua_source_t  *mod;

    vm = lua_touserdata(L, lua_upvalueindex(1));
    name = luaL_checklstring(L, 1, &len);

    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->loaded);
    lua_getfield(L, 2, name);

    if (!lua_isnil(L, -1)) {
        return 1;
    }

    lua_pop(L, 1);

    if (len == 0 || len > NGX_HTTP_LOYALTY_LUA_NAME_MAX
        || name[0] == '.' || name[len - 1] == '.'
        || ngx_strstr(name, "..") != NULL)
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

    if (ngx_strcmp(name, "loyalty.store") == 0) {
        ngx_http_loyalty_lua_store_lib(L, vm);
        goto loaded;
    }

    if (ngx_strncmp(name, "loyalty.", 8) == 0) {
        for (i = 0; ngx_http_loyalty_lua_lib[i].name; i++) {
            if (ngx_strcmp(ngx_http_loyalty_lua_lib[i].name, name) == 0) {
                break;
            }
        }

        if (ngx_http_loyalty_lua_lib[i].name == NULL) {
            return luaL_error(L, "module \"%s\" not found in the loyalty "
                              "library", name);
        }

        lua_pushfstring(L, "=%s", name);
        rc = ngx_http_loyalty_lua_chunk(L, vm,
                                        ngx_http_loyalty_lua_lib[i].source,
                                        ngx_http_loyalty_lua_lib[i].len,
                                        lua_tostring(L, -1), 1);
        if (rc != 0) {
            return lua_error(L);
        }

        lua_remove(L, -2);
        goto run;
    }

    mod = vm->conf->modules.elts;
    fresh = 0;

    for (i = 0; i < vm->conf->modules.nelts; i++) {
        if (mod[i].name.len == len
            && ngx_strncmp(mod[i].name.data, name, len) == 0)
        {
            break;
        }
    }

    if (i < vm->conf->modules.nelts) {
        path = mod[i].path.data;
        source = mod[i].source;

    } else {
        path = lua_newuserdata(L, vm->conf->dir.len + len
                                  + sizeof(".lua"));
        p = ngx_cpymem(path, vm->conf->dir.data, vm->conf->dir.len);

        for (i = 0; i < len; i++) {
            *p++ = (name[i] == '.') ? '/' : name[i];
        }

        ngx_memcpy(p, ".lua", sizeof(".lua"));

        err[sizeof(err) - 1] = '\0';

        if (ngx_http_loyalty_lua_read(vm, (char *) path, &source, err,
                                      sizeof(err) - 1)
            != 0)
        {
            return luaL_error(L, "module \"%s\": %s", name, err);
        }

        fresh = 1;

        if (vm->cf && ngx_http_loyalty_lua_keep(vm, name, len, path, &source)
                      != NGX_OK)
        {
            ngx_free(source.data);
            return luaL_error(L, "out of memory");
        }
    }

    lua_pushfstring(L, "@%s", path);
    rc = ngx_http_loyalty_lua_chunk(L, vm, (char *) source.data, source.len,
                                    lua_tostring(L, -1), 0);

    if (fresh) {
        ngx_free(source.data);
    }

    if (rc != 0) {
        return lua_error(L);
    }

    lua_remove(L, -2);

run:

    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }

loaded:

    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);

    return 1;
}


/* keeps a module read at configuration for the workers */
static ngx_int_t
ngx_http_loyalty_lua_keep(ngx_http_loyalty_lua_t *vm, const char *name,
    size_t len, u_char *path, ngx_str_t *source)
{
    ngx_str_t                       s;
    ngx_http_loyalty_lua_source_t  *mod;

    mod = ngx_array_push(&vm->conf->modules);
    if (mod == NULL) {
        return NGX_ERROR;
    }

    s.len = len;
    s.data = (u_char *) name;

    mod->name.len = len;
    mod->name.data = ngx_pstrdup(vm->cf->pool, &s);

    s.len = ngx_strlen(path) + 1;
    s.data = path;

    mod->path.len = s.len - 1;
    mod->path.data = ngx_pstrdup(vm->cf->pool, &s);

    mod->source.len = source->len;
    mod->source.data = ngx_pstrdup(vm->cf->pool, source);

    if (mod->name.data == NULL || mod->path.data == NULL
        || mod->source.data == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* reads a whole file into memory from ngx_alloc(): 0, or -1 with err */
static int
ngx_http_loyalty_lua_read(ngx_http_loyalty_lua_t *vm, const char *path,
    ngx_str_t *source, char *err, size_t errlen)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_err_t        e;
    ngx_file_info_t  fi;

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        e = ngx_errno;
        ngx_snprintf((u_char *) err, errlen, "cannot open \"%s\": %s%Z",
                     path, strerror(e));
        return -1;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
        ngx_snprintf((u_char *) err, errlen, "\"%s\" is not a file%Z", path);
        ngx_close_file(fd);
        return -1;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_LOYALTY_LUA_SOURCE_MAX) {
        ngx_snprintf((u_char *) err, errlen, "\"%s\" is larger than %d "
                     "bytes%Z", path, NGX_HTTP_LOYALTY_LUA_SOURCE_MAX);
        ngx_close_file(fd);
        return -1;
    }

    source->len = (size_t) ngx_file_size(&fi);
    source->data = ngx_alloc(source->len + 1, vm->log);

    if (source->data == NULL) {
        ngx_close_file(fd);
        ngx_snprintf((u_char *) err, errlen, "out of memory%Z");
        return -1;
    }

    n = ngx_read_fd(fd, source->data, source->len);
    e = ngx_errno;
    ngx_close_file(fd);

    if (n != (ssize_t) source->len) {
        ngx_free(source->data);
        ngx_snprintf((u_char *) err, errlen, "cannot read \"%s\": %s%Z",
                     path, n < 0 ? strerror(e) : "it changed while read");
        return -1;
    }

    return 0;
}
