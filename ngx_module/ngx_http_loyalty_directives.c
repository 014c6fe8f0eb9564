/*
 * nginx-loyalty: the directives that do more than set a value: they read
 * a file (the keys, the admin tokens, the bots list), open the store,
 * install a location's content handler, or keep where they were written
 * for the checks made once the http block is parsed (see
 * ngx_http_loyalty_conf_check.c).  Where a stock slot can set the value
 * (ngx_conf_set_str_slot() refuses a duplicate), the rest is its post
 * handler.  The directive table is in ngx_http_loyalty_module.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


static u_char *ngx_http_loyalty_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_pool_t *pool);
static void ngx_http_loyalty_keys_cleanup(void *data);
static char *ngx_http_loyalty_handler_set(ngx_conf_t *cf, ngx_flag_t *flag,
    ngx_http_loyalty_where_t *where, ngx_http_handler_pt handler);


/* "loyalty_store PATH", once set by ngx_conf_set_str_slot() */
static char *
ngx_http_loyalty_store_set(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *path = data;

    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    /* the workers' access to it is checked once the block is parsed */
    if (ngx_http_loyalty_where_set(cf, &lmcf->store_where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_loyalty_store_conf(cf, lmcf);
}


/* "loyalty_keys FILE", likewise */
static char *
ngx_http_loyalty_keys_set(ngx_conf_t *cf, void *post, void *data)
{
    char                           err[LOYALTY_ERRLEN];
    u_char                        *path;
    ngx_file_info_t                fi;
    ngx_pool_cleanup_t            *cln;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    path = ngx_http_loyalty_conf_file(cf, data, cf->pool);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

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


ngx_conf_post_t  ngx_http_loyalty_store_post = { ngx_http_loyalty_store_set };
ngx_conf_post_t  ngx_http_loyalty_keys_post = { ngx_http_loyalty_keys_set };


static void
ngx_http_loyalty_keys_cleanup(void *data)
{
    loyalty_keyring_free(data);
}


/*
 * A file's name given to a directive, made full (relative to the
 * configuration's prefix) in place, and copied as a C string into pool
 * for the core: NULL on error.
 */
static u_char *
ngx_http_loyalty_conf_file(ngx_conf_t *cf, ngx_str_t *name, ngx_pool_t *pool)
{
    u_char  *path;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NULL;
    }

    path = ngx_pnalloc(pool, name->len + 1);
    if (path == NULL) {
        return NULL;
    }

    (void) ngx_cpystrn(path, name->data, name->len + 1);

    return path;
}


char *
ngx_http_loyalty_price_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    return ngx_http_loyalty_handler_set(cf, &llcf->price_api,
                                        &llcf->price_api_where,
                                        ngx_http_loyalty_price_handler);
}


char *
ngx_http_loyalty_share(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    return ngx_http_loyalty_handler_set(cf, &llcf->share, &llcf->share_where,
                                        ngx_http_loyalty_share_handler);
}


/* a location's content handler, by a directive without arguments */
static char *
ngx_http_loyalty_handler_set(ngx_conf_t *cf, ngx_flag_t *flag,
    ngx_http_loyalty_where_t *where, ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (*flag != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    *flag = 1;

    if (ngx_http_loyalty_where_set(cf, where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = handler;

    return NGX_CONF_OK;
}


char *
ngx_http_loyalty_bots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    char        err[LOYALTY_ERRLEN];
    u_char     *path;
    ngx_str_t  *value;

    value = cf->args->elts;

    path = ngx_http_loyalty_conf_file(cf, &value[1], cf->temp_pool);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the operator's patterns come on top of the built-in ones */
    if (loyalty_bots_load(lmcf->bots, (char *) path, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "loyalty_bots: %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);
    lmcf->admin = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_loyalty_admin_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_loyalty_admin_handler;

    /* kept for the checks made once the block is parsed */
    if (ngx_http_loyalty_where_set(cf, &llcf->admin_where) != NGX_OK
        || ngx_http_loyalty_where_set(cf, &lmcf->admin_where) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "loyalty_admin_token FILE", once set by ngx_conf_set_str_slot() */
static char *
ngx_http_loyalty_admin_token_set(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_loyalty_module);

    return ngx_http_loyalty_admin_tokens(cf, data, &llcf->admin_tokens);
}


ngx_conf_post_t  ngx_http_loyalty_admin_token_post = {
    ngx_http_loyalty_admin_token_set
};


/* "loyalty_click_zone", kept where it is for the check of the store */
char *
ngx_http_loyalty_click_zone_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    if (ngx_http_loyalty_where_set(cf, &lmcf->click_zone_where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_loyalty_click_zone(cf, cmd, conf);
}


/* "loyalty_cadence_sweep TIME", likewise */
char *
ngx_http_loyalty_cadence_sweep(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    if (ngx_http_loyalty_where_set(cf, &lmcf->cadence_sweep_where)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_conf_set_msec_slot(cf, cmd, conf);
}


/* "loyalty_lua_file FILE": loaded once the http block is parsed */
char *
ngx_http_loyalty_lua_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    if (ngx_http_loyalty_where_set(cf, &lmcf->lua_file_where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_conf_set_str_slot(cf, cmd, conf);
}
