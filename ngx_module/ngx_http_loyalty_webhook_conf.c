/*
 * nginx-loyalty: the order webhooks' configuration.
 *
 *   location = /hooks/shopify {
 *       loyalty_webhook         shopify;
 *       loyalty_webhook_secret  /etc/nginx/loyalty/shopify.secret;
 *       loyalty_webhook_map     /usr/share/nginx-loyalty/adapters/shopify.lua;
 *   }
 *
 * The platforms and what their headers are called, the directives, and
 * the checks at the location's merge: the three directives go together,
 * the mapping script loads within its budget and has its map function
 * (its source is kept, so that the workers run what was checked), and
 * the store is written.  See ngx_http_loyalty_webhook.c for a delivery.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_webhook.h"


/* what the platforms send, as their documentation says (README) */
ngx_http_loyalty_platform_t
    ngx_http_loyalty_platforms[NGX_HTTP_LOYALTY_PLATFORMS + 1] =
{

    { ngx_string("woocommerce"),
      ngx_string("X-WC-Webhook-Signature"),
      ngx_string("X-WC-Webhook-Topic"),
      ngx_string("X-WC-Webhook-Delivery-ID"),
      ngx_null_string,
      NGX_HTTP_LOYALTY_MAC_BASE64 },

    { ngx_string("shopify"),
      ngx_string("X-Shopify-Hmac-Sha256"),
      ngx_string("X-Shopify-Topic"),
      ngx_string("X-Shopify-Event-Id"),         /* the same on retries */
      ngx_string("X-Shopify-Webhook-Id"),       /* what it said of old */
      NGX_HTTP_LOYALTY_MAC_BASE64 },

    /* ours, for a platform without an adapter of its own, or a relay */
    { ngx_string("generic"),
      ngx_string("X-Loyalty-Signature"),
      ngx_string("X-Loyalty-Topic"),
      ngx_string("X-Loyalty-Delivery"),
      ngx_null_string,
      NGX_HTTP_LOYALTY_MAC_HEX_SHA256 },

    { ngx_null_string, ngx_null_string, ngx_null_string, ngx_null_string,
      ngx_null_string, 0 }
};


static ngx_int_t ngx_http_loyalty_webhook_zone_init(ngx_shm_zone_t *zone,
    void *data);
static char *ngx_http_loyalty_webhook_check_map(ngx_conf_t *cf,
    ngx_http_loyalty_webhook_t *wh);


static ngx_str_t  ngx_http_loyalty_webhook_zone_name =
    ngx_string("loyalty_webhook");


/* "loyalty_webhook PLATFORM": the location's content handler */
static char *
ngx_http_loyalty_webhook_platform(ngx_conf_t *cf, ngx_command_t *cmd,
    void *part, ngx_str_t *value)
{
    ngx_http_loyalty_webhook_t  *wh = part;

    ngx_str_t                     *name;
    ngx_uint_t                     i;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    for (i = 0; i < NGX_HTTP_LOYALTY_PLATFORMS; i++) {
        name = &ngx_http_loyalty_platforms[i].name;

        if (value->len == name->len
            && ngx_strncmp(value->data, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (i == NGX_HTTP_LOYALTY_PLATFORMS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_webhook: unknown platform \"%V\": "
                           "\"woocommerce\", \"shopify\" or \"generic\"",
                           value);
        return NGX_CONF_ERROR;
    }

    wh->platform = i;

    /* known before the locations merge: the store is written */
    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);
    lmcf->webhook = 1;

    if (ngx_http_loyalty_where_set(cf, &lmcf->webhook_where) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_loyalty_webhook_handler;

    return NGX_CONF_OK;
}


/*
 * "loyalty_webhook_secret FILE": the shop's secret, the file's first
 * line, read by the master like the admin tokens.
 */
static char *
ngx_http_loyalty_webhook_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *part, ngx_str_t *value)
{
    ngx_http_loyalty_webhook_t  *wh = part;

    u_char           *p, *end;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         path;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    path = *value;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "loyalty_webhook_secret: cannot open \"%V\"",
                           &path);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = path;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MAX + 2)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_webhook_secret: \"%V\" is not a file of "
                           "at most %d bytes", &path,
                           NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MAX);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "loyalty_webhook_secret: \"%V\" is readable by "
                           "every user: chmod 600 it", &path);
    }

    p = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (p == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, ngx_file_size(&fi), 0);
    (void) ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_webhook_secret: cannot read \"%V\"",
                           &path);
        return NGX_CONF_ERROR;
    }

    /* the first line, without its end: never written in any message */
    end = ngx_strlchr(p, p + n, '\n');
    if (end == NULL) {
        end = p + n;
    }

    while (end > p && (end[-1] == '\r' || end[-1] == ' ')) {
        end--;
    }

    if (end - p < NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MIN
        || end - p > NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_webhook_secret: \"%V\": the secret, its "
                           "first line, is %d to %d bytes", &path,
                           NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MIN,
                           NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MAX);
        return NGX_CONF_ERROR;
    }

    wh->secret.data = p;
    wh->secret.len = end - p;

    return NGX_CONF_OK;
}


/* "loyalty_webhook_map FILE": the mapping script, loaded to check it */
static char *
ngx_http_loyalty_webhook_map_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *part, ngx_str_t *value)
{
    ngx_http_loyalty_webhook_t  *wh = part;

    wh->map_file = *value;

    if (ngx_conf_full_name(cf->cycle, &wh->map_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "loyalty_webhook_replay TIME": how long delivery ids are remembered */
static char *
ngx_http_loyalty_webhook_replay(ngx_conf_t *cf, ngx_command_t *cmd,
    void *part, ngx_str_t *value)
{
    ngx_http_loyalty_webhook_t  *wh = part;

    wh->replay = ngx_parse_time(value, 1);

    if (wh->replay == (time_t) NGX_ERROR || wh->replay == 0) {
        return "must be a time of at least 1s, such as 48h";
    }

    return NGX_CONF_OK;
}


/* a new webhook configuration: unset, and where it was written */
static ngx_int_t
ngx_http_loyalty_webhook_init(ngx_conf_t *cf, void *part)
{
    ngx_http_loyalty_webhook_t  *wh = part;

    wh->platform = NGX_CONF_UNSET_UINT;
    wh->replay = NGX_CONF_UNSET;
    wh->map = LUA_NOREF;

    return ngx_http_loyalty_where_set(cf, &wh->where);
}


/* a directive's own step, by ngx_http_loyalty_webhook_directive_e */
static ngx_http_loyalty_part_set_pt  ngx_http_loyalty_webhook_sets[] = {
    ngx_http_loyalty_webhook_platform,
    ngx_http_loyalty_webhook_secret,
    ngx_http_loyalty_webhook_map_file,
    ngx_http_loyalty_webhook_replay
};


/* the location's webhook configuration, made by its first directive */
ngx_http_loyalty_part_t  ngx_http_loyalty_webhook_part = {
    offsetof(ngx_http_loyalty_loc_conf_t, webhook),
    sizeof(ngx_http_loyalty_webhook_t),
    offsetof(ngx_http_loyalty_webhook_t, given),
    ngx_http_loyalty_webhook_init,
    ngx_http_loyalty_webhook_sets
};


/*
 * At the merge of the location: the three directives go together, the
 * script loads and has its map function, and the store is written.
 */
char *
ngx_http_loyalty_webhook_merge(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_http_loyalty_webhook_t   *wh, **p;

    wh = llcf->webhook;

    if (wh == NULL || wh->zone) {
        return NGX_CONF_OK;     /* none, or merged already */
    }

    if (wh->platform == NGX_CONF_UNSET_UINT) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                                     "\"loyalty_webhook_secret\", "
                                     "\"loyalty_webhook_map\" and "
                                     "\"loyalty_webhook_replay\" go in a "
                                     "location with \"loyalty_webhook\"");
        return NGX_CONF_ERROR;
    }

    if (llcf->admin_where.file) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                                     "\"loyalty_webhook\" and "
                                     "\"loyalty_admin\" in one location: "
                                     "give each its own");
        return NGX_CONF_ERROR;
    }

    if (wh->secret.data == NULL || wh->map_file.data == NULL) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                     "\"loyalty_webhook %V\" needs "
                     "\"loyalty_webhook_secret FILE;\" and "
                     "\"loyalty_webhook_map FILE;\"",
                     &ngx_http_loyalty_platforms[wh->platform].name);
        return NGX_CONF_ERROR;
    }

    if (lmcf->store == NULL) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                                     "\"loyalty_webhook\" requires "
                                     "\"loyalty_store\"");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(wh->replay, 48 * 3600);
    wh->budget = (ngx_uint_t) lmcf->lua_budget;
    wh->msec = lmcf->lua_time;
    wh->memory = lmcf->lua_memory;

    if (ngx_http_loyalty_webhook_check_map(cf, wh) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    wh->zone = ngx_shared_memory_add(cf, &ngx_http_loyalty_webhook_zone_name,
                   sizeof(ngx_http_loyalty_webhook_shm_t) + 16 * ngx_pagesize,
                   &ngx_http_loyalty_module);
    if (wh->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    wh->zone->init = ngx_http_loyalty_webhook_zone_init;
    lmcf->webhook_zone = wh->zone;

    /* the workers make each location's VM */
    if (lmcf->webhooks == NULL) {
        lmcf->webhooks = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_loyalty_webhook_t *));
        if (lmcf->webhooks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p = ngx_array_push(lmcf->webhooks);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    *p = wh;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_loyalty_webhook_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_uint_t  fresh;

    /* the counts and the seen ids go on across reloads */
    zone->data = ngx_http_loyalty_zone_data(zone, data,
                     sizeof(ngx_http_loyalty_webhook_shm_t), &fresh);

    return zone->data ? NGX_OK : NGX_ERROR;
}


/*
 * The script must load within the budget and return a table with a map
 * function; its source is kept, so that workers run what was checked.
 */
static char *
ngx_http_loyalty_webhook_check_map(ngx_conf_t *cf,
    ngx_http_loyalty_webhook_t *wh)
{
    char            err[NGX_MAX_ERROR_STR];
    loyalty_lua_t  *vm;

    if (ngx_http_loyalty_lua_read_source(cf, &wh->map_file, &wh->map_source,
                                         err, sizeof(err))
        != NGX_OK)
    {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                                     "loyalty_webhook_map \"%V\": %s",
                                     &wh->map_file, err);
        return NGX_CONF_ERROR;
    }

    vm = ngx_http_loyalty_webhook_vm(wh, cf->log, err, sizeof(err));
    if (vm == NULL) {
        ngx_http_loyalty_where_error(NGX_LOG_EMERG, cf, &wh->where,
                                     "loyalty_webhook_map \"%V\": %s",
                                     &wh->map_file, err);
        return NGX_CONF_ERROR;
    }

    loyalty_lua_close(vm);
    ngx_free(vm);
    wh->map = LUA_NOREF;

    return NGX_CONF_OK;
}
