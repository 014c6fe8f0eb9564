/*
 * nginx-loyalty: loyalty_cadence_sweep, the periodic sweep for the
 * cadences that time triggers, run by one worker.
 *
 * A sweep goes through the store a step at a time (rewards that fell due,
 * LOYALTY_SWEEP_CHUNK members, one yearly_top cadence), each step one
 * write transaction in the thread pool, so that requests never wait on it
 * and event writes go on between its steps.  The conditions run in the
 * worker's write-path VM, which only ever runs inside a write transaction:
 * LMDB's writer lock keeps it to one thread.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"

#include "loyalty_cadence.h"


typedef struct {
    ngx_http_loyalty_store_t     *store;
    loyalty_cadences_t           *cadences;
    ngx_msec_t                    interval;
    ngx_event_t                   timer;
    ngx_thread_pool_t            *pool;
    ngx_thread_task_t            *task;

    int64_t                       now;      /* the sweep's time */
    ngx_msec_t                    started;
    loyalty_sweep_t               sw;
    loyalty_sweep_t               before;   /* to retry a step */
    ngx_uint_t                    steps;
    int                           rc;
    char                          err[LOYALTY_ERRLEN];
} ngx_http_loyalty_sweep_t;


static void ngx_http_loyalty_sweep_timer(ngx_event_t *ev);
static void ngx_http_loyalty_sweep_post(ngx_http_loyalty_sweep_t *s);
static void ngx_http_loyalty_sweep_step(void *data, ngx_log_t *log);
static void ngx_http_loyalty_sweep_stepped(ngx_event_t *ev);
static void ngx_http_loyalty_sweep_publish(ngx_http_loyalty_sweep_t *s);
static void ngx_http_loyalty_sweep_over(ngx_http_loyalty_sweep_t *s);


static ngx_http_loyalty_sweep_t  *ngx_http_loyalty_sweep;


/* the first worker sweeps: one sweep at a time however many workers */
ngx_int_t
ngx_http_loyalty_sweep_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_http_loyalty_sweep_t  *s;

#if (NGX_THREADS)
    ngx_str_t                  name = ngx_string("default");
#endif

    ngx_http_loyalty_sweep = NULL;

    if (lmcf->cadence_sweep == 0 || lmcf->store == NULL || ngx_worker != 0
        || ngx_process != NGX_PROCESS_WORKER)
    {
        return NGX_OK;
    }

    s = ngx_pcalloc(cycle->pool, sizeof(ngx_http_loyalty_sweep_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->store = lmcf->store;
    s->interval = lmcf->cadence_sweep;
    s->cadences = ngx_http_loyalty_lua_cadences();

#if (NGX_THREADS)
    s->pool = ngx_thread_pool_get(cycle, &name);
    if (s->pool == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "loyalty_cadence_sweep: no thread pool \"default\"");
        return NGX_ERROR;
    }

    s->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (s->task == NULL) {
        return NGX_ERROR;
    }

    s->task->ctx = s;
    s->task->handler = ngx_http_loyalty_sweep_step;
    s->task->event.data = s;
    s->task->event.handler = ngx_http_loyalty_sweep_stepped;
#endif

    s->timer.handler = ngx_http_loyalty_sweep_timer;
    s->timer.data = s;
    s->timer.log = cycle->log;
    /* a sweep to come must not hold up a graceful shutdown */
    s->timer.cancelable = 1;

    /* the first soon after start, so that a restart does not skip one */
    ngx_add_timer(&s->timer, ngx_min(s->interval, 1000));

    ngx_http_loyalty_sweep = s;

    return NGX_OK;
}


static void
ngx_http_loyalty_sweep_timer(ngx_event_t *ev)
{
    ngx_http_loyalty_sweep_t *s = ev->data;

    MDB_txn  *txn;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* opens the store if no request has yet */
    txn = ngx_http_loyalty_store_begin(s->store, ev->log);
    if (txn) {
        ngx_http_loyalty_store_end(s->store);
    }

    if (txn == NULL || !s->store->writable) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "loyalty_cadence_sweep: the store \"%s\" cannot be "
                      "written now; the sweep waits for the next time",
                      s->store->path);
        ngx_add_timer(ev, s->interval);
        return;
    }

    ngx_memzero(&s->sw, sizeof(loyalty_sweep_t));
    s->now = ngx_time();
    s->started = ngx_current_msec;
    s->steps = 0;

    ngx_http_loyalty_sweep_post(s);
}


static void
ngx_http_loyalty_sweep_post(ngx_http_loyalty_sweep_t *s)
{
    s->before = s->sw;
    s->rc = 0;
    s->err[0] = '\0';
    s->store->busy++;

#if (NGX_THREADS)

    if (ngx_thread_task_post(s->pool, s->task) == NGX_OK) {
        return;
    }

    s->rc = EAGAIN;
    ngx_http_loyalty_sweep_stepped(&s->task->event);

#else

    {
        ngx_event_t  done;

        ngx_http_loyalty_sweep_step(s, s->timer.log);
        done.data = s;
        ngx_http_loyalty_sweep_stepped(&done);
    }

#endif
}


/* in the thread pool: one step, one write transaction */
static void
ngx_http_loyalty_sweep_step(void *data, ngx_log_t *log)
{
    ngx_http_loyalty_sweep_t *s = data;

    int       rc;
    MDB_txn  *txn;

    /* a cluster's edge: the whole sweep is one message, once a period */
    if (ngx_http_loyalty_nats_get()) {
        ngx_http_loyalty_sweep_publish(s);
        return;
    }

    rc = mdb_txn_begin(s->store->st.env, NULL, 0, &txn);
    if (rc != 0) {
        s->rc = rc;
        return;
    }

    rc = loyalty_sweep_step(&s->store->st, txn, s->cadences, s->now,
                            LOYALTY_SWEEP_CHUNK, &s->sw, s->err,
                            sizeof(s->err));

    if (rc == 0) {
        /* only into the store at the configured path */
        rc = ngx_http_loyalty_store_commit(s->store, txn);

    } else {
        mdb_txn_abort(txn);
    }

    s->rc = rc;
}


/*
 * In the thread pool: {"kind":"sweep"} on loyalty.STREAM.sweep.PERIOD,
 * PERIOD the sweep's time over its interval: the first edge of the
 * cluster to publish it for the period does, the others find it there.
 * The followers sweep, each with its own cadences (loyaltyctl --lua).
 */
static void
ngx_http_loyalty_sweep_publish(ngx_http_loyalty_sweep_t *s)
{
    json_t                   *msg;
    ngx_int_t                 rc;
    ngx_http_loyalty_nats_t  *n;

    n = ngx_http_loyalty_nats_get();

    s->sw.done = 1;

    msg = ngx_http_loyalty_nats_message(n, "sweep", s->now);
    if (msg == NULL) {
        s->rc = ENOMEM;
        return;
    }

    rc = ngx_http_loyalty_nats_publish_once(n, msg,
                 (ngx_uint_t) s->now / (s->interval / 1000), s->err,
                 sizeof(s->err));
    json_decref(msg);

    if (rc == NGX_ERROR) {
        s->rc = ENOTCONN;
        return;
    }

    ngx_cpystrn((u_char *) s->err,
                (u_char *) (rc == NGX_OK ? "published by this edge"
                                         : "published by another edge"),
                sizeof(s->err));
}


static void
ngx_http_loyalty_sweep_stepped(ngx_event_t *ev)
{
    ngx_http_loyalty_sweep_t *s = ev->data;

    ngx_log_t  *log;

    log = s->timer.log;
    s->store->busy--;
    s->steps++;

    /*
     * The store grew, is full or was replaced: the step is undone; put
     * the store right and do it again (into the store now in place)
     */
    if (s->rc != 0
        && ngx_http_loyalty_store_recover(s->store, s->rc, 64 * 1024 * 1024,
                                          log)
           == NGX_OK
        && !ngx_exiting && !ngx_quit && !ngx_terminate)
    {
        s->sw = s->before;
        ngx_http_loyalty_sweep_post(s);
        return;
    }

    if (s->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_cadence_sweep: the store \"%s\": %s; the "
                      "sweep stops here and starts again next time",
                      s->store->path,
                      s->err[0] ? s->err
                                : (s->rc == EAGAIN
                                   ? "thread pool queue full"
                                   : ngx_http_loyalty_store_strerror(s->rc)));
        ngx_http_loyalty_sweep_over(s);
        return;
    }

    if (!s->sw.done && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_http_loyalty_sweep_post(s);
        return;
    }

    if (s->sw.done && ngx_http_loyalty_nats_get()) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "loyalty_cadence_sweep: the sweep at %T: %s",
                      (time_t) s->now, s->err);

    } else if (s->sw.done) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "loyalty_cadence_sweep: %uz members, %uz touches "
                      "scheduled, %uz declined, %uz conditions failed, "
                      "%uz rewards credited, in %M ms and %ui steps",
                      s->sw.members, s->sw.scheduled, s->sw.declined,
                      s->sw.failed, s->sw.rewards,
                      ngx_current_msec - s->started, s->steps);
    }

    ngx_http_loyalty_sweep_over(s);
}


static void
ngx_http_loyalty_sweep_over(ngx_http_loyalty_sweep_t *s)
{
    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&s->timer, s->interval);
    }
}
