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
 * Writes run in nginx's thread pool, one write transaction per request,
 * so no worker ever waits on LMDB's writer lock; a 200 is sent only once
 * the transaction is committed and synced.  Reads use the worker's read
 * transaction like every other lookup.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"
#include "loyalty_admin.h"
#include "loyalty_due.h"
#include "loyalty_batch.h"
#include "loyalty_member_data.h"
#include "loyalty_rules.h"


#define NGX_HTTP_LOYALTY_TOKEN_MIN     16
#define NGX_HTTP_LOYALTY_TOKEN_MAX     256
#define NGX_HTTP_LOYALTY_TOKENS_MAX    64
#define NGX_HTTP_LOYALTY_LEDGER_LIMIT  1000


typedef enum {
    NGX_HTTP_LOYALTY_OP_EVENTS = 0,
    NGX_HTTP_LOYALTY_OP_MEMBER,
    NGX_HTTP_LOYALTY_OP_REFERRALS,
    NGX_HTTP_LOYALTY_OP_LEDGER,
    NGX_HTTP_LOYALTY_OP_CODE,
    NGX_HTTP_LOYALTY_OP_PRICE,
    NGX_HTTP_LOYALTY_OP_RULES,
    NGX_HTTP_LOYALTY_OP_LUA,
    NGX_HTTP_LOYALTY_OP_WEBHOOKS,
    NGX_HTTP_LOYALTY_OP_DUE,
    NGX_HTTP_LOYALTY_OP_DUE_ACK,
    NGX_HTTP_LOYALTY_OP_STATS,
    NGX_HTTP_LOYALTY_OP_ERASE,
    NGX_HTTP_LOYALTY_OP_EXPORT
} ngx_http_loyalty_op_e;


/* a token's scope: write implies read */
#define NGX_HTTP_LOYALTY_SCOPE_READ    0x01
#define NGX_HTTP_LOYALTY_SCOPE_WRITE   0x02


/* an admin token, as its SHA-256 digest: compared in constant time */
typedef struct {
    u_char                        digest[32];
    ngx_str_t                     id;       /* logged, never the token */
    ngx_uint_t                    scope;
    ngx_uint_t                    line;
} ngx_http_loyalty_token_t;


struct ngx_http_loyalty_tokens_s {
    ngx_uint_t                    n;
    ngx_http_loyalty_token_t      token[NGX_HTTP_LOYALTY_TOKENS_MAX];
};


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_loyalty_store_t     *store;
    ngx_http_loyalty_op_e         op;
    ngx_uint_t                    method;
    ngx_uint_t                    allowed;
    const char                   *why;      /* a refusal's reason */
    ngx_uint_t                    retried;
    ngx_event_t                   wait;
    ngx_str_t                     key;
    u_char                       *body;
    size_t                        len;
    size_t                        max_events;
    const char                  **hosts;
    size_t                       *host_lens;
    size_t                        nhosts;
    int64_t                       now;
    loyalty_claim_t               claim;

    /* another handler's, which makes the answer (the webhooks) */
    ngx_http_loyalty_batch_done_pt  done;
    void                         *done_data;

    /* the outcome, made in the thread */
    ngx_uint_t                    status;
    int                           rc;
    json_t                       *res;
    char                          err[LOYALTY_ERRLEN];
    unsigned                      warn:1;   /* err is a warning */
} ngx_http_loyalty_admin_t;


/*
 * An admin request's own state, in a cleanup entry of its pool: the
 * module's context is the visitor's, which variables such as
 * $loyalty_member may build in any location, this one included.
 */
typedef struct {
    ngx_http_request_t           *request;
    ngx_http_loyalty_token_t     *token;    /* NULL: a loopback client */
    ngx_http_loyalty_admin_t     *admin;
} ngx_http_loyalty_admin_req_t;


static ngx_int_t ngx_http_loyalty_admin_route(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_allow(ngx_http_request_t *r,
    ngx_uint_t allowed);
static ngx_int_t ngx_http_loyalty_admin_post(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static void ngx_http_loyalty_admin_wait(ngx_event_t *ev);
static ngx_http_loyalty_admin_req_t *ngx_http_loyalty_admin_req(
    ngx_http_request_t *r, ngx_uint_t create);
static void ngx_http_loyalty_admin_req_cleanup(void *data);
static ngx_int_t ngx_http_loyalty_admin_access(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_admin_req_t *req);
static ngx_int_t ngx_http_loyalty_admin_scope(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_token_t *token);
static ngx_uint_t ngx_http_loyalty_admin_loopback(struct sockaddr *sa);
static ngx_http_loyalty_token_t *ngx_http_loyalty_admin_authorized(
    ngx_http_request_t *r, ngx_http_loyalty_tokens_t *tokens);
static ngx_int_t ngx_http_loyalty_admin_token_line(ngx_conf_t *cf,
    ngx_str_t *path, ngx_http_loyalty_tokens_t *tokens, ngx_uint_t lineno,
    u_char *p, u_char *end);
static ngx_uint_t ngx_http_loyalty_admin_token_fields(u_char *p, u_char *end,
    ngx_str_t *field);
static ngx_int_t ngx_http_loyalty_admin_token_unique(ngx_conf_t *cf,
    ngx_str_t *path, ngx_http_loyalty_tokens_t *tokens,
    ngx_http_loyalty_token_t *t);
static ngx_int_t ngx_http_loyalty_admin_token_scope(ngx_conf_t *cf,
    ngx_str_t *path, ngx_uint_t lineno, ngx_str_t *field,
    ngx_http_loyalty_token_t *t);
static ngx_int_t ngx_http_loyalty_admin_read(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_claim_args(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static void ngx_http_loyalty_admin_claim(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn);
static void ngx_http_loyalty_admin_ack(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn);
static void ngx_http_loyalty_admin_body(ngx_http_request_t *r);
static void ngx_http_loyalty_admin_write(void *data, ngx_log_t *log);
static int ngx_http_loyalty_admin_member_data(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn, json_t **res);
static void ngx_http_loyalty_admin_written(ngx_event_t *ev);
static ngx_int_t ngx_http_loyalty_admin_done(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_retry(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, const char *message);
static ngx_int_t ngx_http_loyalty_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_loyalty_admin_answer(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, json_t *doc);
static ngx_int_t ngx_http_loyalty_admin_fail(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, const char *message);


static ngx_str_t  ngx_http_loyalty_thread_pool = ngx_string("default");


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
            && a->op != NGX_HTTP_LOYALTY_OP_EXPORT)
        {
            return ngx_http_loyalty_admin_read(r, a);
        }

        /*
         * A claim writes its lease: in the thread pool, as a write.  An
         * export reads whole databases: there too, off the event loop.
         */
        rc = (a->op == NGX_HTTP_LOYALTY_OP_DUE)
             ? ngx_http_loyalty_admin_claim_args(r, a) : NGX_OK;

        if (rc != NGX_OK) {
            return ngx_http_loyalty_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                                a->why);
        }

        req->admin = a;

        rc = ngx_http_loyalty_admin_post(r, a);
        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    if (llcf->share_hosts) {
        ngx_str_t   *h;
        ngx_uint_t   i;

        h = llcf->share_hosts->elts;
        a->nhosts = llcf->share_hosts->nelts;
        a->hosts = ngx_palloc(r->pool, a->nhosts * sizeof(char *));
        a->host_lens = ngx_palloc(r->pool, a->nhosts * sizeof(size_t));

        if (a->hosts == NULL || a->host_lens == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < a->nhosts; i++) {
            a->hosts[i] = (char *) h[i].data;
            a->host_lens[i] = h[i].len;
        }
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


/* what the request asks for, from the end of its path */
static ngx_int_t
ngx_http_loyalty_admin_route(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    u_char     *p, *end;
    ngx_str_t   seg[3];
    ngx_uint_t  n, allowed;

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

#define ngx_http_loyalty_seg_is(s, lit)                                       \
    ((s).len == sizeof(lit) - 1 && ngx_strncmp((s).data, lit, (s).len) == 0)

    if (ngx_http_loyalty_seg_is(seg[2], "members")
        && (ngx_http_loyalty_seg_is(seg[0], "referrals")
            || ngx_http_loyalty_seg_is(seg[0], "ledger")))
    {
        a->op = ngx_http_loyalty_seg_is(seg[0], "ledger")
                ? NGX_HTTP_LOYALTY_OP_LEDGER : NGX_HTTP_LOYALTY_OP_REFERRALS;
        a->key = seg[1];
        allowed = NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[2], "members")
               && (ngx_http_loyalty_seg_is(seg[0], "erase")
                   || ngx_http_loyalty_seg_is(seg[0], "export")))
    {
        a->op = ngx_http_loyalty_seg_is(seg[0], "erase")
                ? NGX_HTTP_LOYALTY_OP_ERASE : NGX_HTTP_LOYALTY_OP_EXPORT;
        a->key = seg[1];
        allowed = a->op == NGX_HTTP_LOYALTY_OP_ERASE ? NGX_HTTP_POST
                                                     : NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[1], "members")) {
        a->op = NGX_HTTP_LOYALTY_OP_MEMBER;
        a->key = seg[0];
        allowed = NGX_HTTP_GET|NGX_HTTP_PUT|NGX_HTTP_PATCH|NGX_HTTP_DELETE;

    } else if (ngx_http_loyalty_seg_is(seg[1], "codes")) {
        a->op = NGX_HTTP_LOYALTY_OP_CODE;
        a->key = seg[0];
        allowed = NGX_HTTP_PUT;

    } else if (ngx_http_loyalty_seg_is(seg[1], "prices")) {
        a->op = NGX_HTTP_LOYALTY_OP_PRICE;
        a->key = seg[0];
        allowed = NGX_HTTP_PUT;

    } else if (ngx_http_loyalty_seg_is(seg[0], "events")) {
        a->op = NGX_HTTP_LOYALTY_OP_EVENTS;
        allowed = NGX_HTTP_POST;

    } else if (ngx_http_loyalty_seg_is(seg[0], "rules")) {
        a->op = NGX_HTTP_LOYALTY_OP_RULES;
        allowed = NGX_HTTP_GET|NGX_HTTP_PUT;

    } else if (ngx_http_loyalty_seg_is(seg[0], "lua")) {
        a->op = NGX_HTTP_LOYALTY_OP_LUA;
        allowed = NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[0], "webhooks")) {
        a->op = NGX_HTTP_LOYALTY_OP_WEBHOOKS;
        allowed = NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[0], "stats")) {
        a->op = NGX_HTTP_LOYALTY_OP_STATS;
        allowed = NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[0], "due")) {
        a->op = NGX_HTTP_LOYALTY_OP_DUE;
        allowed = NGX_HTTP_GET;

    } else if (ngx_http_loyalty_seg_is(seg[1], "due")
               && ngx_http_loyalty_seg_is(seg[0], "ack"))
    {
        a->op = NGX_HTTP_LOYALTY_OP_DUE_ACK;
        allowed = NGX_HTTP_POST;

    } else {
        a->why = "no such resource";
        return NGX_HTTP_NOT_FOUND;
    }

#undef ngx_http_loyalty_seg_is

    a->allowed = allowed;

    if (!(r->method & allowed)) {
        a->why = "method not allowed here";
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (a->op != NGX_HTTP_LOYALTY_OP_EVENTS
        && a->op != NGX_HTTP_LOYALTY_OP_RULES
        && a->op != NGX_HTTP_LOYALTY_OP_LUA
        && a->op != NGX_HTTP_LOYALTY_OP_WEBHOOKS
        && a->op != NGX_HTTP_LOYALTY_OP_DUE
        && a->op != NGX_HTTP_LOYALTY_OP_DUE_ACK
        && a->op != NGX_HTTP_LOYALTY_OP_STATS
        && (a->key.len == 0 || a->key.len > LOYALTY_ID_MAX))
    {
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
static ngx_http_loyalty_admin_req_t *
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

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_loyalty_admin_req_t));
    if (cln == NULL) {
        return NULL;
    }

    req = cln->data;
    ngx_memzero(req, sizeof(ngx_http_loyalty_admin_req_t));
    req->request = r;
    cln->handler = ngx_http_loyalty_admin_req_cleanup;

    return req;
}


static void
ngx_http_loyalty_admin_req_cleanup(void *data)
{
    /* nothing to free: the handler only marks the request's entry */
}


/*
 * Who asks: the holder of one of the file's tokens, or, with
 * "loyalty_admin_open loopback" and no file, a loopback client.
 * NGX_DECLINED to go on, else the refusal, sent.
 */
static ngx_int_t
ngx_http_loyalty_admin_access(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_admin_req_t *req)
{
    ngx_http_loyalty_token_t  *token;

    req->token = NULL;

    if (llcf->admin_tokens == NULL) {

        /* the configuration allows no other case: closed if it did */
        if (llcf->admin_open == NGX_HTTP_LOYALTY_ADMIN_LOOPBACK
            && ngx_http_loyalty_admin_loopback(r->connection->sockaddr))
        {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request refused: "
                      "\"loyalty_admin_open loopback\" admits loopback "
                      "clients only");

        (void) ngx_http_discard_request_body(r);
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_LOOPBACK);

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_FORBIDDEN,
                                            "this admin API admits "
                                            "loopback clients only");
    }

    token = ngx_http_loyalty_admin_authorized(r, llcf->admin_tokens);

    if (token == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request without a valid token");

        if (ngx_http_loyalty_add_header(r, "WWW-Authenticate",
                                        (u_char *) "Bearer",
                                        sizeof("Bearer") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_http_discard_request_body(r);
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_TOKEN);

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_UNAUTHORIZED,
                                            "a valid bearer token is "
                                            "required");
    }

    req->token = token;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: admin request with token \"%V\" (%s)",
                  &token->id,
                  (token->scope & NGX_HTTP_LOYALTY_SCOPE_WRITE) ? "write"
                                                                : "read");

    return NGX_DECLINED;
}


/*
 * Reads need the read scope, anything that changes the store the write
 * scope.  GET .../due is one of those: a claim writes its lease and
 * hides the touches from every other caller until the lease ends, so a
 * read token could keep them from the staff who must make them.
 * NGX_DECLINED to go on, else the refusal, sent.
 */
static ngx_int_t
ngx_http_loyalty_admin_scope(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_token_t *token)
{
    ngx_uint_t  need;

    if (token == NULL) {
        return NGX_DECLINED;    /* a loopback client of an open admin API */
    }

    need = (r->method == NGX_HTTP_GET && a->op != NGX_HTTP_LOYALTY_OP_DUE)
           ? NGX_HTTP_LOYALTY_SCOPE_READ
           : NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

    if ((token->scope & need) == need) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: admin request refused: token \"%V\" may only "
                  "read", &token->id);

    (void) ngx_http_discard_request_body(r);
    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_SCOPE);

    return ngx_http_loyalty_admin_error(r, NGX_HTTP_FORBIDDEN,
                                        "this token may only read");
}


/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104; not even a unix socket */
static ngx_uint_t
ngx_http_loyalty_admin_loopback(struct sockaddr *sa)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return 1;
        }

        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
               && sin6->sin6_addr.s6_addr[12] == 127;
#endif

    default:
        return 0;
    }
}


/* $loyalty_admin_token_id: the id of the token the request carried */
ngx_int_t
ngx_http_loyalty_admin_token_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_loyalty_admin_req_t  *req;

    req = ngx_http_loyalty_admin_req(r->main, 0);

    if (req == NULL || req->token == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = req->token->id.len;
    v->data = req->token->id.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* "Authorization: Bearer TOKEN": which of the file's tokens, or NULL */
static ngx_http_loyalty_token_t *
ngx_http_loyalty_admin_authorized(ngx_http_request_t *r,
    ngx_http_loyalty_tokens_t *tokens)
{
    u_char            digest[32];
    ngx_str_t         v;
    ngx_uint_t        i, eq, found;
    unsigned int      n;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NULL;
    }

    v = h->value;

    if (v.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(v.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1)
           != 0)
    {
        return NULL;
    }

    v.data += sizeof("Bearer ") - 1;
    v.len -= sizeof("Bearer ") - 1;

    if (v.len > NGX_HTTP_LOYALTY_TOKEN_MAX
        || EVP_Digest(v.data, v.len, digest, &n, EVP_sha256(), NULL) != 1)
    {
        return NULL;
    }

    /*
     * Every token compared and the match picked without a branch, so
     * that timing tells nothing of which; tokens are unique.
     */
    found = 0;
    for (i = 0; i < tokens->n; i++) {
        eq = (CRYPTO_memcmp(digest, tokens->token[i].digest, 32) == 0);
        found |= (0 - eq) & (i + 1);
    }

    return found ? &tokens->token[found - 1] : NULL;
}


/*
 * loyalty_admin_token FILE: lines of "ID SCOPE TOKEN", "#" comments and
 * blank lines.  A line of a bare token, the format of old, is read as a
 * write token named "line-N", with a warning.
 */
char *
ngx_http_loyalty_admin_tokens(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t **out)
{
    u_char                     *p, *end, *line, *eol;
    size_t                      size;
    ssize_t                     n;
    ngx_fd_t                    fd;
    ngx_uint_t                  lineno;
    ngx_file_t                  file;
    ngx_file_info_t             fi;
    ngx_http_loyalty_tokens_t  *tokens;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "loyalty_admin_token: cannot open \"%V\"", path);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *path;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" is not a file of at "
                           "most 64k", path);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "loyalty_admin_token: tokens file \"%V\" is "
                           "readable by every user: chmod 600 it", path);
    }

    size = ngx_file_size(&fi);

    p = ngx_pnalloc(cf->temp_pool, size + 1);
    tokens = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_tokens_t));

    if (p == NULL || tokens == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, size, 0);
    (void) ngx_close_file(fd);

    if (n != (ssize_t) size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: cannot read \"%V\"", path);
        return NGX_CONF_ERROR;
    }

    end = p + size;
    lineno = 0;

    for (line = p; line < end; line = eol + 1) {
        lineno++;

        eol = ngx_strlchr(line, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        if (ngx_http_loyalty_admin_token_line(cf, path, tokens, lineno, line,
                                              eol)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (tokens->n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" has no token", path);
        return NGX_CONF_ERROR;
    }

    *out = tokens;

    return NGX_CONF_OK;
}


/* one line of a tokens file, from p to end */
static ngx_int_t
ngx_http_loyalty_admin_token_line(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t *tokens, ngx_uint_t lineno, u_char *p,
    u_char *end)
{
    u_char                    *q;
    ngx_str_t                  field[3];
    ngx_uint_t                 n;
    unsigned int               dlen;
    ngx_http_loyalty_token_t  *t;

    n = ngx_http_loyalty_admin_token_fields(p, end, field);

    if (n == 0) {
        return NGX_OK;
    }

    if (n != 1 && n != 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: "
                           "\"ID SCOPE TOKEN\" expected", path, lineno);
        return NGX_ERROR;
    }

    if (tokens->n == NGX_HTTP_LOYALTY_TOKENS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: more than "
                           "%d tokens", path, lineno,
                           NGX_HTTP_LOYALTY_TOKENS_MAX);
        return NGX_ERROR;
    }

    /* the token, never written in any message */
    q = field[n - 1].data;
    p = q + field[n - 1].len;

    for ( /* void */ ; q < p; q++) {
        if (*q <= ' ' || *q >= 0x7f) {
            break;
        }
    }

    if (q != p || field[n - 1].len < NGX_HTTP_LOYALTY_TOKEN_MIN
        || field[n - 1].len > NGX_HTTP_LOYALTY_TOKEN_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: a token "
                           "is %d to %d printable characters", path, lineno,
                           NGX_HTTP_LOYALTY_TOKEN_MIN,
                           NGX_HTTP_LOYALTY_TOKEN_MAX);
        return NGX_ERROR;
    }

    t = &tokens->token[tokens->n];
    t->line = lineno;

    if (ngx_http_loyalty_admin_token_scope(cf, path, lineno,
                                           n == 3 ? field : NULL, t)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (EVP_Digest(field[n - 1].data, field[n - 1].len, t->digest, &dlen,
                   EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    if (ngx_http_loyalty_admin_token_unique(cf, path, tokens, t) != NGX_OK) {
        return NGX_ERROR;
    }

    tokens->n++;

    return NGX_OK;
}


/* the blank-separated fields of a line: 0 for a comment, 4 for more */
static ngx_uint_t
ngx_http_loyalty_admin_token_fields(u_char *p, u_char *end, ngx_str_t *field)
{
    ngx_uint_t  n;

    for (n = 0; /* void */; n++) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p == end || (n == 0 && *p == '#')) {
            return n;
        }

        if (n == 3) {
            return 4;
        }

        field[n].data = p;

        while (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }

        field[n].len = p - field[n].data;
    }
}


/* neither the id nor the token of t is one of the earlier lines' */
static ngx_int_t
ngx_http_loyalty_admin_token_unique(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t *tokens, ngx_http_loyalty_token_t *t)
{
    ngx_uint_t  i;

    for (i = 0; i < tokens->n; i++) {
        if (tokens->token[i].id.len == t->id.len
            && ngx_strncmp(tokens->token[i].id.data, t->id.data, t->id.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "loyalty_admin_token: \"%V\" line %ui: the id "
                               "\"%V\" is on line %ui too", path, t->line,
                               &t->id, tokens->token[i].line);
            return NGX_ERROR;
        }

        if (ngx_memcmp(tokens->token[i].digest, t->digest, 32) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "loyalty_admin_token: \"%V\" line %ui: the "
                               "same token as line %ui", path, t->line,
                               tokens->token[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a token's id and scope: from "ID SCOPE", or for a bare token, its line */
static ngx_int_t
ngx_http_loyalty_admin_token_scope(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t lineno, ngx_str_t *field, ngx_http_loyalty_token_t *t)
{
    if (field == NULL) {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

        t->id.data = ngx_pnalloc(cf->pool, sizeof("line-") + NGX_INT_T_LEN);
        if (t->id.data == NULL) {
            return NGX_ERROR;
        }

        t->id.len = ngx_sprintf(t->id.data, "line-%ui", lineno) - t->id.data;

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: a bare "
                           "token, taken as \"%V write TOKEN\": give it an "
                           "id and a scope", path, lineno, &t->id);
        return NGX_OK;
    }

    if (!loyalty_valid_id((char *) field[0].data, field[0].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: an id is "
                           "1 to %d of A-Z a-z 0-9 _ . -", path, lineno,
                           LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    if (field[1].len == 4 && ngx_strncmp(field[1].data, "read", 4) == 0) {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ;

    } else if (field[1].len == 5
               && ngx_strncmp(field[1].data, "write", 5) == 0)
    {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: the scope "
                           "is \"read\" or \"write\"", path, lineno);
        return NGX_ERROR;
    }

    t->id.data = ngx_pstrdup(cf->pool, &field[0]);
    if (t->id.data == NULL) {
        return NGX_ERROR;
    }

    t->id.len = field[0].len;

    return NGX_OK;
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

    case NGX_HTTP_LOYALTY_OP_REFERRALS:
        doc = loyalty_admin_referrals(&a->store->st, txn,
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


/* in the thread pool: claims, leaving the list or the error in a */
static void
ngx_http_loyalty_admin_claim(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    json_t  *list;

    list = json_array();
    if (list == NULL) {
        a->rc = ENOMEM;
        return;
    }

    a->rc = loyalty_due_claim(&a->store->st, txn, &a->claim, list);

    if (a->rc != 0) {
        json_decref(list);
        return;
    }

    a->res = json_pack("{s:o}", "due", list);
    if (a->res == NULL) {
        a->rc = ENOMEM;
    }
}


/* in the thread pool: acknowledgements from the body */
static void
ngx_http_loyalty_admin_ack(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    json_t        *doc, *res;
    const char    *status;
    json_error_t   jerr;

    doc = json_loadb((char *) a->body, a->len, JSON_REJECT_DUPLICATES,
                     &jerr);

    if (doc == NULL) {
        a->status = NGX_HTTP_BAD_REQUEST;
        (void) snprintf(a->err, sizeof(a->err), "%s", jerr.text);
        a->rc = -1;
        return;
    }

    a->rc = loyalty_due_ack_json(&a->store->st, txn, doc, a->now, &res,
                                 a->err, sizeof(a->err));
    json_decref(doc);

    if (a->rc == -1) {
        a->status = NGX_HTTP_LOYALTY_UNPROCESSABLE;
        return;
    }

    if (a->rc != 0) {
        json_decref(res);
        return;
    }

    /* one acknowledgement: its status is the answer's */
    status = json_string_value(json_object_get(res, "status"));

    if (status == NULL || ngx_strcmp(status, "acked") == 0
        || ngx_strcmp(status, "already") == 0)
    {
        a->res = res;
        return;
    }

    a->status = ngx_strcmp(status, "unknown") == 0 ? NGX_HTTP_NOT_FOUND
                : ngx_strcmp(status, "conflict") == 0 ? NGX_HTTP_CONFLICT
                : NGX_HTTP_LOYALTY_UNPROCESSABLE;
    (void) snprintf(a->err, sizeof(a->err), "%s",
                    json_string_value(json_object_get(res, "error")));
    json_decref(res);
    a->rc = -1;
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


/*
 * A batch of events from another handler (the webhooks), applied as a
 * POST .../events in the thread pool: NGX_DONE, and done() makes the
 * answer of its status and document; or the status of a refusal, sent.
 */
ngx_int_t
ngx_http_loyalty_admin_apply(ngx_http_request_t *r, u_char *body, size_t len,
    ngx_http_loyalty_batch_done_pt done, void *data)
{
    ngx_http_loyalty_admin_t      *a;
    ngx_http_loyalty_loc_conf_t   *llcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_admin_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->request = r;
    a->store = lmcf->store;
    a->op = NGX_HTTP_LOYALTY_OP_EVENTS;
    a->method = NGX_HTTP_POST;
    a->max_events = llcf->admin_batch;
    a->now = ngx_time();
    a->body = body;
    a->len = len;
    a->done = done;
    a->done_data = data;

    return ngx_http_loyalty_admin_post(r, a);
}


/*
 * Hands the write to the thread pool.  Until it is back, a timer that
 * cannot be cancelled keeps a worker that is shutting down from leaving
 * the client without its answer.
 */
static ngx_int_t
ngx_http_loyalty_admin_post(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
#if (NGX_THREADS)
    ngx_thread_pool_t  *tp;
    ngx_thread_task_t  *task;

    /*
     * A replacement noticed while writes were in the pool: none more
     * until it is taken up, so that the last one done can take it up.
     */
    if (a->store->stale
        && ngx_http_loyalty_store_recover(a->store,
                                          NGX_HTTP_LOYALTY_STORE_REPLACED,
                                          0, r->connection->log)
           != NGX_OK)
    {
        return ngx_http_loyalty_admin_retry(r, a, "the store was replaced "
                                                  "on disk; retry");
    }

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                             &ngx_http_loyalty_thread_pool);
    task = ngx_thread_task_alloc(r->pool, 0);

    if (tp == NULL || task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = a;
    task->handler = ngx_http_loyalty_admin_write;
    task->event.data = a;
    task->event.handler = ngx_http_loyalty_admin_written;

    /* the environment is in use: no reopen, no remap until it is done */
    a->store->busy++;
    r->main->blocked++;
    r->aio = 1;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        a->store->busy--;
        r->main->blocked--;
        r->aio = 0;
        return ngx_http_loyalty_admin_fail(r, a, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "too busy, try again");
    }

    a->wait.handler = ngx_http_loyalty_admin_wait;
    a->wait.data = a;
    a->wait.log = r->connection->log;
    ngx_add_timer(&a->wait, 60000);

    return NGX_DONE;

#else

    a->store->busy++;
    ngx_http_loyalty_admin_write(a, r->connection->log);
    a->store->busy--;

    return ngx_http_loyalty_admin_done(r, a);

#endif
}


/* a write may wait long on LMDB's writer lock: it still gets its answer */
static void
ngx_http_loyalty_admin_wait(ngx_event_t *ev)
{
    ngx_add_timer(ev, 60000);
}


/*
 * In the thread pool: one write transaction, committed (and synced) or
 * aborted.  Touches nothing of the event loop; the answer is left in a.
 */
static void
ngx_http_loyalty_admin_write(void *data, ngx_log_t *log)
{
    ngx_http_loyalty_admin_t *a = data;

    int               rc;
    json_t           *doc, *res;
    MDB_txn          *txn;
    json_error_t      jerr;
    loyalty_batch_t   batch;
    loyalty_store_t  *st;

    static const char  *kinds[] = {
        NULL, "member", NULL, NULL, "code", "price", "rules", NULL, NULL,
        NULL, NULL, NULL, NULL, NULL
    };

    st = &a->store->st;
    res = NULL;
    doc = NULL;

    if (!a->store->open || !a->store->writable) {
        a->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_cpystrn((u_char *) a->err, (u_char *) "the store cannot be "
                    "written now", sizeof(a->err));
        return;
    }

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) {
        a->rc = rc;
        return;
    }

    if (a->op == NGX_HTTP_LOYALTY_OP_EVENTS) {
        ngx_memzero(&batch, sizeof(loyalty_batch_t));

        rc = loyalty_batch_apply(st, txn, (char *) a->body, a->len,
                                 a->max_events, a->now,
                                 ngx_http_loyalty_lua_event_hook(), &batch,
                                 a->err, sizeof(a->err));

        if (rc == 0) {
            res = json_pack("{s:I,s:I,s:I}",
                            "events", (json_int_t) batch.events,
                            "applied", (json_int_t) batch.applied,
                            "duplicates", (json_int_t) batch.duplicates);

        } else if (rc == LOYALTY_BATCH_INVALID
                   || rc == LOYALTY_BATCH_CONFLICT)
        {
            /* ids applied before with other data: 409 */
            a->status = rc == LOYALTY_BATCH_CONFLICT
                        ? NGX_HTTP_CONFLICT : NGX_HTTP_LOYALTY_UNPROCESSABLE;
            res = json_pack("{s:s,s:O}", "error",
                            rc == LOYALTY_BATCH_CONFLICT
                            ? "conflicting events" : "invalid events",
                            "errors", batch.errors ? batch.errors
                                                   : json_array());
            rc = LOYALTY_BATCH_INVALID;

        } else if (rc == LOYALTY_BATCH_TOO_MANY) {
            a->status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        loyalty_batch_free(&batch);

    } else if (a->op == NGX_HTTP_LOYALTY_OP_DUE) {
        ngx_http_loyalty_admin_claim(a, txn);
        rc = a->rc;
        res = a->res;
        a->res = NULL;
        a->rc = 0;

    } else if (a->op == NGX_HTTP_LOYALTY_OP_DUE_ACK) {
        ngx_http_loyalty_admin_ack(a, txn);
        rc = a->rc;
        res = a->res;
        a->res = NULL;
        a->rc = 0;

    } else if (a->op == NGX_HTTP_LOYALTY_OP_ERASE
               || a->op == NGX_HTTP_LOYALTY_OP_EXPORT
               || a->method == NGX_HTTP_PATCH)
    {
        rc = ngx_http_loyalty_admin_member_data(a, txn, &res);

    } else if (a->method == NGX_HTTP_DELETE) {
        rc = loyalty_admin_delete_member(st, txn, (char *) a->key.data,
                                         a->key.len);
        if (rc == MDB_NOTFOUND) {
            a->status = NGX_HTTP_NOT_FOUND;
            ngx_cpystrn((u_char *) a->err, (u_char *) "no such record",
                        sizeof(a->err));
            rc = -1;    /* answered: nothing to write */

        } else if (rc == 0) {
            res = json_pack("{s:s%}", "deleted", a->key.data,
                            a->key.len);
        }

    } else {
        doc = json_loadb((char *) a->body, a->len, JSON_REJECT_DUPLICATES,
                         &jerr);

        if (doc == NULL || !json_is_object(doc)) {
            a->status = NGX_HTTP_BAD_REQUEST;
            (void) snprintf(a->err, sizeof(a->err), "%s",
                            doc ? "the body must be a JSON object"
                                : jerr.text);
            rc = -1;

        } else {
            rc = loyalty_admin_put(st, txn, kinds[a->op],
                                   (char *) a->key.data, a->key.len, doc,
                                   a->hosts, a->host_lens, a->nhosts,
                                   a->now, a->err, sizeof(a->err));

            if (rc == -1) {
                a->status = NGX_HTTP_LOYALTY_UNPROCESSABLE;

            } else if (rc == LOYALTY_ADMIN_CONFLICT) {
                a->status = NGX_HTTP_CONFLICT;
                rc = -1;
            } else if (rc == 0 && a->err[0]) {
                /* stored, but the operator should know: a weak code */
                res = json_pack("{s:s,s:s}", "stored", kinds[a->op],
                                "warning", a->err);
                a->warn = 1;

            } else if (rc == 0) {
                res = json_pack("{s:s}", "stored", kinds[a->op]);
            }
        }
    }

    if (rc == 0 && res != NULL) {
        /* only into the store at the configured path */
        rc = ngx_http_loyalty_store_commit(a->store, txn);
        txn = NULL;

        if (rc == 0) {
            a->status = NGX_HTTP_OK;
        }
    }

    if (txn) {
        mdb_txn_abort(txn);
    }

    /* anything else is LMDB's (negative) or the system's (errno) */
    if (rc != 0 && rc != LOYALTY_BATCH_INVALID && rc != LOYALTY_BATCH_TOO_MANY)
    {
        a->rc = rc;
        a->status = 0;
    }

    if (a->status == 0) {
        json_decref(res);
        res = NULL;
    }

    a->res = res;
    json_decref(doc);
}


/*
 * PATCH .../members/ID, POST .../members/ID/erase and GET
 * .../members/ID/export, in the write transaction: 0 with *res, -1
 * answered with a->status, or an LMDB error
 */
static int
ngx_http_loyalty_admin_member_data(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn, json_t **res)
{
    int            rc;
    char           p[LOYALTY_PSEUDONYM_LEN + 1];
    json_t        *doc;
    json_error_t   jerr;

    doc = NULL;

    if (a->op == NGX_HTTP_LOYALTY_OP_EXPORT) {
        /* nothing written: the commit that follows is free */
        *res = loyalty_member_export(&a->store->st, txn,
                                     (char *) a->key.data, a->key.len, &rc);

    } else if (a->op == NGX_HTTP_LOYALTY_OP_ERASE) {
        rc = loyalty_member_erase(&a->store->st, txn, (char *) a->key.data,
                                  a->key.len, p);

    } else {
        doc = json_loadb((char *) a->body, a->len, JSON_REJECT_DUPLICATES,
                         &jerr);
        if (doc == NULL) {
            a->status = NGX_HTTP_BAD_REQUEST;
            (void) snprintf(a->err, sizeof(a->err), "%s", jerr.text);
            return -1;
        }

        rc = loyalty_member_patch(&a->store->st, txn, (char *) a->key.data,
                                  a->key.len, doc, a->now, a->err,
                                  sizeof(a->err));
    }

    if (rc == MDB_NOTFOUND) {
        a->status = NGX_HTTP_NOT_FOUND;
        (void) snprintf(a->err, sizeof(a->err), "no such record");
        rc = -1;

    } else if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        a->status = (rc == -1) ? NGX_HTTP_BAD_REQUEST : NGX_HTTP_CONFLICT;
        rc = -1;

    } else if (rc == 0 && a->op == NGX_HTTP_LOYALTY_OP_EXPORT) {
        /* *res is the export */

    } else if (rc == 0 && a->op == NGX_HTTP_LOYALTY_OP_ERASE) {
        *res = json_pack("{s:s%,s:s}", "erased", a->key.data, a->key.len,
                         "pseudonym", p);

    } else if (rc == 0) {
        *res = loyalty_admin_get_member(&a->store->st, txn,
                                        (char *) a->key.data, a->key.len);
    }

    json_decref(doc);

    return rc;
}


static void
ngx_http_loyalty_admin_written(ngx_event_t *ev)
{
    ngx_http_loyalty_admin_t *a = ev->data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = a->request;
    c = r->connection;

    a->store->busy--;
    r->main->blocked--;
    r->aio = 0;

    if (a->wait.timer_set) {
        ngx_del_timer(&a->wait);
    }

    /*
     * The store was replaced on disk, or its map is full or was grown by
     * another process: put it right and write again, twice at most.
     */
    if (a->rc != 0 && a->retried < 2
        && ngx_http_loyalty_store_recover(a->store, a->rc,
                                          a->len * 8 + 1048576, c->log)
           == NGX_OK)
    {
        a->retried++;
        a->rc = 0;
        a->status = 0;
        a->err[0] = '\0';

        rc = ngx_http_loyalty_admin_post(r, a);

        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
            ngx_http_run_posted_requests(c);
        }

        return;
    }

    ngx_http_finalize_request(r, ngx_http_loyalty_admin_done(r, a));
    ngx_http_run_posted_requests(c);
}


/* back in the event loop: the answer */
static ngx_int_t
ngx_http_loyalty_admin_done(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    u_char  *p;
    json_t  *doc;

    /* other writes were using the map or the store: the client retries */
    switch (a->rc) {

    case MDB_MAP_FULL:
        return ngx_http_loyalty_admin_retry(r, a, "the store was full; retry");

    case MDB_MAP_RESIZED:
        return ngx_http_loyalty_admin_retry(r, a, "the store grew; retry");

    case NGX_HTTP_LOYALTY_STORE_REPLACED:
        return ngx_http_loyalty_admin_retry(r, a, "the store was replaced "
                                                  "on disk; retry");

    case NGX_HTTP_LOYALTY_STORE_GONE:
        /* logged at crit when first noticed */
        return ngx_http_loyalty_admin_fail(r, a, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "the store was removed; writes "
                                           "are refused until it is back");
    }

    if (a->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "loyalty_store \"%s\": admin write failed: %s%s%s",
                      a->store->path, ngx_http_loyalty_store_strerror(a->rc),
                      a->err[0] ? ": " : "", a->err);
        return ngx_http_loyalty_admin_fail(r, a,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR,
                                           "the store could not be "
                                           "written");
    }

    if (a->res == NULL) {
        if (a->status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
            p = ngx_pnalloc(r->pool, 64);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            (void) ngx_sprintf(p, "more than %uz events in one request%Z",
                               a->max_events);
            return ngx_http_loyalty_admin_fail(r, a, a->status, (char *) p);
        }

        return ngx_http_loyalty_admin_fail(r, a,
                   a->status ? a->status : NGX_HTTP_INTERNAL_SERVER_ERROR,
                   a->err[0] ? a->err : "failed");
    }

    if (a->warn && a->status == NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "loyalty: admin write: %s", a->err);
    }

    if (a->status == NGX_HTTP_LOYALTY_UNPROCESSABLE) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request refused (%s)",
                      a->op == NGX_HTTP_LOYALTY_OP_EVENTS ? "invalid events"
                                                          : a->err);
    }

    doc = a->res;
    a->res = NULL;

    return ngx_http_loyalty_admin_answer(r, a, a->status, doc);
}


/* the answer, sent, or made by the handler that posted the write */
static ngx_int_t
ngx_http_loyalty_admin_answer(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, json_t *doc)
{
    ngx_http_loyalty_metrics_answer(NGX_HTTP_LOYALTY_M_WRITE, status);

    if (a->done) {
        return a->done(r, a->done_data, status, doc);
    }

    return ngx_http_loyalty_admin_json(r, status, doc);
}


static ngx_int_t
ngx_http_loyalty_admin_fail(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, const char *message)
{
    json_t  *doc;

    doc = json_pack("{s:s}", "error", message);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_answer(r, a, status, doc);
}


/* a 503 that the client may retry in a second */
static ngx_int_t
ngx_http_loyalty_admin_retry(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, const char *message)
{
    if (ngx_http_loyalty_add_header(r, "Retry-After", (u_char *) "1", 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_fail(r, a, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       message);
}


static ngx_int_t
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
