/*
 * nginx-loyalty: the dashboard's files, at ADMIN/dashboard (its page) and
 * ADMIN/dashboard/NAME, from the folder loyalty_admin_dashboard names.
 *
 * A browser cannot send a bearer token when it navigates to a page, so
 * these files are served before the admin API asks for one: they are the
 * same for everyone and hold no data.  The page asks for a token, keeps
 * it in the tab's sessionStorage and reads ADMIN/stats with it, as any
 * client of the API does.  Only plain names of the folder are served
 * (letters, digits, ".", "-", "_", not starting with "."), of the types
 * listed below, with headers that keep the page out of frames and other
 * sites' scripts.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_DASHBOARD_NAME  64


typedef struct {
    ngx_str_t                    ext;
    ngx_str_t                    type;
} ngx_http_loyalty_dashboard_type_t;


static ngx_int_t ngx_http_loyalty_dashboard_name(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_loyalty_dashboard_send(ngx_http_request_t *r,
    ngx_str_t *path, ngx_str_t *type);
static ngx_int_t ngx_http_loyalty_dashboard_headers(ngx_http_request_t *r,
    ngx_uint_t page);


static ngx_http_loyalty_dashboard_type_t  ngx_http_loyalty_dashboard_types[] = {
    { ngx_string(".html"), ngx_string("text/html; charset=utf-8") },
    { ngx_string(".js"), ngx_string("text/javascript; charset=utf-8") },
    { ngx_string(".css"), ngx_string("text/css; charset=utf-8") },
    { ngx_string(".svg"), ngx_string("image/svg+xml") },
    { ngx_string(".png"), ngx_string("image/png") },
    { ngx_string(".txt"), ngx_string("text/plain; charset=utf-8") },
    { ngx_null_string, ngx_null_string }
};


/* loyalty_admin_dashboard path | off */
char *
ngx_http_loyalty_admin_dashboard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_loc_conf_t *llcf = conf;

    ngx_str_t  *value;

    if (llcf->admin_dashboard.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&llcf->admin_dashboard, "");
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_admin_dashboard\" needs a folder, or "
                           "\"off\"");
        return NGX_CONF_ERROR;
    }

    llcf->admin_dashboard = value[1];

    if (ngx_conf_full_name(cf->cycle, &llcf->admin_dashboard, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * In the admin location, before its token is asked for: a dashboard file,
 * sent, or NGX_DECLINED for the admin API's own resources.
 */
ngx_int_t
ngx_http_loyalty_dashboard_handler(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf)
{
    u_char                             *p;
    ngx_int_t                           rc;
    ngx_str_t                           name, path;
    ngx_http_loyalty_dashboard_type_t  *t;

    if (llcf->admin_dashboard.len == 0) {
        return NGX_DECLINED;
    }

    rc = ngx_http_loyalty_dashboard_name(r, &name);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        (void) ngx_http_discard_request_body(r);

        if (ngx_http_loyalty_add_header(r, "Allow", (u_char *) "GET, HEAD",
                                        sizeof("GET, HEAD") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    for (t = ngx_http_loyalty_dashboard_types; t->ext.len; t++) {
        if (name.len > t->ext.len
            && ngx_strncmp(name.data + name.len - t->ext.len, t->ext.data,
                           t->ext.len)
               == 0)
        {
            break;
        }
    }

    if (t->ext.len == 0) {
        return NGX_HTTP_NOT_FOUND;
    }

    path.len = llcf->admin_dashboard.len + 1 + name.len;
    path.data = ngx_pnalloc(r->pool, path.len + 1);
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(path.data, llcf->admin_dashboard.data,
                   llcf->admin_dashboard.len);
    *p++ = '/';
    p = ngx_cpymem(p, name.data, name.len);
    *p = '\0';

    return ngx_http_loyalty_dashboard_send(r, &path, &t->type);
}


/*
 * The file a URI asks for, after the location's prefix: "dashboard" and
 * "dashboard/" are the page, "dashboard/NAME" a file.  NGX_DECLINED: not
 * the dashboard's; NGX_HTTP_NOT_FOUND: no such file.
 */
static ngx_int_t
ngx_http_loyalty_dashboard_name(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char                    *p, *end;
    ngx_str_t                  rest;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the admin API's prefix location: regular expressions have none */
    if (clcf->named
#if (NGX_PCRE)
        || clcf->regex
#endif
        || r->uri.len < clcf->name.len
        || ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) != 0)
    {
        return NGX_DECLINED;
    }

    rest.data = r->uri.data + clcf->name.len;
    rest.len = r->uri.len - clcf->name.len;

    if (rest.len && rest.data[0] == '/') {
        rest.data++;
        rest.len--;
    }

    if (rest.len < sizeof("dashboard") - 1
        || ngx_strncmp(rest.data, "dashboard", sizeof("dashboard") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    p = rest.data + sizeof("dashboard") - 1;
    end = rest.data + rest.len;

    if (p == end || (p + 1 == end && *p == '/')) {
        ngx_str_set(name, "index.html");
        return NGX_OK;
    }

    if (*p++ != '/') {
        return NGX_DECLINED;
    }

    name->data = p;
    name->len = end - p;

    if (*p == '.'
        || !loyalty_valid_chars((char *) p, name->len,
                                NGX_HTTP_LOYALTY_DASHBOARD_NAME, 1))
    {
        return NGX_HTTP_NOT_FOUND;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_dashboard_send(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *type)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_uint_t                 level;
    ngx_chain_t                out;
    ngx_open_file_info_t       of;
    ngx_http_core_loc_conf_t  *clcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));

    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_http_set_disable_symlinks(r, clcf, path, &of) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_open_cached_file(clcf->open_file_cache, path, &of, r->pool)
        != NGX_OK || !of.is_file)
    {
        level = (of.err == NGX_ENOENT || of.err == NGX_ENOTDIR)
                ? NGX_LOG_ERR : NGX_LOG_CRIT;

        ngx_log_error(level, r->connection->log, of.err,
                      "loyalty_admin_dashboard: cannot open \"%s\"%s",
                      path->data,
                      of.err ? "" : ": not a file");

        return (of.err == NGX_EACCES) ? NGX_HTTP_FORBIDDEN
                                      : NGX_HTTP_NOT_FOUND;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;

    if (ngx_http_set_etag(r) != NGX_OK
        || ngx_http_loyalty_dashboard_headers(r,
               ngx_strncmp(type->data, "text/html", 9) == 0)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;
    b->in_file = b->file_last ? 1 : 0;
    b->sync = b->file_last ? 0 : 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    b->file->fd = of.fd;
    b->file->name = *path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The page loads nothing from elsewhere and talks to its own origin only;
 * ECharts styles its tooltips inline.  Revalidated on every load, so that
 * an upgrade shows at once.
 */
static ngx_int_t
ngx_http_loyalty_dashboard_headers(ngx_http_request_t *r, ngx_uint_t page)
{
    ngx_uint_t  i;

    static struct {
        const char  *name;
        ngx_str_t    value;
        ngx_uint_t   page;      /* the page's only, not its files' */
    }  headers[] = {
        { "Cache-Control", ngx_string("no-cache"), 0 },
        { "X-Content-Type-Options", ngx_string("nosniff"), 0 },
        { "Content-Security-Policy",
          ngx_string("default-src 'none'; script-src 'self'; "
                     "style-src 'self' 'unsafe-inline'; "
                     "img-src 'self' data:; connect-src 'self'; "
                     "base-uri 'none'; form-action 'none'; "
                     "frame-ancestors 'none'"), 1 },
        { "X-Frame-Options", ngx_string("DENY"), 1 },
        { "Referrer-Policy", ngx_string("no-referrer"), 1 }
    };

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (headers[i].page && !page) {
            continue;
        }

        if (ngx_http_loyalty_add_header(r, headers[i].name,
                                        headers[i].value.data,
                                        headers[i].value.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
