/*
 * nginx-loyalty: the operator's script in nginx: its hooks, run in the
 * core's LuaJIT sandbox (core/loyalty_lua.h), and their counts.
 */

#ifndef _NGX_HTTP_LOYALTY_LUA_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_LUA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lua.h>

#include "loyalty_apply.h"
#include "loyalty_lua.h"
#include "loyalty_lua_cadence.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyalty_store.h"


/* per hook, for every worker, in the "loyalty_lua" zone */
typedef struct {
    ngx_atomic_t                  calls;
    ngx_atomic_t                  errors;
    ngx_atomic_t                  budget;
    ngx_atomic_t                  memory;
} ngx_http_loyalty_lua_counters_t;


typedef struct {
    ngx_http_loyalty_lua_counters_t  hooks[LOYALTY_LUA_HOOKS];
} ngx_http_loyalty_lua_stats_t;


/* the script, as configuration found it */
typedef struct {
    ngx_str_t                     file;     /* NUL-terminated */
    ngx_str_t                     source;
    ngx_array_t                   modules;  /* read as the script loaded */
    ngx_uint_t                    budget;   /* VM instructions per call */
    ngx_msec_t                    time;     /* wall time per call */
    size_t                        memory;   /* bytes per VM */
    const loyalty_tz_t           *tz;       /* the shop's; NULL: UTC */
    ngx_shm_zone_t               *zone;
    ngx_http_loyalty_lua_stats_t *stats;
} ngx_http_loyalty_lua_conf_t;


/* the core's VM, and what nginx keeps beside it */
typedef struct {
    loyalty_lua_t                 lua;
    ngx_http_loyalty_lua_conf_t  *conf;
    ngx_conf_t                   *cf;       /* while configuring */
    ngx_log_t                    *log;

    /* the call under way, for its failure's count and log */
    ngx_uint_t                    hook;
    ngx_log_t                    *call_log;

    /* the places in the script whose errors were logged */
    uint32_t                      logged[64];
    ngx_uint_t                    nlogged;

    /* the script's reward cadences; NULL: none */
    loyalty_cadences_t           *cadences;
} ngx_http_loyalty_lua_t;


/* a price hook's question and answer */
typedef struct {
    ngx_str_t                     sku;
    int64_t                       qty;
    int64_t                       retail;   /* a unit's */
    int64_t                       price;    /* a unit's, for the tier */
    ngx_str_t                     currency;
    ngx_str_t                     tier;
    int32_t                       rank;
    unsigned                      has_rank:1;
    ngx_str_t                     member;   /* empty: none */
    ngx_str_t                     member_tier;
    int32_t                       member_rank;
    int64_t                       member_points;
    ngx_uint_t                    member_stage;

    int64_t                       total;    /* the line, qty units */
    ngx_str_t                     label;    /* empty: none */
} ngx_http_loyalty_lua_price_t;


/* a click hook's question and answer */
typedef struct {
    ngx_str_t                     code;
    ngx_str_t                     referrer;
    ngx_str_t                     referrer2;
    const char                   *status;   /* "new", "replaced" */
    ngx_str_t                     member;
    const loyalty_member_t       *m;
    int32_t                       member_rank;
    unsigned                      has_member_rank:1;

    unsigned                      refuse:1;
    ngx_str_t                     campaign; /* empty: none */
} ngx_http_loyalty_lua_click_t;


char *ngx_http_loyalty_lua_conf(ngx_conf_t *cf,
    ngx_http_loyalty_lua_conf_t *lcf);
ngx_int_t ngx_http_loyalty_lua_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_lua_conf_t *lcf);
void ngx_http_loyalty_lua_exit_worker(void);
json_t *ngx_http_loyalty_lua_report(ngx_http_loyalty_lua_conf_t *lcf);

ngx_http_loyalty_lua_t *ngx_http_loyalty_lua_get(ngx_uint_t hook);
const loyalty_event_hook_t *ngx_http_loyalty_lua_event_hook(void);
/* this worker's cadences, in its write-path VM; NULL: none */
loyalty_cadences_t *ngx_http_loyalty_lua_cadences(void);
ngx_int_t ngx_http_loyalty_lua_protect(ngx_http_loyalty_lua_t *vm,
    ngx_uint_t hook, lua_CFunction f, void *ud, ngx_log_t *log);
void ngx_http_loyalty_lua_store(ngx_http_loyalty_lua_t *vm,
    loyalty_store_t *st, MDB_txn *txn);
/* the same, the snapshot begun by begin(data) if the call reads the store */
void ngx_http_loyalty_lua_store_lazy(ngx_http_loyalty_lua_t *vm,
    loyalty_store_t *st, loyalty_lua_begin_pt begin, void *data);

/* in ngx_http_loyalty_lua_hooks.c */
ngx_int_t ngx_http_loyalty_lua_price(ngx_http_loyalty_lua_t *vm,
    ngx_http_request_t *r, ngx_http_loyalty_lua_price_t *p);
ngx_int_t ngx_http_loyalty_lua_click(ngx_http_loyalty_lua_t *vm,
    ngx_http_request_t *r, ngx_http_loyalty_lua_click_t *c);
int ngx_http_loyalty_lua_event_call(ngx_http_loyalty_lua_t *vm,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out);


#endif /* _NGX_HTTP_LOYALTY_LUA_H_INCLUDED_ */
