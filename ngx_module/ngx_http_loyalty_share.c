/*
 * nginx-loyalty: short links.  /s/CODE answers 302 to the code's target,
 * the click attributed (ngx_http_loyalty_ref.c); a code that cannot be
 * followed answers 302 to loyalty_share_fallback, never an error page.
 * A target off this site must be on one of loyalty_share_hosts, checked
 * again here whatever the store says: no open redirect.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


ngx_int_t
ngx_http_loyalty_share_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                    *target;
    ngx_http_loyalty_ref_t       *ref;
    ngx_http_loyalty_loc_conf_t  *llcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ref = ngx_http_loyalty_attribute(r);
    if (ref == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    target = &llcf->share_fallback;

    switch (ref->status) {

    case NGX_HTTP_LOYALTY_REF_NONE:
    case NGX_HTTP_LOYALTY_REF_INVALID:
    case NGX_HTTP_LOYALTY_REF_EXPIRED:
    case NGX_HTTP_LOYALTY_REF_REVOKED:
        break;

    default:
        if (ref->target.len == 0) {
            break;
        }

        if (ngx_http_loyalty_target_allowed(llcf, &ref->target) != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "loyalty: share code \"%V\" has a target off "
                          "this site and not on loyalty_share_hosts, "
                          "redirected to the fallback", &ref->code);
            break;
        }

        target = &ref->target;
    }

    ngx_http_clear_location(r);

    if (ngx_http_loyalty_add_header(r, "Location", target->data,
                                    target->len)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.location = r->headers_out.headers.last->elts;
    r->headers_out.location += r->headers_out.headers.last->nelts - 1;

    /* the answer depends on the visitor's cookies */
    if (ngx_http_loyalty_add_header(r, "Cache-Control",
                                    (u_char *) "private, no-store",
                                    sizeof("private, no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* a path on this site, or a URL on one of loyalty_share_hosts */
ngx_int_t
ngx_http_loyalty_target_allowed(ngx_http_loyalty_loc_conf_t *llcf,
    ngx_str_t *target)
{
    size_t             host_len, i;
    ngx_str_t         *hosts;
    const char        *host;
    loyalty_target_e   kind;

    kind = loyalty_target_check((char *) target->data, target->len, &host,
                                &host_len);

    if (kind == LOYALTY_TARGET_PATH) {
        return NGX_OK;
    }

    if (kind != LOYALTY_TARGET_URL || llcf->share_hosts == NULL) {
        return NGX_DECLINED;
    }

    hosts = llcf->share_hosts->elts;

    for (i = 0; i < llcf->share_hosts->nelts; i++) {
        if (loyalty_host_equal((const char *) hosts[i].data, hosts[i].len,
                               host, host_len))
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
