/*
 * nginx-loyalty: the admin API's writes (records, batches of events,
 * claims and acknowledgements of touches due, a member's partial update
 * and erasure) and their answers; the export of a member too, which
 * writes nothing but reads whole databases, so it is made in the thread
 * pool as well, and never published.
 *
 * Each write is handed to the store writer (ngx_http_loyalty_write.c):
 * one write transaction per request, made in nginx's thread pool so that
 * no worker waits on LMDB's writer lock; a 200 is sent only once the
 * transaction is committed and synced.  The webhooks' batches come here
 * too (ngx_http_loyalty_admin_apply()).
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
#include "loyalty_member_data.h"
#include "loyalty_repl.h"


/*
 * An operation of the admin API in the writer's transaction, from its
 * route's op (ngx_http_loyalty_admin_ops): 0 with the answer in a->res,
 * -1 or LOYALTY_BATCH_INVALID answered with a->status, or an error (LMDB's,
 * negative, or errno).
 */
typedef int ngx_http_loyalty_admin_op_pt(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn);

static ngx_http_loyalty_admin_op_pt  ngx_http_loyalty_admin_events,
    ngx_http_loyalty_admin_claim, ngx_http_loyalty_admin_ack,
    ngx_http_loyalty_admin_referrals, ngx_http_loyalty_admin_record,
    ngx_http_loyalty_admin_delete, ngx_http_loyalty_admin_put,
    ngx_http_loyalty_admin_member_data, ngx_http_loyalty_admin_erase;

static json_t *ngx_http_loyalty_admin_doc(ngx_http_loyalty_admin_t *a,
    ngx_uint_t object);
static int ngx_http_loyalty_admin_write(ngx_http_loyalty_write_t *w,
    MDB_txn *txn);
static int ngx_http_loyalty_admin_member_message(ngx_http_loyalty_admin_t *a,
    json_t *msg);
static void ngx_http_loyalty_admin_written(ngx_http_loyalty_write_t *w);
static json_t *ngx_http_loyalty_admin_message(ngx_http_loyalty_write_t *w);
static ngx_int_t ngx_http_loyalty_admin_done(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a);
static ngx_int_t ngx_http_loyalty_admin_retry(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, const char *message);
static ngx_int_t ngx_http_loyalty_admin_answer(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, json_t *doc);
static ngx_int_t ngx_http_loyalty_admin_fail(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_uint_t status, const char *message);


static const ngx_http_loyalty_writer_t  ngx_http_loyalty_admin_writer = {
    NGX_HTTP_LOYALTY_WRITE_ADMIN, ngx_http_loyalty_admin_write, NULL,
    ngx_http_loyalty_admin_written, ngx_http_loyalty_admin_message
};

/* by op; the others are a record's (ngx_http_loyalty_admin_record()) */
static ngx_http_loyalty_admin_op_pt  *ngx_http_loyalty_admin_ops[] = {
    [NGX_HTTP_LOYALTY_OP_EVENTS] = ngx_http_loyalty_admin_events,
    [NGX_HTTP_LOYALTY_OP_DUE] = ngx_http_loyalty_admin_claim,
    [NGX_HTTP_LOYALTY_OP_DUE_ACK] = ngx_http_loyalty_admin_ack,
    [NGX_HTTP_LOYALTY_OP_REFERRALS] = ngx_http_loyalty_admin_referrals,
    [NGX_HTTP_LOYALTY_OP_ERASE] = ngx_http_loyalty_admin_member_data,
    [NGX_HTTP_LOYALTY_OP_EXPORT] = ngx_http_loyalty_admin_member_data
};


/* in the thread pool: claims, leaving the list in a->res */
static int
ngx_http_loyalty_admin_claim(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int      rc;
    json_t  *list;

    list = json_array();
    if (list == NULL) {
        return ENOMEM;
    }

    rc = loyalty_due_claim(&a->store->st, txn, &a->claim, list);

    if (rc != 0) {
        json_decref(list);
        return rc;
    }

    a->res = json_pack("{s:o}", "due", list);

    return (a->res == NULL) ? ENOMEM : 0;
}


/*
 * The request's body as JSON, an object if asked; NULL: a 400, its
 * reason (jansson's) in a->err.
 */
static json_t *
ngx_http_loyalty_admin_doc(ngx_http_loyalty_admin_t *a, ngx_uint_t object)
{
    json_t        *doc;
    json_error_t   jerr;

    doc = json_loadb((char *) a->body, a->len, JSON_REJECT_DUPLICATES,
                     &jerr);

    if (doc == NULL || (object && !json_is_object(doc))) {
        a->status = NGX_HTTP_BAD_REQUEST;
        (void) snprintf(a->err, sizeof(a->err), "%s",
                        doc ? "the body must be a JSON object" : jerr.text);
        json_decref(doc);
        return NULL;
    }

    return doc;
}


/* in the thread pool: acknowledgements from the body */
static int
ngx_http_loyalty_admin_ack(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int          rc;
    json_t      *doc, *res;
    const char  *status;

    doc = ngx_http_loyalty_admin_doc(a, 0);
    if (doc == NULL) {
        return -1;
    }

    rc = loyalty_due_ack_json(&a->store->st, txn, doc, a->now, &res,
                              a->err, sizeof(a->err));
    json_decref(doc);

    if (rc == -1) {
        a->status = NGX_HTTP_LOYALTY_UNPROCESSABLE;
        return rc;
    }

    if (rc != 0) {
        json_decref(res);
        return rc;
    }

    /* one acknowledgement: its status is the answer's */
    status = json_string_value(json_object_get(res, "status"));

    if (status == NULL || ngx_strcmp(status, "acked") == 0
        || ngx_strcmp(status, "already") == 0)
    {
        a->res = res;
        return 0;
    }

    if (ngx_strcmp(status, "unknown") == 0) {
        a->status = NGX_HTTP_NOT_FOUND;

    } else if (ngx_strcmp(status, "conflict") == 0) {
        a->status = NGX_HTTP_CONFLICT;

    } else {
        a->status = NGX_HTTP_LOYALTY_UNPROCESSABLE;
    }

    (void) snprintf(a->err, sizeof(a->err), "%s",
                    json_string_value(json_object_get(res, "error")));
    json_decref(res);

    return -1;
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


/* hands the write to the store writer */
ngx_int_t
ngx_http_loyalty_admin_post(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    ngx_http_loyalty_write_t  *w;

    w = &a->write;

    ngx_http_loyalty_write_request(w, &ngx_http_loyalty_admin_writer,
                                   a->store, a, r);
    w->size = a->len;
    w->retry = 1;
    /* an export reads whole databases, a downline has no bound */
    w->read = (a->op == NGX_HTTP_LOYALTY_OP_EXPORT
               || a->op == NGX_HTTP_LOYALTY_OP_REFERRALS);

    if (ngx_http_loyalty_write_post(w) == NGX_DONE) {
        return NGX_DONE;
    }

    return ngx_http_loyalty_admin_done(r, a);
}


/*
 * In the thread pool: the request's write, in the writer's transaction;
 * the answer is left in a.  0: commit; else not (answered, or failed).
 */
static int
ngx_http_loyalty_admin_write(ngx_http_loyalty_write_t *w, MDB_txn *txn)
{
    ngx_http_loyalty_admin_t *a = w->data;

    int                            rc;
    ngx_http_loyalty_admin_op_pt  *op;

    /* from the start each time: a write may be made again */
    json_decref(a->res);
    a->res = NULL;
    a->status = 0;
    a->err[0] = '\0';
    a->warn = 0;

    if (!a->store->open || (!a->store->writable && !w->read)) {
        a->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_cpystrn((u_char *) a->err,
                    (u_char *) (w->read ? "the store cannot be read now"
                                        : "the store cannot be written now"),
                    sizeof(a->err));
        return NGX_HTTP_LOYALTY_WRITE_NONE;
    }

    op = (a->op < sizeof(ngx_http_loyalty_admin_ops)
                  / sizeof(ngx_http_loyalty_admin_ops[0]))
         ? ngx_http_loyalty_admin_ops[a->op] : NULL;

    rc = (op ? op : ngx_http_loyalty_admin_record)(a, txn);

    if (rc == 0 && a->res != NULL) {
        a->status = NGX_HTTP_OK;
        return 0;
    }

    if (rc == 0 || rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_TOO_MANY)
    {
        /* answered (or not: then a 500) */
        if (a->status == 0) {
            json_decref(a->res);
            a->res = NULL;
        }

        return NGX_HTTP_LOYALTY_WRITE_NONE;
    }

    /* anything else is LMDB's (negative) or the system's (errno) */
    json_decref(a->res);
    a->res = NULL;
    a->status = 0;

    return rc;
}


/* GET .../members/ID/referrals: the downline */
static int
ngx_http_loyalty_admin_referrals(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    a->res = loyalty_admin_referrals(&a->store->st, txn,
                                     (char *) a->key.data, a->key.len);

    if (a->res == NULL) {
        a->status = NGX_HTTP_NOT_FOUND;
        (void) snprintf(a->err, sizeof(a->err), "no such record");
        return LOYALTY_BATCH_INVALID;
    }

    return 0;
}


/* PUT, DELETE or PATCH of a record */
static int
ngx_http_loyalty_admin_record(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    if (a->method == NGX_HTTP_DELETE) {
        return ngx_http_loyalty_admin_delete(a, txn);
    }

    if (a->method == NGX_HTTP_PATCH) {
        return ngx_http_loyalty_admin_member_data(a, txn);
    }

    return ngx_http_loyalty_admin_put(a, txn);
}


/* POST .../events: the batch, all or nothing */
static int
ngx_http_loyalty_admin_events(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int                          rc;
    loyalty_batch_t              batch;
    loyalty_event_hook_t         recording;
    loyalty_repl_recorder_t      recorder;
    const loyalty_event_hook_t  *hook;

    ngx_memzero(&batch, sizeof(loyalty_batch_t));

    hook = ngx_http_loyalty_lua_event_hook();

    /* a cluster's edge: the hook's decisions go into the stream's message */
    json_decref(a->decisions);
    a->decisions = NULL;

    if (ngx_http_loyalty_nats_get() && hook && hook->handler) {
        recorder.inner = hook;
        recorder.decisions = json_object();
        recording = *hook;
        recording.handler = loyalty_repl_hook_record;
        recording.data = &recorder;
        hook = &recording;
        a->decisions = recorder.decisions;
    }

    rc = loyalty_batch_apply(&a->store->st, txn, (char *) a->body, a->len,
                             a->max_events, a->now, hook, &batch,
                             a->err, sizeof(a->err));

    if (rc == 0) {
        a->res = json_pack("{s:I,s:I,s:I}",
                           "events", (json_int_t) batch.events,
                           "applied", (json_int_t) batch.applied,
                           "duplicates", (json_int_t) batch.duplicates);

    } else if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT) {
        /* ids applied before with other data: 409 */
        a->status = rc == LOYALTY_BATCH_CONFLICT
                    ? NGX_HTTP_CONFLICT : NGX_HTTP_LOYALTY_UNPROCESSABLE;
        a->res = json_pack("{s:s,s:O}", "error",
                           rc == LOYALTY_BATCH_CONFLICT
                           ? "conflicting events" : "invalid events",
                           "errors", batch.errors ? batch.errors
                                                  : json_array());
        rc = LOYALTY_BATCH_INVALID;

    } else if (rc == LOYALTY_BATCH_TOO_MANY) {
        a->status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    loyalty_batch_free(&batch);

    return rc;
}


/* DELETE .../members/ID */
static int
ngx_http_loyalty_admin_delete(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int  rc;

    rc = loyalty_admin_delete_member(&a->store->st, txn,
                                     (char *) a->key.data, a->key.len);
    if (rc == MDB_NOTFOUND) {
        a->status = NGX_HTTP_NOT_FOUND;
        ngx_cpystrn((u_char *) a->err, (u_char *) "no such record",
                    sizeof(a->err));
        return -1;    /* answered: nothing to write */
    }

    if (rc == 0) {
        a->res = json_pack("{s:s%}", "deleted", a->key.data, a->key.len);
    }

    return rc;
}


/* PUT .../members/ID, .../codes/CODE, .../prices/SKU, .../rules */
static int
ngx_http_loyalty_admin_put(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int      rc;
    json_t  *doc;

    static const char  *kinds[] = {
        NULL, "member", NULL, NULL, "code", "price", "rules", NULL, NULL,
        NULL, NULL, NULL, NULL, NULL
    };

    doc = ngx_http_loyalty_admin_doc(a, 1);
    if (doc == NULL) {
        return -1;
    }

    rc = loyalty_admin_put(&a->store->st, txn, kinds[a->op],
                           (char *) a->key.data, a->key.len, doc,
                           a->hosts, a->host_lens, a->nhosts,
                           a->now, a->err, sizeof(a->err));
    json_decref(doc);

    if (rc == -1) {
        a->status = NGX_HTTP_LOYALTY_UNPROCESSABLE;

    } else if (rc == LOYALTY_ADMIN_CONFLICT) {
        a->status = NGX_HTTP_CONFLICT;
        rc = -1;

    } else if (rc == 0 && a->err[0]) {
        /* stored, but the operator should know: a weak code */
        a->res = json_pack("{s:s,s:s}", "stored", kinds[a->op],
                           "warning", a->err);
        a->warn = 1;

    } else if (rc == 0) {
        a->res = json_pack("{s:s}", "stored", kinds[a->op]);
    }

    return rc;
}


/*
 * PATCH .../members/ID, POST .../members/ID/erase and GET
 * .../members/ID/export: 0 with a->res, -1 answered with a->status, or
 * an LMDB error
 */
static int
ngx_http_loyalty_admin_member_data(ngx_http_loyalty_admin_t *a,
    MDB_txn *txn)
{
    int      rc;
    json_t  *doc;

    doc = NULL;

    if (a->op == NGX_HTTP_LOYALTY_OP_EXPORT) {
        a->res = loyalty_member_export(&a->store->st, txn,
                                       (char *) a->key.data, a->key.len,
                                       &rc);

    } else if (a->op == NGX_HTTP_LOYALTY_OP_ERASE) {
        rc = ngx_http_loyalty_admin_erase(a, txn);

    } else {
        doc = ngx_http_loyalty_admin_doc(a, 0);
        if (doc == NULL) {
            return -1;
        }

        rc = loyalty_member_patch(&a->store->st, txn, (char *) a->key.data,
                                  a->key.len, doc, a->now, a->err,
                                  sizeof(a->err));
    }

    json_decref(doc);

    if (rc == MDB_NOTFOUND) {
        a->status = NGX_HTTP_NOT_FOUND;
        (void) snprintf(a->err, sizeof(a->err), "no such record");
        return -1;
    }

    if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        a->status = (rc == -1) ? NGX_HTTP_BAD_REQUEST : NGX_HTTP_CONFLICT;
        return -1;
    }

    if (rc != 0 || a->op == NGX_HTTP_LOYALTY_OP_EXPORT) {
        /* the export is in a->res */
        return rc;
    }

    a->res = (a->op == NGX_HTTP_LOYALTY_OP_ERASE)
             ? json_pack("{s:s%,s:s}", "erased", a->key.data, a->key.len,
                         "pseudonym", a->pseudonym)
             : loyalty_admin_get_member(&a->store->st, txn,
                                        (char *) a->key.data, a->key.len);

    return (a->res == NULL) ? ENOMEM : 0;
}


/*
 * The erasure, and what its message needs: the pseudonym, and the key
 * when this erasure made the store's first one (a cluster's edge aborts
 * the transaction, so its followers must keep the key for it)
 */
static int
ngx_http_loyalty_admin_erase(ngx_http_loyalty_admin_t *a, MDB_txn *txn)
{
    int               rc, had;
    loyalty_store_t  *st;

    st = &a->store->st;
    a->erase_key_made = 0;

    rc = loyalty_member_erase_key(st, txn, a->erase_key, 0);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    had = (rc == 0);

    rc = loyalty_member_erase(st, txn, (char *) a->key.data, a->key.len,
                              a->pseudonym);

    if (rc == 0 && !had) {
        rc = loyalty_member_erase_key(st, txn, a->erase_key, 0);
        a->erase_key_made = (rc == 0);
    }

    return rc;
}


/*
 * In the thread pool, with loyalty_nats: the write just checked, as a
 * message of the cluster's stream (schema/repl-message.schema.json):
 * what the followers give the same core function, with the same time.
 */
static json_t *
ngx_http_loyalty_admin_message(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_admin_t *a = w->data;

    int          rc;
    size_t       i;
    json_t      *msg, *hosts, *body;
    const char  *kind;

    static const char  *kinds[] = {
        NULL, "member", NULL, NULL, "code", "price", "rules", NULL, NULL,
        NULL, NULL, NULL, NULL, NULL
    };

    kind = a->op == NGX_HTTP_LOYALTY_OP_EVENTS ? "events"
           : a->op == NGX_HTTP_LOYALTY_OP_DUE ? "claim"
           : a->op == NGX_HTTP_LOYALTY_OP_DUE_ACK ? "ack"
           : a->op == NGX_HTTP_LOYALTY_OP_ERASE ? "erase"
           : a->method == NGX_HTTP_PATCH ? "patch"
           : a->method == NGX_HTTP_DELETE ? "delete" : "put";

    msg = ngx_http_loyalty_nats_message(ngx_http_loyalty_nats_get(), kind,
                                        a->now);
    if (msg == NULL) {
        return NULL;
    }

    if (a->op == NGX_HTTP_LOYALTY_OP_EVENTS) {
        /* the body as taken: JSON, so UTF-8; the hook's decisions */
        rc = json_object_set_new(msg, "body",
                                 json_stringn((char *) a->body, a->len));

        if (rc == 0 && json_object_size(a->decisions)) {
            rc = json_object_set(msg, "hook", a->decisions);
        }

    } else if (a->op == NGX_HTTP_LOYALTY_OP_DUE_ACK) {
        body = json_loadb((char *) a->body, a->len, 0, NULL);
        rc = body ? json_object_set_new(msg, "body", body) : -1;

    } else if (a->op == NGX_HTTP_LOYALTY_OP_DUE) {
        rc = json_object_set_new(msg, "until", json_integer(a->claim.until))
             | json_object_set_new(msg, "lease", json_integer(a->claim.lease))
             | json_object_set_new(msg, "limit", json_integer(a->claim.limit))
             | json_object_set_new(msg, "touches",
                                   json_integer(a->claim.touches));

    } else if (a->op == NGX_HTTP_LOYALTY_OP_ERASE
               || a->method == NGX_HTTP_PATCH)
    {
        rc = ngx_http_loyalty_admin_member_message(a, msg);

    } else if (a->method == NGX_HTTP_DELETE) {
        rc = json_object_set_new(msg, "what", json_string("member"))
             | json_object_set_new(msg, "key",
                                   json_stringn((char *) a->key.data,
                                                a->key.len));

    } else {
        hosts = json_array();

        for (i = 0; hosts && i < a->nhosts; i++) {
            json_array_append_new(hosts, json_stringn(a->hosts[i],
                                                      a->host_lens[i]));
        }

        body = json_loadb((char *) a->body, a->len, 0, NULL);

        rc = (body == NULL || hosts == NULL)
             | json_object_set_new(msg, "what", json_string(kinds[a->op]))
             | json_object_set_new(msg, "key",
                                   json_stringn((char *) a->key.data,
                                                a->key.len))
             | json_object_set_new(msg, "record", body)
             | json_object_set_new(msg, "hosts", hosts);
    }

    if (rc != 0) {
        json_decref(msg);
        return NULL;
    }

    return msg;
}


/*
 * "patch": the member and the fields changed; "erase": the member, the
 * pseudonym the edge computed and, if this erasure made it, the key
 */
static int
ngx_http_loyalty_admin_member_message(ngx_http_loyalty_admin_t *a,
    json_t *msg)
{
    int      rc;
    u_char   hex[2 * LOYALTY_ERASE_KEY_LEN];
    json_t  *fields;

    rc = json_object_set_new(msg, "key", json_stringn((char *) a->key.data,
                                                      a->key.len));

    if (a->op != NGX_HTTP_LOYALTY_OP_ERASE) {
        fields = json_loadb((char *) a->body, a->len, 0, NULL);
        return fields ? rc | json_object_set_new(msg, "fields", fields) : -1;
    }

    rc |= json_object_set_new(msg, "pseudonym", json_string(a->pseudonym));

    if (a->erase_key_made) {
        ngx_hex_dump(hex, a->erase_key, LOYALTY_ERASE_KEY_LEN);
        rc |= json_object_set_new(msg, "erase_key",
                                  json_stringn((char *) hex, sizeof(hex)));
    }

    return rc;
}


/* back in the event loop: the answer, and the request finished */
static void
ngx_http_loyalty_admin_written(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_admin_t *a = w->data;

    ngx_http_loyalty_finish(a->request,
                            ngx_http_loyalty_admin_done(a->request, a));
}


/* back in the event loop: the answer */
static ngx_int_t
ngx_http_loyalty_admin_done(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a)
{
    u_char                    *p;
    json_t                    *doc;
    ngx_http_loyalty_write_t  *w;
    u_char                     detail[LOYALTY_ERRLEN + 64];

    w = &a->write;

    json_decref(a->decisions);
    a->decisions = NULL;

    if (w->rc != 0) {
        json_decref(a->res);
        a->res = NULL;
    }

    /* other writes were using the map or the store: the client retries */
    switch (w->rc) {

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

    case NGX_EAGAIN:
        return ngx_http_loyalty_admin_fail(r, a, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "too busy, try again");

    case NGX_HTTP_LOYALTY_WRITE_UNPUBLISHED:
        /* never a 2xx for a write the cluster's stream does not hold */
        ngx_http_loyalty_write_log(w, NGX_LOG_ERR, NULL,
                                   "; the admin write is refused");
        return ngx_http_loyalty_admin_fail(r, a, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           w->why);
    }

    if (w->rc != 0) {
        (void) ngx_snprintf(detail, sizeof(detail), "%s%s%s%Z",
                            ngx_http_loyalty_write_strerror(w),
                            a->err[0] ? ": " : "", a->err);
        ngx_http_loyalty_write_log(w, NGX_LOG_ERR, (char *) detail,
                                   "; the admin write failed");
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
    /* the writes, not the reads in the pool (an export, a downline) */
    if (!a->write.read) {
        ngx_http_loyalty_metrics_answer(NGX_HTTP_LOYALTY_M_WRITE, status);
    }

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
