/*
 * nginx-loyalty: the module definition, its directives and configuration.
 *
 * Reading order: one request, from configuration to response.
 *
 *   1. Directives: the table below, read as the list of what an operator
 *      can say; conf create/merge below it; the directives that do more
 *      than set a value in ngx_http_loyalty_directives.c; the checks,
 *      each naming its directive's file and line, in
 *      ngx_http_loyalty_conf_check.c.  The store is opened per worker in
 *      ngx_http_loyalty_store.c.
 *   2. Variables: ngx_http_loyalty_variables.c; each is computed when
 *      first read and they share one identification.
 *   3. Identity: ngx_http_loyalty_identity.c verifies the member cookie
 *      and reads the member in place (cached by ngx_http_loyalty_cache.c);
 *      the funnel (lifecycle, segment) is ngx_http_loyalty_funnel.c.
 *   4. Attribution: ngx_http_loyalty_ref.c works out a click and the
 *      attribution (codes through ngx_http_loyalty_code_cache.c, counts
 *      in ngx_http_loyalty_clicks.c); short links are
 *      ngx_http_loyalty_share.c.
 *   5. Prices: ngx_http_loyalty_price.c, the price API and
 *      $loyalty_price, with the privilege guard.
 *   6. The header filter: ngx_http_loyalty_ref_cookie.c sends the
 *      attribution cookie on the click's own response.
 *   7. Hooks: ngx_http_loyalty_lua.c runs the operator's script in the
 *      sandbox, ngx_http_loyalty_lua_hooks.c asks its price, click and
 *      event hooks.
 *
 * Writes never happen on the request path: the admin API
 * (ngx_http_loyalty_admin.c), the webhooks (ngx_http_loyalty_webhook*.c)
 * and the cadence sweep (ngx_http_loyalty_sweep.c) write from the thread
 * pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"
#include "ngx_http_loyalty_conf_check.h"


static ngx_int_t ngx_http_loyalty_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_loyalty_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf);
static void ngx_http_loyalty_bots_cleanup(void *data);
static void *ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf);
static void ngx_http_loyalty_conf_unset(void *conf, ngx_uint_t level);
static char *ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_loyalty_merge_admin(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *prev, ngx_http_loyalty_loc_conf_t *conf);
static char *ngx_http_loyalty_merge_ref(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *prev, ngx_http_loyalty_loc_conf_t *conf,
    ngx_http_loyalty_main_conf_t *lmcf);
static ngx_int_t ngx_http_loyalty_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_loyalty_init_worker(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_loyalty_init_worker_parts(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_loyalty_store_writer(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, const char *directive,
    ngx_http_loyalty_where_t *where);
static void ngx_http_loyalty_exit_worker(ngx_cycle_t *cycle);


/* the project's bots list, ngx_module/bots.txt, made a string by config */
#include "ngx_http_loyalty_bots.h"

/* LOYALTY_VERSION, from debian/changelog, made by config */
#include "loyalty_version.h"


static ngx_conf_enum_t  ngx_http_loyalty_admin_open[] = {
    { ngx_string("off"), NGX_HTTP_LOYALTY_ADMIN_CLOSED },
    { ngx_string("loopback"), NGX_HTTP_LOYALTY_ADMIN_LOOPBACK },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_loyalty_ref_models[] = {
    { ngx_string("first"), NGX_HTTP_LOYALTY_MODEL_FIRST },
    { ngx_string("last"), NGX_HTTP_LOYALTY_MODEL_LAST },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_loyalty_commands[] = {

    { ngx_string("loyalty_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_where,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, store_path),
      &ngx_http_loyalty_store_where },

    { ngx_string("loyalty_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, keys_path),
      &ngx_http_loyalty_keys_post },

    { ngx_string("loyalty_member_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, member_cache),
      &ngx_http_loyalty_cache_range },

    { ngx_string("loyalty_code_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, code_cache),
      &ngx_http_loyalty_cache_range },

    { ngx_string("loyalty_admin_dashboard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_admin_dashboard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_member_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, member_cookie),
      &ngx_http_loyalty_member_cookie_post },

    { ngx_string("loyalty_currency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, currency),
      &ngx_http_loyalty_currency_post },

    { ngx_string("loyalty_price_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_price_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_price_sku"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, price_sku),
      NULL },

    { ngx_string("loyalty_ref_arg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, ref_arg),
      NULL },

    { ngx_string("loyalty_ref_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, ref_cookie),
      &ngx_http_loyalty_ref_cookie_post },

    { ngx_string("loyalty_ref_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, ref_window),
      &ngx_http_loyalty_ref_window_range },

    { ngx_string("loyalty_ref_model"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, ref_model),
      &ngx_http_loyalty_ref_models },

    { ngx_string("loyalty_share"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_share,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_share_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, share_fallback),
      &ngx_http_loyalty_fallback_post },

    { ngx_string("loyalty_share_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_share_hosts,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_click_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_loyalty_conf_set_where,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      &ngx_http_loyalty_click_zone_where },

    { ngx_string("loyalty_click_flush"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, click_flush),
      &ngx_http_loyalty_click_flush_range },

    { ngx_string("loyalty_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_admin_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_token),
      &ngx_http_loyalty_admin_token_post },

    { ngx_string("loyalty_admin_open"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_open),
      &ngx_http_loyalty_admin_open },

    { ngx_string("loyalty_admin_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_batch),
      &ngx_http_loyalty_admin_batch_range },

    { ngx_string("loyalty_webhook"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LOYALTY_WEBHOOK_PLATFORM,
      &ngx_http_loyalty_webhook_part },

    { ngx_string("loyalty_webhook_secret"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LOYALTY_WEBHOOK_SECRET,
      &ngx_http_loyalty_webhook_part },

    { ngx_string("loyalty_webhook_map"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LOYALTY_WEBHOOK_MAP,
      &ngx_http_loyalty_webhook_part },

    { ngx_string("loyalty_webhook_replay"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LOYALTY_WEBHOOK_REPLAY,
      &ngx_http_loyalty_webhook_part },

    { ngx_string("loyalty_timezone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, timezone),
      &ngx_http_loyalty_timezone_post },

    { ngx_string("loyalty_lua_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_where,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_file),
      &ngx_http_loyalty_lua_file_where },

    { ngx_string("loyalty_lua_budget"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_budget),
      &ngx_http_loyalty_lua_budget_range },

    { ngx_string("loyalty_lua_time"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_time),
      &ngx_http_loyalty_lua_time_range },

    { ngx_string("loyalty_lua_memory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_memory),
      &ngx_http_loyalty_lua_memory_range },

    { ngx_string("loyalty_cadence_sweep"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_where,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, cadence_sweep),
      &ngx_http_loyalty_sweep_where },

    { ngx_string("loyalty_bots"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_bots,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* a cluster of edges: ngx_http_loyalty_nats.c */
    { ngx_string("loyalty_nats"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_LOYALTY_NATS_URLS,
      &ngx_http_loyalty_nats_part },

    { ngx_string("loyalty_nats_creds"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_LOYALTY_NATS_CREDS,
      &ngx_http_loyalty_nats_part },

    { ngx_string("loyalty_nats_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_LOYALTY_NATS_TIMEOUT,
      &ngx_http_loyalty_nats_part },

    { ngx_string("loyalty_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_LOYALTY_NATS_STREAM,
      &ngx_http_loyalty_nats_part },

    { ngx_string("loyalty_edge"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_conf_set_part,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_LOYALTY_NATS_EDGE,
      &ngx_http_loyalty_nats_part },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_loyalty_module_ctx = {
    ngx_http_loyalty_preconfiguration,     /* preconfiguration */
    ngx_http_loyalty_ref_init,             /* postconfiguration */

    ngx_http_loyalty_create_main_conf,     /* create main configuration */
    ngx_http_loyalty_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_loyalty_create_loc_conf,      /* create location configuration */
    ngx_http_loyalty_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_loyalty_module = {
    NGX_MODULE_V1,
    &ngx_http_loyalty_module_ctx,          /* module context */
    ngx_http_loyalty_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_loyalty_init_module,          /* init module */
    ngx_http_loyalty_init_worker,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_loyalty_exit_worker,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_loyalty_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_loyalty_add_variables(cf);
}


/* at each start and reload, as nginx logs its own version */

static ngx_int_t
ngx_http_loyalty_init_module(ngx_cycle_t *cycle)
{
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "nginx-loyalty/" LOYALTY_VERSION);

    return ngx_http_loyalty_store_init_module(cycle);
}


/*
 * A workaround for the heap's layout, not for correctness.  With
 * keepalive, nginx frees each request's pool (request_pool_size, 4096
 * bytes by default) when the request ends, and the next request allocates
 * one again: glibc hands back the chunk just freed, an exact fit.  What a
 * worker makes here lives as long as it: the store's environment and read
 * transaction, the Lua VMs (a VM's structure is some 3 KB).  Left to
 * itself, malloc carves them out of a free 4096-byte chunk, and every
 * request's pool then comes from splitting a larger free chunk (about 270
 * more instructions a request in _int_malloc() and unlink_chunk() for the
 * store, 220 more with a price hook for the VMs, under callgrind).
 * Holding a block of exactly that size (1024 or 8192 bytes do not help)
 * while the parts start sends those allocations elsewhere; freed after,
 * the block is what request pools reuse.  Measured with the default
 * request_pool_size; with 8k, say, the hold neither helps nor hurts.
 */
static ngx_int_t
ngx_http_loyalty_init_worker(ngx_cycle_t *cycle)
{
    void       *hold;
    ngx_int_t   rc;

    hold = ngx_alloc(NGX_HTTP_LOYALTY_POOL_HOLD, cycle->log);

    rc = ngx_http_loyalty_init_worker_parts(cycle);

    /* free(NULL) is nothing */
    ngx_free(hold);

    return rc;
}


static ngx_int_t
ngx_http_loyalty_init_worker_parts(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (ngx_http_loyalty_store_init_worker(cycle) != NGX_OK
        || ngx_http_loyalty_metrics_init_worker(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    /* in the cycle's pool: a reload's list starts with none remembered */
    if (lmcf && lmcf->store && lmcf->keys) {
        lmcf->bot_verdicts = ngx_pcalloc(cycle->pool,
                                         NGX_HTTP_LOYALTY_BOT_VERDICTS
                                         * sizeof(uint64_t));
        if (lmcf->bot_verdicts == NULL) {
            return NGX_ERROR;
        }
    }

    if (lmcf
        && ngx_http_loyalty_lua_init_worker(cycle, lmcf->lua) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf
        && ngx_http_loyalty_nats_init_worker(cycle, lmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf
        && ngx_http_loyalty_sweep_init_worker(cycle, lmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf
        && ngx_http_loyalty_webhook_init_worker(cycle, lmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_loyalty_clicks_init_worker(cycle);
}


static void
ngx_http_loyalty_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    ngx_http_loyalty_lua_exit_worker();
    ngx_http_loyalty_metrics_exit_worker();

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);
    if (lmcf) {
        ngx_http_loyalty_webhook_exit_worker(lmcf);
    }

    /* the last clicks go to the store before it is closed */
    ngx_http_loyalty_clicks_exit_worker(cycle);
    ngx_http_loyalty_nats_exit_worker();
    ngx_http_loyalty_store_exit_worker(cycle);
}


static void *
ngx_http_loyalty_create_main_conf(ngx_conf_t *cf)
{
    char                           err[LOYALTY_ERRLEN];
    ngx_pool_cleanup_t            *cln;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    lmcf->bots = loyalty_bots_new();
    if (lmcf->bots == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_loyalty_bots_cleanup;
    cln->data = lmcf->bots;

    if (loyalty_bots_add_list(lmcf->bots, ngx_http_loyalty_bots_builtin,
                              sizeof(ngx_http_loyalty_bots_builtin) - 1,
                              err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the built-in bots list: %s", err);
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->store_path = { 0, NULL };
     *     lmcf->keys_path = { 0, NULL };
     *     lmcf->timezone = { 0, NULL };
     *     lmcf->keys = NULL;
     *     lmcf->store = NULL;
     *     lmcf->click_zone = NULL;
     */

    ngx_http_loyalty_conf_unset(lmcf, NGX_HTTP_MAIN_CONF_OFFSET);

    return lmcf;
}


static char *
ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    char                         *rv;
    ngx_conf_file_t               place, *saved;
    ngx_http_loyalty_lua_conf_t  *lcf;

    ngx_conf_init_uint_value(lmcf->member_cache, 32768);
    ngx_conf_init_uint_value(lmcf->code_cache, 16384);
    ngx_conf_init_msec_value(lmcf->click_flush, 10000);
    ngx_conf_init_value(lmcf->lua_budget, LOYALTY_LUA_BUDGET_DEFAULT);
    ngx_conf_init_msec_value(lmcf->lua_time, LOYALTY_LUA_MSEC);
    ngx_conf_init_size_value(lmcf->lua_memory, LOYALTY_LUA_MEMORY_DEFAULT);
    ngx_conf_init_msec_value(lmcf->cadence_sweep, 0);

    if (lmcf->lua_file.len) {
        lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_lua_conf_t));
        if (lcf == NULL) {
            return NGX_CONF_ERROR;
        }

        lcf->file = lmcf->lua_file;
        lcf->budget = (ngx_uint_t) lmcf->lua_budget;
        lcf->time = lmcf->lua_time;
        lcf->memory = lmcf->lua_memory;
        lcf->tz = lmcf->tz;

        /* the script's errors name the directive's line */
        saved = ngx_http_loyalty_where_enter(cf, &lmcf->lua_file_where,
                                             &place);
        rv = ngx_http_loyalty_lua_conf(cf, lcf);
        cf->conf_file = saved;

        if (rv != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        lmcf->lua = lcf;
    }

    if (ngx_http_loyalty_nats_init_conf(cf, lmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* the sweep writes touches and rewards, the admin API events */
    if ((lmcf->cadence_sweep
         && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_cadence_sweep",
                                          &lmcf->cadence_sweep_where)
            != NGX_OK)
        || (lmcf->admin
            && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_admin",
                                             &lmcf->admin_where)
               != NGX_OK)
        || (lmcf->webhook
            && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_webhook",
                                             &lmcf->webhook_where)
               != NGX_OK))
    {
        return NGX_CONF_ERROR;
    }

    if (lmcf->click_zone) {
        if (lmcf->store == NULL) {
            ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf,
                                         &lmcf->click_zone_where,
                                         "\"loyalty_click_zone\" requires "
                                         "\"loyalty_store\"");
            return NGX_CONF_ERROR;
        }

        /* the workers write the clicks into the store */
        lmcf->store->write = 1;
    }

    /* what the workers read and write is known: can their user? */
    if (lmcf->store) {
        saved = ngx_http_loyalty_where_enter(cf, &lmcf->store_where, &place);
        rv = ngx_http_loyalty_store_access(cf, lmcf->store);
        cf->conf_file = saved;

        return rv;
    }

    return NGX_CONF_OK;
}


/*
 * A directive whose workers write into the store from the thread pool:
 * checked once the http block is parsed, named where it was written.
 */
static ngx_int_t
ngx_http_loyalty_store_writer(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, const char *directive,
    ngx_http_loyalty_where_t *where)
{
    if (lmcf->store == NULL) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, where,
                                     "\"%s\" requires \"loyalty_store\"",
                                     directive);
        return NGX_ERROR;
    }

    lmcf->store->write = 1;

    return ngx_http_loyalty_write_conf(cf);
}


static void *
ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->member_cookie = { 0, NULL };
     *     conf->currency = { 0, NULL };
     *     conf->ref_arg = { 0, NULL };
     *     conf->ref_cookie = { 0, NULL };
     *     conf->share_fallback = { 0, NULL };
     *     conf->admin_token = { 0, NULL };
     */

    /* set by their own handlers, which refuse a duplicate; inherited */
    conf->price_api = NGX_CONF_UNSET;
    conf->share = NGX_CONF_UNSET;
    conf->share_hosts = NGX_CONF_UNSET_PTR;
    conf->admin_tokens = NGX_CONF_UNSET_PTR;

    ngx_http_loyalty_conf_unset(conf, NGX_HTTP_LOC_CONF_OFFSET);

    return conf;
}


/*
 * The values of a new configuration that stock slots set are unset, as
 * the slots (which refuse a duplicate) and the merge want them: the
 * directive table says which values they are and of what type.
 */
static void
ngx_http_loyalty_conf_unset(void *conf, ngx_uint_t level)
{
    u_char         *p;
    ngx_command_t  *cmd;
    char         *(*set)(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

    for (cmd = ngx_http_loyalty_commands; cmd->name.len; cmd++) {

        if (cmd->conf != level) {
            continue;
        }

        p = (u_char *) conf + cmd->offset;
        set = cmd->set;

        if (set == ngx_http_loyalty_conf_set_where) {
            set = ((ngx_http_loyalty_conf_where_t *) cmd->post)->set;
        }

        if (set == ngx_conf_set_num_slot) {
            *(ngx_int_t *) p = NGX_CONF_UNSET;

        } else if (set == ngx_conf_set_sec_slot) {
            *(time_t *) p = NGX_CONF_UNSET;

        } else if (set == ngx_conf_set_msec_slot) {
            *(ngx_msec_t *) p = NGX_CONF_UNSET_MSEC;

        } else if (set == ngx_conf_set_size_slot) {
            *(size_t *) p = NGX_CONF_UNSET_SIZE;

        } else if (set == ngx_http_loyalty_conf_set_enum_slot) {
            *(ngx_uint_t *) p = NGX_CONF_UNSET_UINT;

        } else if (set == ngx_http_set_complex_value_slot) {
            *(void **) p = NGX_CONF_UNSET_PTR;
        }
    }
}


static char *
ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_loyalty_loc_conf_t  *prev = parent;
    ngx_http_loyalty_loc_conf_t  *conf = child;

    ngx_http_loyalty_main_conf_t  *lmcf;

    ngx_conf_merge_str_value(conf->member_cookie, prev->member_cookie,
                             "loyalty_member");
    ngx_conf_merge_str_value(conf->currency, prev->currency, "CNY");
    ngx_conf_merge_ptr_value(conf->price_sku, prev->price_sku, NULL);
    ngx_conf_merge_value(conf->price_api, prev->price_api, 0);

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (conf->price_api_where.file == NULL) {
        conf->price_api_where = prev->price_api_where;
    }

    if (conf->price_api && lmcf->store == NULL) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf,
                                     &conf->price_api_where,
                                     "\"loyalty_price_api\" requires "
                                     "\"loyalty_store\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_loyalty_merge_admin(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_loyalty_webhook_merge(cf, conf, lmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_loyalty_merge_ref(cf, prev, conf, lmcf);
}


/*
 * The admin API is closed by default: a location with "loyalty_admin"
 * needs tokens, or the explicit, loudly logged loopback-only opt-out.
 * Said where "loyalty_admin" is, since merging happens at the end of
 * the http block.
 */
static char *
ngx_http_loyalty_merge_admin(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *prev, ngx_http_loyalty_loc_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->admin_tokens, prev->admin_tokens, NULL);
    ngx_conf_merge_uint_value(conf->admin_open, prev->admin_open,
                              NGX_HTTP_LOYALTY_ADMIN_CLOSED);
    ngx_conf_merge_size_value(conf->admin_batch, prev->admin_batch, 1000);
    ngx_conf_merge_str_value(conf->admin_dashboard, prev->admin_dashboard,
                             NGX_HTTP_LOYALTY_DASHBOARD);

    if (conf->admin_where.file == NULL) {
        return NGX_CONF_OK;
    }

    if (conf->admin_tokens && conf->admin_open) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &conf->admin_where,
                                     "\"loyalty_admin\" has both "
                                     "\"loyalty_admin_token\" and "
                                     "\"loyalty_admin_open loopback\": "
                                     "remove one");
        return NGX_CONF_ERROR;
    }

    if (conf->admin_tokens) {
        return NGX_CONF_OK;
    }

    if (conf->admin_open == NGX_HTTP_LOYALTY_ADMIN_CLOSED) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &conf->admin_where,
                                     "\"loyalty_admin\" needs "
                                     "\"loyalty_admin_token FILE;\" (lines "
                                     "of \"ID read|write TOKEN\"), or, for "
                                     "local development only, "
                                     "\"loyalty_admin_open loopback;\"");
        return NGX_CONF_ERROR;
    }

    ngx_http_loyalty_where_error(NGX_LOG_WARN, cf, &conf->admin_where,
                                 "\"loyalty_admin\" is OPEN: any loopback "
                                 "client may read and write without a token "
                                 "(\"loyalty_admin_open loopback\"); for "
                                 "local development only");

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_merge_ref(ngx_conf_t *cf, ngx_http_loyalty_loc_conf_t *prev,
    ngx_http_loyalty_loc_conf_t *conf, ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_conf_merge_str_value(conf->ref_arg, prev->ref_arg, "ref");
    ngx_conf_merge_str_value(conf->ref_cookie, prev->ref_cookie,
                             "loyalty_ref");
    ngx_conf_merge_sec_value(conf->ref_window, prev->ref_window,
                             30 * LOYALTY_DAY);
    ngx_conf_merge_uint_value(conf->ref_model, prev->ref_model,
                              NGX_HTTP_LOYALTY_MODEL_FIRST);
    ngx_conf_merge_value(conf->share, prev->share, 0);
    ngx_conf_merge_str_value(conf->share_fallback, prev->share_fallback, "/");
    ngx_conf_merge_ptr_value(conf->share_hosts, prev->share_hosts, NULL);

    if (conf->share_where.file == NULL) {
        conf->share_where = prev->share_where;
    }

    if (conf->share && (lmcf->store == NULL || lmcf->keys == NULL)) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &conf->share_where,
                                     "\"loyalty_share\" requires "
                                     "\"loyalty_store\" and "
                                     "\"loyalty_keys\"");
        return NGX_CONF_ERROR;
    }

    /* "off": no click by argument here; empty, kept for inheritance */
    if (conf->ref_arg.len == 3
        && ngx_strncmp(conf->ref_arg.data, "off", 3) == 0)
    {
        conf->ref_arg.len = 0;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_loyalty_bots_cleanup(void *data)
{
    loyalty_bots_free(data);
}


/*
 * A request's state kept in a pool's cleanup list, where it outlives an
 * internal redirect (which clears the modules' contexts) and is found
 * again by its handler: a new one, zeroed and marked; NULL: no memory.
 */
void *
ngx_http_loyalty_pool_state(ngx_pool_t *pool, ngx_pool_cleanup_pt handler,
    size_t size)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, size);
    if (cln == NULL) {
        return NULL;
    }

    ngx_memzero(cln->data, size);
    cln->handler = handler;

    return cln->data;
}


/* a worker's timer, which must not hold up a graceful shutdown */
void
ngx_http_loyalty_timer_init(ngx_event_t *ev, ngx_event_handler_pt handler,
    void *data, ngx_log_t *log)
{
    ev->handler = handler;
    ev->data = data;
    ev->log = log;
    ev->cancelable = 1;
}


/*
 * A shared zone's data, which goes on across reloads: the previous
 * cycle's (old, from the zone's old data), or what the slab pool keeps
 * (a zone that outlived its cycle, a binary upgrade); else size bytes
 * zeroed, kept by the slab pool, and *fresh is set.  NULL: no room.
 */
void *
ngx_http_loyalty_zone_data(ngx_shm_zone_t *zone, void *old, size_t size,
    ngx_uint_t *fresh)
{
    ngx_slab_pool_t  *shpool;

    *fresh = 0;

    if (old) {
        return old;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        return shpool->data;
    }

    shpool->data = ngx_slab_calloc(shpool, size);
    *fresh = (shpool->data != NULL);

    return shpool->data;
}
