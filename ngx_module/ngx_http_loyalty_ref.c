/*
 * nginx-loyalty: referral attribution.
 *
 * A click is a request with ?ref=CODE (loyalty_ref_arg) or a short link
 * in a loyalty_share location.  The attribution it makes lives in a
 * signed cookie: code and click time, its MAC bound to the code's owner,
 * who is read from the store again when the cookie comes back.  The
 * attribution of a request is worked out once, when a variable, the
 * short-link handler or the header filter first asks, and the header
 * filter sends the cookie (ngx_http_loyalty_ref_cookie.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_ref.h"
#include "ngx_http_loyalty_lua.h"


static ngx_int_t ngx_http_loyalty_ref_click(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *raw);
static ngx_int_t ngx_http_loyalty_ref_known(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c);
static ngx_int_t ngx_http_loyalty_ref_clicked(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *raw);
static ngx_int_t ngx_http_loyalty_ref_settle(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *raw);
static void ngx_http_loyalty_ref_keep(ngx_http_loyalty_click_t *c);
static ngx_int_t ngx_http_loyalty_ref_code(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *raw,
    ngx_http_loyalty_loc_conf_t *llcf);
static void ngx_http_loyalty_ref_judge(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *member, ngx_str_t *locked,
    loyalty_ref_cookie_t *had, ngx_http_loyalty_loc_conf_t *llcf);
/* asks Lua: out of line, so that the hot path stays in fewer cache lines */
static ngx_int_t ngx_http_loyalty_ref_hook(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *member, ngx_uint_t had)
    NGX_HTTP_LOYALTY_OUT_OF_LINE;
static ngx_uint_t ngx_http_loyalty_ref_bot(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c);
static uint64_t ngx_http_loyalty_ref_visitor(ngx_http_request_t *r,
    ngx_str_t *member, uint64_t ua_hash);
static uint64_t ngx_http_loyalty_hash64(const u_char *p, size_t len,
    uint64_t seed);
static ngx_int_t ngx_http_loyalty_ref_level2(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c);
static ngx_int_t ngx_http_loyalty_ref_referrer_of(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, u_char *id, size_t len,
    ngx_str_t *referrer);


ngx_str_t  ngx_http_loyalty_ref_status_names[] = {
    ngx_string("none"),
    ngx_string("new"),
    ngx_string("kept"),
    ngx_string("replaced"),
    ngx_string("self"),
    ngx_string("bot"),
    ngx_string("invalid"),
    ngx_string("expired"),
    ngx_string("revoked"),
    ngx_string("exhausted"),
    ngx_string("refused")
};


/* marks the attribution's entry in the pool: ngx_http_loyalty_ref_get() */
void
ngx_http_loyalty_ref_cleanup(void *data)
{
    /* nothing to free: the handler only marks the attribution's entry */
}


ngx_http_loyalty_ref_t *
ngx_http_loyalty_attribute(ngx_http_request_t *r)
{
    u_char                        *p, *dst, *src;
    ngx_str_t                      raw;
    ngx_int_t                      rc;
    ngx_pool_cleanup_t            *cln;
    ngx_http_request_t            *mr;
    ngx_http_loyalty_ref_t        *ref;
    ngx_http_loyalty_loc_conf_t   *llcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    ref = ngx_http_loyalty_ref_get(r);
    if (ref) {
        return ref;
    }

    mr = r->main;

    cln = ngx_pool_cleanup_add(mr->pool, sizeof(ngx_http_loyalty_ref_t));
    if (cln == NULL) {
        return NULL;
    }

    ref = cln->data;
    ngx_memzero(ref, sizeof(ngx_http_loyalty_ref_t));
    cln->handler = ngx_http_loyalty_ref_cleanup;

    lmcf = ngx_http_get_module_main_conf(mr, ngx_http_loyalty_module);

    if (lmcf->keys == NULL || lmcf->store == NULL) {
        return ref;
    }

    llcf = ngx_http_get_module_loc_conf(mr, ngx_http_loyalty_module);

    /* a short link's code is the last segment of its path */
    if (llcf->share && !(mr->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        /* refused with 405, whoever reads a variable on that page */
        rc = ngx_http_loyalty_ref_click(mr, llcf, NULL);

    } else if (llcf->share) {
        p = mr->uri.data + mr->uri.len;
        while (p > mr->uri.data && p[-1] != '/') {
            p--;
        }

        raw.data = p;
        raw.len = mr->uri.data + mr->uri.len - p;
        rc = ngx_http_loyalty_ref_click(mr, llcf, &raw);

    } else if (llcf->ref_arg.len
               && ngx_http_loyalty_arg(mr, llcf->ref_arg.data,
                                       llcf->ref_arg.len, &raw)
                  == NGX_OK)
    {
        /* an escaped code is as good as a plain one */
        if (raw.len <= 3 * LOYALTY_CODE_MAX
            && memchr(raw.data, '%', raw.len) != NULL)
        {
            p = ngx_pnalloc(mr->pool, raw.len);
            if (p == NULL) {
                return NULL;
            }

            ngx_memcpy(p, raw.data, raw.len);
            dst = p;
            src = p;
            ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);
            raw.data = p;
            raw.len = dst - p;
        }

        rc = ngx_http_loyalty_ref_click(mr, llcf, &raw);

    } else {
        rc = ngx_http_loyalty_ref_click(mr, llcf, NULL);
    }

    if (rc != NGX_OK) {
        return NULL;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "loyalty: attribution %V code \"%V\" referrer \"%V\" "
                   "at %T", &ngx_http_loyalty_ref_status_names[ref->status],
                   &ref->code, &ref->referrer, ref->at);

    return ref;
}


/*
 * Works out the attribution: the visitor's own lifetime referrer first,
 * then a click (raw: its code; NULL: none), then the cookie.
 */
static ngx_int_t
ngx_http_loyalty_ref_click(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *raw)
{
    long                           n;
    u_char                         name[LOYALTY_CODE_MAX];
    uint32_t                       hash;
    uint64_t                       ua_hash;
    ngx_int_t                      rc;
    ngx_uint_t                     lazy;
    ngx_table_elt_t               *ua;
    ngx_http_loyalty_click_t       c;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /*
     * The code as the store keys it (no code is empty), and who clicks:
     * once for all tries
     */
    n = raw ? loyalty_code_normalize((char *) raw->data, raw->len,
                                     (char *) name)
            : -1;

    hash = 0;
    ua_hash = 0;

    if (n > 0) {
        hash = ngx_http_loyalty_code_hash(name, n);
        ua = r->headers_in.user_agent;

        if (ua) {
            ua_hash = ngx_http_loyalty_hash64(ua->value.data, ua->value.len,
                                              0);
        }
    }

    lazy = 1;

again:

    ngx_memzero(&c, sizeof(ngx_http_loyalty_click_t));
    c.name = name;
    c.len = (n > 0) ? (size_t) n : 0;
    c.hash = hash;
    c.ua_hash = ua_hash;
    c.ref = ngx_http_loyalty_ref_get(r);
    c.store = lmcf->store;
    c.clicks = ngx_http_loyalty_clicks_get(lmcf);
    c.keys = lmcf->keys;
    c.llcf = llcf;
    c.slot = NGX_DECLINED;
    c.lazy = lazy;

    rc = ngx_http_loyalty_ref_known(r, &c);

    if (rc == NGX_OK) {
        /* no store for now: nobody to attribute to, count nothing */
        rc = ngx_http_loyalty_ref_clicked(r, &c, c.open ? raw : NULL);
    }

    if (rc == NGX_AGAIN) {
        /* the store changed before the click was counted: all again */
        if (c.txn) {
            ngx_http_loyalty_store_end(c.store);
        }

        lazy = 0;
        goto again;
    }

    if (rc == NGX_OK) {
        rc = ngx_http_loyalty_ref_settle(r, &c, c.open ? raw : NULL);
    }

    if (c.txn) {
        ngx_http_loyalty_store_end(c.store);
    }

    return rc;
}


/*
 * The read transaction, begun at the first read: while the caches
 * answer, a click needs none (see ngx_http_loyalty_store_peek()).  NULL
 * if the store cannot be read; c->moved when it changed since the peek,
 * or cannot be read: before the click is counted, it is then worked out
 * again from a transaction begun first.
 */
MDB_txn *
ngx_http_loyalty_ref_txn(ngx_http_request_t *r, ngx_http_loyalty_click_t *c)
{
    if (c->txn || !c->lazy) {
        return c->txn;
    }

    c->lazy = 0;
    c->txn = ngx_http_loyalty_store_begin(c->store, r->connection->log);

    if (c->txn == NULL || c->store->epoch != c->epoch
        || c->store->gen != c->gen)
    {
        c->moved = 1;
    }

    return c->txn;
}


/* ngx_http_loyalty_code_find(), in the transaction if a read is needed */
ngx_int_t
ngx_http_loyalty_ref_find(ngx_http_request_t *r, ngx_http_loyalty_click_t *c,
    const u_char *name, size_t len, uint32_t hash,
    ngx_http_loyalty_code_t **code)
{
    ngx_int_t  rc;

    rc = ngx_http_loyalty_code_find(r, c->store, c->txn, name, len, hash,
                                    code);

    if (rc != NGX_AGAIN) {
        return rc;
    }

    if (ngx_http_loyalty_ref_txn(r, c) == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_loyalty_code_find(r, c->store, c->txn, name, len, hash,
                                      code);
}


/*
 * What is known before the click: the member, the attribution their
 * cookie names (void if it names themselves), their lifetime referrer.
 * NGX_AGAIN: the store changed meanwhile.
 */
static ngx_int_t
ngx_http_loyalty_ref_known(ngx_http_request_t *r, ngx_http_loyalty_click_t *c)
{
    ngx_uint_t               peeked;
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_loyalty_identify_peeked(r, &peeked);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->identity == NGX_HTTP_LOYALTY_ID_VALID) {
        c->member = ctx->member;
    }

    /*
     * A click reads its code's set in the code cache, the code's slot in
     * the click zone and the visitor's recent clicks there: each at a
     * random place no request touched lately.  Asked for now, they come
     * in together, and while the cookie is looked at, not one after the
     * other as each is needed.
     */
    if (c->len) {
        ngx_http_loyalty_code_prefetch(c->store, c->hash);

        if (c->clicks) {
            c->visit = ngx_http_loyalty_clicks_visit(c->clicks, c->hash,
                           ngx_http_loyalty_ref_visitor(r, &c->member,
                                                        c->ua_hash),
                           c->name, c->len);
        }
    }

    /* a member identified just now took up the last snapshot already */
    if (c->lazy
        && (peeked
            || ngx_http_loyalty_store_peek(c->store, r->connection->log)
               == NGX_OK))
    {
        c->epoch = c->store->epoch;
        c->gen = c->store->gen;
        c->open = 1;

    } else {
        c->lazy = 0;
        c->txn = ngx_http_loyalty_store_begin(c->store, r->connection->log);
        c->open = (c->txn != NULL);
    }

    /* the cookie names a code: its referrer is the code's owner */
    if (c->open) {
        switch (ngx_http_loyalty_ref_cookie(r, c, c->llcf, c->keys, &c->had))
        {

        case NGX_OK:
            c->have = 1;
            break;

        case NGX_ERROR:
            return NGX_ERROR;

        default:
            break;
        }
    }

    if (c->member.len) {
        /* an attribution to oneself, made before logging in, is void */
        if (c->have && c->had.referrer_len == c->member.len
            && ngx_memcmp(c->had.referrer, c->member.data, c->member.len)
               == 0)
        {
            c->have = 0;
        }
    }

    if (c->open && c->member.len
        && ngx_http_loyalty_ref_txn(r, c) != NULL
        && ngx_http_loyalty_ref_referrer_of(r, c->store, c->txn,
                                            c->member.data, c->member.len,
                                            &c->locked)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return c->moved ? NGX_AGAIN : NGX_OK;
}


/* the click, if any: the code found, counted, judged */
static ngx_int_t
ngx_http_loyalty_ref_clicked(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *raw)
{
    c->ref->status = NGX_HTTP_LOYALTY_REF_NONE;

    if (raw == NULL) {
        return NGX_OK;
    }

    switch (ngx_http_loyalty_ref_code(r, c, raw, c->llcf)) {

    case NGX_OK:
        break;

    case NGX_AGAIN:
        return NGX_AGAIN;

    default:
        return NGX_ERROR;
    }

    if (c->slot != NGX_DECLINED && !c->bot
        && ngx_http_loyalty_clicks_unique(c->clicks, c->visit))
    {
        ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                      LOYALTY_CLICK_UNIQUE);
    }

    if (c->click == NGX_HTTP_LOYALTY_REF_NONE) {
        ngx_http_loyalty_ref_judge(r, c, &c->member, &c->locked,
                                   c->have ? &c->had : NULL, c->llcf);
    }

    c->ref->status = c->click;
    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_CLICK + c->click);

    return NGX_OK;
}


/*
 * The attribution that stands: a new one (and its cookie), the lifetime
 * referrer, or the cookie's; then the referrer's own referrer.
 */
static ngx_int_t
ngx_http_loyalty_ref_settle(ngx_http_request_t *r,
    ngx_http_loyalty_click_t *c, ngx_str_t *raw)
{
    ngx_http_loyalty_ref_t  *ref;

    ref = c->ref;

    if (ref->status == NGX_HTTP_LOYALTY_REF_NEW
        || ref->status == NGX_HTTP_LOYALTY_REF_REPLACED)
    {
        ref->at = ngx_time();

        if (ngx_http_loyalty_ref_copy(r, &ref->code, c->name, c->len)
            != NGX_OK
            || ngx_http_loyalty_ref_copy(r, &ref->referrer, c->code->member,
                                         c->code->member_len)
               != NGX_OK
            || ngx_http_loyalty_ref_set_cookie(r, c->llcf, c->keys,
                                               &ref->code, &ref->referrer,
                                               ref->at)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (c->locked.len || c->have) {
        ngx_http_loyalty_ref_keep(c);

        if (raw == NULL) {
            ref->status = NGX_HTTP_LOYALTY_REF_KEPT;
        }
    }

    if (c->have && c->had.legacy && ref->set_cookie.len == 0
        && ngx_http_loyalty_ref_reissue(r, c->llcf, c->keys, &c->had)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (c->open && ref->referrer.len
        && ngx_http_loyalty_ref_level2(r, c) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * No new attribution: the lifetime referrer, else the cookie's; with it
 * the cookie's code and click time, when the cookie names that referrer.
 * Nothing is copied: the cookie's referrer is the request's own copy
 * (ngx_http_loyalty_ref_cookie()), its code in the request's header.
 */
static void
ngx_http_loyalty_ref_keep(ngx_http_loyalty_click_t *c)
{
    ngx_http_loyalty_ref_t  *ref;

    ref = c->ref;

    if (c->locked.len) {
        ref->referrer = c->locked;

        if (!c->have || c->had.referrer_len != c->locked.len
            || ngx_memcmp(c->had.referrer, c->locked.data, c->locked.len)
               != 0)
        {
            return;
        }

    } else {
        ref->referrer.data = (u_char *) c->had.referrer;
        ref->referrer.len = c->had.referrer_len;
    }

    ref->code.data = (u_char *) c->had.code;
    ref->code.len = c->had.code_len;
    ref->at = c->had.at;
}


/*
 * Finds the clicked code and counts the click: c->click is left
 * NGX_HTTP_LOYALTY_REF_NONE for a code that may attribute.
 */
static ngx_int_t
ngx_http_loyalty_ref_code(ngx_http_request_t *r, ngx_http_loyalty_click_t *c,
    ngx_str_t *raw, ngx_http_loyalty_loc_conf_t *llcf)
{
    ngx_int_t  rc;

    if (c->len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: malformed share code (%uz bytes) ignored",
                      raw->len);
        c->click = NGX_HTTP_LOYALTY_REF_INVALID;
        return NGX_OK;
    }

    rc = ngx_http_loyalty_ref_find(r, c, c->name, c->len, c->hash,
                                   &c->code);

    if (rc == NGX_ERROR || c->moved) {
        return c->moved ? NGX_AGAIN : NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: unknown share code \"%*s\"", c->len,
                      c->name);
        c->click = NGX_HTTP_LOYALTY_REF_INVALID;
        return NGX_OK;
    }

    /* a short link's target, kept for the handler in the request's pool */
    if (llcf->share && c->code->target_len
        && ngx_http_loyalty_ref_copy(r, &c->ref->target, c->code->target,
                                     c->code->target_len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (c->clicks) {
        c->slot = c->code->slot;

        if (c->slot == NGX_DECLINED) {
            c->slot = ngx_http_loyalty_clicks_slot(c->clicks, c->name,
                                                   c->len, c->hash,
                                                   r->connection->log);
            c->code->slot = c->slot;
        }
    }

    if (c->slot != NGX_DECLINED) {
        ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                      LOYALTY_CLICK_TOTAL);
    }

    c->bot = ngx_http_loyalty_ref_bot(r, c);

    if (c->bot && c->slot != NGX_DECLINED) {
        ngx_http_loyalty_clicks_count(c->clicks, c->slot, LOYALTY_CLICK_BOT);
    }

    /* a dead code is dead to bots too: they must not learn its target */
    if (c->code->flags & LOYALTY_CODE_REVOKED) {
        c->click = NGX_HTTP_LOYALTY_REF_REVOKED;

    } else if ((c->code->flags & LOYALTY_CODE_EXPIRES)
               && c->code->expires_at <= ngx_time())
    {
        c->click = NGX_HTTP_LOYALTY_REF_EXPIRED;

    } else if (c->bot) {
        c->click = NGX_HTTP_LOYALTY_REF_BOT;
        return NGX_OK;
    }

    if (c->click != NGX_HTTP_LOYALTY_REF_NONE) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: click on %V share code \"%*s\"",
                      &ngx_http_loyalty_ref_status_names[c->click],
                      c->len, c->name);

        if (c->slot != NGX_DECLINED) {
            ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                          LOYALTY_CLICK_REJECTED);
        }
    }

    return NGX_OK;
}


/* a live code's click: who it attributes to, under the model */
static void
ngx_http_loyalty_ref_judge(ngx_http_request_t *r, ngx_http_loyalty_click_t *c,
    ngx_str_t *member, ngx_str_t *locked, loyalty_ref_cookie_t *had,
    ngx_http_loyalty_loc_conf_t *llcf)
{
    if (member->len == c->code->member_len
        && ngx_memcmp(member->data, c->code->member, member->len) == 0)
    {
        c->click = NGX_HTTP_LOYALTY_REF_SELF;

        if (c->slot != NGX_DECLINED) {
            ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                          LOYALTY_CLICK_SELF);
        }

        return;
    }

    if (locked->len) {
        c->click = NGX_HTTP_LOYALTY_REF_KEPT;
        return;
    }

    if (had
        && (llcf->ref_model == NGX_HTTP_LOYALTY_MODEL_FIRST
            || (had->code_len == c->len
                && ngx_memcmp(had->code, c->name, c->len) == 0)))
    {
        c->click = NGX_HTTP_LOYALTY_REF_KEPT;
        return;
    }

    /* before a limited code's claim: a refused click uses none */
    if (ngx_http_loyalty_ref_hook(r, c, member, had != NULL) != NGX_OK) {
        c->click = NGX_HTTP_LOYALTY_REF_REFUSED;

        if (c->slot != NGX_DECLINED) {
            ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                          LOYALTY_CLICK_REJECTED);
        }

        return;
    }

    if ((c->code->flags & LOYALTY_CODE_MAX_CLICKS)
        && (c->slot == NGX_DECLINED
            || ngx_http_loyalty_ref_txn(r, c) == NULL
            || ngx_http_loyalty_clicks_claim(c->clicks, c->slot, c->store,
                                             c->txn, c->code->max_clicks)
               != NGX_OK))
    {
        /* without a counter, or the store, the limit holds firm */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: click on exhausted share code \"%*s\"",
                      c->len, c->name);

        c->click = NGX_HTTP_LOYALTY_REF_EXHAUSTED;

        if (c->slot != NGX_DECLINED) {
            ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                          LOYALTY_CLICK_REJECTED);
        }

        return;
    }

    c->click = had ? NGX_HTTP_LOYALTY_REF_REPLACED : NGX_HTTP_LOYALTY_REF_NEW;

    if (c->slot != NGX_DECLINED) {
        ngx_http_loyalty_clicks_count(c->clicks, c->slot,
                                      LOYALTY_CLICK_ATTRIBUTED);
    }
}


/*
 * The click hook: NGX_DECLINED when it refuses the attribution.  A hook
 * that fails changes nothing.
 */
static ngx_int_t
ngx_http_loyalty_ref_hook(ngx_http_request_t *r, ngx_http_loyalty_click_t *c,
    ngx_str_t *member, ngx_uint_t had)
{
    int                            i;
    loyalty_member_t               m;
    const loyalty_tierset_t       *ts;
    ngx_http_loyalty_lua_t        *vm;
    ngx_http_loyalty_lua_click_t   lc;

    vm = ngx_http_loyalty_lua_get(LOYALTY_LUA_HOOK_CLICK);

    /* a hook that cannot be asked changes nothing, as one that fails */
    if (vm == NULL || ngx_http_loyalty_ref_txn(r, c) == NULL) {
        return NGX_OK;
    }

    ngx_memzero(&lc, sizeof(ngx_http_loyalty_lua_click_t));

    lc.code.data = c->name;
    lc.code.len = c->len;
    lc.referrer.data = c->code->member;
    lc.referrer.len = c->code->member_len;
    lc.referrer2.data = c->code->referrer2;
    lc.referrer2.len = c->code->referrer2_len;
    lc.status = had ? "replaced" : "new";

    if (member->len) {
        if (loyalty_member_get(c->txn, &c->store->st,
                               (const char *) member->data, member->len, &m)
            == 0)
        {
            lc.member = *member;
            lc.m = &m;

            ts = ngx_http_loyalty_store_tiers(c->store, r->connection->log);
            i = ts ? loyalty_tierset_find(ts, m.tier, m.tier_len) : -1;

            if (i >= 0) {
                lc.member_rank = ts->tiers[i].rank;
                lc.has_member_rank = 1;
            }
        }
    }

    ngx_http_loyalty_lua_store(vm, &c->store->st, c->txn);

    if (ngx_http_loyalty_lua_click(vm, r, &lc) != NGX_OK) {
        return NGX_OK;
    }

    if (lc.refuse) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: the click hook refused the attribution to "
                      "share code \"%V\"", &lc.code);
        return NGX_DECLINED;
    }

    c->ref->campaign = lc.campaign;

    return NGX_OK;
}


/*
 * HEAD requests, no User-Agent, a bare one ("Mozilla/5.0" alone), or one
 * on the bots list.  Each worker
 * remembers the verdict for the User-Agents it has seen (by a 64-bit
 * hash): real traffic repeats a few hundred of them.
 */
static ngx_uint_t
ngx_http_loyalty_ref_bot(ngx_http_request_t *r, ngx_http_loyalty_click_t *c)
{
    long                           i;
    size_t                         len;
    uint64_t                      *seen, h;
    ngx_table_elt_t               *ua;
    const char                    *pattern;
    ngx_http_loyalty_main_conf_t  *lmcf;

    ua = r->headers_in.user_agent;

    if (r->method == NGX_HTTP_HEAD || ua == NULL
        || loyalty_bots_bare((char *) ua->value.data, ua->value.len))
    {
        return 1;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /* the verdict is the low bit; 0 is no entry */
    h = c->ua_hash | 2;
    seen = NULL;

    if (lmcf->bot_verdicts) {
        seen = &lmcf->bot_verdicts[h % NGX_HTTP_LOYALTY_BOT_VERDICTS];

        if ((*seen | 1) == (h | 1)) {
            return *seen & 1;
        }
    }

    i = loyalty_bots_match(lmcf->bots, (char *) ua->value.data,
                           ua->value.len);

    if (seen) {
        *seen = (h & ~1ULL) | (i >= 0);
    }

    if (i >= 0) {
        pattern = loyalty_bots_pattern(lmcf->bots, i, &len);
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "loyalty: bot click, user agent has \"%*s\"",
                       len, pattern);
        return 1;
    }

    return 0;
}


/* who is clicking, for unique clicks: the member, else address and agent */
static uint64_t
ngx_http_loyalty_ref_visitor(ngx_http_request_t *r, ngx_str_t *member,
    uint64_t ua_hash)
{
    if (member->len) {
        return ngx_http_loyalty_hash64(member->data, member->len, 1);
    }

    return ngx_http_loyalty_hash64(r->connection->addr_text.data,
                                   r->connection->addr_text.len, ua_hash);
}


/* eight bytes a step: a User-Agent costs a few dozen multiplications */
static uint64_t
ngx_http_loyalty_hash64(const u_char *p, size_t len, uint64_t seed)
{
    uint64_t  h, w;

    h = seed ^ (len * 0x9e3779b97f4a7c15ULL);

    for ( /* void */ ; len >= 8; p += 8, len -= 8) {
        ngx_memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }

    w = 0;
    ngx_memcpy(&w, p, len);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;

    return h;
}


/*
 * The referrer's own referrer.  The code the attribution names knows its
 * owner's; that is a cache hit for most requests.
 */
static ngx_int_t
ngx_http_loyalty_ref_level2(ngx_http_request_t *r, ngx_http_loyalty_click_t *c)
{
    ngx_int_t                 rc;
    ngx_http_loyalty_ref_t   *ref;
    ngx_http_loyalty_code_t  *code;

    ref = c->ref;
    code = NULL;

    if (c->code && ref->code.len == c->len
        && ngx_memcmp(ref->code.data, c->name, c->len) == 0)
    {
        code = c->code;

    } else if (c->had_code && c->had_code->len == ref->code.len
               && ngx_memcmp(c->had_code->code, ref->code.data,
                             ref->code.len)
                  == 0)
    {
        /* the cookie's, unless a lookup since gave its entry to another */
        code = c->had_code;

    } else if (ref->code.len && ref->code.len <= LOYALTY_CODE_MAX) {
        rc = ngx_http_loyalty_ref_find(r, c, ref->code.data, ref->code.len,
                                       ngx_http_loyalty_code_hash(
                                           ref->code.data, ref->code.len),
                                       &code);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            code = NULL;
        }
    }

    if (code && code->member_len == ref->referrer.len
        && ngx_memcmp(code->member, ref->referrer.data, ref->referrer.len)
           == 0)
    {
        return ngx_http_loyalty_ref_copy(r, &ref->referrer2, code->referrer2,
                                         code->referrer2_len);
    }

    if (ngx_http_loyalty_ref_txn(r, c) == NULL) {
        /* the store cannot be read now: no level 2 */
        return NGX_OK;
    }

    return ngx_http_loyalty_ref_referrer_of(r, c->store, c->txn,
                                            ref->referrer.data,
                                            ref->referrer.len,
                                            &ref->referrer2);
}


/* a member's referrer as the store names it; empty if none or absent */
static ngx_int_t
ngx_http_loyalty_ref_referrer_of(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, u_char *id, size_t len,
    ngx_str_t *referrer)
{
    size_t       n;
    const char  *p;

    if (ngx_http_loyalty_store_referrer(store, txn, r->connection->log, id,
                                        len, &p, &n)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_loyalty_ref_copy(r, referrer, p, n);
}


ngx_int_t
ngx_http_loyalty_ref_copy(ngx_http_request_t *r, ngx_str_t *dst,
    const void *src, size_t len)
{
    dst->len = len;

    if (len == 0) {
        dst->data = NULL;
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(r->main->pool, len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);

    return NGX_OK;
}
