/*
 * nginx-loyalty: the module definition, its directives and configuration.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"


static ngx_int_t ngx_http_loyalty_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_loyalty_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_loyalty_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_loyalty_keys_cleanup(void *data);
static char *ngx_http_loyalty_price_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_share(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_admin_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_merge_admin(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *prev, ngx_http_loyalty_loc_conf_t *conf);
static void ngx_http_loyalty_admin_log(ngx_conf_t *cf, ngx_uint_t level,
    ngx_http_loyalty_loc_conf_t *conf, const char *text);
static char *ngx_http_loyalty_share_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_bots(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_loyalty_bots_cleanup(void *data);
static char *ngx_http_loyalty_merge_ref(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *prev, ngx_http_loyalty_loc_conf_t *conf,
    ngx_http_loyalty_main_conf_t *lmcf);
static ngx_int_t ngx_http_loyalty_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_loyalty_init_worker(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_loyalty_store_writer(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, const char *directive);
static void ngx_http_loyalty_exit_worker(ngx_cycle_t *cycle);


/* the project's bots list, ngx_module/bots.txt, made a string by config */
#include "ngx_http_loyalty_bots.h"

/* LOYALTY_VERSION, from debian/changelog, made by config */
#include "loyalty_version.h"


/* for loyalty_member_cache and loyalty_code_cache */
static ngx_conf_num_bounds_t  ngx_http_loyalty_member_cache_bounds = {
    ngx_conf_check_num_bounds, 0, 1048576
};


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
      ngx_http_loyalty_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_keys,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_member_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, member_cache),
      &ngx_http_loyalty_member_cache_bounds },

    { ngx_string("loyalty_code_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, code_cache),
      &ngx_http_loyalty_member_cache_bounds },

    { ngx_string("loyalty_member_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, member_cookie),
      NULL },

    { ngx_string("loyalty_currency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, currency),
      NULL },

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
      NULL },

    { ngx_string("loyalty_ref_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, ref_window),
      NULL },

    { ngx_string("loyalty_ref_model"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
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
      NULL },

    { ngx_string("loyalty_share_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_share_hosts,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_click_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_loyalty_click_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_click_flush"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, click_flush),
      NULL },

    { ngx_string("loyalty_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_admin_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_admin_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_admin_open"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_open),
      &ngx_http_loyalty_admin_open },

    { ngx_string("loyalty_admin_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_batch),
      NULL },

    { ngx_string("loyalty_webhook"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_webhook,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_webhook_secret"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_webhook_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_webhook_map"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_webhook_map_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_webhook_replay"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_webhook_replay,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_lua_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_file),
      NULL },

    { ngx_string("loyalty_lua_budget"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_budget),
      NULL },

    { ngx_string("loyalty_lua_time"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_time),
      NULL },

    { ngx_string("loyalty_lua_memory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, lua_memory),
      NULL },

    { ngx_string("loyalty_cadence_sweep"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, cadence_sweep),
      NULL },

    { ngx_string("loyalty_bots"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_bots,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* a cluster of edges: ngx_http_loyalty_nats.c */
    { ngx_string("loyalty_nats"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_nats,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_nats_creds"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_nats_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_nats_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_nats_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_nats_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_edge"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_nats_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

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


static ngx_int_t
ngx_http_loyalty_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (ngx_http_loyalty_store_init_worker(cycle) != NGX_OK) {
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
     *     lmcf->keys = NULL;
     *     lmcf->store = NULL;
     *     lmcf->click_zone = NULL;
     */

    lmcf->member_cache = NGX_CONF_UNSET_UINT;
    lmcf->code_cache = NGX_CONF_UNSET_UINT;
    lmcf->click_flush = NGX_CONF_UNSET_MSEC;
    lmcf->lua_budget = NGX_CONF_UNSET;
    lmcf->lua_time = NGX_CONF_UNSET_MSEC;
    lmcf->lua_memory = NGX_CONF_UNSET_SIZE;
    lmcf->cadence_sweep = NGX_CONF_UNSET_MSEC;

    return lmcf;
}


static char *
ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    ngx_http_loyalty_lua_conf_t  *lcf;

    ngx_conf_init_uint_value(lmcf->member_cache, 32768);
    ngx_conf_init_uint_value(lmcf->code_cache, 16384);
    ngx_conf_init_msec_value(lmcf->click_flush, 10000);
    ngx_conf_init_value(lmcf->lua_budget, 100000);
    ngx_conf_init_msec_value(lmcf->lua_time, LOYALTY_LUA_MSEC);
    ngx_conf_init_size_value(lmcf->lua_memory, 16 * 1024 * 1024);
    ngx_conf_init_msec_value(lmcf->cadence_sweep, 0);

    if (lmcf->click_flush == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_click_flush\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (lmcf->lua_budget < 1000 || lmcf->lua_budget > 100000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_lua_budget\" must be 1000 to "
                           "100000000 instructions");
        return NGX_CONF_ERROR;
    }

    if (lmcf->lua_time < 1 || lmcf->lua_time > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_lua_time\" must be 1ms to 60s");
        return NGX_CONF_ERROR;
    }

    if (lmcf->lua_memory < 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_lua_memory\" must be at least 1m");
        return NGX_CONF_ERROR;
    }

    if (lmcf->lua_file.len) {
        lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_lua_conf_t));
        if (lcf == NULL) {
            return NGX_CONF_ERROR;
        }

        lcf->file = lmcf->lua_file;
        lcf->budget = (ngx_uint_t) lmcf->lua_budget;
        lcf->time = lmcf->lua_time;
        lcf->memory = lmcf->lua_memory;

        if (ngx_http_loyalty_lua_conf(cf, lcf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        lmcf->lua = lcf;
    }

    if (ngx_http_loyalty_nats_init_conf(cf, lmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->cadence_sweep && lmcf->cadence_sweep < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_cadence_sweep\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    /* the sweep writes touches and rewards, the admin API events */
    if ((lmcf->cadence_sweep
         && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_cadence_sweep")
            != NGX_OK)
        || (lmcf->admin
            && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_admin")
               != NGX_OK)
        || (lmcf->webhook
            && ngx_http_loyalty_store_writer(cf, lmcf, "loyalty_webhook")
               != NGX_OK))
    {
        return NGX_CONF_ERROR;
    }

    if (lmcf->click_zone) {
        if (lmcf->store == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"loyalty_click_zone\" requires "
                               "\"loyalty_store\"");
            return NGX_CONF_ERROR;
        }

        /* the workers write the clicks into the store */
        lmcf->store->write = 1;
    }

    /* what the workers read and write is known: can their user? */
    if (lmcf->store) {
        return ngx_http_loyalty_store_access(cf, lmcf->store);
    }

    return NGX_CONF_OK;
}


/* a directive whose workers write into the store from the thread pool */
static ngx_int_t
ngx_http_loyalty_store_writer(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, const char *directive)
{
    if (lmcf->store == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"loyalty_store\"", directive);
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
     */

    conf->price_sku = NGX_CONF_UNSET_PTR;
    conf->price_api = NGX_CONF_UNSET;
    conf->ref_window = NGX_CONF_UNSET;
    conf->ref_model = NGX_CONF_UNSET_UINT;
    conf->share = NGX_CONF_UNSET;
    conf->share_hosts = NGX_CONF_UNSET_PTR;
    conf->admin_tokens = NGX_CONF_UNSET_PTR;
    conf->admin_open = NGX_CONF_UNSET_UINT;
    conf->admin_batch = NGX_CONF_UNSET_SIZE;

    return conf;
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

    if (conf->member_cookie.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_member_cookie\" must not be empty");
        return NGX_CONF_ERROR;
    }

    if (!loyalty_valid_currency((char *) conf->currency.data,
                                conf->currency.len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_currency\" must be an ISO 4217 code "
                           "such as CNY, not \"%V\"", &conf->currency);
        return NGX_CONF_ERROR;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (conf->price_api && lmcf->store == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_price_api\" requires \"loyalty_store\"");
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

    if (conf->admin_batch == 0 || conf->admin_batch > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_admin_batch\" must be 1 to 100000");
        return NGX_CONF_ERROR;
    }

    if (conf->admin_file.len == 0) {
        return NGX_CONF_OK;
    }

    if (conf->admin_tokens && conf->admin_open) {
        ngx_http_loyalty_admin_log(cf, NGX_LOG_EMERG, conf,
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
        ngx_http_loyalty_admin_log(cf, NGX_LOG_EMERG, conf,
                                   "\"loyalty_admin\" needs "
                                   "\"loyalty_admin_token FILE;\" (lines "
                                   "of \"ID read|write TOKEN\"), or, for "
                                   "local development only, "
                                   "\"loyalty_admin_open loopback;\"");
        return NGX_CONF_ERROR;
    }

    ngx_http_loyalty_admin_log(cf, NGX_LOG_WARN, conf,
                               "\"loyalty_admin\" is OPEN: any loopback "
                               "client may read and write without a token "
                               "(\"loyalty_admin_open loopback\"); for "
                               "local development only");

    return NGX_CONF_OK;
}


/* a message about a "loyalty_admin" directive, with its file and line */
static void
ngx_http_loyalty_admin_log(ngx_conf_t *cf, ngx_uint_t level,
    ngx_http_loyalty_loc_conf_t *conf, const char *text)
{
    ngx_conf_file_t   where, *saved;

    ngx_memzero(&where, sizeof(ngx_conf_file_t));
    where.file.name = conf->admin_file;
    where.line = conf->admin_line;

    saved = cf->conf_file;
    cf->conf_file = &where;

    ngx_conf_log_error(level, cf, 0, "%s", text);

    cf->conf_file = saved;
}


static char *
ngx_http_loyalty_merge_ref(ngx_conf_t *cf, ngx_http_loyalty_loc_conf_t *prev,
    ngx_http_loyalty_loc_conf_t *conf, ngx_http_loyalty_main_conf_t *lmcf)
{
    u_char      *p, *end;
    size_t       host_len;
    const char  *host;

    ngx_conf_merge_str_value(conf->ref_arg, prev->ref_arg, "ref");
    ngx_conf_merge_str_value(conf->ref_cookie, prev->ref_cookie,
                             "loyalty_ref");
    ngx_conf_merge_sec_value(conf->ref_window, prev->ref_window,
                             30 * 86400);
    ngx_conf_merge_uint_value(conf->ref_model, prev->ref_model,
                              NGX_HTTP_LOYALTY_MODEL_FIRST);
    ngx_conf_merge_value(conf->share, prev->share, 0);
    ngx_conf_merge_str_value(conf->share_fallback, prev->share_fallback, "/");
    ngx_conf_merge_ptr_value(conf->share_hosts, prev->share_hosts, NULL);
    if (conf->share && (lmcf->store == NULL || lmcf->keys == NULL)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_share\" requires \"loyalty_store\" "
                           "and \"loyalty_keys\"");
        return NGX_CONF_ERROR;
    }

    /* "off": no click by argument here; empty, kept for inheritance */
    if (conf->ref_arg.len == 3
        && ngx_strncmp(conf->ref_arg.data, "off", 3) == 0)
    {
        conf->ref_arg.len = 0;
    }

    end = conf->ref_cookie.data + conf->ref_cookie.len;

    for (p = conf->ref_cookie.data; p < end; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
              || *p == '.'))
        {
            break;
        }
    }

    if (conf->ref_cookie.len == 0 || p != end) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_ref_cookie\" must be a cookie name of "
                           "[A-Za-z0-9_.-], not \"%V\"", &conf->ref_cookie);
        return NGX_CONF_ERROR;
    }

    if (conf->ref_window <= 0 || conf->ref_window > 10 * 365 * 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_ref_window\" must be more than 0 and "
                           "at most 10 years");
        return NGX_CONF_ERROR;
    }

    if (loyalty_target_check((char *) conf->share_fallback.data,
                             conf->share_fallback.len, &host, &host_len)
        == LOYALTY_TARGET_INVALID)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_share_fallback\" must be a path such "
                           "as \"/\" or an http(s) URL, not \"%V\"",
                           &conf->share_fallback);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    ngx_str_t  *value;

    if (lmcf->store_path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->store_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &lmcf->store_path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_loyalty_store_conf(cf, lmcf);
}


static char *
ngx_http_loyalty_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    char                 err[LOYALTY_ERRLEN];
    u_char              *path;
    ngx_str_t           *value;
    ngx_file_info_t      fi;
    ngx_pool_cleanup_t  *cln;

    if (lmcf->keys_path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->keys_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &lmcf->keys_path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path = ngx_pnalloc(cf->pool, lmcf->keys_path.len + 1);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(path, lmcf->keys_path.data, lmcf->keys_path.len + 1);

    /* the master reads the keys as root: the file need not be shared */
    if (ngx_file_info(path, &fi) == 0 && (fi.st_mode & S_IROTH)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "keys file \"%s\" is readable by every user",
                           path);
    }

    lmcf->keys = loyalty_keyring_load((char *) path, err, sizeof(err));

    if (lmcf->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "loyalty_keys \"%s\": %s",
                           path, err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        loyalty_keyring_free(lmcf->keys);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_loyalty_keys_cleanup;
    cln->data = lmcf->keys;

    return NGX_CONF_OK;
}


static void
ngx_http_loyalty_keys_cleanup(void *data)
{
    loyalty_keyring_free(data);
}


static char *
ngx_http_loyalty_price_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->price_api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    llcf->price_api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_loyalty_price_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_share(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->share != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    llcf->share = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_loyalty_share_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_share_hosts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    u_char      *p;
    size_t       host_len;
    ngx_str_t   *value, *host;
    ngx_uint_t   i;
    const char  *h;

    if (llcf->share_hosts != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    llcf->share_hosts = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_str_t));
    if (llcf->share_hosts == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* a host name is what a URL with it would be allowed to name */
        p = ngx_pnalloc(cf->temp_pool, sizeof("http://") - 1 + value[i].len);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ngx_cpymem(p, "http://", sizeof("http://") - 1),
                   value[i].data, value[i].len);

        if (loyalty_target_check((char *) p,
                                 sizeof("http://") - 1 + value[i].len,
                                 &h, &host_len)
            != LOYALTY_TARGET_URL
            || host_len != value[i].len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"loyalty_share_hosts\": \"%V\" is not a "
                               "host name", &value[i]);
            return NGX_CONF_ERROR;
        }

        host = ngx_array_push(llcf->share_hosts);
        if (host == NULL) {
            return NGX_CONF_ERROR;
        }

        *host = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_bots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    char        err[LOYALTY_ERRLEN];
    u_char     *path;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path = ngx_pnalloc(cf->temp_pool, value[1].len + 1);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(path, value[1].data, value[1].len + 1);

    /* the operator's patterns come on top of the built-in ones */
    if (loyalty_bots_load(lmcf->bots, (char *) path, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "loyalty_bots: %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_loyalty_bots_cleanup(void *data)
{
    loyalty_bots_free(data);
}


static char *
ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t                     *name;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);
    lmcf->admin = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_loyalty_admin_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_loyalty_admin_handler;

    /* kept for the merge's checks: an include's name does not last */
    name = &cf->conf_file->file.name;

    llcf->admin_file.data = ngx_pnalloc(cf->pool, name->len + 1);
    if (llcf->admin_file.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(llcf->admin_file.data, name->data, name->len);
    llcf->admin_file.data[name->len] = '\0';
    llcf->admin_file.len = name->len;
    llcf->admin_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_admin_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->admin_tokens != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_loyalty_admin_tokens(cf, &value[1], &llcf->admin_tokens);
}
