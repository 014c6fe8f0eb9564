/*
 * nginx-loyalty: the store writer, the one way the glue writes into the
 * store (admin API and webhooks, click-zone flushes, cadence sweeps).
 *
 * A write is an ngx_http_loyalty_write_t of a writer, a static
 * ngx_http_loyalty_writer_t of each file that writes: its kind, a step
 * that makes it inside a write transaction (apply), and a handler for its
 * outcome back in the event loop (done).  The store writer carries it
 * out: it posts the write to nginx's thread pool "default", so that no
 * worker waits on LMDB's writer lock, and its thread makes it as
 * SCHED_BATCH (ngx_http_loyalty_write_task()); marks the store busy
 * while the environment is in use (no reopen, no remap meanwhile);
 * commits only into the store at the configured path
 * (ngx_http_loyalty_store_commit()); and when a write finds the store
 * full, grown by another process or replaced on disk, puts the store
 * right (ngx_http_loyalty_store_recover(), one size rule) and writes
 * again, twice at most, if the write asks for it.  A write marked read
 * (w->read) is a long read taken off the event loop the same way: in a
 * read transaction, never committed nor published.
 *
 * Where a write is carried out is this file's business alone.  With
 * loyalty_nats (ngx_http_loyalty_nats.c), a write that has a message is
 * checked in the transaction, which is then aborted, and published to the
 * cluster's stream instead; it is done once JetStream acknowledged it,
 * and the edges' followers write it into every store.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


/* a failed write put right is done again at once, this many times */
#define NGX_HTTP_LOYALTY_WRITE_RETRIES  2

/* the room a full store is grown by: this, and 8 times what a write adds */
#define NGX_HTTP_LOYALTY_WRITE_ROOM     (1024 * 1024)

/* a write held up on LMDB's writer lock keeps its request this long */
#define NGX_HTTP_LOYALTY_WRITE_WAIT     60000


static void ngx_http_loyalty_write_set(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_log_t *log);
static ngx_int_t ngx_http_loyalty_write_go(ngx_http_loyalty_write_t *w);
static ngx_int_t ngx_http_loyalty_write_start(ngx_http_loyalty_write_t *w);
static ngx_uint_t ngx_http_loyalty_write_again(ngx_http_loyalty_write_t *w);
#if (NGX_THREADS)
static void ngx_http_loyalty_write_hold(ngx_http_loyalty_write_t *w);
static void ngx_http_loyalty_write_release(ngx_http_loyalty_write_t *w);
static void ngx_http_loyalty_write_task(void *data, ngx_log_t *log);
#if (NGX_LINUX && defined SCHED_BATCH)
static void ngx_http_loyalty_write_sched(ngx_log_t *log, ngx_err_t err,
    const char *what);
#endif
static void ngx_http_loyalty_write_back(ngx_event_t *ev);
static void ngx_http_loyalty_write_wait(ngx_event_t *ev);
#endif
static int ngx_http_loyalty_write_publish(ngx_http_loyalty_write_t *w);


#if (NGX_THREADS)
static ngx_str_t  ngx_http_loyalty_write_pool = ngx_string("default");
#endif


/* whose write it is, in the log */
static const char  *ngx_http_loyalty_write_names[] = {
    "loyalty_admin",
    "loyalty_click_zone",
    "loyalty_cadence_sweep"
};


/* a directive that writes: its workers need the thread pool */
ngx_int_t
ngx_http_loyalty_write_conf(ngx_conf_t *cf)
{
#if (NGX_THREADS)
    /* the default pool, as "aio threads" uses, unless one is configured */
    if (ngx_thread_pool_add(cf, &ngx_http_loyalty_write_pool) == NULL) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


#if (NGX_THREADS)

ngx_thread_pool_t *
ngx_http_loyalty_pool(void)
{
    return ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                               &ngx_http_loyalty_write_pool);
}

#endif


/* a worker's own write, made again and again (flushes, sweep steps) */
ngx_int_t
ngx_http_loyalty_write_init(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_cycle_t *cycle)
{
    ngx_http_loyalty_write_set(w, writer, store, data, cycle->log);

#if (NGX_THREADS)
    if (ngx_thread_pool_get(cycle, &ngx_http_loyalty_write_pool) == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "%s: no thread pool \"%V\"",
                      ngx_http_loyalty_write_names[w->writer->kind],
                      &ngx_http_loyalty_write_pool);
        return NGX_ERROR;
    }

    w->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (w->task == NULL) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


/* a request's write, which holds the request until it is done */
void
ngx_http_loyalty_write_request(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_http_request_t *r)
{
    ngx_http_loyalty_write_set(w, writer, store, data, r->connection->log);
    w->request = r;
}


static void
ngx_http_loyalty_write_set(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_log_t *log)
{
    w->writer = writer;
    w->store = store;
    w->data = data;
    w->log = log;
}


/*
 * NGX_DONE: the write is under way, and its writer's done() takes its
 * outcome; or NGX_OK: it is over already (refused, or made in this thread
 * where nginx has no threads), and the caller takes the outcome in w->rc.
 */
ngx_int_t
ngx_http_loyalty_write_post(ngx_http_loyalty_write_t *w)
{
    w->retried = 0;

    return ngx_http_loyalty_write_go(w);
}


/* started, and started again while the store can be put right */
static ngx_int_t
ngx_http_loyalty_write_go(ngx_http_loyalty_write_t *w)
{
    for ( ;; ) {
        w->rc = 0;
        w->recovered = 0;

        if (ngx_http_loyalty_write_start(w) == NGX_DONE) {
            return NGX_DONE;
        }

        if (!ngx_http_loyalty_write_again(w)) {
            return NGX_OK;
        }
    }
}


static ngx_int_t
ngx_http_loyalty_write_start(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_store_t  *store;

#if (NGX_THREADS)
    ngx_thread_pool_t         *tp;
#endif

    store = w->store;

    /*
     * A replacement noticed while writes were in the pool: none more
     * until it is taken up, so that the last one done can take it up.
     */
    if (store->stale
        && ngx_http_loyalty_store_recover(store,
                                          NGX_HTTP_LOYALTY_STORE_REPLACED,
                                          0, w->log)
           != NGX_OK)
    {
        w->rc = NGX_HTTP_LOYALTY_STORE_REPLACED;
        return NGX_OK;
    }

#if (NGX_THREADS)

    tp = ngx_http_loyalty_pool();

    if (w->task == NULL && w->request) {
        w->task = ngx_thread_task_alloc(w->request->pool, 0);
    }

    if (tp == NULL || w->task == NULL) {
        w->rc = NGX_ENOMEM;
        return NGX_OK;
    }

    w->task->ctx = w;
    w->task->handler = ngx_http_loyalty_write_task;
    w->task->event.data = w;
    w->task->event.handler = ngx_http_loyalty_write_back;

    ngx_http_loyalty_write_hold(w);

    if (ngx_thread_task_post(tp, w->task) != NGX_OK) {
        ngx_http_loyalty_write_release(w);
        w->rc = NGX_EAGAIN;
        return NGX_OK;
    }

    return NGX_DONE;

#else

    store->busy++;
    ngx_http_loyalty_write_now(w);
    store->busy--;

    return NGX_OK;

#endif
}


/*
 * After a write that was not committed: puts the store right if it can
 * (a full store grown by one rule, a grown one remapped, a replaced one
 * taken up); says whether to write again now.
 */
static ngx_uint_t
ngx_http_loyalty_write_again(ngx_http_loyalty_write_t *w)
{
    size_t  need;

    if (w->rc == 0) {
        return 0;
    }

    need = NGX_HTTP_LOYALTY_WRITE_ROOM + w->size * 8;

    w->recovered = (ngx_http_loyalty_store_recover(w->store, w->rc, need,
                                                   w->log)
                    == NGX_OK);

    if (!w->recovered || !w->retry
        || w->retried >= NGX_HTTP_LOYALTY_WRITE_RETRIES)
    {
        return 0;
    }

    w->retried++;

    return 1;
}


/*
 * The write made here, in one write transaction, committed (and synced)
 * into the live store or aborted (a read: in a read transaction, always
 * aborted); in the thread pool, or at exit when the pool has stopped.
 * Touches nothing of the event loop.
 */
void
ngx_http_loyalty_write_now(ngx_http_loyalty_write_t *w)
{
    int       rc;
    size_t    id;
    MDB_txn  *txn;

    /* a read waits on no writer lock, and holds none */
    rc = mdb_txn_begin(w->store->st.env, NULL, w->read ? MDB_RDONLY : 0,
                       &txn);
    if (rc != 0) {
        w->rc = rc;
        return;
    }

    rc = w->writer->apply(w, txn);

    if (rc != 0 || w->read) {
        mdb_txn_abort(txn);
        w->rc = (rc == NGX_HTTP_LOYALTY_WRITE_NONE) ? 0 : rc;
        return;
    }

    if (w->writer->message && ngx_http_loyalty_nats_get()) {
        /* checked: the followers write it, into every edge's store */
        mdb_txn_abort(txn);
        w->rc = ngx_http_loyalty_write_publish(w);

        if (w->rc == 0 && w->writer->committed) {
            w->writer->committed(w, 0);
        }

        return;
    }

    id = mdb_txn_id(txn);

    /* only into the store at the configured path */
    w->rc = ngx_http_loyalty_store_commit(w->store, txn);

    if (w->rc == 0 && w->writer->committed) {
        w->writer->committed(w, id);
    }
}


/* the write to the cluster's stream: 0, or WRITE_UNPUBLISHED with why */
static int
ngx_http_loyalty_write_publish(ngx_http_loyalty_write_t *w)
{
    json_t                   *msg;
    ngx_int_t                 rc;
    ngx_http_loyalty_nats_t  *n;

    n = ngx_http_loyalty_nats_get();
    w->elsewhere = 0;

    msg = w->writer->message(w);
    if (msg == NULL) {
        ngx_cpystrn((u_char *) w->why, (u_char *) "out of memory",
                    sizeof(w->why));
        return NGX_HTTP_LOYALTY_WRITE_UNPUBLISHED;
    }

    rc = w->once
         ? ngx_http_loyalty_nats_publish_once(n, msg, w->once, w->why,
                                              sizeof(w->why))
         : ngx_http_loyalty_nats_publish(n, msg, NULL, w->why,
                                         sizeof(w->why));
    json_decref(msg);

    if (rc == NGX_DECLINED) {
        w->elsewhere = 1;
        return 0;
    }

    return rc == NGX_OK ? 0 : NGX_HTTP_LOYALTY_WRITE_UNPUBLISHED;
}


#if (NGX_THREADS)

/*
 * The environment is in use: no reopen, no remap until the write is
 * back.  A request's write holds the request, and a timer that cannot be
 * cancelled keeps a worker that is shutting down from leaving the client
 * without its answer.
 */
static void
ngx_http_loyalty_write_hold(ngx_http_loyalty_write_t *w)
{
    ngx_http_request_t  *r;

    w->store->busy++;

    r = w->request;
    if (r == NULL) {
        return;
    }

    r->main->blocked++;
    r->aio = 1;

    w->wait.handler = ngx_http_loyalty_write_wait;
    w->wait.data = w;
    w->wait.log = w->log;
    ngx_add_timer(&w->wait, NGX_HTTP_LOYALTY_WRITE_WAIT);
}


static void
ngx_http_loyalty_write_release(ngx_http_loyalty_write_t *w)
{
    ngx_http_request_t  *r;

    w->store->busy--;

    r = w->request;
    if (r == NULL) {
        return;
    }

    r->main->blocked--;
    r->aio = 0;

    if (w->wait.timer_set) {
        ngx_del_timer(&w->wait);
    }
}


/*
 * In the thread pool: the write made as SCHED_BATCH, so that its waking
 * thread does not preempt the worker serving requests on the same core,
 * then the thread's policy as it was, for the pool's other users ("aio
 * threads").  Only a SCHED_OTHER thread is changed: an unprivileged
 * thread may always go to SCHED_BATCH and back at its own nice value.
 * A failure costs the write nothing.
 */
static void
ngx_http_loyalty_write_task(void *data, ngx_log_t *log)
{
#if (NGX_LINUX && defined SCHED_BATCH)

    int                 policy, err;
    pthread_t           self;
    ngx_uint_t          batched;
    struct sched_param  param, batch;

    self = pthread_self();
    batched = 0;

    if (pthread_getschedparam(self, &policy, &param) == 0
        && policy == SCHED_OTHER)
    {
        ngx_memzero(&batch, sizeof(struct sched_param));

        err = pthread_setschedparam(self, SCHED_BATCH, &batch);
        if (err == 0) {
            batched = 1;

        } else {
            ngx_http_loyalty_write_sched(log, err, "run as SCHED_BATCH");
        }
    }

    ngx_http_loyalty_write_now(data);

    if (batched) {
        err = pthread_setschedparam(self, policy, &param);
        if (err != 0) {
            ngx_http_loyalty_write_sched(log, err, "go back to its policy");
        }
    }

#else

    ngx_http_loyalty_write_now(data);

#endif
}


#if (NGX_LINUX && defined SCHED_BATCH)

/* the first failure of a worker at notice level, the others at debug */
static void
ngx_http_loyalty_write_sched(ngx_log_t *log, ngx_err_t err,
    const char *what)
{
    static ngx_atomic_t  logged;

    if (ngx_atomic_cmp_set(&logged, 0, 1)) {
        ngx_log_error(NGX_LOG_NOTICE, log, err,
                      "the store writer's thread cannot %s", what);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, log, err,
                   "the store writer's thread cannot %s", what);
}

#endif


/* back in the event loop */
static void
ngx_http_loyalty_write_back(ngx_event_t *ev)
{
    ngx_http_loyalty_write_t *w = ev->data;

    ngx_http_loyalty_write_release(w);

    if (ngx_http_loyalty_write_again(w)
        && ngx_http_loyalty_write_go(w) == NGX_DONE)
    {
        return;
    }

    w->writer->done(w);
}


/* a write may wait long on LMDB's writer lock: it still gets its answer */
static void
ngx_http_loyalty_write_wait(ngx_event_t *ev)
{
    ngx_add_timer(ev, NGX_HTTP_LOYALTY_WRITE_WAIT);
}

#endif


/*
 * A content handler's work posted to the thread pool (rc NGX_DONE) keeps
 * its request until it is back: ngx_http_loyalty_finish() lets it go.
 */
ngx_int_t
ngx_http_loyalty_posted(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


/*
 * Back in the event loop, after a request's work in the thread pool: its
 * answer, then the requests that were posted meanwhile (the connection
 * is taken first: finalizing may free the request).
 */
void
ngx_http_loyalty_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* why a write failed, for the log or an answer */
const char *
ngx_http_loyalty_write_strerror(ngx_http_loyalty_write_t *w)
{
    switch (w->rc) {

    case NGX_EAGAIN:
        return "thread pool queue full";

    case NGX_ENOMEM:
        return "out of memory";

    case NGX_HTTP_LOYALTY_WRITE_UNPUBLISHED:
        return w->why;

    default:
        return ngx_http_loyalty_store_strerror(w->rc);
    }
}


/*
 * The one message of a write that failed: whose write, the store, why
 * (the caller's detail if it has one, else the store's or LMDB's reason),
 * and what happens next.
 */
void
ngx_http_loyalty_write_log(ngx_http_loyalty_write_t *w, ngx_uint_t level,
    const char *detail, const char *then)
{
    ngx_log_error(level, w->log, 0, "%s: the store \"%s\": %s%s",
                  ngx_http_loyalty_write_names[w->writer->kind],
                  w->store->path,
                  (detail && detail[0]) ? detail
                                        : ngx_http_loyalty_write_strerror(w),
                  then ? then : "");
}
