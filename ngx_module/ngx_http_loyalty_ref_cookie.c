/*
 * nginx-loyalty: the attribution cookie.
 *
 * It holds the code and the click's time, its MAC bound to the code's
 * owner, who is read from the store again when it comes back: a code
 * deleted since, or given to another member, takes the attribution with
 * it.  The header filter sends it, for what is left of the window, on
 * the click's own response, even when no variable asked about the click.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_ref.h"


/* the longest attribution cookie of the current form */
#define NGX_HTTP_LOYALTY_REF_VERIFIED_LEN                                     \
    (LOYALTY_REF_CODE_MAX + 1 + 12 + 1 + LOYALTY_KID_MAX + 1                  \
     + LOYALTY_MAC_B64_LEN)

/* entries of the verified cookies, a power of two, in sets of 16 */
#define NGX_HTTP_LOYALTY_REF_VERIFIED      16384
#define NGX_HTTP_LOYALTY_REF_WAYS          16


/*
 * Attribution cookies whose MAC this worker has checked: a returning
 * visitor sends the same one with every click and every page that asks
 * about the attribution.  A hit needs the very same bytes (compared in
 * constant time: they hold a MAC), signed for the same referrer, the
 * owner the code has now, under the same keys: all the MAC binds, so
 * the check would pass again.  Only cookies that passed are kept; the
 * window is checked every time.  16-way set-associative by a hash of the
 * value, the set's hashes in a cache line of their own: a look costs
 * that line, and an entry's three only on a match (direct-mapped, a
 * quarter of 10,000 cookies were checked again and again).  16,384 entries of
 * 176 bytes, 2.75 MiB a worker in huge pages, allocated at the first
 * check and touched as cookies come.  Old-form cookies, replaced on
 * sight, are not kept.
 */
typedef struct {
    uint32_t                  gen;          /* of the keys */
    u_char                    value_len;
    u_char                    referrer_len;
    u_char                    value[NGX_HTTP_LOYALTY_REF_VERIFIED_LEN];
    u_char                    referrer[LOYALTY_ID_MAX];
} ngx_http_loyalty_ref_verified_t;


typedef struct {
    uint32_t                          tags[NGX_HTTP_LOYALTY_REF_VERIFIED];
    ngx_uint_t                        victim;
    ngx_http_loyalty_ref_verified_t   entries[NGX_HTTP_LOYALTY_REF_VERIFIED];
} ngx_http_loyalty_ref_verified_cache_t;


static ngx_int_t ngx_http_loyalty_ref_verify(loyalty_keyring_t *keys,
    ngx_str_t *value, ngx_str_t *referrer, loyalty_ref_cookie_t *rc);
static ngx_int_t ngx_http_loyalty_ref_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_ref_header_click(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf) NGX_HTTP_LOYALTY_OUT_OF_LINE;
static ngx_inline ngx_int_t ngx_http_loyalty_ref_header_cookie(
    ngx_http_request_t *r, ngx_http_loyalty_ref_t *ref);
static ngx_int_t ngx_http_loyalty_ref_header_send(ngx_http_request_t *r,
    ngx_http_loyalty_ref_t *ref) NGX_HTTP_LOYALTY_OUT_OF_LINE;


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

/* NULL until the first check; failed: none could be allocated */
static ngx_http_loyalty_ref_verified_cache_t  *ngx_http_loyalty_ref_verified;
static ngx_uint_t                       ngx_http_loyalty_ref_verified_failed;

/* the keys the entries were checked with, and their generation */
static loyalty_keyring_t  *ngx_http_loyalty_ref_verified_keys;
static uint32_t            ngx_http_loyalty_ref_verified_gen;


ngx_int_t
ngx_http_loyalty_ref_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_loyalty_ref_header_filter;

    return NGX_OK;
}


/*
 * The attribution cookie, if genuine, signed for the owner its code has
 * now, and within the window: NGX_OK, NGX_DECLINED, or NGX_ERROR.  A code
 * deleted since, or given to another member, takes the attribution with
 * it; a revoked or expired one still names who shared it.
 */
ngx_int_t
ngx_http_loyalty_ref_cookie(ngx_http_request_t *r, ngx_http_loyalty_click_t *c,
    ngx_http_loyalty_loc_conf_t *llcf, loyalty_keyring_t *keys,
    loyalty_ref_cookie_t *rc)
{
    long                      n;
    u_char                    name[LOYALTY_CODE_MAX];
    ngx_int_t                 found;
    ngx_str_t                 value, referrer;
    ngx_http_loyalty_code_t  *code;

    if (ngx_http_loyalty_get_cookie(r, &llcf->ref_cookie, &value) != NGX_OK) {
        return NGX_DECLINED;
    }

    n = -1;

    if (loyalty_ref_cookie_parse((char *) value.data, value.len, rc) == 0
        && rc->code_len <= LOYALTY_CODE_MAX)
    {
        n = loyalty_code_normalize(rc->code, rc->code_len, (char *) name);
    }

    if (n < 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: invalid attribution cookie ignored");
        return NGX_DECLINED;
    }

    found = ngx_http_loyalty_ref_find(r, c, name, n,
                                      ngx_http_loyalty_code_hash(name, n),
                                      &code);

    if (found == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (found == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: attribution cookie of unknown share code "
                      "\"%*s\" ignored", n, name);
        return NGX_DECLINED;
    }

    c->had_code = code;

    /* the code's owner outlives a cache entry that another code takes */
    if (ngx_http_loyalty_ref_copy(r, &referrer, code->member,
                                  code->member_len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* parsed above: the MAC is all that is left to check */
    if (ngx_http_loyalty_ref_verify(keys, &value, &referrer, rc) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: invalid attribution cookie ignored");
        return NGX_DECLINED;
    }

    switch (loyalty_ref_cookie_window(rc->at, ngx_time(), llcf->ref_window)) {

    case LOYALTY_COOKIE_VALID:
        return NGX_OK;

    case LOYALTY_COOKIE_EXPIRED:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "loyalty: attribution of %T past the window",
                       rc->at);
        return NGX_DECLINED;

    default:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: attribution cookie from the future ignored");
        return NGX_DECLINED;
    }
}


/*
 * The MAC of a parsed cookie, for referrer: NGX_OK (rc's referrer is
 * referrer), or NGX_DECLINED.  A cookie this worker checked before for
 * the same referrer and keys is not checked again.
 */
static ngx_int_t
ngx_http_loyalty_ref_verify(loyalty_keyring_t *keys, ngx_str_t *value,
    ngx_str_t *referrer, loyalty_ref_cookie_t *rc)
{
    uint32_t                                hash, *tags;
    ngx_uint_t                              i, first;
    ngx_http_loyalty_ref_verified_t        *set, *e;
    ngx_http_loyalty_ref_verified_cache_t  *vc;

    vc = ngx_http_loyalty_ref_verified;

    if (vc == NULL && !ngx_http_loyalty_ref_verified_failed) {
        vc = ngx_http_loyalty_huge_alloc(
                 sizeof(ngx_http_loyalty_ref_verified_cache_t),
                 ngx_cycle->log);

        /* without it every cookie is checked */
        ngx_http_loyalty_ref_verified = vc;
        ngx_http_loyalty_ref_verified_failed = (vc == NULL);
    }

    if (vc && ngx_http_loyalty_ref_verified_keys != keys) {
        /* new keys (a reload): every entry was checked with others */
        ngx_http_loyalty_ref_verified_keys = keys;

        if (++ngx_http_loyalty_ref_verified_gen == 0) {
            ngx_memzero(vc->tags, sizeof(vc->tags));
            ngx_http_loyalty_ref_verified_gen = 1;
        }
    }

    tags = NULL;
    set = NULL;
    hash = 0;

    if (vc && !rc->legacy && value->len <= NGX_HTTP_LOYALTY_REF_VERIFIED_LEN)
    {
        hash = ngx_murmur_hash2(value->data, value->len);
        first = hash
                & (NGX_HTTP_LOYALTY_REF_VERIFIED - NGX_HTTP_LOYALTY_REF_WAYS);
        hash |= 1;              /* 0 tags a free entry */
        tags = &vc->tags[first];
        set = &vc->entries[first];
    }

    for (i = 0; tags && i < NGX_HTTP_LOYALTY_REF_WAYS; i++) {
        e = &set[i];

        if (tags[i] == hash && e->gen == ngx_http_loyalty_ref_verified_gen
            && e->value_len == value->len && e->referrer_len == referrer->len
            && loyalty_ct_equal(e->value, value->data, value->len)
            && ngx_memcmp(e->referrer, referrer->data, referrer->len) == 0)
        {
            rc->referrer = (char *) referrer->data;
            rc->referrer_len = referrer->len;
            return NGX_OK;
        }
    }

    if (loyalty_ref_cookie_check(keys, (char *) value->data, value->len,
                                 (char *) referrer->data, referrer->len, rc)
        != 0)
    {
        return NGX_DECLINED;
    }

    if (tags == NULL) {
        return NGX_OK;
    }

    /* a free entry, or one of older keys; else replace in turn */
    for (i = 0; i < NGX_HTTP_LOYALTY_REF_WAYS; i++) {
        if (tags[i] == 0 || set[i].gen != ngx_http_loyalty_ref_verified_gen) {
            break;
        }
    }

    if (i == NGX_HTTP_LOYALTY_REF_WAYS) {
        i = vc->victim++ % NGX_HTTP_LOYALTY_REF_WAYS;
    }

    e = &set[i];
    tags[i] = hash;
    e->gen = ngx_http_loyalty_ref_verified_gen;
    e->value_len = (u_char) value->len;
    e->referrer_len = (u_char) referrer->len;
    ngx_memcpy(e->value, value->data, value->len);
    ngx_memcpy(e->referrer, referrer->data, referrer->len);

    return NGX_OK;
}


/*
 * An old-form cookie, which names the referrer, is replaced by one that
 * does not, for what is left of its window.
 */
ngx_int_t
ngx_http_loyalty_ref_reissue(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, loyalty_keyring_t *keys,
    loyalty_ref_cookie_t *had)
{
    ngx_str_t  code, referrer;

    code.data = (u_char *) had->code;
    code.len = had->code_len;
    referrer.data = (u_char *) had->referrer;
    referrer.len = had->referrer_len;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "loyalty: old-form attribution cookie of \"%V\" "
                   "replaced", &code);

    return ngx_http_loyalty_ref_set_cookie(r, llcf, keys, &code, &referrer,
                                           had->at);
}


#define ngx_http_loyalty_ref_lit(p, s)  ngx_cpymem(p, s, sizeof(s) - 1)


/*
 * The cookie of an attribution made at "at": for what is left of the
 * window.  Signed in place, after its name; written out without
 * ngx_sprintf(), once for every new attribution.
 */
ngx_int_t
ngx_http_loyalty_ref_set_cookie(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, loyalty_keyring_t *keys,
    ngx_str_t *code, ngx_str_t *referrer, time_t at)
{
    long                     n;
    u_char                  *p, *start;
    time_t                   age;
    ngx_http_loyalty_ref_t  *ref;

    ref = ngx_http_loyalty_ref_get(r);

    /* the value, NUL-terminated, then the attributes */
    start = ngx_pnalloc(r->pool, llcf->ref_cookie.len + 1
                                 + LOYALTY_REF_COOKIE_MAX + 1
                                 + sizeof("; Max-Age=") - 1 + NGX_TIME_T_LEN
                                 + sizeof("; Path=/; HttpOnly; SameSite=Lax")
                                 - 1 + sizeof("; Secure") - 1);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(start, llcf->ref_cookie.data, llcf->ref_cookie.len);
    *p++ = '=';

    n = loyalty_ref_cookie_sign(keys, (char *) code->data, code->len,
                                (char *) referrer->data, referrer->len, at,
                                (char *) p);
    if (n < 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "loyalty: cannot sign an attribution cookie");
        return NGX_ERROR;
    }

    age = llcf->ref_window - (ngx_time() - at);

    if (age < 1) {
        age = 1;

    } else if (age > llcf->ref_window) {
        age = llcf->ref_window;
    }

    p = ngx_http_loyalty_ref_lit(p + n, "; Max-Age=");
    p += loyalty_format_u64((uint64_t) age, (char *) p);
    p = ngx_http_loyalty_ref_lit(p, "; Path=/; HttpOnly; SameSite=Lax");

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_http_loyalty_ref_lit(p, "; Secure");
    }
#endif

    ref->set_cookie.data = start;
    ref->set_cookie.len = p - start;

    return NGX_OK;
}


/*
 * A click counts and sets its cookie even when no variable asks about
 * it; other requests pay only for a look at their arguments and at the
 * pool's cleanups, in line, with no frame built: the work is in
 * ngx_http_loyalty_ref_header_click() and _send().
 */
static ngx_int_t
ngx_http_loyalty_ref_header_filter(ngx_http_request_t *r)
{
    ngx_http_loyalty_ref_t        *ref;
    ngx_http_loyalty_loc_conf_t   *llcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    if (lmcf->keys == NULL || lmcf->store == NULL) {
        return ngx_http_next_header_filter(r);
    }

    ref = ngx_http_loyalty_ref_get(r);

    if (ref == NULL) {
        llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

        /* no arguments, or no argument of a click: nothing to attribute */
        if (llcf->ref_arg.len == 0 || r->args.len <= llcf->ref_arg.len) {
            return ngx_http_next_header_filter(r);
        }

        return ngx_http_loyalty_ref_header_click(r, llcf);
    }

    return ngx_http_loyalty_ref_header_cookie(r, ref);
}


/* a request with arguments and no attribution yet: a click, if one */
static ngx_int_t
ngx_http_loyalty_ref_header_click(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf)
{
    ngx_str_t                arg;
    ngx_http_loyalty_ref_t  *ref;

    if (ngx_http_loyalty_arg(r, llcf->ref_arg.data, llcf->ref_arg.len, &arg)
        != NGX_OK)
    {
        return ngx_http_next_header_filter(r);
    }

    ref = ngx_http_loyalty_attribute(r);
    if (ref == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_loyalty_ref_header_cookie(r, ref);
}


/* the attribution cookie, unless there is none or it went already */
static ngx_inline ngx_int_t
ngx_http_loyalty_ref_header_cookie(ngx_http_request_t *r,
    ngx_http_loyalty_ref_t *ref)
{
    if (ref->set_cookie.len == 0 || ref->cookie_sent) {
        return ngx_http_next_header_filter(r);
    }

    return ngx_http_loyalty_ref_header_send(r, ref);
}


/* the attribution cookie, on the response of the request that set it */
static ngx_int_t
ngx_http_loyalty_ref_header_send(ngx_http_request_t *r,
    ngx_http_loyalty_ref_t *ref)
{
    if (ngx_http_loyalty_add_header(r, "Set-Cookie", ref->set_cookie.data,
                                    ref->set_cookie.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ref->cookie_sent = 1;

    return ngx_http_next_header_filter(r);
}
