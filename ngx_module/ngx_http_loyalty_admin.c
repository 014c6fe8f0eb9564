/*
 * nginx-loyalty: the admin API, the write path from the shop's backend.
 *
 *   POST   .../events                  a batch of events
 *   GET    .../members/ID              the member
 *   PUT    .../members/ID              create or replace the member
 *   PATCH  .../members/ID              change the fields named
 *   DELETE .../members/ID
 *   POST   .../members/ID/erase        erase, the accounting kept under a
 *                                      pseudonym
 *   GET    .../members/ID/export       everything held about the member
 *   GET    .../members/ID/referrals    level-1 and level-2 downline
 *   GET    .../members/ID/ledger       points entries and balance
 *   PUT    .../codes/CODE, .../prices/SKU
 *   GET    .../rules, PUT .../rules
 *   GET    .../lua                     the Lua hooks' calls and failures
 *   GET    .../webhooks                the webhooks' counts
 *   GET    .../due                     claims touches due, for a lease
 *   POST   .../due/ack                 acknowledges touches
 *   GET    .../stats                   the conversion counters
 *                                      (ngx_http_loyalty_stats.c)
 *
 * This file routes a request, reads, and sends answers; who may ask is
 * ngx_http_loyalty_admin_auth.c's, and every write (claims of touches
 * due included) is ngx_http_loyalty_admin_write.c's, made by the store
 * writer in nginx's thread pool: a 200 is sent only once the transaction
 * is committed and synced.  Reads use the worker's read transaction like
 * every other lookup.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_admin.h"
#include "ngx_http_loyalty_lua.h"
#include "loyalty_admin.h"
#include "loyalty_due.h"
#include "loyalty_batch.h"
#include "loyalty_rules.h"


#define NGX_HTTP_LOYALTY_LEDGER_LIMIT  1000


/*
 * A resource: the last three segments of its path, last first (NULL:
 * any), the one that names its record (1 + its index; 0: none), and the
 * methods it allows.  The first that matches is the request's.
 */
typedef struct {
    const char                  *seg[3];
    ngx_uint_t                   key;
    ngx_http_loyalty_op_e        op;
    ngx_uint_t                   allowed;
} ngx_http_loyalty_admin_route_t;


static const ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_routes[] =
{
    { { "referrals", NULL, "members" }, 2, NGX_HTTP_LOYALTY_OP_REFERRALS,
      NGX_HTTP_GET },
    { { "ledger", NULL, "members" }, 2, NGX_HTTP_LOYALTY_OP_LEDGER,
      NGX_HTTP_GET },
    { { "erase", NULL, "members" }, 2, NGX_HTTP_LOYALTY_OP_ERASE,
      NGX_HTTP_POST },
    { { "export", NULL, "members" }, 2, NGX_HTTP_LOYALTY_OP_EXPORT,
      NGX_HTTP_GET },
    { { NULL, "members", NULL }, 1, NGX_HTTP_LOYALTY_OP_MEMBER,
      NGX_HTTP_GET|NGX_HTTP_PUT|NGX_HTTP_PATCH|NGX_HTTP_DELETE },
    { { NULL, "codes", NULL }, 1, NGX_HTTP_LOYALTY_OP_CODE, NGX_HTTP_PUT },
    { { NULL, "prices", NULL }, 1, NGX_HTTP_LOYALTY_OP_PRICE, NGX_HTTP_PUT },
    { { "events", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_EVENTS,
      NGX_HTTP_POST },
    { { "rules", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_RULES,
      NGX_HTTP_GET|NGX_HTTP_PUT },
    { { "lua", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_LUA, NGX_HTTP_GET },
    { { "webhooks", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_WEBHOOKS,
      NGX_HTTP_GET },
    { { "stats", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_STATS, NGX_HTTP_GET },
    { { "due", NULL, NULL }, 0, NGX_HTTP_LOYALTY_OP_DUE, NGX_HTTP_GET },
    { { "ack", "due", NULL }, 0, NGX_HTTP_LOYALTY_OP_DUE_ACK,
      NGX_HTTP_POST },
    { { NULL, NULL, NULL }, 0, 0, 0 }
};


static ngx_int_t ngx_http_loyalty_admin_route(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_get(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_admin_req_t *req);
static ngx_int_t ngx_http_loyalty_admin_hosts(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_loc_conf_t *llcf);
static ngx_int_t ngx_http_loyalty_admin_allow(ngx_http_request_t *r,
    ngx_uint_t allowed);
static void ngx_http_loyalty_admin_req_cleanup(void *data);
static ngx_int_t ngx_http_loyalty_admin_read(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_claim_args(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static void ngx_http_loyalty_admin_body(ngx_http_request_t *r);


ngx_int_t
ngx_http_loyalty_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_loyalty_admin_t      *a;
    ngx_http_loyalty_loc_conf_t   *llcf;
    ngx_http_loyalty_admin_req_t  *req;
    ngx_http_loyalty_main_conf_t  *lmcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /* its files hold no data, and a browser cannot send a token for them */
    rc = ngx_http_loyalty_dashboard_handler(r, llcf);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    req = ngx_http_loyalty_admin_req(r, 1);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_loyalty_admin_access(r, llcf, req);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_admin_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->request = r;
    a->store = lmcf->store;
    a->method = r->method;
    a->max_events = llcf->admin_batch;
    a->now = ngx_time();

    rc = ngx_http_loyalty_admin_route(r, a);

    if (rc != NGX_OK) {
        (void) ngx_http_discard_request_body(r);

        if (rc == NGX_HTTP_NOT_ALLOWED
            && ngx_http_loyalty_admin_allow(r, a->allowed) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_loyalty_admin_error(r, rc, a->why);
    }

    rc = ngx_http_loyalty_admin_scope(r, a, req->token);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (r->method == NGX_HTTP_GET) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_loyalty_admin_get(r, a, req);
    }

    if (ngx_http_loyalty_admin_hosts(r, a, llcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->admin = a;

    if (r->method == NGX_HTTP_DELETE) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        /* finalized when the write is done, as after reading a body */
        r->main->count++;
        ngx_http_loyalty_admin_body(r);
        return NGX_DONE;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_admin_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* GET: a read, a report, an export, or a claim of touches due (a write) */
static ngx_int_t
ngx_http_loyalty_admin_get(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_admin_req_t *req)
{
    ngx_int_t                      rc;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    if (a->op == NGX_HTTP_LOYALTY_OP_LUA) {
        return ngx_http_loyalty_admin_json(r, NGX_HTTP_OK,
                   ngx_http_loyalty_lua_report(lmcf->lua));
    }

    if (a->op == NGX_HTTP_LOYALTY_OP_WEBHOOKS) {
        return ngx_http_loyalty_admin_json(r, NGX_HTTP_OK,
                   ngx_http_loyalty_webhook_report(lmcf->webhook_zone));
    }

    if (a->op == NGX_HTTP_LOYALTY_OP_STATS) {
        return ngx_http_loyalty_stats_handler(r, a->store);
    }

    if (a->op != NGX_HTTP_LOYALTY_OP_DUE
        && a->op != NGX_HTTP_LOYALTY_OP_EXPORT
        && a->op != NGX_HTTP_LOYALTY_OP_REFERRALS)
    {
        return ngx_http_loyalty_admin_read(r, a);
    }

    /*
     * A claim writes its lease: in the thread pool, as a write.  An
     * export reads whole databases, and a downline has no bound: there
     * too, off the event loop, as the writer's reads.
     */
    rc = (a->op == NGX_HTTP_LOYALTY_OP_DUE)
         ? ngx_http_loyalty_admin_claim_args(r, a) : NGX_OK;

    if (rc != NGX_OK) {
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_BAD_REQUEST, a->why);
    }

    req->admin = a;

    return ngx_http_loyalty_posted(r, ngx_http_loyalty_admin_post(r, a));
}


/* the hosts a code's target may name, for the core */
static ngx_int_t
ngx_http_loyalty_admin_hosts(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_loc_conf_t *llcf)
{
    ngx_str_t   *h;
    ngx_uint_t   i;

    if (llcf->share_hosts == NULL) {
        return NGX_OK;
    }

    h = llcf->share_hosts->elts;
    a->nhosts = llcf->share_hosts->nelts;
    a->hosts = ngx_palloc(r->pool, a->nhosts * sizeof(char *));
    a->host_lens = ngx_palloc(r->pool, a->nhosts * sizeof(size_t));

    if (a->hosts == NULL || a->host_lens == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < a->nhosts; i++) {
        a->hosts[i] = (char *) h[i].data;
        a->host_lens[i] = h[i].len;
    }

    return NGX_OK;
}


/* what the request asks for, from the end of its path */
static ngx_int_t
ngx_http_loyalty_admin_route(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    u_char                                *p, *end;
    ngx_str_t                              seg[3];
    ngx_uint_t                             n, i;
    const ngx_http_loyalty_admin_route_t  *rt;

    ngx_memzero(seg, sizeof(seg));

    end = r->uri.data + r->uri.len;

    for (n = 0; n < 3 && end > r->uri.data; n++) {
        p = end;
        while (p > r->uri.data && p[-1] != '/') {
            p--;
        }

        seg[n].data = p;
        seg[n].len = end - p;
        end = p - 1;
    }

    /* the first resource whose named segments are the path's */
    for (rt = ngx_http_loyalty_admin_routes; rt->allowed; rt++) {
        for (i = 0; i < 3; i++) {
            if (rt->seg[i] != NULL
                && (seg[i].len != ngx_strlen(rt->seg[i])
                    || ngx_strncmp(seg[i].data, rt->seg[i], seg[i].len) != 0))
            {
                break;
            }
        }

        if (i == 3) {
            break;
        }
    }

    if (rt->allowed == 0) {
        a->why = "no such resource";
        return NGX_HTTP_NOT_FOUND;
    }

    a->op = rt->op;
    a->allowed = rt->allowed;

    if (rt->key) {
        a->key = seg[rt->key - 1];
    }

    if (!(r->method & rt->allowed)) {
        a->why = "method not allowed here";
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (rt->key && (a->key.len == 0 || a->key.len > LOYALTY_ID_MAX)) {
        a->why = "no such record";
        return NGX_HTTP_NOT_FOUND;
    }

    return NGX_OK;
}


/* a 405 names what the resource allows */
static ngx_int_t
ngx_http_loyalty_admin_allow(ngx_http_request_t *r, ngx_uint_t allowed)
{
    u_char      *p, *start;
    ngx_uint_t   i;

    static const struct {
        ngx_uint_t   method;
        const char  *name;
    }  methods[] = {
        { NGX_HTTP_GET, "GET" }, { NGX_HTTP_PUT, "PUT" },
        { NGX_HTTP_PATCH, "PATCH" }, { NGX_HTTP_POST, "POST" },
        { NGX_HTTP_DELETE, "DELETE" }
    };

    start = ngx_pnalloc(r->pool, sizeof("GET, PUT, PATCH, POST, DELETE"));
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (allowed & methods[i].method) {
            if (p != start) {
                *p++ = ','; *p++ = ' ';
            }
            p = ngx_cpymem(p, methods[i].name, ngx_strlen(methods[i].name));
        }
    }

    return ngx_http_loyalty_add_header(r, "Allow", start, p - start);
}


/* the request's admin state; created on first use if asked */
ngx_http_loyalty_admin_req_t *
ngx_http_loyalty_admin_req(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_loyalty_admin_req_t  *req;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_loyalty_admin_req_cleanup) {
            req = cln->data;
            if (req->request == r) {
                return req;
            }
        }
    }

    if (!create) {
        return NULL;
    }

    req = ngx_http_loyalty_pool_state(r->pool,
                                      ngx_http_loyalty_admin_req_cleanup,
                                      sizeof(ngx_http_loyalty_admin_req_t));
    if (req) {
        req->request = r;
    }

    return req;
}


static void
ngx_http_loyalty_admin_req_cleanup(void *data)
{
    /* nothing to free: the handler only marks the request's entry */
}


/* GET: in the event loop, with the worker's read transaction */
static ngx_int_t
ngx_http_loyalty_admin_read(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    int       rc;
    json_t   *doc;
    MDB_txn  *txn;

    txn = ngx_http_loyalty_store_begin(a->store, r->connection->log);
    if (txn == NULL) {
        return ngx_http_loyalty_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "the store cannot be read now");
    }

    rc = 0;

    switch (a->op) {

    case NGX_HTTP_LOYALTY_OP_MEMBER:
        doc = loyalty_admin_get_member(&a->store->st, txn,
                                       (char *) a->key.data, a->key.len);
        break;

    case NGX_HTTP_LOYALTY_OP_LEDGER:
        doc = loyalty_admin_ledger(&a->store->st, txn, (char *) a->key.data,
                                   a->key.len,
                                   NGX_HTTP_LOYALTY_LEDGER_LIMIT);
        break;

    default: /* NGX_HTTP_LOYALTY_OP_RULES */
        doc = loyalty_rules_get(&a->store->st, txn, &rc);
        break;
    }

    ngx_http_loyalty_store_end(a->store);

    if (doc == NULL) {
        if (rc != 0 && rc != MDB_NOTFOUND) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "loyalty_store \"%s\": cannot read the rules: %s",
                          a->store->path, mdb_strerror(rc));
            return ngx_http_loyalty_admin_error(r,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "the rules cannot be read");
        }

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_NOT_FOUND,
                                            "no such record");
    }

    return ngx_http_loyalty_admin_json(r, NGX_HTTP_OK, doc);
}


/* GET .../due?until=TIME&limit=N&touch=KIND[,KIND]&lease=DURATION */
static ngx_int_t
ngx_http_loyalty_admin_claim_args(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    u_char           *dst, *src, *p, *end, *comma;
    ngx_int_t         n;
    ngx_str_t         v;
    loyalty_claim_t  *c;
    int               kind;

    c = &a->claim;
    c->now = a->now;
    c->until = a->now;
    c->limit = 100;
    c->lease = LOYALTY_LEASE_DEFAULT;
    c->touches = (1u << LOYALTY_TOUCH_KINDS) - 1;

    if (ngx_http_arg(r, (u_char *) "until", 5, &v) == NGX_OK) {
        p = ngx_pnalloc(r->pool, v.len);
        if (p == NULL) {
            a->why = "out of memory";
            return NGX_ERROR;
        }

        /* "+01:00" comes as %2B01:00 */
        dst = p;
        src = v.data;
        ngx_unescape_uri(&dst, &src, v.len, NGX_UNESCAPE_URI);

        if (loyalty_parse_rfc3339((char *) p, dst - p, &c->until) != 0) {
            a->why = "\"until\" must be an RFC 3339 time";
            return NGX_ERROR;
        }
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n < 1 || n > LOYALTY_DUE_LIMIT_MAX) {
            a->why = "\"limit\" must be 1 to 1000";
            return NGX_ERROR;
        }

        c->limit = (size_t) n;
    }

    if (ngx_http_arg(r, (u_char *) "lease", 5, &v) == NGX_OK) {
        c->lease = loyalty_parse_duration((char *) v.data, v.len);

        if (c->lease < LOYALTY_LEASE_MIN || c->lease > LOYALTY_LEASE_MAX) {
            a->why = "\"lease\" must be a duration from 10s to 1d";
            return NGX_ERROR;
        }
    }

    if (ngx_http_arg(r, (u_char *) "touch", 5, &v) == NGX_OK) {
        c->touches = 0;
        end = v.data + v.len;

        for (p = v.data; p <= end; p = comma + 1) {
            comma = ngx_strlchr(p, end, ',');
            if (comma == NULL) {
                comma = end;
            }

            kind = loyalty_name_index(loyalty_touch_names,
                                      LOYALTY_TOUCH_KINDS, (char *) p,
                                      comma - p);
            if (kind < 0) {
                a->why = "\"touch\" must be call, message, letter, visit "
                         "or gift, or a comma-separated list of them";
                return NGX_ERROR;
            }

            c->touches |= 1u << kind;
        }
    }

    return NGX_OK;
}


/* the body is in: gather it and hand the write to the thread pool */
static void
ngx_http_loyalty_admin_body(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_loyalty_admin_t  *a;

    a = ngx_http_loyalty_admin_req(r, 0)->admin;

    if (ngx_http_loyalty_read_body(r, &a->body, &a->len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (a->len == 0 && a->method != NGX_HTTP_DELETE
        && a->op != NGX_HTTP_LOYALTY_OP_ERASE)
    {
        ngx_http_finalize_request(r,
            ngx_http_loyalty_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                         "the request has no body"));
        return;
    }

    rc = ngx_http_loyalty_admin_post(r, a);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the request body read, in one NUL-terminated piece of the pool */
ngx_int_t
ngx_http_loyalty_read_body(ngx_http_request_t *r, u_char **body, size_t *len)
{
    u_char       *p;
    size_t        n;
    ssize_t       got;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    n = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;
            n += b->in_file ? (size_t) (b->file_last - b->file_pos)
                            : (size_t) (b->last - b->pos);
        }
    }

    p = ngx_pnalloc(r->pool, n + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *len = n;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                got = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                                    b->file_pos);
                if (got != b->file_last - b->file_pos) {
                    return NGX_ERROR;
                }

                p += got;

            } else {
                p = loyalty_cpymem(p, b->pos, b->last - b->pos);
            }
        }
    }

    *p = '\0';

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    json_t  *doc;

    doc = json_pack("{s:s}", "error", message);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_json(r, status, doc);
}


/*
 * doc, compact, in len bytes of the pool and one more for the caller to
 * end it with; releases doc; NULL on failure
 */
u_char *
ngx_http_loyalty_admin_dump(ngx_pool_t *pool, json_t *doc, size_t *len)
{
    char    *text;
    u_char  *p;

    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (text == NULL) {
        return NULL;
    }

    *len = ngx_strlen(text);

    p = ngx_pnalloc(pool, *len + 1);
    if (p != NULL) {
        ngx_memcpy(p, text, *len);
    }

    free(text);

    return p;
}


/* sends doc and releases it */
ngx_int_t
ngx_http_loyalty_admin_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *doc)
{
    u_char  *p;
    size_t   len;

    p = ngx_http_loyalty_admin_dump(r->pool, doc, &len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p[len] = '\n';

    if (ngx_http_loyalty_add_header(r, "Cache-Control", (u_char *) "no-store",
                                    sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_send_json(r, status, p, len + 1);
}
