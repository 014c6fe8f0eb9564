/*
 * nginx-loyalty: the module definition, its directives and configuration.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


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


static ngx_conf_num_bounds_t  ngx_http_loyalty_member_cache_bounds = {
    ngx_conf_check_num_bounds, 0, 1048576
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

      ngx_null_command
};


static ngx_http_module_t  ngx_http_loyalty_module_ctx = {
    ngx_http_loyalty_preconfiguration,     /* preconfiguration */
    NULL,                                  /* postconfiguration */

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
    ngx_http_loyalty_store_init_module,    /* init module */
    ngx_http_loyalty_store_init_worker,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_loyalty_store_exit_worker,    /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_loyalty_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_loyalty_add_variables(cf);
}


static void *
ngx_http_loyalty_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->store_path = { 0, NULL };
     *     lmcf->keys_path = { 0, NULL };
     *     lmcf->keys = NULL;
     *     lmcf->store = NULL;
     */

    lmcf->member_cache = NGX_CONF_UNSET_UINT;

    return lmcf;
}


static char *
ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    ngx_conf_init_uint_value(lmcf->member_cache, 32768);

    return NGX_CONF_OK;
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
     */

    conf->price_sku = NGX_CONF_UNSET_PTR;
    conf->price_api = NGX_CONF_UNSET;

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
