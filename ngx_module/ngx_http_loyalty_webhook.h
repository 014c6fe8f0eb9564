/*
 * nginx-loyalty: the order webhooks' shared parts: the platforms, a
 * location's webhook, the zone of seen deliveries and counts.  The
 * configuration is in ngx_http_loyalty_webhook_conf.c, a delivery's HTTP
 * steps in ngx_http_loyalty_webhook.c, the mapping script's sandbox in
 * ngx_http_loyalty_webhook_map.c.
 */

#ifndef _NGX_HTTP_LOYALTY_WEBHOOK_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_WEBHOOK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

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

/* woocommerce, shopify, generic: see ngx_http_loyalty_platforms[] */
#define NGX_HTTP_LOYALTY_PLATFORMS           3


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
    /* the directives given: ngx_http_loyalty_conf_set_part() */
    ngx_uint_t                    given;
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


extern ngx_http_loyalty_platform_t
    ngx_http_loyalty_platforms[NGX_HTTP_LOYALTY_PLATFORMS + 1];

loyalty_lua_t *ngx_http_loyalty_webhook_vm(ngx_http_loyalty_webhook_t *wh,
    ngx_log_t *log, char *err, size_t errlen);
ngx_uint_t ngx_http_loyalty_webhook_map(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, ngx_http_loyalty_map_call_t *call);
void ngx_http_loyalty_webhook_count(ngx_http_loyalty_webhook_t *wh,
    ngx_http_loyalty_hook_count_e count);


#endif /* _NGX_HTTP_LOYALTY_WEBHOOK_H_INCLUDED_ */
