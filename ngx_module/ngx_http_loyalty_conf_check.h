/*
 * nginx-loyalty: the checks of directives' values, for the directive
 * table (see ngx_http_loyalty_conf_check.c).
 */

#ifndef _NGX_HTTP_LOYALTY_CONF_CHECK_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_CONF_CHECK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the type of the value a stock slot set */
typedef enum {
    NGX_HTTP_LOYALTY_CONF_NUM = 0,      /* ngx_conf_set_num_slot */
    NGX_HTTP_LOYALTY_CONF_MSEC,         /* ngx_conf_set_msec_slot */
    NGX_HTTP_LOYALTY_CONF_SEC,          /* ngx_conf_set_sec_slot */
    NGX_HTTP_LOYALTY_CONF_SIZE,         /* ngx_conf_set_size_slot */
    NGX_HTTP_LOYALTY_CONF_STR           /* ngx_conf_set_str_slot */
} ngx_http_loyalty_conf_kind_e;


/*
 * What a directive accepts, for the post handler of its stock slot
 * (ngx_http_loyalty_conf_check()): a number, size or time from low to
 * high (0 also, with off), or a string that valid() takes.  Refused, the
 * message is the directive's name, accepts and the value as written
 * ("\"d\" must be 1 to 10, not \"11\""); a string refused only when
 * empty (bare) is not repeated.
 */
typedef struct {
    ngx_conf_post_handler_pt       post_handler;
    ngx_http_loyalty_conf_kind_e   kind;
    uint64_t                       low;
    uint64_t                       high;
    ngx_uint_t                     off;         /* 0 also: none */
    int                          (*valid)(const char *s, size_t len);
    ngx_uint_t                     bare;
    const char                    *accepts;     /* "must be 1 to 10" */
} ngx_http_loyalty_conf_check_t;


/*
 * A directive kept where it was written, at offset where in its conf, for
 * the checks made once the http block is parsed; then set by set, given
 * post as its command's (ngx_http_loyalty_conf_set_where()).
 */
typedef struct {
    char                        *(*set)(ngx_conf_t *cf, ngx_command_t *cmd,
                                        void *conf);
    size_t                         where;
    void                          *post;
} ngx_http_loyalty_conf_where_t;


extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_cache_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_ref_window_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_click_flush_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_admin_batch_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_budget_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_time_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_memory_range;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_sweep_range;

extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_currency_post;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_member_cookie_post;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_ref_cookie_post;
extern ngx_http_loyalty_conf_check_t  ngx_http_loyalty_fallback_post;

/* kept where they were written (ngx_http_loyalty_conf_set_where()) */
extern ngx_http_loyalty_conf_where_t  ngx_http_loyalty_store_where;
extern ngx_http_loyalty_conf_where_t  ngx_http_loyalty_click_zone_where;
extern ngx_http_loyalty_conf_where_t  ngx_http_loyalty_lua_file_where;
extern ngx_http_loyalty_conf_where_t  ngx_http_loyalty_sweep_where;


#endif /* _NGX_HTTP_LOYALTY_CONF_CHECK_H_INCLUDED_ */
