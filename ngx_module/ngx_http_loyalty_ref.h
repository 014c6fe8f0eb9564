/*
 * nginx-loyalty: referral attribution's shared parts: a click as it is
 * worked out (ngx_http_loyalty_ref.c) and the attribution cookie
 * (ngx_http_loyalty_ref_cookie.c).
 */

#ifndef _NGX_HTTP_LOYALTY_REF_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_REF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


/*
 * A step kept out of line, so that the click's own code is smaller (not
 * "cold": gcc would then move the path that calls it out too)
 */
#if (defined __GNUC__)
#define NGX_HTTP_LOYALTY_OUT_OF_LINE  __attribute__((noinline))
#else
#define NGX_HTTP_LOYALTY_OUT_OF_LINE
#endif


typedef struct {
    ngx_http_loyalty_ref_t        *ref;
    ngx_http_loyalty_store_t      *store;
    ngx_http_loyalty_clicks_t     *clicks;
    MDB_txn                       *txn;         /* begun at need */
    ngx_uint_t                     open;        /* the store answers */
    ngx_uint_t                     lazy;        /* peeked, no txn yet */
    ngx_uint_t                     moved;       /* changed since */
    size_t                         epoch;       /* of the peek */
    ngx_uint_t                     gen;
    ngx_http_loyalty_ref_status_e  click;
    ngx_http_loyalty_code_t       *code;
    u_char                        *name;        /* normalized */
    size_t                         len;         /* 0: not a code's form */
    uint32_t                       hash;        /* of name: code_hash() */
    ngx_int_t                      slot;
    ngx_uint_t                     bot;
    uint64_t                       ua_hash;
    uint64_t                       visit;       /* the visitor's tag */

    /* what is known before the click */
    ngx_http_loyalty_loc_conf_t   *llcf;
    loyalty_keyring_t             *keys;
    ngx_str_t                      member;      /* empty: anonymous */
    ngx_str_t                      locked;      /* lifetime referrer */
    loyalty_ref_cookie_t           had;         /* the cookie's */
    ngx_http_loyalty_code_t       *had_code;    /* its code, when found */
    ngx_uint_t                     have;        /* had is genuine */
} ngx_http_loyalty_click_t;


void ngx_http_loyalty_ref_cleanup(void *data);


/*
 * The attribution is found again through the main request's pool: an
 * internal redirect clears module contexts, and a click is counted once.
 * In line: the header filter looks for it on every response.
 */
static ngx_inline ngx_http_loyalty_ref_t *
ngx_http_loyalty_ref_get(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_loyalty_ref_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


MDB_txn *ngx_http_loyalty_ref_txn(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c);
ngx_int_t ngx_http_loyalty_ref_find(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, const u_char *name, size_t len,
    uint32_t hash, ngx_http_loyalty_code_t **code);
ngx_int_t ngx_http_loyalty_ref_cookie(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_http_loyalty_loc_conf_t *llcf,
    loyalty_keyring_t *keys, loyalty_ref_cookie_t *rc);
ngx_int_t ngx_http_loyalty_ref_reissue(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, loyalty_keyring_t *keys,
    loyalty_ref_cookie_t *had);
ngx_int_t ngx_http_loyalty_ref_set_cookie(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, loyalty_keyring_t *keys,
    ngx_str_t *code, ngx_str_t *referrer, time_t at);
ngx_int_t ngx_http_loyalty_ref_copy(ngx_http_request_t *r,
    ngx_str_t *dst, const void *src, size_t len);


#endif /* _NGX_HTTP_LOYALTY_REF_H_INCLUDED_ */
