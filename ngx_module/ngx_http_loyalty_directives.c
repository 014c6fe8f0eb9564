/*
 * nginx-loyalty: the directives that do more than set a value: they read
 * a file (the keys, the bots list), open the store, install a location's
 * content handler, or keep where they were written for the checks made
 * once the http block is parsed (see ngx_http_loyalty_conf_check.c).
 * The directive table is in ngx_http_loyalty_module.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


static void ngx_http_loyalty_keys_cleanup(void *data);
static char *ngx_http_loyalty_handler_set(ngx_conf_t *cf, ngx_flag_t *flag,
    ngx_http_loyalty_where_t *where, ngx_http_handler_pt handler);


char *
ngx_http_loyalty_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    ngx_str_t  *value;

    if (lmcf->store_path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->store_path = value[1];

    /* the workers' access to it is checked once the block is parsed */
    if (ngx_http_loyalty_where_set(cf, &lmcf->store_where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &lmcf->store_path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_loyalty_store_conf(cf, lmcf);
}


char *
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


char *
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
