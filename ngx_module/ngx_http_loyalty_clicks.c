/*
 * nginx-loyalty: share-link click counters in shared memory, and their
 * flush into the store's daily aggregates.
 *
 * The zone holds an open-addressed table of codes and a table of recent
 * (visitor, code) pairs for unique clicks.  Requests never lock: a code's
 * slot is claimed with a compare-and-swap, counters are atomic additions,
 * and a recent pair is one 64-bit word: a tag of the visitor and the code
 * under a key made when the zone is, so that the zone holds neither an
 * address nor a User-Agent, nor anything that can be matched against
 * them without the key.  Counters only grow; the flusher
 * notes how much of each the store already holds, so a flush that fails
 * is simply retried.  One process flushes at a time, under the zone's
 * slab mutex, which the master frees if its holder dies.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_siphash.h"
#include "loyalty_stats.h"


#define NGX_HTTP_LOYALTY_SLOT_FREE     0
#define NGX_HTTP_LOYALTY_SLOT_CLAIMED  1
#define NGX_HTTP_LOYALTY_SLOT_READY    2

#define NGX_HTTP_LOYALTY_PROBES        32
#define NGX_HTTP_LOYALTY_KNOWN         (1ULL << 63)
#define NGX_HTTP_LOYALTY_WAYS          4

/* the key of the visitor tags, made with the zone */
#define NGX_HTTP_LOYALTY_VISITOR_KEY   32

/* a recent pair: 40 bits of tag, 24 bits of minutes (wraps in 31 years) */
#define NGX_HTTP_LOYALTY_MINUTES       0xffffffULL
#define NGX_HTTP_LOYALTY_UNIQUE_WINDOW (24 * 60)


/*
 * A code's slot: two cache lines from a line's start.  A click touches
 * the first alone, its counters; the second names the code, for the
 * slot's claim and the flusher.  What the store holds of the counters is
 * the flusher's, in a table of its own (sh->flushed).
 */
typedef struct {
    ngx_atomic_t                  count[LOYALTY_CLICK_COUNTERS];
    /*
     * Attributed clicks in the store when first needed, with the top bit
     * set once known: whoever needs it first sets it, never under a lock.
     */
    ngx_atomic_t                  base;
    /* attributions tried against max_clicks; only ever grows */
    ngx_atomic_t                  claims;

    ngx_atomic_t                  state;
    /* claims up to the last flush the cluster's stream took (loyalty_nats) */
    ngx_atomic_t                  claims_flushed;
    uint32_t                      hash;
    u_char                        len;
    u_char                        code[LOYALTY_CODE_MAX];
    u_char                        pad[128 - (LOYALTY_CLICK_COUNTERS + 4)
                                          * sizeof(ngx_atomic_t)
                                      - sizeof(uint32_t) - 1
                                      - LOYALTY_CODE_MAX];
} ngx_http_loyalty_slot_t;


typedef struct {
    ngx_uint_t                    nslots;
    ngx_uint_t                    nrecent;
    ngx_atomic_t                  lost;     /* clicks with no free slot,
                                               since the zone was made */
    ngx_atomic_t                  lost_logged;  /* of them, those logged */
    ngx_http_loyalty_flushes_t    flushes;
    u_char                        key[NGX_HTTP_LOYALTY_VISITOR_KEY];
    ngx_http_loyalty_slot_t      *slots;
    /* what the store holds of each slot's count[]: the flusher's only */
    ngx_atomic_t                 *flushed;
    ngx_atomic_t                 *recent;
} ngx_http_loyalty_clicks_sh_t;


/* the n-th slot a code of that hash may take (n from 0) */
static ngx_inline ngx_uint_t
ngx_http_loyalty_clicks_probe(ngx_http_loyalty_clicks_sh_t *sh,
    uint32_t hash, ngx_uint_t n)
{
    return (hash + n) % sh->nslots;
}


/* the first of a visitor's pair's ways in the recent clicks: h its tag */
static ngx_inline ngx_uint_t
ngx_http_loyalty_clicks_recent_set(ngx_http_loyalty_clicks_sh_t *sh,
    uint64_t h)
{
    return (ngx_uint_t) (h % (sh->nrecent / NGX_HTTP_LOYALTY_WAYS))
           * NGX_HTTP_LOYALTY_WAYS;
}


/* one code's share of a flush */
typedef struct {
    ngx_uint_t                    slot;
    uint64_t                      now[LOYALTY_CLICK_COUNTERS];
    uint64_t                      delta[LOYALTY_CLICK_COUNTERS];
    uint64_t                      claims;
} ngx_http_loyalty_flush_t;


struct ngx_http_loyalty_clicks_s {
    ngx_http_loyalty_clicks_sh_t *sh;
    ngx_slab_pool_t              *shpool;
    ngx_shm_zone_t               *zone;

    /* the worker's side */
    ngx_msec_t                    interval;
    ngx_event_t                   timer;
    ngx_http_loyalty_store_t     *store;
    ngx_http_loyalty_flush_t     *batch;
    ngx_uint_t                    nbatch;
    int64_t                       day;
    ngx_uint_t                    damaged;
    ngx_uint_t                    failed;   /* flushes failed in a row */
    ngx_http_loyalty_write_t      write;
    loyalty_siphash_key_t         visitors; /* the zone's key, for SipHash */
};


static ngx_int_t ngx_http_loyalty_clicks_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static uint64_t ngx_http_loyalty_clicks_stored(ngx_http_loyalty_store_t *store,
    MDB_txn *txn, const u_char *code, size_t len);
static void ngx_http_loyalty_clicks_timer(ngx_event_t *ev);
static ngx_uint_t ngx_http_loyalty_clicks_collect(
    ngx_http_loyalty_clicks_t *clicks);
static int ngx_http_loyalty_clicks_write(ngx_http_loyalty_write_t *w,
    MDB_txn *txn);
static void ngx_http_loyalty_clicks_committed(ngx_http_loyalty_write_t *w,
    size_t txnid);
static void ngx_http_loyalty_clicks_written(ngx_http_loyalty_write_t *w);
static json_t *ngx_http_loyalty_clicks_message(ngx_http_loyalty_write_t *w);
static void ngx_http_loyalty_clicks_lost(ngx_http_loyalty_clicks_t *clicks,
    ngx_log_t *log);


static const ngx_http_loyalty_writer_t  ngx_http_loyalty_clicks_writer = {
    NGX_HTTP_LOYALTY_WRITE_CLICKS, ngx_http_loyalty_clicks_write,
    ngx_http_loyalty_clicks_committed, ngx_http_loyalty_clicks_written,
    ngx_http_loyalty_clicks_message
};


char *
ngx_http_loyalty_click_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t *lmcf = conf;

    ssize_t                     size;
    ngx_str_t                  *value;
    ngx_http_loyalty_clicks_t  *clicks;

    if (lmcf->click_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (64 * 1024)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_click_zone\" size must be at least "
                           "64k, not \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    clicks = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_clicks_t));
    if (clicks == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf->click_zone = ngx_shared_memory_add(cf, &value[1], size,
                                             &ngx_http_loyalty_module);
    if (lmcf->click_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->click_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_click_zone \"%V\" is already defined",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    clicks->zone = lmcf->click_zone;
    lmcf->click_zone->init = ngx_http_loyalty_clicks_init_zone;
    lmcf->click_zone->data = clicks;

    if (ngx_http_loyalty_write_conf(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Half the zone for codes, half for recent visitors; a reused zone (a
 * reload with the same size) keeps its counts.
 */
static ngx_int_t
ngx_http_loyalty_clicks_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_loyalty_clicks_t *oclicks = data;

    size_t                         avail;
    ngx_uint_t                     fresh;
    ngx_slab_pool_t               *shpool;
    ngx_http_loyalty_clicks_t     *clicks;
    ngx_http_loyalty_clicks_sh_t  *sh;

    clicks = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    clicks->shpool = shpool;

    sh = ngx_http_loyalty_zone_data(shm_zone, oclicks ? oclicks->sh : NULL,
                                    sizeof(ngx_http_loyalty_clicks_sh_t),
                                    &fresh);
    clicks->sh = sh;

    if (sh == NULL) {
        return NGX_ERROR;
    }

    if (!fresh) {
        return NGX_OK;
    }

    /* a new key with every new zone: tags of another run match nothing */
    if (RAND_bytes(sh->key, sizeof(sh->key)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "loyalty_click_zone \"%V\": RAND_bytes() failed",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    /* what the slab allocator leaves, less its own page overhead */
    avail = (shpool->end - shpool->start) / 10 * 9;

    sh->nslots = avail / 2 / (sizeof(ngx_http_loyalty_slot_t)
                              + LOYALTY_CLICK_COUNTERS
                                * sizeof(ngx_atomic_t));
    sh->nrecent = avail / 2 / sizeof(ngx_atomic_t)
                  / NGX_HTTP_LOYALTY_WAYS * NGX_HTTP_LOYALTY_WAYS;

    /* pages: every slot starts a cache line */
    sh->slots = ngx_slab_calloc(shpool, sh->nslots
                                        * sizeof(ngx_http_loyalty_slot_t));
    sh->flushed = ngx_slab_calloc(shpool, sh->nslots * LOYALTY_CLICK_COUNTERS
                                          * sizeof(ngx_atomic_t));
    sh->recent = ngx_slab_calloc(shpool, sh->nrecent * sizeof(ngx_atomic_t));

    if (sh->slots == NULL || sh->flushed == NULL || sh->recent == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "loyalty_click_zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, shm_zone->shm.log, 0,
                  "loyalty_click_zone \"%V\": room for %ui codes and %ui "
                  "recent visitor clicks", &shm_zone->shm.name, sh->nslots,
                  sh->nrecent);

    return NGX_OK;
}


ngx_http_loyalty_clicks_t *
ngx_http_loyalty_clicks_get(ngx_http_loyalty_main_conf_t *lmcf)
{
    return lmcf->click_zone ? lmcf->click_zone->data : NULL;
}


/* for loyalty_metrics: codes with a slot, slots, clicks with none */
void
ngx_http_loyalty_clicks_fill(ngx_http_loyalty_clicks_t *clicks,
    ngx_uint_t *used, ngx_uint_t *size, ngx_uint_t *lost)
{
    ngx_uint_t                     i;
    ngx_http_loyalty_clicks_sh_t  *sh;

    sh = clicks->sh;
    *used = 0;

    for (i = 0; i < sh->nslots; i++) {
        if (sh->slots[i].state != NGX_HTTP_LOYALTY_SLOT_FREE) {
            (*used)++;
        }
    }

    *size = sh->nslots;

    *lost = sh->lost;
}


/*
 * The slot of a code of that hash (ngx_http_loyalty_code_hash()),
 * claimed on its first click; NGX_DECLINED when the
 * table has no room near the code's place (counted, and logged by the
 * flusher).  Within the caller's read transaction.
 */
ngx_int_t
ngx_http_loyalty_clicks_slot(ngx_http_loyalty_clicks_t *clicks,
    const u_char *code, size_t len, uint32_t hash, ngx_log_t *log)
{
    ngx_uint_t                     i, n, spins;
    ngx_http_loyalty_slot_t       *s;
    ngx_http_loyalty_clicks_sh_t  *sh;

    sh = clicks->sh;

    for (n = 0; n < NGX_HTTP_LOYALTY_PROBES && n < sh->nslots; n++) {
        i = ngx_http_loyalty_clicks_probe(sh, hash, n);
        s = &sh->slots[i];

        for (spins = 0; /* void */ ; spins++) {

            if (s->state == NGX_HTTP_LOYALTY_SLOT_READY) {
                if (s->hash == hash && s->len == len
                    && ngx_memcmp(s->code, code, len) == 0)
                {
                    return i;
                }
                break;
            }

            if (s->state == NGX_HTTP_LOYALTY_SLOT_FREE
                && ngx_atomic_cmp_set(&s->state, NGX_HTTP_LOYALTY_SLOT_FREE,
                                      NGX_HTTP_LOYALTY_SLOT_CLAIMED))
            {
                s->hash = hash;
                s->len = (u_char) len;
                ngx_memcpy(s->code, code, len);
                ngx_memory_barrier();
                s->state = NGX_HTTP_LOYALTY_SLOT_READY;

                ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                               "loyalty: click slot %ui for \"%*s\"",
                               i, len, code);
                return i;
            }

            /*
             * Another process is filling the slot in: a few stores, unless
             * it was preempted in between, then it gets the processor.
             */
            if (spins < 1000) {
                ngx_cpu_pause();

            } else if (spins < 1100) {
                ngx_sched_yield();

            } else {
                (void) ngx_atomic_fetch_add(&sh->lost, 1);
                return NGX_DECLINED;
            }
        }
    }

    (void) ngx_atomic_fetch_add(&sh->lost, 1);

    return NGX_DECLINED;
}


/* the attributed clicks the store holds for a code, over all its days */
static uint64_t
ngx_http_loyalty_clicks_stored(ngx_http_loyalty_store_t *store, MDB_txn *txn,
    const u_char *code, size_t len)
{
    int          rc;
    size_t       clen;
    int64_t      day;
    uint8_t      kbuf[LOYALTY_CLICKS_KEY_MAX];
    uint64_t     sum, counts[LOYALTY_CLICK_COUNTERS];
    MDB_val      key, val;
    MDB_cursor  *cur;
    const char  *c;

    if (mdb_cursor_open(txn, store->st.dbi[LOYALTY_DB_CLICKS], &cur) != 0) {
        return 0;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_clicks_key((char *) code, len, 0, kbuf);

    sum = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (loyalty_clicks_key_parse(key.mv_data, key.mv_size, &c, &clen,
                                     &day)
            != 0
            || clen != len || ngx_memcmp(c, code, len) != 0)
        {
            break;
        }

        if (loyalty_clicks_decode(val.mv_data, val.mv_size, counts) == 0) {
            sum += counts[LOYALTY_CLICK_ATTRIBUTED];
        }
    }

    mdb_cursor_close(cur);

    return sum;
}


void
ngx_http_loyalty_clicks_count(ngx_http_loyalty_clicks_t *clicks,
    ngx_int_t slot, loyalty_click_counter_e counter)
{
    (void) ngx_atomic_fetch_add(&clicks->sh->slots[slot].count[counter], 1);
}


/*
 * Whether one more attribution fits under a code's max_clicks.  Claims
 * only grow, so of concurrent clicks exactly as many fit as are left.
 */
ngx_int_t
ngx_http_loyalty_clicks_claim(ngx_http_loyalty_clicks_t *clicks,
    ngx_int_t slot, ngx_http_loyalty_store_t *store, MDB_txn *txn,
    int64_t max_clicks)
{
    uint64_t                  n, base;
    ngx_http_loyalty_slot_t  *s;

    s = &clicks->sh->slots[slot];

    /*
     * A cluster's edge: the store holds every edge's attributions as far
     * as their flushes reached it, and this edge's own since its last
     * flush are its claims since; read again at each claim.  The limit
     * is overshot by at most what the edges attribute between a flush
     * and its reaching the store (README, Several edges).
     */
    if (ngx_http_loyalty_nats_get()) {
        base = ngx_http_loyalty_clicks_stored(store, txn, s->code, s->len);
        n = ngx_atomic_fetch_add(&s->claims, 1);
        n = base + (n - s->claims_flushed);

        return n < (uint64_t) max_clicks ? NGX_OK : NGX_DECLINED;
    }

    base = s->base;

    if (!(base & NGX_HTTP_LOYALTY_KNOWN)) {
        /* racing processes read the same store: the first one's stands */
        base = ngx_http_loyalty_clicks_stored(store, txn, s->code, s->len)
               | NGX_HTTP_LOYALTY_KNOWN;

        if (!ngx_atomic_cmp_set(&s->base, 0, base)) {
            base = s->base;
        }
    }

    n = (base & ~NGX_HTTP_LOYALTY_KNOWN)
        + ngx_atomic_fetch_add(&s->claims, 1);

    return n < (uint64_t) max_clicks ? NGX_OK : NGX_DECLINED;
}


/*
 * A visitor's click on a code (hash: ngx_http_loyalty_code_hash()),
 * before it is counted: the tag of the pair, and the lines the click
 * will touch, its code's slot (where the slot's first probe is) and its
 * pair's ways, asked for ahead.
 */
uint64_t
ngx_http_loyalty_clicks_visit(ngx_http_loyalty_clicks_t *clicks,
    uint32_t hash, uint64_t visitor, const u_char *code, size_t len)
{
    u_char                         msg[8 + LOYALTY_CODE_MAX];
    uint64_t                       h;
    ngx_http_loyalty_clicks_sh_t  *sh;

    sh = clicks->sh;

    ngx_http_loyalty_prefetch(
        &sh->slots[ngx_http_loyalty_clicks_probe(sh, hash, 0)].count[0]);

    /*
     * The tag: SipHash-2-4 of the visitor and the code under the zone's
     * key, a keyed 64-bit hash made for short inputs (a tenth of an
     * HMAC-SHA256's instructions): the table holds nothing that names a
     * visitor without the key.
     */
    len = ngx_min(len, LOYALTY_CODE_MAX);
    ngx_memcpy(msg, &visitor, 8);
    ngx_memcpy(msg + 8, code, len);

    h = loyalty_siphash(&clicks->visitors, msg, 8 + len);

    ngx_http_loyalty_prefetch(
        &sh->recent[ngx_http_loyalty_clicks_recent_set(sh, h)]);

    return h;
}


/*
 * Whether a visitor's click on a code, the pair's tag made by
 * ngx_http_loyalty_clicks_visit(), is their first in 24 hours.  The
 * table forgets the oldest pairs when full: then a repeated click may be
 * counted unique again, never the other way round.
 */
ngx_uint_t
ngx_http_loyalty_clicks_unique(ngx_http_loyalty_clicks_t *clicks, uint64_t h)
{
    uint64_t                       tag, now, e, age, oldest;
    ngx_uint_t                     i, w, pick;
    ngx_http_loyalty_clicks_sh_t  *sh;

    sh = clicks->sh;

    tag = (h & ~NGX_HTTP_LOYALTY_MINUTES) | (1ULL << 63);
    now = ((uint64_t) ngx_time() / 60) & NGX_HTTP_LOYALTY_MINUTES;

    i = ngx_http_loyalty_clicks_recent_set(sh, h);

    pick = i;
    oldest = 0;

    for (w = i; w < i + NGX_HTTP_LOYALTY_WAYS; w++) {
        e = sh->recent[w];
        age = e ? ((now - e) & NGX_HTTP_LOYALTY_MINUTES)
                : NGX_HTTP_LOYALTY_MINUTES;

        if ((e & ~NGX_HTTP_LOYALTY_MINUTES) == tag) {
            if (age < NGX_HTTP_LOYALTY_UNIQUE_WINDOW) {
                return 0;
            }

            pick = w;
            break;
        }

        if (age >= oldest) {
            oldest = age;
            pick = w;
        }
    }

    sh->recent[pick] = tag | now;

    return 1;
}


ngx_int_t
ngx_http_loyalty_clicks_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_clicks_t     *clicks;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->store == NULL) {
        return NGX_OK;
    }

    clicks = ngx_http_loyalty_clicks_get(lmcf);
    if (clicks == NULL) {
        return NGX_OK;
    }

    clicks->store = lmcf->store;
    clicks->interval = lmcf->click_flush;
    lmcf->store->flushes = &clicks->sh->flushes;

    clicks->batch = ngx_alloc(clicks->sh->nslots
                              * sizeof(ngx_http_loyalty_flush_t),
                              cycle->log);
    if (clicks->batch == NULL) {
        return NGX_ERROR;
    }

    /* the first 16 bytes of the zone's key */
    loyalty_siphash_key(&clicks->visitors, clicks->sh->key);

    /*
     * Not written again at once when the store was put right: the counts
     * stay in the zone and go with the next flush.
     */
    if (ngx_http_loyalty_write_init(&clicks->write,
                                    &ngx_http_loyalty_clicks_writer,
                                    lmcf->store, clicks, cycle)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a pending flush must not hold up a graceful shutdown */
    ngx_http_loyalty_timer_init(&clicks->timer, ngx_http_loyalty_clicks_timer,
                                clicks, cycle->log);

    ngx_add_timer(&clicks->timer, clicks->interval);

    return NGX_OK;
}


/*
 * At exit every worker flushes what is left, synchronously: the thread
 * pool has already stopped, having finished any flush it was given.
 */
void
ngx_http_loyalty_clicks_exit_worker(ngx_cycle_t *cycle)
{
    u_char                         then[80];
    ngx_http_loyalty_clicks_t     *clicks;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->store == NULL) {
        return;
    }

    clicks = ngx_http_loyalty_clicks_get(lmcf);
    if (clicks == NULL || clicks->batch == NULL) {
        return;
    }

    /* a flush that finished in the pool, its completion never run */
    (void) ngx_shmtx_force_unlock(&clicks->shpool->mutex, ngx_pid);

    if (lmcf->store->open && lmcf->store->writable
        && ngx_shmtx_trylock(&clicks->shpool->mutex))
    {
        if (ngx_http_loyalty_clicks_collect(clicks)) {
            ngx_http_loyalty_write_now(&clicks->write);

            if (clicks->write.rc != 0) {
                (void) ngx_snprintf(then, sizeof(then),
                                    "; %ui codes' clicks could not be "
                                    "written at exit%Z", clicks->nbatch);
                ngx_http_loyalty_write_log(&clicks->write, NGX_LOG_ERR,
                                           NULL, (char *) then);
            }
        }

        ngx_shmtx_unlock(&clicks->shpool->mutex);
    }

    ngx_http_loyalty_clicks_lost(clicks, cycle->log);

    ngx_free(clicks->batch);
    clicks->batch = NULL;
}


static void
ngx_http_loyalty_clicks_timer(ngx_event_t *ev)
{
    ngx_http_loyalty_clicks_t  *clicks = ev->data;

    ngx_http_loyalty_store_t  *store;

    store = clicks->store;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* the store is opened by requests, and may be read-only for now */
    if (!store->open || !store->writable
        || !ngx_shmtx_trylock(&clicks->shpool->mutex))
    {
        ngx_add_timer(ev, clicks->interval);
        return;
    }

    if (ngx_http_loyalty_clicks_collect(clicks) == 0) {
        ngx_shmtx_unlock(&clicks->shpool->mutex);
        ngx_http_loyalty_clicks_lost(clicks, ev->log);
        ngx_add_timer(ev, clicks->interval);
        return;
    }

    /* the most the batch adds: a record per code */
    clicks->write.size = clicks->nbatch
                         * (LOYALTY_CLICKS_KEY_MAX + LOYALTY_CLICKS_REC_LEN);

    if (ngx_http_loyalty_write_post(&clicks->write) != NGX_DONE) {
        ngx_http_loyalty_clicks_written(&clicks->write);
    }
}


/* takes what the store lacks of every code's counts; under the lock */
static ngx_uint_t
ngx_http_loyalty_clicks_collect(ngx_http_loyalty_clicks_t *clicks)
{
    ngx_uint_t                     i, c, any;
    ngx_atomic_t                  *held;
    ngx_http_loyalty_slot_t       *s;
    ngx_http_loyalty_flush_t      *f;
    ngx_http_loyalty_clicks_sh_t  *sh;
    ngx_http_loyalty_main_conf_t  *lmcf;

    sh = clicks->sh;
    clicks->nbatch = 0;

    /* the shop's day (loyalty_timezone) */
    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_loyalty_module);
    clicks->day = loyalty_tz_day(lmcf->tz, ngx_time());

    for (i = 0; i < sh->nslots; i++) {
        s = &sh->slots[i];

        if (s->state != NGX_HTTP_LOYALTY_SLOT_READY) {
            continue;
        }

        f = &clicks->batch[clicks->nbatch];
        any = 0;

        f->claims = s->claims;

        held = &sh->flushed[i * LOYALTY_CLICK_COUNTERS];

        for (c = 0; c < LOYALTY_CLICK_COUNTERS; c++) {
            f->now[c] = s->count[c];
            f->delta[c] = f->now[c] - held[c];
            any |= (f->delta[c] != 0);
        }

        if (any) {
            f->slot = i;
            clicks->nbatch++;
        }
    }

    return clicks->nbatch;
}


/*
 * In the thread pool (or at exit): adds the batch to the day's records,
 * in the writer's transaction.  Nothing here may touch the event loop.
 */
static int
ngx_http_loyalty_clicks_write(ngx_http_loyalty_write_t *w, MDB_txn *txn)
{
    ngx_http_loyalty_clicks_t *clicks = w->data;

    int                        rc;
    uint8_t                    kbuf[LOYALTY_CLICKS_KEY_MAX];
    uint8_t                    vbuf[LOYALTY_CLICKS_REC_LEN];
    uint64_t                   counts[LOYALTY_CLICK_COUNTERS];
    MDB_val                    key, val;
    MDB_dbi                    dbi;
    ngx_uint_t                 i, c;
    ngx_http_loyalty_slot_t   *s;
    ngx_http_loyalty_flush_t  *f;

    dbi = w->store->st.dbi[LOYALTY_DB_CLICKS];
    clicks->damaged = 0;

    for (i = 0; i < clicks->nbatch; i++) {
        f = &clicks->batch[i];
        s = &clicks->sh->slots[f->slot];

        key.mv_data = kbuf;
        key.mv_size = loyalty_clicks_key((char *) s->code, s->len,
                                         clicks->day, kbuf);

        rc = mdb_get(txn, dbi, &key, &val);

        if (rc == 0
            && loyalty_clicks_decode(val.mv_data, val.mv_size, counts) != 0)
        {
            /* a damaged day starts again from this flush */
            clicks->damaged++;
            rc = MDB_NOTFOUND;
        }

        if (rc == MDB_NOTFOUND) {
            ngx_memzero(counts, sizeof(counts));

        } else if (rc != 0) {
            return rc;
        }

        for (c = 0; c < LOYALTY_CLICK_COUNTERS; c++) {
            counts[c] += f->delta[c];
        }

        loyalty_clicks_encode(counts, vbuf);
        val.mv_data = vbuf;
        val.mv_size = sizeof(vbuf);

        rc = mdb_put(txn, dbi, &key, &val, 0);

        /* the same counts per day in the conversion counters */
        if (rc == 0) {
            rc = loyalty_stats_clicks(&w->store->st, txn, (char *) s->code,
                                      s->len, clicks->day, f->delta);
        }

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/*
 * In the same thread, once the batch is in the store: the counts are
 * noted as flushed, and the snapshot as a flush's, across which the
 * workers' caches hold.
 */
static void
ngx_http_loyalty_clicks_committed(ngx_http_loyalty_write_t *w, size_t txnid)
{
    ngx_http_loyalty_clicks_t *clicks = w->data;

    ngx_uint_t                   i, c, n;
    ngx_http_loyalty_slot_t     *s;
    ngx_http_loyalty_flush_t    *f;
    ngx_http_loyalty_flushes_t  *fl;

    /* 0: published to the cluster's stream, no snapshot of this store */
    if (txnid) {
        fl = &clicks->sh->flushes;
        n = ngx_atomic_fetch_add(&fl->next, 1) % NGX_HTTP_LOYALTY_FLUSHES;
        fl->ino[n] = w->store->ino;
        ngx_memory_barrier();
        fl->txnid[n] = txnid;
    }

    for (i = 0; i < clicks->nbatch; i++) {
        f = &clicks->batch[i];
        s = &clicks->sh->slots[f->slot];

        for (c = 0; c < LOYALTY_CLICK_COUNTERS; c++) {
            clicks->sh->flushed[f->slot * LOYALTY_CLICK_COUNTERS + c]
                = f->now[c];
        }

        s->claims_flushed = f->claims;
    }
}


/*
 * In the thread pool (or at exit), with loyalty_nats: the batch as one
 * message, {"kind":"clicks","day","counts":{CODE:[deltas]}}, which each
 * follower adds to the code's day: a code's counts are the sum over the
 * edges.  Its Nats-Msg-Id (the edge, the worker's start and a count) lets
 * JetStream drop a flush published twice.
 */
static json_t *
ngx_http_loyalty_clicks_message(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_clicks_t *clicks = w->data;

    json_t                    *msg, *counts, *deltas;
    ngx_uint_t                 i, c;
    ngx_http_loyalty_slot_t   *s;
    ngx_http_loyalty_flush_t  *f;

    msg = ngx_http_loyalty_nats_message(ngx_http_loyalty_nats_get(),
                                        "clicks", ngx_time());
    counts = json_object();

    if (msg == NULL || counts == NULL
        || json_object_set_new(msg, "day", json_integer(clicks->day)) != 0
        || json_object_set(msg, "counts", counts) != 0)
    {
        goto failed;
    }

    for (i = 0; i < clicks->nbatch; i++) {
        f = &clicks->batch[i];
        s = &clicks->sh->slots[f->slot];

        deltas = json_array();
        if (deltas == NULL) {
            goto failed;
        }

        for (c = 0; c < LOYALTY_CLICK_COUNTERS; c++) {
            json_array_append_new(deltas,
                                  json_integer((json_int_t) f->delta[c]));
        }

        if (json_object_setn_new(counts, (char *) s->code, s->len, deltas)
            != 0)
        {
            goto failed;
        }
    }

    json_decref(counts);
    return msg;

failed:

    json_decref(counts);
    json_decref(msg);
    return NULL;
}


/* back in the event loop */
static void
ngx_http_loyalty_clicks_written(ngx_http_loyalty_write_t *w)
{
    ngx_http_loyalty_clicks_t *clicks = w->data;

    ngx_log_t                 *log;
    ngx_http_loyalty_store_t  *store;

    store = clicks->store;
    log = clicks->timer.log;

    ngx_shmtx_unlock(&clicks->shpool->mutex);

    if (clicks->damaged) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_store \"%s\": %ui damaged clicks records "
                      "were started again", store->path, clicks->damaged);
    }

    if (w->rc == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "loyalty: clicks of %ui codes flushed",
                       clicks->nbatch);

        if (clicks->failed) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "loyalty_store \"%s\": clicks are written again",
                          store->path);
            clicks->failed = 0;
        }

    } else if (w->recovered) {
        /* grown, or the store taken up again: written next time */
        ngx_http_loyalty_write_log(w, NGX_LOG_NOTICE, NULL,
                                   "; clicks not written, written next "
                                   "time");

    } else if (clicks->failed++ == 0) {
        /* once until it works again: the counts wait in memory */
        ngx_http_loyalty_write_log(w, NGX_LOG_ERR, NULL,
                                   "; cannot write clicks, they stay "
                                   "counted in memory and are retried");
    }

    ngx_http_loyalty_clicks_lost(clicks, log);

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&clicks->timer, clicks->interval);
    }
}


/*
 * Says how many clicks found no slot since it last said so (the count
 * itself only grows); it is said whether or not anything else was
 * flushed, and at exit.
 */
static void
ngx_http_loyalty_clicks_lost(ngx_http_loyalty_clicks_t *clicks,
    ngx_log_t *log)
{
    ngx_atomic_uint_t  n, logged;

    /* lost only grows (loyalty_metrics counts it); what no flush has
     * logged yet is taken in one step, as every worker logs */
    do {
        logged = clicks->sh->lost_logged;
        n = clicks->sh->lost - logged;

        if (n == 0) {
            return;
        }

    } while (!ngx_atomic_cmp_set(&clicks->sh->lost_logged, logged,
                                 logged + n));

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "loyalty_click_zone \"%V\" is full: %uA clicks on "
                  "new codes were not counted; make it larger",
                  &clicks->zone->shm.name, n);
}
