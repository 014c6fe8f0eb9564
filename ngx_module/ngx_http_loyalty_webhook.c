/*
 * nginx-loyalty: order webhooks from the shop's platform, straight in.
 *
 *   location = /hooks/shopify {
 *       loyalty_webhook         shopify;
 *       loyalty_webhook_secret  /etc/nginx/loyalty/shopify.secret;
 *       loyalty_webhook_map     /usr/share/nginx-loyalty/adapters/shopify.lua;
 *   }
 *
 * A delivery goes through these steps, each refusing what it cannot
 * take before the next one looks: the method and content type; the
 * signature, an HMAC-SHA256 of the raw body with the shop's secret in
 * the platform's header, compared in constant time before anything
 * parses the body (401); the delivery id, refused as a replay if it was
 * taken within the window (200 "duplicate": a platform retries anything
 * but a 2xx); the body as JSON (400); the operator's mapping script,
 * in a sandbox with the budget of loyalty_lua_budget, which turns the
 * payload into the project's events (422 if it refuses the payload,
 * 500 if it fails); and the events, applied as one batch of
 * POST .../events, all or nothing, in the thread pool.
 *
 * Seen delivery ids and the counts live in the "loyalty_webhook" zone,
 * shared by the workers.  The table is small and forgets the oldest ids
 * first: the events' own ids (an order's order_id) keep a replay that it
 * forgot from counting twice, so it only saves work and tells replays
 * apart in the counts.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <lua.h>
#include <lauxlib.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_lua.h"


#define NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MIN  8
#define NGX_HTTP_LOYALTY_WEBHOOK_SECRET_MAX  1024
#define NGX_HTTP_LOYALTY_WEBHOOK_ID_MAX      256
#define NGX_HTTP_LOYALTY_WEBHOOK_SEEN        8192
#define NGX_HTTP_LOYALTY_WEBHOOK_PROBE       8
#define NGX_HTTP_LOYALTY_WEBHOOK_DEPTH       32
#define NGX_HTTP_LOYALTY_WEBHOOK_WHY         256


/* how a platform writes the MAC in its header */
typedef enum {
    NGX_HTTP_LOYALTY_MAC_BASE64 = 0,
    NGX_HTTP_LOYALTY_MAC_HEX_SHA256         /* "sha256=" and hex */
} ngx_http_loyalty_mac_e;


typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     signature;    /* header names */
    ngx_str_t                     topic;
    ngx_str_t                     delivery;
    ngx_str_t                     delivery_old; /* if delivery is absent */
    ngx_http_loyalty_mac_e        mac;
} ngx_http_loyalty_platform_t;


/* what the platforms send, as their documentation says (README) */
static ngx_http_loyalty_platform_t  ngx_http_loyalty_platforms[] = {

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

#define NGX_HTTP_LOYALTY_PLATFORMS                                            \
    (sizeof(ngx_http_loyalty_platforms)                                       \
     / sizeof(ngx_http_loyalty_platform_t) - 1)


/* the counts, per platform: in the order of their names */
typedef enum {
    NGX_HTTP_LOYALTY_HOOK_MAPPED = 0,
    NGX_HTTP_LOYALTY_HOOK_REPLAYED,
    NGX_HTTP_LOYALTY_HOOK_IGNORED,
    NGX_HTTP_LOYALTY_HOOK_FORGED,
    NGX_HTTP_LOYALTY_HOOK_REFUSED,
    NGX_HTTP_LOYALTY_HOOK_FAILED,
    NGX_HTTP_LOYALTY_HOOK_COUNTS
} ngx_http_loyalty_hook_count_e;

static const char  *ngx_http_loyalty_hook_count_names[] = {
    "mapped", "replayed", "ignored", "forged", "refused", "failed"
};


/* a delivery taken: a digest of the shop's secret and its id */
typedef struct {
    u_char                        key[16];
    int64_t                       at;
} ngx_http_loyalty_seen_t;


typedef struct {
    ngx_atomic_t                  counts[NGX_HTTP_LOYALTY_PLATFORMS]
                                        [NGX_HTTP_LOYALTY_HOOK_COUNTS];
    ngx_http_loyalty_seen_t       seen[NGX_HTTP_LOYALTY_WEBHOOK_SEEN];
} ngx_http_loyalty_webhook_shm_t;


struct ngx_http_loyalty_webhook_s {
    ngx_uint_t                    platform;     /* NGX_CONF_UNSET_UINT */
    ngx_http_loyalty_where_t      where;        /* its first directive */
    ngx_str_t                     secret;
    ngx_str_t                     map_file;     /* NUL-terminated */
    ngx_str_t                     map_source;
    time_t                        replay;
    ngx_shm_zone_t               *zone;
    ngx_uint_t                    budget;
    ngx_msec_t                    msec;
    size_t                        memory;

    /* this worker's */
    loyalty_lua_t                *vm;
    int                           map;          /* the function's ref */
    ngx_log_t                    *call_log;
};


/* a delivery under way */
typedef struct {
    ngx_http_loyalty_webhook_t   *wh;
    u_char                        key[16];
    unsigned                      has_key:1;
} ngx_http_loyalty_delivery_t;


/* a mapping call's question and answer */
typedef struct {
    ngx_http_loyalty_webhook_t   *wh;
    json_t                       *payload;
    ngx_str_t                     topic;
    ngx_str_t                     delivery;
    json_t                       *events;       /* the answer */
    const char                   *error;        /* or the refusal's */
    unsigned                      refused:1;
    char                          why[NGX_HTTP_LOYALTY_WEBHOOK_WHY];
} ngx_http_loyalty_map_call_t;


static ngx_http_loyalty_webhook_t *ngx_http_loyalty_webhook_conf(
    ngx_conf_t *cf, ngx_http_loyalty_loc_conf_t *llcf);
static ngx_int_t ngx_http_loyalty_webhook_zone_init(ngx_shm_zone_t *zone,
    void *data);
static char *ngx_http_loyalty_webhook_check_map(ngx_conf_t *cf,
    ngx_http_loyalty_webhook_t *wh);
static loyalty_lua_t *ngx_http_loyalty_webhook_vm(
    ngx_http_loyalty_webhook_t *wh, ngx_log_t *log, char *err,
    size_t errlen);
static void ngx_http_loyalty_webhook_vm_fail(loyalty_lua_t *vm,
    const char *msg, size_t len);
static void ngx_http_loyalty_webhook_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_webhook_deliver(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_int_t ngx_http_loyalty_webhook_json_type(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_webhook_ping(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_table_elt_t *ngx_http_loyalty_webhook_header(
    ngx_http_request_t *r, ngx_str_t *name);
static ngx_int_t ngx_http_loyalty_webhook_verify(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_uint_t ngx_http_loyalty_webhook_seen(
    ngx_http_loyalty_webhook_t *wh, u_char *key, ngx_uint_t add);
static ngx_uint_t ngx_http_loyalty_webhook_map(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, ngx_http_loyalty_map_call_t *call);
static ngx_int_t ngx_http_loyalty_webhook_replayed(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, ngx_str_t *id);
static ngx_int_t ngx_http_loyalty_webhook_apply(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, json_t *events);
static int ngx_http_loyalty_webhook_call(lua_State *L);
static void ngx_http_loyalty_webhook_push(lua_State *L, json_t *v,
    ngx_uint_t depth);
static json_t *ngx_http_loyalty_webhook_events(lua_State *L, int idx,
    ngx_uint_t depth, char *why, size_t len);
static ngx_int_t ngx_http_loyalty_webhook_applied(ngx_http_request_t *r,
    void *data, ngx_uint_t status, json_t *doc);
static void ngx_http_loyalty_webhook_count(ngx_http_loyalty_webhook_t *wh,
    ngx_http_loyalty_hook_count_e count);
static ngx_int_t ngx_http_loyalty_webhook_answer(ngx_http_request_t *r,
    ngx_uint_t status, const char *key, const char *value);


static ngx_str_t  ngx_http_loyalty_webhook_zone_name =
    ngx_string("loyalty_webhook");


/* "loyalty_webhook PLATFORM": the location's content handler */
char *
ngx_http_loyalty_webhook(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t                     *value, *name;
    ngx_uint_t                     i;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_loyalty_webhook_t    *wh;
    ngx_http_loyalty_main_conf_t  *lmcf;

    wh = ngx_http_loyalty_webhook_conf(cf, llcf);
    if (wh == NULL) {
        return NGX_CONF_ERROR;
    }

    if (wh->platform != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < NGX_HTTP_LOYALTY_PLATFORMS; i++) {
        name = &ngx_http_loyalty_platforms[i].name;

        if (value[1].len == name->len
            && ngx_strncmp(value[1].data, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (i == NGX_HTTP_LOYALTY_PLATFORMS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_webhook: unknown platform \"%V\": "
                           "\"woocommerce\", \"shopify\" or \"generic\"",
                           &value[1]);
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
char *
ngx_http_loyalty_webhook_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    u_char                      *p, *end;
    ssize_t                      n;
    ngx_fd_t                     fd;
    ngx_str_t                   *value, path;
    ngx_file_t                   file;
    ngx_file_info_t              fi;
    ngx_http_loyalty_webhook_t  *wh;

    wh = ngx_http_loyalty_webhook_conf(cf, llcf);
    if (wh == NULL) {
        return NGX_CONF_ERROR;
    }

    if (wh->secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

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
char *
ngx_http_loyalty_webhook_map_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t                   *value;
    ngx_http_loyalty_webhook_t  *wh;

    wh = ngx_http_loyalty_webhook_conf(cf, llcf);
    if (wh == NULL) {
        return NGX_CONF_ERROR;
    }

    if (wh->map_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    wh->map_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &wh->map_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "loyalty_webhook_replay TIME": how long delivery ids are remembered */
char *
ngx_http_loyalty_webhook_replay(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t                   *value;
    ngx_http_loyalty_webhook_t  *wh;

    wh = ngx_http_loyalty_webhook_conf(cf, llcf);
    if (wh == NULL) {
        return NGX_CONF_ERROR;
    }

    if (wh->replay != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    wh->replay = ngx_parse_time(&value[1], 1);

    if (wh->replay == (time_t) NGX_ERROR || wh->replay == 0) {
        return "must be a time of at least 1s, such as 48h";
    }

    return NGX_CONF_OK;
}


/* the location's webhook configuration, made by its first directive */
static ngx_http_loyalty_webhook_t *
ngx_http_loyalty_webhook_conf(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *llcf)
{
    ngx_http_loyalty_webhook_t  *wh;

    if (llcf->webhook) {
        return llcf->webhook;
    }

    wh = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_webhook_t));
    if (wh == NULL) {
        return NULL;
    }

    wh->platform = NGX_CONF_UNSET_UINT;
    wh->replay = NGX_CONF_UNSET;
    wh->map = LUA_NOREF;

    if (ngx_http_loyalty_where_set(cf, &wh->where) != NGX_OK) {
        return NULL;
    }

    llcf->webhook = wh;

    return wh;
}


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
    ngx_slab_pool_t  *shpool;

    /* the counts and the seen ids go on across reloads */
    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    zone->data = ngx_slab_calloc(shpool,
                                 sizeof(ngx_http_loyalty_webhook_shm_t));
    if (zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = zone->data;

    return NGX_OK;
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


/* a VM with the script loaded and its map function referenced */
static loyalty_lua_t *
ngx_http_loyalty_webhook_vm(ngx_http_loyalty_webhook_t *wh, ngx_log_t *log,
    char *err, size_t errlen)
{
    lua_State      *L;
    loyalty_lua_t  *vm;

    vm = ngx_calloc(sizeof(loyalty_lua_t), log);
    if (vm == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NULL;
    }

    vm->file = (char *) wh->map_file.data;
    vm->budget = (unsigned) wh->budget;
    vm->msec = (unsigned) wh->msec;
    vm->limit = wh->memory;
    vm->report = ngx_http_loyalty_webhook_vm_fail;
    vm->data = wh;

    if (loyalty_lua_open(vm, err, errlen) != 0) {
        ngx_free(vm);
        return NULL;
    }

    if (loyalty_lua_script(vm, (char *) wh->map_source.data,
                           wh->map_source.len, err, errlen)
        != 0)
    {
        goto failed;
    }

    L = vm->L;

    lua_getfield(L, -1, "map");

    if (!lua_isfunction(L, -1)) {
        (void) ngx_snprintf((u_char *) err, errlen,
                            "the script must return a table with a "
                            "\"map\" function, not %s%Z",
                            luaL_typename(L, -1));
        goto failed;
    }

    wh->map = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);

    return vm;

failed:

    loyalty_lua_close(vm);
    ngx_free(vm);
    return NULL;
}


ngx_int_t
ngx_http_loyalty_webhook_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    char                         err[NGX_MAX_ERROR_STR];
    ngx_uint_t                   i;
    ngx_http_loyalty_webhook_t  **wh;

    if (lmcf->webhooks == NULL) {
        return NGX_OK;
    }

    wh = lmcf->webhooks->elts;

    for (i = 0; i < lmcf->webhooks->nelts; i++) {
        wh[i]->vm = ngx_http_loyalty_webhook_vm(wh[i], cycle->log, err,
                                                sizeof(err));
        if (wh[i]->vm == NULL) {
            /* it loaded at configuration: deliveries get a 500 */
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "loyalty_webhook_map \"%V\": %s",
                          &wh[i]->map_file, err);
        }
    }

    return NGX_OK;
}


void
ngx_http_loyalty_webhook_exit_worker(ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_uint_t                   i;
    ngx_http_loyalty_webhook_t  **wh;

    if (lmcf->webhooks == NULL) {
        return;
    }

    wh = lmcf->webhooks->elts;

    for (i = 0; i < lmcf->webhooks->nelts; i++) {
        if (wh[i]->vm) {
            loyalty_lua_close(wh[i]->vm);
            ngx_free(wh[i]->vm);
            wh[i]->vm = NULL;
        }
    }
}


/* a failed mapping call: logged with the script's own message */
static void
ngx_http_loyalty_webhook_vm_fail(loyalty_lua_t *vm, const char *msg,
    size_t len)
{
    ngx_http_loyalty_webhook_t  *wh = vm->data;

    ngx_log_error(NGX_LOG_ERR, wh->call_log ? wh->call_log : ngx_cycle->log,
                  0, "loyalty_webhook_map \"%V\": the mapping failed%s: %*s",
                  &wh->map_file,
                  vm->failed == LOYALTY_LUA_BUDGET ? " (budget)"
                  : vm->failed == LOYALTY_LUA_MEMORY ? " (memory)" : "",
                  len, msg);
}


/* for the admin API's GET .../webhooks: the counts per platform */
json_t *
ngx_http_loyalty_webhook_report(ngx_shm_zone_t *zone)
{
    json_t                          *doc, *p;
    ngx_uint_t                       i, j;
    ngx_http_loyalty_webhook_shm_t  *shm;

    doc = json_object();
    if (doc == NULL || zone == NULL || zone->data == NULL) {
        return doc;
    }

    shm = zone->data;

    for (i = 0; i < NGX_HTTP_LOYALTY_PLATFORMS; i++) {
        p = json_object();
        if (p == NULL) {
            json_decref(doc);
            return NULL;
        }

        for (j = 0; j < NGX_HTTP_LOYALTY_HOOK_COUNTS; j++) {
            json_object_set_new(p, ngx_http_loyalty_hook_count_names[j],
                                json_integer(shm->counts[i][j]));
        }

        json_object_set_new(doc,
                            (char *) ngx_http_loyalty_platforms[i].name.data,
                            p);
    }

    return doc;
}


ngx_int_t
ngx_http_loyalty_webhook_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        (void) ngx_http_discard_request_body(r);

        if (ngx_http_loyalty_add_header(r, "Allow", (u_char *) "POST", 4)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_NOT_ALLOWED,
                                               "error", "POST only");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_webhook_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* the body is in: the delivery's steps */
static void
ngx_http_loyalty_webhook_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_read_body(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_loyalty_webhook_deliver(r, llcf->webhook, body, len);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_loyalty_webhook_deliver(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    json_t                       *payload;
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    json_error_t                  jerr;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_platform_t  *pf;
    ngx_http_loyalty_delivery_t  *d;
    ngx_http_loyalty_map_call_t   call;

    pf = &ngx_http_loyalty_platforms[wh->platform];

    rc = ngx_http_loyalty_webhook_ping(r, wh, body, len);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_loyalty_webhook_json_type(r) != NGX_OK) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_webhook_answer(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "error",
                   "the body must be application/json");
    }

    /* 1. the signature, over the raw body, before anything reads it */
    if (ngx_http_loyalty_webhook_verify(r, wh, body, len) != NGX_OK) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FORGED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_UNAUTHORIZED,
                                               "error",
                                               "invalid signature");
    }

    /* 2. the delivery id: one taken within the window is a replay */
    d = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_delivery_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->wh = wh;
    ngx_memzero(&call, sizeof(call));

    rc = ngx_http_loyalty_webhook_replayed(r, d, &call.delivery);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REPLAYED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status",
                                               "duplicate");
    }

    /* 3. the body, JSON */
    payload = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (payload == NULL || !json_is_object(payload)) {
        json_decref(payload);
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_BAD_REQUEST,
                   "error", payload ? "the body must be a JSON object"
                                    : jerr.text);
    }

    /* 4. the operator's mapping, in the sandbox */
    h = ngx_http_loyalty_webhook_header(r, &pf->topic);
    if (h) {
        call.topic = h->value;
    }

    call.wh = wh;
    call.payload = payload;

    status = ngx_http_loyalty_webhook_map(r, wh, &call);
    json_decref(payload);

    if (status) {
        return ngx_http_loyalty_webhook_answer(r, status, "error",
                                               call.error);
    }

    /* 5. the events, one batch, all or nothing */
    return ngx_http_loyalty_webhook_apply(r, d, call.events);
}


/*
 * The delivery's id, as d->key, a digest with the shop's secret so that
 * two shops' ids never meet: NGX_DECLINED if it was taken within the
 * window, NGX_OK if not (or the delivery has none), NGX_ERROR.
 */
static ngx_int_t
ngx_http_loyalty_webhook_replayed(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, ngx_str_t *id)
{
    u_char                        mac[EVP_MAX_MD_SIZE];
    unsigned int                  n;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_webhook_t   *wh;
    ngx_http_loyalty_platform_t  *pf;

    wh = d->wh;
    pf = &ngx_http_loyalty_platforms[wh->platform];

    h = ngx_http_loyalty_webhook_header(r, &pf->delivery);

    if (h == NULL && pf->delivery_old.len) {
        h = ngx_http_loyalty_webhook_header(r, &pf->delivery_old);
    }

    if (h == NULL || h->value.len == 0
        || h->value.len > NGX_HTTP_LOYALTY_WEBHOOK_ID_MAX)
    {
        return NGX_OK;
    }

    if (HMAC(EVP_sha256(), wh->secret.data, (int) wh->secret.len,
             h->value.data, h->value.len, mac, &n)
        == NULL)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(d->key, mac, sizeof(d->key));
    d->has_key = 1;
    *id = h->value;

    if (!ngx_http_loyalty_webhook_seen(wh, d->key, 0)) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: %V webhook delivery \"%V\" replayed: not "
                  "applied again", &pf->name, &h->value);

    return NGX_DECLINED;
}


/* posts the batch: NGX_DONE, or the answer's status */
static ngx_int_t
ngx_http_loyalty_webhook_apply(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, json_t *events)
{
    u_char  *p;
    size_t   len;

    if (json_array_size(events) == 0) {
        json_decref(events);

        /* a topic or an order the mapping leaves alone: taken */
        if (d->has_key) {
            (void) ngx_http_loyalty_webhook_seen(d->wh, d->key, 1);
        }

        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_IGNORED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status",
                                               "ignored");
    }

    p = ngx_http_loyalty_admin_dump(r->pool, events, &len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p[len] = '\0';

    return ngx_http_loyalty_admin_apply(r, p, len,
                                        ngx_http_loyalty_webhook_applied, d);
}


/* "application/json", with or without parameters */
static ngx_int_t
ngx_http_loyalty_webhook_json_type(ngx_http_request_t *r)
{
    ngx_str_t  *v;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    v = &r->headers_in.content_type->value;

    if (v->len < sizeof("application/json") - 1
        || ngx_strncasecmp(v->data, (u_char *) "application/json",
                           sizeof("application/json") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    if (v->len > sizeof("application/json") - 1
        && v->data[sizeof("application/json") - 1] != ';'
        && v->data[sizeof("application/json") - 1] != ' ')
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * WooCommerce pings a webhook's URL as it is saved, with the unsigned
 * form body "webhook_id=N", and keeps it only if the answer is a 2xx:
 * answered 200, nothing read or applied.  NGX_DECLINED for anything else.
 */
static ngx_int_t
ngx_http_loyalty_webhook_ping(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    size_t      i;
    ngx_str_t  *name;

    name = &ngx_http_loyalty_platforms[wh->platform].name;

    if (name->len != sizeof("woocommerce") - 1
        || ngx_strncmp(name->data, "woocommerce", name->len) != 0
        || len <= sizeof("webhook_id=") - 1 || len > 32
        || ngx_strncmp(body, "webhook_id=", sizeof("webhook_id=") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    for (i = sizeof("webhook_id=") - 1; i < len; i++) {
        if (body[i] < '0' || body[i] > '9') {
            return NGX_DECLINED;
        }
    }

    return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status", "ping");
}


/* the request's header of that name, the first one */
static ngx_table_elt_t *
ngx_http_loyalty_webhook_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * The platform's signature header against HMAC-SHA256(secret, body),
 * decoded first and compared in constant time; what differs in length
 * or encoding is refused without comparing.
 */
static ngx_int_t
ngx_http_loyalty_webhook_verify(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    u_char                        mac[EVP_MAX_MD_SIZE], got[64], *p;
    ngx_int_t                     hi, lo;
    ngx_str_t                     src, dst;
    ngx_uint_t                    i;
    unsigned int                  n;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_platform_t  *pf;

    pf = &ngx_http_loyalty_platforms[wh->platform];

    h = ngx_http_loyalty_webhook_header(r, &pf->signature);

    if (h == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: %V webhook without \"%V\": refused",
                      &pf->name, &pf->signature);
        return NGX_DECLINED;
    }

    if (HMAC(EVP_sha256(), wh->secret.data, (int) wh->secret.len, body, len,
             mac, &n)
        == NULL || n != 32)
    {
        return NGX_ERROR;
    }

    src = h->value;

    switch (pf->mac) {

    case NGX_HTTP_LOYALTY_MAC_BASE64:
        if (src.len != ngx_base64_encoded_length(32)) {
            goto forged;
        }

        dst.data = got;
        if (ngx_decode_base64(&dst, &src) != NGX_OK || dst.len != 32) {
            goto forged;
        }

        break;

    default: /* NGX_HTTP_LOYALTY_MAC_HEX_SHA256 */
        if (src.len != sizeof("sha256=") - 1 + 64
            || ngx_strncmp(src.data, "sha256=", sizeof("sha256=") - 1) != 0)
        {
            goto forged;
        }

        p = src.data + sizeof("sha256=") - 1;

        for (i = 0; i < 32; i++) {
            hi = ngx_hextoi(&p[2 * i], 1);
            lo = ngx_hextoi(&p[2 * i + 1], 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                goto forged;
            }

            got[i] = (u_char) (hi << 4 | lo);
        }
    }

    if (CRYPTO_memcmp(got, mac, 32) == 0) {
        return NGX_OK;
    }

forged:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "loyalty: %V webhook with an invalid \"%V\": refused",
                  &pf->name, &pf->signature);

    return NGX_DECLINED;
}


#define ngx_http_loyalty_seen_stale(e, now, window)                           \
    ((e)->at == 0 || (now) - (e)->at >= (window))


/*
 * Whether the delivery was taken within the window; with add, it is
 * taken now.  Each id has a few slots to be in; a new one replaces an
 * empty or expired slot, else the oldest of them.
 */
static ngx_uint_t
ngx_http_loyalty_webhook_seen(ngx_http_loyalty_webhook_t *wh, u_char *key,
    ngx_uint_t add)
{
    int64_t                          now;
    uint32_t                         start;
    ngx_uint_t                       i, found;
    ngx_slab_pool_t                 *shpool;
    ngx_http_loyalty_seen_t         *e, *victim;
    ngx_http_loyalty_webhook_shm_t  *shm;

    shm = wh->zone->data;
    if (shm == NULL) {
        return 0;
    }

    shpool = (ngx_slab_pool_t *) wh->zone->shm.addr;
    now = ngx_time();
    ngx_memcpy(&start, key, sizeof(uint32_t));

    found = 0;
    victim = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_LOYALTY_WEBHOOK_PROBE; i++) {
        e = &shm->seen[(start + i) % NGX_HTTP_LOYALTY_WEBHOOK_SEEN];

        if (e->at != 0 && now - e->at < wh->replay
            && ngx_memcmp(e->key, key, sizeof(e->key)) == 0)
        {
            found = 1;
            break;
        }

        if (ngx_http_loyalty_seen_stale(e, now, wh->replay)) {
            if (victim == NULL
                || !ngx_http_loyalty_seen_stale(victim, now, wh->replay))
            {
                victim = e;
            }

        } else if (victim == NULL
                   || (!ngx_http_loyalty_seen_stale(victim, now, wh->replay)
                       && e->at < victim->at))
        {
            victim = e;
        }
    }

    if (add && !found) {
        ngx_memcpy(victim->key, key, sizeof(victim->key));
        victim->at = now;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return found;
}


/* how deep the payload nests, up to the limit and one */
static ngx_uint_t
ngx_http_loyalty_webhook_depth(json_t *v, ngx_uint_t depth)
{
    size_t       i;
    json_t      *x;
    ngx_uint_t   d, max;
    const char  *key;

    if (depth > NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
        return depth;
    }

    max = depth;

    if (json_is_object(v)) {
        json_object_foreach(v, key, x) {
            d = ngx_http_loyalty_webhook_depth(x, depth + 1);
            max = ngx_max(max, d);
        }

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            d = ngx_http_loyalty_webhook_depth(x, depth + 1);
            max = ngx_max(max, d);
        }
    }

    return max;
}


/*
 * The operator's map(payload, headers), in this worker's VM, within the
 * budget: 0 with call->events, else the answer's status, with
 * call->error.  A script that fails is the shop's to fix, and a 500 has
 * the platform retry until it is; a payload the script refuses will not
 * get better: 422.
 */
static ngx_uint_t
ngx_http_loyalty_webhook_map(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, ngx_http_loyalty_map_call_t *call)
{
    int  rc;

    if (ngx_http_loyalty_webhook_depth(call->payload, 0)
        > NGX_HTTP_LOYALTY_WEBHOOK_DEPTH)
    {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        call->error = "the payload nests too deep";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (wh->vm == NULL) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FAILED);
        call->error = "the mapping script is not loaded";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wh->call_log = r->connection->log;
    rc = loyalty_lua_call(wh->vm, ngx_http_loyalty_webhook_call, call);
    wh->call_log = NULL;

    if (rc != 0) {
        json_decref(call->events);
        call->events = NULL;
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FAILED);
        call->error = "the mapping script failed";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (call->refused) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: %V webhook refused by the mapping: %s",
                      &ngx_http_loyalty_platforms[wh->platform].name,
                      call->why);
        call->error = call->why;
        return NGX_HTTP_LOYALTY_UNPROCESSABLE;
    }

    return 0;
}


/* in the protected call: map(payload, headers) and its answer */
static int
ngx_http_loyalty_webhook_call(lua_State *L)
{
    json_t                       *events;
    const char                   *why;
    ngx_str_t                    *name;
    ngx_http_loyalty_map_call_t  *call;

    call = lua_touserdata(L, 1);
    name = &ngx_http_loyalty_platforms[call->wh->platform].name;

    lua_rawgeti(L, LUA_REGISTRYINDEX, call->wh->map);
    ngx_http_loyalty_webhook_push(L, call->payload, 0);

    lua_createtable(L, 0, 3);
    lua_pushlstring(L, (char *) name->data, name->len);
    lua_setfield(L, -2, "platform");

    if (call->topic.len) {
        lua_pushlstring(L, (char *) call->topic.data, call->topic.len);
        lua_setfield(L, -2, "topic");
    }

    if (call->delivery.len) {
        lua_pushlstring(L, (char *) call->delivery.data, call->delivery.len);
        lua_setfield(L, -2, "delivery");
    }

    lua_call(L, 2, 2);

    if (lua_isnil(L, -2)) {
        why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                            : "the mapping refused the payload";
        (void) ngx_cpystrn((u_char *) call->why, (u_char *) why,
                           sizeof(call->why));
        call->refused = 1;
        return 0;
    }

    events = ngx_http_loyalty_webhook_events(L, lua_gettop(L) - 1, 0,
                                             call->why, sizeof(call->why));

    if (events == NULL || !json_is_array(events)) {
        json_decref(events);
        return luaL_error(L, "map must return a list of events, or nil "
                          "and a reason: %s",
                          events ? "not a list" : call->why);
    }

    call->events = events;

    return 0;
}


/*
 * The payload as Lua tables; null is nil.  Integers beyond 2^53, which
 * a double cannot hold (Shopify's ids), are given as decimal strings.
 */
static void
ngx_http_loyalty_webhook_push(lua_State *L, json_t *v, ngx_uint_t depth)
{
    size_t       i;
    json_t      *x;
    json_int_t   n;
    const char  *key;
    u_char       buf[NGX_INT64_LEN + 1];

    luaL_checkstack(L, 4, "the payload nests too deep");

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        lua_createtable(L, 0, (int) json_object_size(v));

        if (depth >= NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
            break;
        }

        json_object_foreach(v, key, x) {
            if (json_is_null(x)) {
                continue;
            }

            lua_pushstring(L, key);
            ngx_http_loyalty_webhook_push(L, x, depth + 1);
            lua_rawset(L, -3);
        }

        break;

    case JSON_ARRAY:
        lua_createtable(L, (int) json_array_size(v), 0);

        if (depth >= NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
            break;
        }

        json_array_foreach(v, i, x) {
            ngx_http_loyalty_webhook_push(L, x, depth + 1);
            lua_rawseti(L, -2, (int) i + 1);
        }

        break;

    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;

    case JSON_INTEGER:
        n = json_integer_value(v);

        if (n > (1LL << 53) || n < -(1LL << 53)) {
            lua_pushlstring(L, (char *) buf,
                            ngx_sprintf(buf, "%L", (int64_t) n) - buf);
        } else {
            lua_pushnumber(L, (lua_Number) n);
        }

        break;

    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;

    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;

    default:
        lua_pushnil(L);
    }
}


/*
 * The value at idx as JSON, or NULL with why: tables with a length are
 * arrays (an empty one too), other tables objects with string keys.
 * Raises no Lua error, so that nothing it made is lost.
 */
static json_t *
ngx_http_loyalty_webhook_events(lua_State *L, int idx, ngx_uint_t depth,
    char *why, size_t len)
{
    size_t       n, i, slen;
    json_t      *doc, *x;
    lua_Number   d;
    const char  *s;

    if (depth > 8) {
        (void) ngx_snprintf((u_char *) why, len, "nested too deep%Z");
        return NULL;
    }

    if (!lua_checkstack(L, 4)) {
        (void) ngx_snprintf((u_char *) why, len, "out of stack%Z");
        return NULL;
    }

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &slen);
        doc = json_stringn(s, slen);
        if (doc == NULL) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a string that is not UTF-8%Z");
        }

        return doc;

    case LUA_TNUMBER:
        d = lua_tonumber(L, idx);

        /* in range first: a cast of a double out of range is undefined */
        if (d < 9007199254740992.0 && d > -9007199254740992.0
            && d == (lua_Number) (int64_t) d)
        {
            return json_integer((json_int_t) d);
        }

        doc = json_real(d);
        if (doc == NULL) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a number that is not finite%Z");
        }

        return doc;

    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));

    case LUA_TTABLE:
        break;

    default:
        (void) ngx_snprintf((u_char *) why, len, "a %s value%Z",
                            luaL_typename(L, idx));
        return NULL;
    }

    n = lua_objlen(L, idx);

    if (n > 0 || (lua_pushnil(L), lua_next(L, idx) == 0)) {
        doc = json_array();

        for (i = 1; doc && i <= n; i++) {
            lua_rawgeti(L, idx, (int) i);
            x = ngx_http_loyalty_webhook_events(L, lua_gettop(L), depth + 1,
                                                why, len);
            lua_pop(L, 1);

            if (x == NULL || json_array_append_new(doc, x) != 0) {
                json_decref(doc);
                return NULL;
            }
        }

        return doc;
    }

    /* lua_next left the first key and value on the stack */
    doc = json_object();

    do {
        if (lua_type(L, -2) != LUA_TSTRING) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a table with a key that is not a "
                                "string%Z");
            lua_pop(L, 2);
            json_decref(doc);
            return NULL;
        }

        x = ngx_http_loyalty_webhook_events(L, lua_gettop(L), depth + 1,
                                            why, len);
        lua_pop(L, 1);

        if (x == NULL || doc == NULL
            || json_object_set_new(doc, lua_tostring(L, -1), x) != 0)
        {
            lua_pop(L, 1);
            json_decref(doc);
            return NULL;
        }

    } while (lua_next(L, idx) != 0);

    return doc;
}


/*
 * The batch's answer, back in the event loop: a batch of duplicates
 * only is a replay the delivery ids did not catch; either way the
 * delivery is taken.
 */
static ngx_int_t
ngx_http_loyalty_webhook_applied(ngx_http_request_t *r, void *data,
    ngx_uint_t status, json_t *doc)
{
    ngx_http_loyalty_delivery_t *d = data;

    json_int_t   events, applied, duplicates;
    const char  *what;

    if (status != NGX_HTTP_OK) {
        ngx_http_loyalty_webhook_count(d->wh,
                                       status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                                       ? NGX_HTTP_LOYALTY_HOOK_FAILED
                                       : NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_admin_json(r, status, doc);
    }

    events = json_integer_value(json_object_get(doc, "events"));
    applied = json_integer_value(json_object_get(doc, "applied"));
    duplicates = json_integer_value(json_object_get(doc, "duplicates"));

    if (d->has_key) {
        (void) ngx_http_loyalty_webhook_seen(d->wh, d->key, 1);
    }

    if (applied == 0 && duplicates == events) {
        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_REPLAYED);
        what = "duplicate";

    } else {
        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_MAPPED);
        what = "applied";
    }

    json_object_set_new(doc, "status", json_string(what));

    return ngx_http_loyalty_admin_json(r, status, doc);
}


static void
ngx_http_loyalty_webhook_count(ngx_http_loyalty_webhook_t *wh,
    ngx_http_loyalty_hook_count_e count)
{
    ngx_http_loyalty_webhook_shm_t  *shm;

    shm = wh->zone->data;

    if (shm) {
        (void) ngx_atomic_fetch_add(&shm->counts[wh->platform][count], 1);
    }
}


/* {"key": "value"}, sent */
static ngx_int_t
ngx_http_loyalty_webhook_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *key, const char *value)
{
    json_t  *doc;

    doc = json_pack("{s:s}", key, value);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_json(r, status, doc);
}
