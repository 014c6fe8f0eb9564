/*
 * nginx-loyalty: loyalty_cadence_sweep, the periodic sweep for the
 * cadences that time triggers, run by one worker.
 *
 * A sweep goes through the store a step at a time (rewards that fell due,
 * LOYALTY_SWEEP_CHUNK members, one yearly_top cadence), each step one
 * write transaction in the thread pool, so that requests never wait on it
 * and event writes go on between its steps.  Once a sweep has worked
 * NGX_HTTP_LOYALTY_SWEEP_FREE ms, it rests NGX_HTTP_LOYALTY_SWEEP_REST
 * times as long as each step took before the next, so that a large
 * store's sweep takes at most a 25th of a core from the workers that
 * serve requests (a thread of the shared pool cannot be given a lower
 * priority and take it back unprivileged: the store writer runs each
 * step as SCHED_BATCH, which keeps it from preempting the worker, not
 * from its share of the core); a small one runs through.
 * A step's length is the longer of its time from post to done, which
 * counts in milliseconds, and the CPU time its thread spent applying it
 * (a step of less than a millisecond would otherwise rest not at all).
 * Each step seals the members it rewarded (loyalty_changes_seal()), so
 * that the workers' member caches retire those members only.  The
 * conditions run in the worker's write-path VM, which only ever runs
 * inside a write transaction: LMDB's writer lock keeps it to one thread.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"

#include "loyalty_cadence.h"


/* the rest between two steps, in times the step took */
#define NGX_HTTP_LOYALTY_SWEEP_REST  24

/* the work, in ms, a sweep does before it rests between steps */
#define NGX_HTTP_LOYALTY_SWEEP_FREE  50


typedef struct {
    ngx_http_loyalty_store_t     *store;
    loyalty_cadences_t           *cadences;
    ngx_msec_t                    interval;
    ngx_event_t                   timer;
    ngx_event_t                   rest;     /* between two steps */
    ngx_http_loyalty_write_t      write;

    int64_t                       now;      /* the sweep's time */
    ngx_msec_t                    started;
    ngx_msec_t                    step;     /* when the step was posted */
    ngx_msec_t                    worked;   /* the steps' time so far */
    uint64_t                      cpu_ns;   /* the last step's, in the
                                               thread */
    loyalty_sweep_t               sw;
    loyalty_sweep_t               before;   /* to make a step again */
    ngx_uint_t                    steps;
    char                          err[LOYALTY_ERRLEN];
} ngx_http_loyalty_sweep_t;


static void ngx_http_loyalty_sweep_timer(ngx_event_t *ev);
static void ngx_http_loyalty_sweep_post(ngx_http_loyalty_sweep_t *s);
static void ngx_http_loyalty_sweep_next(ngx_http_loyalty_sweep_t *s);
static void ngx_http_loyalty_sweep_rested(ngx_event_t *ev);
static int ngx_http_loyalty_sweep_step(ngx_http_loyalty_write_t *w,
    MDB_txn *txn);
static void ngx_http_loyalty_sweep_stepped(ngx_http_loyalty_write_t *w);
static json_t *ngx_http_loyalty_sweep_message(ngx_http_loyalty_write_t *w);
static void ngx_http_loyalty_sweep_over(ngx_http_loyalty_sweep_t *s);
static uint64_t ngx_http_loyalty_sweep_cpu_ns(void);


static ngx_http_loyalty_sweep_t  *ngx_http_loyalty_sweep;


static const ngx_http_loyalty_writer_t  ngx_http_loyalty_sweep_writer = {
    NGX_HTTP_LOYALTY_WRITE_SWEEP, ngx_http_loyalty_sweep_step, NULL,
    ngx_http_loyalty_sweep_stepped, ngx_http_loyalty_sweep_message
};


/* the first worker sweeps: one sweep at a time however many workers */
ngx_int_t
ngx_http_loyalty_sweep_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_http_loyalty_sweep_t  *s;

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

    /* a step writes at most a chunk of members' touches */
    s->write.size = LOYALTY_SWEEP_CHUNK * 8192;
    s->write.retry = 1;

    if (ngx_http_loyalty_write_init(&s->write, &ngx_http_loyalty_sweep_writer,
                                    s->store, s, cycle)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a sweep to come must not hold up a graceful shutdown */
    ngx_http_loyalty_timer_init(&s->timer, ngx_http_loyalty_sweep_timer, s,
                                cycle->log);
    ngx_http_loyalty_timer_init(&s->rest, ngx_http_loyalty_sweep_rested, s,
                                cycle->log);

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
    s->worked = 0;
    s->steps = 0;

    ngx_http_loyalty_sweep_post(s);
}


static void
ngx_http_loyalty_sweep_post(ngx_http_loyalty_sweep_t *s)
{
    s->before = s->sw;
    s->step = ngx_current_msec;

    if (ngx_http_loyalty_write_post(&s->write) != NGX_DONE) {
        ngx_http_loyalty_sweep_stepped(&s->write);
    }
}


/* in the thread pool: one step, from where the last one left off */
static int
ngx_http_loyalty_sweep_step(ngx_http_loyalty_write_t *w, MDB_txn *txn)
{
    int                        rc;
    uint64_t                   start;
    ngx_http_loyalty_sweep_t  *s = w->data;

    s->sw = s->before;
    s->err[0] = '\0';
    s->cpu_ns = 0;

    /* a cluster's edge: the followers sweep (see sweep_message) */
    if (ngx_http_loyalty_nats_get()) {
        return 0;
    }

    start = ngx_http_loyalty_sweep_cpu_ns();

    rc = loyalty_sweep_step(&s->store->st, txn, s->cadences, s->now,
                            LOYALTY_SWEEP_CHUNK, &s->sw, s->err,
                            sizeof(s->err));

    s->cpu_ns = ngx_http_loyalty_sweep_cpu_ns() - start;

    if (rc != 0) {
        return rc;
    }

    /*
     * A step writes touches, dues and the ledger, which no worker caches,
     * and the points of the members it rewards, noted: sealed, it retires
     * those members' cache entries only, not every worker's whole cache.
     */
    return loyalty_sweep_seal(&s->store->st, txn, &s->before, &s->sw,
                              s->err, sizeof(s->err));
}


/*
 * In the thread pool, with loyalty_nats: the whole sweep as one message,
 * {"kind":"sweep","at"}, published once per cluster and period (the
 * sweep's time over its interval): the first edge to publish it for the
 * period does, on the subject loyalty.STREAM.sweep.PERIOD, and the
 * others find it there.  The followers sweep, each with its own cadences.
 */
static json_t *
ngx_http_loyalty_sweep_message(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_sweep_t *s = w->data;

    s->sw.done = 1;
    w->once = (ngx_uint_t) s->now / ngx_max(s->interval / 1000, 1);

    return ngx_http_loyalty_nats_message(ngx_http_loyalty_nats_get(),
                                         "sweep", s->now);
}


static void
ngx_http_loyalty_sweep_stepped(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_sweep_t *s = w->data;

    s->steps++;

    if (w->rc != 0) {
        ngx_http_loyalty_write_log(w, NGX_LOG_ERR, s->err,
                                   "; the sweep stops here and starts "
                                   "again next time");
        ngx_http_loyalty_sweep_over(s);
        return;
    }

    if (!s->sw.done && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_http_loyalty_sweep_next(s);
        return;
    }

    if (s->sw.done && w->writer->message && ngx_http_loyalty_nats_get()) {
        ngx_log_error(NGX_LOG_INFO, s->timer.log, 0,
                      "loyalty_cadence_sweep: the sweep at %T published "
                      "%s", (time_t) s->now,
                      w->elsewhere ? "by another edge" : "by this edge");

    } else if (s->sw.done) {
        ngx_log_error(NGX_LOG_INFO, s->timer.log, 0,
                      "loyalty_cadence_sweep: %uz members, %uz touches "
                      "scheduled, %uz declined, %uz conditions failed, "
                      "%uz rewards credited, in %M ms and %ui steps",
                      s->sw.members, s->sw.scheduled, s->sw.declined,
                      s->sw.failed, s->sw.rewards,
                      ngx_current_msec - s->started, s->steps);
    }

    ngx_http_loyalty_sweep_over(s);
}


/* the next step: at once, or after a rest once the sweep has worked long */
static void
ngx_http_loyalty_sweep_next(ngx_http_loyalty_sweep_t *s)
{
    ngx_msec_t  took, cpu;

    took = ngx_current_msec - s->step;
    cpu = (ngx_msec_t) ((s->cpu_ns + 999999) / 1000000);
    took = ngx_max(took, cpu);
    s->worked += took;

    if (s->worked < NGX_HTTP_LOYALTY_SWEEP_FREE) {
        ngx_http_loyalty_sweep_post(s);
        return;
    }

    /* at least a millisecond: the event loop runs in between */
    ngx_add_timer(&s->rest, took * NGX_HTTP_LOYALTY_SWEEP_REST + 1);
}


static void
ngx_http_loyalty_sweep_rested(ngx_event_t *ev)
{
    ngx_http_loyalty_sweep_t *s = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_loyalty_sweep_post(s);
}


/* the CPU time of the calling thread, in ns; 0 where it is not known */
static uint64_t
ngx_http_loyalty_sweep_cpu_ns(void)
{
    struct timespec  ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }

    return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void
ngx_http_loyalty_sweep_over(ngx_http_loyalty_sweep_t *s)
{
    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&s->timer, s->interval);
    }
}
