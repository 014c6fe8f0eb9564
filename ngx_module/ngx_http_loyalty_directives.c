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
#include "ngx_http_loyalty_conf_check.h"


static u_char *ngx_http_loyalty_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_pool_t *pool);
static void ngx_http_loyalty_keys_cleanup(void *data);
static char *ngx_http_loyalty_handler_set(ngx_conf_t *cf, ngx_flag_t *flag,
    ngx_http_loyalty_where_t *where, ngx_http_handler_pt handler);


/*
 * "loyalty_store PATH", once set by ngx_conf_set_str_slot(), and kept
 * where it was written: the workers' access to it is checked once the
 * block is parsed.
 */
static char *
ngx_http_loyalty_store_set(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *path = data;

    ngx_http_loyalty_main_conf_t  *lmcf;

    if (ngx_conf_full_name(cf->cycle, path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

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


/* cmd->post is its ngx_http_loyalty_conf_where_t */
char *
ngx_http_loyalty_conf_set_where(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_conf_where_t  *w = cmd->post;

    ngx_command_t  set;

    if (ngx_http_loyalty_where_set(cf, (ngx_http_loyalty_where_t *)
                                       ((u_char *) conf + w->where))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    set = *cmd;
    set.post = w->post;

    return w->set(cf, &set, conf);
}


/* a directive of a part: cmd->post is the part's ngx_http_loyalty_part_t */
char *
ngx_http_loyalty_conf_set_part(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_part_t  *part = cmd->post;

    void        **p;
    ngx_str_t    *value;
    ngx_uint_t    bit, *given;

    p = (void **) ((u_char *) conf + part->offset);

    if (*p == NULL) {
        *p = ngx_pcalloc(cf->pool, part->size);

        if (*p == NULL || part->init(cf, *p) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    given = (ngx_uint_t *) ((u_char *) *p + part->given);
    bit = (ngx_uint_t) 1 << cmd->offset;

    if (*given & bit) {
        return "is duplicate";
    }

    *given |= bit;
    value = cf->args->elts;

    return part->sets[cmd->offset](cf, cmd, *p, &value[1]);
}


/* "loyalty_share_hosts HOST ...": the hosts a share link may go to */
char *
ngx_http_loyalty_share_hosts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t   *value, *host;
    ngx_uint_t   i;

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
        if (!loyalty_valid_host((const char *) value[i].data, value[i].len))
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
