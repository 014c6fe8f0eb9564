/*
 * nginx-loyalty: the operator's script in nginx, in the core's sandbox
 * (core/loyalty_lua.c).
 *
 * The script named by loyalty_lua_file is loaded once at configuration,
 * so that "nginx -t" and a reload refuse a script that does not load, and
 * again in every worker: one VM for the request path (price, click) and
 * one for the write path (event), which runs in the thread pool inside a
 * write transaction, so that LMDB's writer lock keeps it to one thread.
 * Workers load the script and modules that configuration read and
 * checked.  A hook's failures are counted in the "loyalty_lua" zone and
 * logged once per place in the script.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lua.h>
#include <lauxlib.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"


#define NGX_HTTP_LOYALTY_LUA_LOGGED      64


/* a module of the operator's directory, read at configuration */
typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     path;
    ngx_str_t                     source;
} ngx_http_loyalty_lua_source_t;


static ngx_http_loyalty_lua_t *ngx_http_loyalty_lua_new(
    ngx_http_loyalty_lua_conf_t *lcf, ngx_conf_t *cf, ngx_log_t *log,
    char *err, size_t errlen);
static void ngx_http_loyalty_lua_free(ngx_http_loyalty_lua_t *vm);
static ngx_int_t ngx_http_loyalty_lua_read_cadences(
    ngx_http_loyalty_lua_t *vm, char *err, size_t errlen);
static int ngx_http_loyalty_lua_source(loyalty_lua_t *lua, const char *name,
    const char *path, char **source, size_t *len, char *err,
    size_t errlen);
static ngx_int_t ngx_http_loyalty_lua_keep(ngx_http_loyalty_lua_t *vm,
    const char *name, const char *path, char *source, size_t len);
static void ngx_http_loyalty_lua_unknown(void *data, const char *msg);
static void ngx_http_loyalty_lua_fail(loyalty_lua_t *lua, const char *msg,
    size_t len);
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
    char                     err[NGX_MAX_ERROR_STR];
    ngx_http_loyalty_lua_t  *vm;

    if (ngx_conf_full_name(cf->cycle, &lcf->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&lcf->modules, cf->pool, 4,
                       sizeof(ngx_http_loyalty_lua_source_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    vm = ngx_http_loyalty_lua_new(lcf, cf, cf->log, err, sizeof(err));

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

    for (i = 0; i < 2; i++) {
        vm = ngx_http_loyalty_lua_new(lcf, NULL, cycle->log, err,
                                      sizeof(err));
        ngx_http_loyalty_lua_vms[i] = vm;

        if (vm == NULL) {
            /* it loaded at configuration: requests go on without hooks */
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "loyalty_lua_file \"%V\": %s; this worker runs "
                          "without hooks", &lcf->file, err);
        }
    }

    vm = ngx_http_loyalty_lua_vms[1];

    if (vm && vm->lua.hooks[LOYALTY_LUA_HOOK_EVENT] != LUA_NOREF) {
        ngx_http_loyalty_lua_event_hook_v.handler = ngx_http_loyalty_lua_event;
        ngx_http_loyalty_lua_event_hook_v.data = vm;
    }

    /* the events' cadences run in the write path's VM, as the event hook */
    ngx_http_loyalty_lua_event_hook_v.cadences = vm ? vm->cadences : NULL;

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
    ngx_http_loyalty_lua_event_hook_v.cadences = NULL;
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
    json_object_set_new(doc, "time", json_integer(lcf->time));
    json_object_set_new(doc, "memory", json_integer(lcf->memory));

    vm = ngx_http_loyalty_lua_vms[0];

    for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
        if (vm == NULL
            || vm->lua.hooks[i] == LUA_NOREF
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
        json_object_set_new(hooks, loyalty_lua_hook_names[i], h);
    }

    return doc;
}


/* the request path's VM, if it has the hook */
ngx_http_loyalty_lua_t *
ngx_http_loyalty_lua_get(ngx_uint_t hook)
{
    ngx_http_loyalty_lua_t  *vm;

    vm = ngx_http_loyalty_lua_vms[0];

    if (vm == NULL || vm->lua.hooks[hook] == LUA_NOREF) {
        return NULL;
    }

    return vm;
}


const loyalty_event_hook_t *
ngx_http_loyalty_lua_event_hook(void)
{
    return (ngx_http_loyalty_lua_event_hook_v.handler
            || ngx_http_loyalty_lua_event_hook_v.cadences)
           ? &ngx_http_loyalty_lua_event_hook_v : NULL;
}


loyalty_cadences_t *
ngx_http_loyalty_lua_cadences(void)
{
    return ngx_http_loyalty_lua_event_hook_v.cadences;
}


/*
 * A cadence's condition, in the write path's VM: counted and logged as
 * the event hook's calls are.
 */
static int
ngx_http_loyalty_lua_cadence_cond(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_cadence_ask_t *ask)
{
    ngx_http_loyalty_lua_t  *vm = data;

    if (vm->conf->stats) {
        (void) ngx_atomic_fetch_add(
                   &vm->conf->stats->hooks[LOYALTY_LUA_HOOK_EVENT].calls, 1);
    }

    vm->hook = LOYALTY_LUA_HOOK_EVENT;
    vm->call_log = vm->log;

    return loyalty_lua_cadence_cond(&vm->lua, st, txn, ask);
}


/*
 * The script file's text, in the configuration's pool, so that workers
 * run what the configuration checked
 */
ngx_int_t
ngx_http_loyalty_lua_read_source(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *source, char *err, size_t errlen)
{
    char       *text;
    size_t      len;
    ngx_str_t   s;

    if (loyalty_lua_read_file((char *) file->data, &text, &len, err, errlen)
        != 0)
    {
        return NGX_ERROR;
    }

    s.data = (u_char *) text;
    s.len = len;

    source->data = ngx_pstrdup(cf->pool, &s);
    source->len = len;
    ngx_free(text);

    if (source->data == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_http_loyalty_lua_t *
ngx_http_loyalty_lua_new(ngx_http_loyalty_lua_conf_t *lcf, ngx_conf_t *cf,
    ngx_log_t *log, char *err, size_t errlen)
{
    ngx_http_loyalty_lua_t  *vm;

    vm = ngx_calloc(sizeof(ngx_http_loyalty_lua_t), log);
    if (vm == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NULL;
    }

    vm->conf = lcf;
    vm->cf = cf;
    vm->log = log;

    vm->lua.file = (char *) lcf->file.data;
    vm->lua.budget = (unsigned) lcf->budget;
    vm->lua.msec = (unsigned) lcf->time;
    vm->lua.limit = lcf->memory;
    vm->lua.tz = lcf->tz;
    vm->lua.source = ngx_http_loyalty_lua_source;
    vm->lua.report = ngx_http_loyalty_lua_fail;
    vm->lua.data = vm;

    if (loyalty_lua_open(&vm->lua, err, errlen) != 0) {
        ngx_free(vm);
        return NULL;
    }

    if (cf
        && ngx_http_loyalty_lua_read_source(cf, &lcf->file, &lcf->source, err,
                                            errlen)
           != NGX_OK)
    {
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    if (loyalty_lua_script(&vm->lua, (char *) lcf->source.data,
                           lcf->source.len, err, errlen)
        != 0)
    {
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    if (ngx_http_loyalty_lua_read_cadences(vm, err, errlen) != NGX_OK) {
        ngx_http_loyalty_lua_free(vm);
        return NULL;
    }

    /* a misspelt hook is never called: nginx -t says so, once */
    if (cf) {
        (void) loyalty_lua_unknown_keys(&vm->lua,
                                        ngx_http_loyalty_lua_unknown, vm);
    }

    /* the hooks and cadences are taken: the table itself is not needed */
    lua_pop(vm->lua.L, 1);

    /* configuration is over for this VM: later requires read the disk */
    vm->cf = NULL;

    return vm;
}


/* the script's table at the top of the stack: its cadences, if any */
static ngx_int_t
ngx_http_loyalty_lua_read_cadences(ngx_http_loyalty_lua_t *vm, char *err,
    size_t errlen)
{
    loyalty_cadences_t  *cads;

    cads = ngx_alloc(sizeof(loyalty_cadences_t), vm->log);
    if (cads == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_ERROR;
    }

    if (loyalty_lua_cadences(&vm->lua, cads, err, errlen) != 0) {
        ngx_free(cads);
        return NGX_ERROR;
    }

    if (cads->n == 0) {
        ngx_free(cads);
        return NGX_OK;
    }

    cads->cond = ngx_http_loyalty_lua_cadence_cond;
    cads->data = vm;
    cads->tz = vm->lua.tz;
    vm->cadences = cads;

    return NGX_OK;
}


static void
ngx_http_loyalty_lua_free(ngx_http_loyalty_lua_t *vm)
{
    if (vm->cadences) {
        ngx_free(vm->cadences);
    }

    loyalty_lua_close(&vm->lua);

    ngx_free(vm);
}


/*
 * A module's source: the one configuration read, or else the disk's; at
 * configuration, what is read is kept for the workers.
 */
static int
ngx_http_loyalty_lua_source(loyalty_lua_t *lua, const char *name,
    const char *path, char **source, size_t *len, char *err, size_t errlen)
{
    ngx_uint_t                      i;
    ngx_http_loyalty_lua_t         *vm;
    ngx_http_loyalty_lua_source_t  *mod;

    vm = lua->data;
    mod = vm->conf->modules.elts;

    for (i = 0; i < vm->conf->modules.nelts; i++) {
        if (ngx_strcmp(mod[i].name.data, name) == 0) {
            *source = ngx_alloc(mod[i].source.len + 1, vm->log);
            if (*source == NULL) {
                ngx_cpystrn((u_char *) err, (u_char *) "out of memory",
                            errlen);
                return -1;
            }

            ngx_memcpy(*source, mod[i].source.data, mod[i].source.len);
            *len = mod[i].source.len;

            return 0;
        }
    }

    if (loyalty_lua_read_file(path, source, len, err, errlen) != 0) {
        return -1;
    }

    if (vm->cf
        && ngx_http_loyalty_lua_keep(vm, name, path, *source, *len) != NGX_OK)
    {
        ngx_free(*source);
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return -1;
    }

    return 0;
}


/* keeps a module read at configuration for the workers */
static ngx_int_t
ngx_http_loyalty_lua_keep(ngx_http_loyalty_lua_t *vm, const char *name,
    const char *path, char *source, size_t len)
{
    ngx_str_t                       s;
    ngx_http_loyalty_lua_source_t  *mod;

    mod = ngx_array_push(&vm->conf->modules);
    if (mod == NULL) {
        return NGX_ERROR;
    }

    /* the name and path NUL-terminated */
    s.len = ngx_strlen(name) + 1;
    s.data = (u_char *) name;

    mod->name.len = s.len - 1;
    mod->name.data = ngx_pstrdup(vm->cf->pool, &s);

    s.len = ngx_strlen(path) + 1;
    s.data = (u_char *) path;

    mod->path.len = s.len - 1;
    mod->path.data = ngx_pstrdup(vm->cf->pool, &s);

    s.len = len;
    s.data = (u_char *) source;

    mod->source.len = len;
    mod->source.data = ngx_pstrdup(vm->cf->pool, &s);

    if (mod->name.data == NULL || mod->path.data == NULL
        || mod->source.data == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Runs f(ud) in the core's protected call, within the budget: f builds a
 * hook's context, calls the hook and reads its answer.  A failure is
 * counted and logged, once per place in the script.
 */
ngx_int_t
ngx_http_loyalty_lua_protect(ngx_http_loyalty_lua_t *vm, ngx_uint_t hook,
    lua_CFunction f, void *ud, ngx_log_t *log)
{
    if (vm->conf->stats) {
        (void) ngx_atomic_fetch_add(&vm->conf->stats->hooks[hook].calls, 1);
    }

    vm->hook = hook;
    vm->call_log = log;

    return loyalty_lua_call(&vm->lua, f, ud) == 0 ? NGX_OK : NGX_ERROR;
}


/* a failed call, counted, and logged once per place in the script */
static void
ngx_http_loyalty_lua_fail(loyalty_lua_t *lua, const char *msg, size_t len)
{
    u_char                           *p, *end, *colon;
    uint32_t                          site;
    ngx_uint_t                        i;
    ngx_http_loyalty_lua_t           *vm;
    ngx_http_loyalty_lua_counters_t  *c;

    vm = lua->data;

    if (vm->conf->stats) {
        c = &vm->conf->stats->hooks[vm->hook];

        (void) ngx_atomic_fetch_add(&c->errors, 1);

        if (lua->failed == LOYALTY_LUA_BUDGET) {
            (void) ngx_atomic_fetch_add(&c->budget, 1);

        } else if (lua->failed == LOYALTY_LUA_MEMORY) {
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
    site ^= (uint32_t) vm->hook;

    for (i = 0; i < vm->nlogged; i++) {
        if (vm->logged[i] == site) {
            return;
        }
    }

    if (vm->nlogged < NGX_HTTP_LOYALTY_LUA_LOGGED) {
        vm->logged[vm->nlogged++] = site;
    }

    ngx_log_error(NGX_LOG_ERR, vm->call_log, 0,
                  "loyalty_lua_file \"%V\": the %s hook failed: %*s; it is "
                  "skipped (logged once per place in the script)",
                  &vm->conf->file, loyalty_lua_hook_names[vm->hook],
                  len, msg);
}


/* an unknown key of the script's table, warned at its directive */
static void
ngx_http_loyalty_lua_unknown(void *data, const char *msg)
{
    ngx_http_loyalty_lua_t  *vm = data;

    ngx_conf_log_error(NGX_LOG_WARN, vm->cf, 0, "loyalty_lua_file \"%V\": %s",
                       &vm->conf->file, msg);
}


/* the store that loyalty.store reads during a call */
void
ngx_http_loyalty_lua_store(ngx_http_loyalty_lua_t *vm, loyalty_store_t *st,
    MDB_txn *txn)
{
    loyalty_lua_store(&vm->lua, st, txn);
}


void
ngx_http_loyalty_lua_store_lazy(ngx_http_loyalty_lua_t *vm,
    loyalty_store_t *st, loyalty_lua_begin_pt begin, void *data)
{
    loyalty_lua_store_lazy(&vm->lua, st, begin, data);
}


static int
ngx_http_loyalty_lua_event(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    ngx_http_loyalty_lua_t  *vm = data;

    ngx_http_loyalty_lua_store(vm, st, txn);

    return ngx_http_loyalty_lua_event_call(vm, in, out);
}
