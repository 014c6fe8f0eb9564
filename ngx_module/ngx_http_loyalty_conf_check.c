/*
 * nginx-loyalty: configuration checks, each naming its directive, the
 * values it accepts and the file and line where it was written.
 *
 * A value is checked as its directive is read (a post handler of the
 * stock slot, ngx_conf_post_t), so that nginx names the directive's own
 * line.  A check that needs another directive ("requires loyalty_store")
 * can only be made once the block is parsed, when nginx's current line is
 * the end of the file: such directives keep where they were read
 * (ngx_http_loyalty_where_set()) and the check reports there
 * (ngx_http_loyalty_where_error()), as nginx does for its own checks made
 * after parsing ("host not found in upstream ... in FILE:LINE").
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_conf_check.h"
#include "ngx_http_loyalty_lua.h"


/* keeps where the directive being read is, for a check made later */
ngx_int_t
ngx_http_loyalty_where_set(ngx_conf_t *cf, ngx_http_loyalty_where_t *where)
{
    ngx_str_t  *name;

    if (where->file) {
        return NGX_OK;      /* the first one is named */
    }

    /* a copy: an include's name does not last as long as the conf */
    name = &cf->conf_file->file.name;

    where->file = ngx_pnalloc(cf->pool, name->len + 1);
    if (where->file == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(where->file, name->data, name->len + 1);
    where->line = cf->conf_file->line;

    return NGX_OK;
}


/*
 * From here on, nginx's messages name where the directive was written:
 * returns what to put back in cf->conf_file afterwards.
 */
ngx_conf_file_t *
ngx_http_loyalty_where_enter(ngx_conf_t *cf, ngx_http_loyalty_where_t *where,
    ngx_conf_file_t *place)
{
    ngx_conf_file_t  *saved;

    saved = cf->conf_file;

    if (where && where->file) {
        ngx_memzero(place, sizeof(ngx_conf_file_t));
        place->file.name.data = where->file;
        place->file.name.len = ngx_strlen(where->file);
        place->line = where->line;
        cf->conf_file = place;
    }

    return saved;
}


/* ngx_conf_log_error(), as if nginx were reading the directive again */
void ngx_cdecl
ngx_http_loyalty_where_error(ngx_uint_t level, ngx_conf_t *cf,
    ngx_http_loyalty_where_t *where, const char *fmt, ...)
{
    u_char            text[NGX_MAX_CONF_ERRSTR], *p;
    va_list           args;
    ngx_conf_file_t   place, *saved;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    saved = ngx_http_loyalty_where_enter(cf, where, &place);

    ngx_conf_log_error(level, cf, 0, "%*s", p - text, text);

    cf->conf_file = saved;
}


/*
 * ngx_conf_set_enum_slot(), whose refusal names neither the directive
 * nor what it accepts: "invalid value "x" in "d", it must be "a" or "b""
 */
char *
ngx_http_loyalty_conf_set_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char           accepts[NGX_MAX_CONF_ERRSTR], *p, *last;
    ngx_str_t       *value;
    ngx_uint_t       i;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strncasecmp(e[i].name.data, value[1].data,
                               value[1].len) == 0)
        {
            return ngx_conf_set_enum_slot(cf, cmd, conf);
        }
    }

    p = accepts;
    last = accepts + sizeof(accepts);

    for (i = 0; e[i].name.len != 0; i++) {
        p = ngx_slprintf(p, last, "%s\"%V\"",
                         i == 0 ? "" : (e[i + 1].name.len ? ", " : " or "),
                         &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\", it must be %*s",
                       &value[1], &cmd->name, p - accepts, accepts);

    return NGX_CONF_ERROR;
}


/* what a directive accepts, as the post handler of its stock slot */
char *
ngx_http_loyalty_conf_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_loyalty_conf_check_t  *check = post;

    uint64_t    n;
    ngx_str_t  *value, *str;

    str = data;

    switch (check->kind) {

    case NGX_HTTP_LOYALTY_CONF_STR:
        if (check->valid((char *) str->data, str->len)) {
            return NGX_CONF_OK;
        }

        goto refused;

    case NGX_HTTP_LOYALTY_CONF_NUM:
        n = (uint64_t) *(ngx_int_t *) data;
        break;

    case NGX_HTTP_LOYALTY_CONF_MSEC:
        n = (uint64_t) *(ngx_msec_t *) data;
        break;

    case NGX_HTTP_LOYALTY_CONF_SEC:
        n = (uint64_t) *(time_t *) data;
        break;

    default: /* NGX_HTTP_LOYALTY_CONF_SIZE */
        n = (uint64_t) *(size_t *) data;
        break;
    }

    if ((n >= check->low && n <= check->high) || (n == 0 && check->off)) {
        return NGX_CONF_OK;
    }

refused:

    value = cf->args->elts;

    if (check->bare) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" %s", &value[0],
                           check->accepts);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" %s, not \"%V\"",
                           &value[0], check->accepts, &value[1]);
    }

    return NGX_CONF_ERROR;
}


/* loyalty_member_cookie: a name */
static int
ngx_http_loyalty_valid_member_cookie(const char *s, size_t len)
{
    return len != 0;
}


/* loyalty_ref_cookie: a cookie name the module may set */
static int
ngx_http_loyalty_valid_ref_cookie(const char *s, size_t len)
{
    return loyalty_valid_chars(s, len, NGX_MAX_SIZE_T_VALUE, 1);
}


/* loyalty_share_fallback: where a share link goes when it cannot go on */
static int
ngx_http_loyalty_valid_fallback(const char *s, size_t len)
{
    size_t       host_len;
    const char  *host;

    return loyalty_target_check(s, len, &host, &host_len)
           != LOYALTY_TARGET_INVALID;
}


/*
 * What each directive accepts, checked as it is read: the message names
 * the directive, this and the value (ngx_http_loyalty_conf_check()).
 */

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_currency_post = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_STR, 0, 0, 0,
    loyalty_valid_currency, 0,
    "must be an ISO 4217 code such as CNY"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_member_cookie_post = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_STR, 0, 0, 0,
    ngx_http_loyalty_valid_member_cookie, 1,
    "must not be empty: it is the name of the member cookie, such as "
    "\"loyalty_member\""
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_ref_cookie_post = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_STR, 0, 0, 0,
    ngx_http_loyalty_valid_ref_cookie, 0,
    "must be a cookie name of [A-Za-z0-9_.-]"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_fallback_post = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_STR, 0, 0, 0,
    ngx_http_loyalty_valid_fallback, 0,
    "must be a path such as \"/\" or an http(s) URL"
};

/* for loyalty_member_cache and loyalty_code_cache */
ngx_http_loyalty_conf_check_t  ngx_http_loyalty_cache_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_NUM, 0, 1048576, 0,
    NULL, 0, "value must be between 0 and 1048576 entries"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_ref_window_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_SEC,
    1, 10 * 365 * LOYALTY_DAY, 0,
    NULL, 0, "must be more than 0 and at most 10 years, such as 30d"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_click_flush_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_MSEC,
    1, NGX_MAX_INT_T_VALUE, 0,
    NULL, 0, "must be more than 0, such as 10s"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_admin_batch_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_SIZE, 1, 100000, 0,
    NULL, 0, "must be 1 to 100000 events"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_budget_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_NUM,
    LOYALTY_LUA_BUDGET_MIN, LOYALTY_LUA_BUDGET_MAX, 0,
    NULL, 0, "must be 1000 to 100000000 instructions"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_time_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_MSEC,
    1, LOYALTY_LUA_TIME_MAX, 0,
    NULL, 0, "must be 1ms to 60s"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_lua_memory_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_SIZE,
    LOYALTY_LUA_MEMORY_MIN, NGX_MAX_SIZE_T_VALUE, 0,
    NULL, 0, "must be at least 1m"
};

ngx_http_loyalty_conf_check_t  ngx_http_loyalty_sweep_range = {
    ngx_http_loyalty_conf_check, NGX_HTTP_LOYALTY_CONF_MSEC,
    1000, NGX_MAX_INT_T_VALUE, 1,
    NULL, 0, "must be at least 1s, such as 1m, or 0 for none"
};


/*
 * Kept where they were written, for the checks made once the http block
 * is parsed (ngx_http_loyalty_init_main_conf()).
 */

ngx_http_loyalty_conf_where_t  ngx_http_loyalty_store_where = {
    ngx_conf_set_str_slot,
    offsetof(ngx_http_loyalty_main_conf_t, store_where),
    &ngx_http_loyalty_store_post
};

ngx_http_loyalty_conf_where_t  ngx_http_loyalty_click_zone_where = {
    ngx_http_loyalty_click_zone,
    offsetof(ngx_http_loyalty_main_conf_t, click_zone_where), NULL
};

ngx_http_loyalty_conf_where_t  ngx_http_loyalty_lua_file_where = {
    ngx_conf_set_str_slot,
    offsetof(ngx_http_loyalty_main_conf_t, lua_file_where), NULL
};

ngx_http_loyalty_conf_where_t  ngx_http_loyalty_sweep_where = {
    ngx_conf_set_msec_slot,
    offsetof(ngx_http_loyalty_main_conf_t, cadence_sweep_where),
    &ngx_http_loyalty_sweep_range
};
