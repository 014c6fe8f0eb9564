/*
 * nginx-loyalty: the admin API's request state, shared by its files:
 * ngx_http_loyalty_admin.c (routing, reads, answers),
 * ngx_http_loyalty_admin_auth.c (tokens and who may ask) and
 * ngx_http_loyalty_admin_write.c (the writes: records, events, due,
 * members' data).
 */

#ifndef _NGX_HTTP_LOYALTY_ADMIN_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_ADMIN_H_INCLUDED_


#include "ngx_http_loyalty_module.h"
#include "loyalty_due.h"
#include "loyalty_member_data.h"


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


/* an admin token (see ngx_http_loyalty_admin_auth.c) */
typedef struct ngx_http_loyalty_token_s  ngx_http_loyalty_token_t;


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_loyalty_store_t     *store;
    ngx_http_loyalty_op_e         op;
    ngx_uint_t                    method;
    ngx_uint_t                    allowed;
    const char                   *why;      /* a refusal's reason */
    ngx_http_loyalty_write_t      write;
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

    /* the outcome, made in the thread; the store's in write.rc */
    ngx_uint_t                    status;
    json_t                       *res;
    json_t                       *decisions;    /* the event hook's, for
                                                   the cluster's stream */
    /* an erasure's, for the cluster's stream */
    char                          pseudonym[LOYALTY_PSEUDONYM_LEN + 1];
    uint8_t                       erase_key[LOYALTY_ERASE_KEY_LEN];
    unsigned                      erase_key_made:1;
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


ngx_http_loyalty_admin_req_t *ngx_http_loyalty_admin_req(
    ngx_http_request_t *r, ngx_uint_t create);
ngx_int_t ngx_http_loyalty_admin_access(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_admin_req_t *req);
ngx_int_t ngx_http_loyalty_admin_scope(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_token_t *token);
ngx_int_t ngx_http_loyalty_admin_post(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);


#endif /* _NGX_HTTP_LOYALTY_ADMIN_H_INCLUDED_ */
