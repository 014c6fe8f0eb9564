/*
 * nginx-loyalty: declarations shared by the module's files.
 */

#ifndef _NGX_HTTP_LOYALTY_MODULE_H_INCLUDED_
#define _NGX_HTTP_LOYALTY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "loyalty_bots.h"
#include "loyalty_code.h"
#include "loyalty_member.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyalty_sign.h"
#include "loyalty_store.h"
#include "loyalty_tz.h"


/*
 * Asks for the cache line at p ahead of its use, for memory that a
 * request reads at a random place (the caches, the click zone): lines
 * asked for together arrive together, not one after the other.
 */
#if (defined __GNUC__)
#define ngx_http_loyalty_prefetch(p)  __builtin_prefetch((const void *) (p))
#else
#define ngx_http_loyalty_prefetch(p)
#endif


/*
 * A normalized share code's hash (loyalty_code_normalize()): its set and
 * tag in the code cache, its slot in the click zone.  A click makes it
 * once, for all of them.
 */
#define ngx_http_loyalty_code_hash(name, len)                                \
    ngx_murmur_hash2((u_char *) (name), len)


typedef enum {
    NGX_HTTP_LOYALTY_ID_NONE = 0,
    NGX_HTTP_LOYALTY_ID_VALID,
    NGX_HTTP_LOYALTY_ID_INVALID,
    NGX_HTTP_LOYALTY_ID_EXPIRED,
    NGX_HTTP_LOYALTY_ID_UNKNOWN
} ngx_http_loyalty_identity_e;


/* what became of a click, and of the attribution: $loyalty_ref_status */
typedef enum {
    NGX_HTTP_LOYALTY_REF_NONE = 0,
    NGX_HTTP_LOYALTY_REF_NEW,
    NGX_HTTP_LOYALTY_REF_KEPT,
    NGX_HTTP_LOYALTY_REF_REPLACED,
    NGX_HTTP_LOYALTY_REF_SELF,
    NGX_HTTP_LOYALTY_REF_BOT,
    NGX_HTTP_LOYALTY_REF_INVALID,
    NGX_HTTP_LOYALTY_REF_EXPIRED,
    NGX_HTTP_LOYALTY_REF_REVOKED,
    NGX_HTTP_LOYALTY_REF_EXHAUSTED,
    NGX_HTTP_LOYALTY_REF_REFUSED
} ngx_http_loyalty_ref_status_e;


typedef enum {
    NGX_HTTP_LOYALTY_MODEL_FIRST = 0,
    NGX_HTTP_LOYALTY_MODEL_LAST
} ngx_http_loyalty_model_e;


/* loyalty_admin_open: who may use an admin API that has no token */
typedef enum {
    NGX_HTTP_LOYALTY_ADMIN_CLOSED = 0,
    NGX_HTTP_LOYALTY_ADMIN_LOOPBACK
} ngx_http_loyalty_admin_open_e;


/*
 * Where a directive was read: a check made once its block is parsed
 * (a directive that needs another) names this place, not the block's end.
 */
typedef struct {
    u_char                      *file;      /* NUL-terminated; NULL: unset */
    ngx_uint_t                   line;
} ngx_http_loyalty_where_t;


typedef struct ngx_http_loyalty_cache_s   ngx_http_loyalty_cache_t;
typedef struct ngx_http_loyalty_clicks_s  ngx_http_loyalty_clicks_t;
/* ngx_http_loyalty_nats.c: a cluster of edges */
typedef struct ngx_http_loyalty_nats_s  ngx_http_loyalty_nats_t;
typedef struct ngx_http_loyalty_code_cache_s  ngx_http_loyalty_code_cache_t;
typedef struct ngx_http_loyalty_tokens_s  ngx_http_loyalty_tokens_t;
typedef struct ngx_http_loyalty_webhook_s  ngx_http_loyalty_webhook_t;

/* the answer to a batch another handler posted: sends doc, releases it */
typedef ngx_int_t (*ngx_http_loyalty_batch_done_pt)(ngx_http_request_t *r,
    void *data, ngx_uint_t status, json_t *doc);


#define NGX_HTTP_LOYALTY_UNPROCESSABLE  422


/* the targets a worker's code cache keeps; longer ones are read each time */
#define NGX_HTTP_LOYALTY_TARGET_CACHED  192

/* the User-Agents whose bot verdict a worker remembers */
#define NGX_HTTP_LOYALTY_BOT_VERDICTS   4096

/*
 * nginx's default request_pool_size, held while a worker makes what it
 * keeps for life: see ngx_http_loyalty_init_worker()
 */
#define NGX_HTTP_LOYALTY_POOL_HOLD      4096

/*
 * Why a write was not committed, besides LMDB's codes and errno values:
 * the store at the configured path is no longer the one the worker has
 * open (see ngx_http_loyalty_store_commit()).
 */
#define NGX_HTTP_LOYALTY_STORE_GONE      (-31900)
#define NGX_HTTP_LOYALTY_STORE_REPLACED  (-31901)

/* a write that answered by itself (a refusal): nothing to commit */
#define NGX_HTTP_LOYALTY_WRITE_NONE      (-31902)
/* a cluster's write that the stream did not take (w->why says why) */
#define NGX_HTTP_LOYALTY_WRITE_UNPUBLISHED  (-31903)

/* the last flushes' snapshots, to tell them from other writes */
#define NGX_HTTP_LOYALTY_FLUSHES        16


/* a share code as the request path needs it (see the code cache) */
typedef struct {
    size_t                       txnid;     /* 0: not cached */
    ngx_uint_t                   gen;
    ngx_int_t                    slot;      /* counter slot, or declined */
    int64_t                      expires_at;
    int64_t                      max_clicks;
    u_char                      *target;
    uint16_t                     target_len;
    uint8_t                      flags;
    u_char                       len;
    u_char                       member_len;
    u_char                       referrer2_len;
    u_char                       code[LOYALTY_CODE_MAX];
    u_char                       member[LOYALTY_ID_MAX];
    u_char                       referrer2[LOYALTY_ID_MAX];
    u_char                       target_buf[NGX_HTTP_LOYALTY_TARGET_CACHED];
} ngx_http_loyalty_code_t;


/*
 * In the click zone: the snapshots the last flushes committed, with the
 * data file they went to, so that workers can tell that a new snapshot
 * only added click counts.
 */
typedef struct {
    ngx_atomic_t                 txnid[NGX_HTTP_LOYALTY_FLUSHES];
    ngx_atomic_t                 ino[NGX_HTTP_LOYALTY_FLUSHES];
    ngx_atomic_t                 next;
} ngx_http_loyalty_flushes_t;


/* problems with the store's data, each logged once per snapshot */
typedef enum {
    NGX_HTTP_LOYALTY_DAMAGED = 0,
    NGX_HTTP_LOYALTY_MISSING_TIER,
    NGX_HTTP_LOYALTY_PROBLEMS
} ngx_http_loyalty_problem_e;


/* the store as one worker sees it; opened after fork */
typedef struct {
    loyalty_store_t              st;
    MDB_txn                     *txn;       /* reset between uses */
    u_char                      *path;      /* NUL-terminated */
    unsigned                     open:1;
    time_t                       retry;     /* when to reopen a lost store */
    ngx_uint_t                   gen;       /* counts opens */

    /* the data file opened, to notice a store replaced on disk */
    u_char                      *data_path;
    dev_t                        dev;
    ino_t                        ino;
    ino_t                        failed_ino;
    unsigned                     gone:1;    /* logged as gone */
    unsigned                     stale:1;   /* a replacement to take up */
    unsigned                     write:1;   /* wanted: clicks are flushed */
    unsigned                     writable:1;
    ngx_uint_t                   busy;      /* writes in the thread pool
                                               using the environment */
    time_t                       checked;
    ngx_http_loyalty_cache_t    *cache;
    ngx_http_loyalty_code_cache_t  *codes;

    /*
     * Cached entries of snapshots from epoch on still hold: the snapshots
     * after it only added click counts.  seen: the last snapshot read.
     */
    size_t                       epoch;
    size_t                       member_epoch;  /* see _store_epoch() */
    size_t                       seen;
    ngx_http_loyalty_flushes_t  *flushes;

    /* the rules, parsed once per epoch (see ngx_http_loyalty_funnel.c) */
    loyalty_rules_t             *rules;
    size_t                       rules_txnid;
    ngx_uint_t                   rules_gen;
    unsigned                     rules_ok:1;

    /* problems seen, and the snapshot each was last logged for */
    ngx_uint_t                   problems[NGX_HTTP_LOYALTY_PROBLEMS];
    size_t                       problem_txnid[NGX_HTTP_LOYALTY_PROBLEMS];

    /*
     * Every tier, copied out of the snapshot numbered tiers_txnid: a
     * snapshot never changes, so while the store has not been written to
     * since, the copy is exact.  0: no copy yet.
     */
    size_t                       tiers_txnid;
    unsigned                     tiers_ok:1;
    loyalty_tierset_t            tiers;
    u_char                       tiers_buf[LOYALTY_TIERS_MAX
                                           * (LOYALTY_TIER_MAX
                                              + LOYALTY_LABEL_MAX)];
} ngx_http_loyalty_store_t;


typedef struct {
    ngx_str_t                    store_path;
    ngx_http_loyalty_where_t     store_where;
    ngx_str_t                    keys_path;
    loyalty_keyring_t           *keys;
    ngx_http_loyalty_store_t    *store;
    ngx_uint_t                   member_cache;
    ngx_uint_t                   code_cache;
    loyalty_bots_t              *bots;
    uint64_t                    *bot_verdicts;  /* per worker */
    ngx_shm_zone_t              *click_zone;
    ngx_http_loyalty_where_t     click_zone_where;
    ngx_flag_t                   admin;     /* some location has one */
    ngx_http_loyalty_where_t     admin_where;       /* the first one */
    ngx_msec_t                   click_flush;
    ngx_str_t                    timezone;
    loyalty_tz_t                *tz;        /* loyalty_timezone; NULL: UTC */
    ngx_str_t                    lua_file;
    ngx_http_loyalty_where_t     lua_file_where;
    ngx_int_t                    lua_budget;
    ngx_msec_t                   lua_time;
    size_t                       lua_memory;
    void                        *lua;       /* ngx_http_loyalty_lua_conf_t */
    ngx_msec_t                   cadence_sweep;     /* 0: none */
    ngx_http_loyalty_where_t     cadence_sweep_where;
    ngx_flag_t                   webhook;   /* some location has one */
    ngx_http_loyalty_where_t     webhook_where;     /* the first one */
    ngx_array_t                 *webhooks;  /* ngx_http_loyalty_webhook_t * */
    ngx_shm_zone_t              *webhook_zone;
    ngx_int_t                   *personal;  /* variables' indexes, then
                                               NGX_ERROR */
    ngx_shm_zone_t              *metrics_zone;  /* loyalty_metrics */
    ngx_http_loyalty_nats_t     *nats;      /* NULL: no loyalty_nats */
} ngx_http_loyalty_main_conf_t;


typedef struct {
    ngx_str_t                    member_cookie;
    ngx_str_t                    currency;
    ngx_http_complex_value_t    *price_sku;
    ngx_flag_t                   price_api;
    ngx_http_loyalty_where_t     price_api_where;

    ngx_str_t                    ref_arg;       /* empty: "off" */
    ngx_str_t                    ref_cookie;
    time_t                       ref_window;
    ngx_uint_t                   ref_model;
    ngx_flag_t                   share;
    ngx_http_loyalty_where_t     share_where;
    ngx_str_t                    share_fallback;
    ngx_array_t                 *share_hosts;   /* of ngx_str_t */

    ngx_str_t                    admin_token;   /* its file */
    ngx_http_loyalty_tokens_t   *admin_tokens;
    ngx_uint_t                   admin_open;    /* loyalty_admin_open */
    size_t                       admin_batch;
    ngx_str_t                    admin_dashboard;   /* empty: "off" */

    /* where this location's own "loyalty_admin" is; unset if none */
    ngx_http_loyalty_where_t     admin_where;

    /* this location's own "loyalty_webhook"; NULL if none */
    ngx_http_loyalty_webhook_t  *webhook;
} ngx_http_loyalty_loc_conf_t;



/* what the request path learned about the visitor, once per request */
typedef struct {
    /*
     * The identity: every field set by whoever identifies (a member
     * cache hit, a lookup, ngx_http_loyalty_ctx_anonymous()), so that a
     * new context is zeroed only from lifecycle on.
     */
    ngx_http_loyalty_identity_e  identity;
    ngx_str_t                    member;    /* in the request's cookie */
    ngx_str_t                    tier;      /* in tier_data */
    int64_t                      points;
    int32_t                      rank;
    uint8_t                      stage;
    unsigned                     has_rank:1;
    unsigned                     blocked:1;

    /* first of the rest, zeroed when the context is made */
    ngx_uint_t                   lifecycle;
    ngx_str_t                    segment;

    /*
     * The loyalty_price_sku lookup, for the request that made it: the
     * context is shared with subrequests, which may price other SKUs.
     */
    ngx_http_request_t          *price_r;
    unsigned                     price_found:1;
    unsigned                     funnel_done:1;
    /* a member cache hit: the store peeked at just then, nothing since */
    unsigned                     peeked:1;
    int64_t                      price;
    int64_t                      retail;

    /* last: a new context is zeroed up to it, its bytes read by tier */
    u_char                       tier_data[LOYALTY_TIER_MAX];
} ngx_http_loyalty_ctx_t;


/* an identity with nothing known: a prospect's, as zeroed */
static ngx_inline void
ngx_http_loyalty_ctx_anonymous(ngx_http_loyalty_ctx_t *ctx,
    ngx_http_loyalty_identity_e identity)
{
    ctx->identity = identity;
    ngx_str_null(&ctx->member);
    ngx_str_null(&ctx->tier);
    ctx->points = 0;
    ctx->rank = 0;
    ctx->stage = LOYALTY_STAGE_PROSPECT;
    ctx->has_rank = 0;
    ctx->blocked = 0;
}


/*
 * The attribution of the main request, worked out once: it counts a
 * click, so it must survive internal redirects, which clear module
 * contexts (see ngx_http_loyalty_ref_get()).
 */
typedef struct {
    ngx_http_loyalty_ref_status_e  status;
    ngx_str_t                      code;        /* the attributed code */
    ngx_str_t                      referrer;
    ngx_str_t                      referrer2;
    time_t                         at;          /* click; 0: unknown */
    ngx_str_t                      target;      /* the clicked code's */
    ngx_str_t                      campaign;    /* the click hook's tag */
    ngx_str_t                      set_cookie;  /* to send, or empty */
    unsigned                       cookie_sent:1;
} ngx_http_loyalty_ref_t;


/* the counters of loyalty_metrics, and ngx_http_loyalty_metric() */
#include "ngx_http_loyalty_metrics.h"

/* the dashboard's files, at ADMIN/dashboard */
#ifndef NGX_HTTP_LOYALTY_DASHBOARD
#define NGX_HTTP_LOYALTY_DASHBOARD  "/usr/share/loyalty/dashboard"
#endif

char *ngx_http_loyalty_admin_dashboard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_loyalty_dashboard_handler(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf);


extern ngx_module_t  ngx_http_loyalty_module;

/*
 * A write into the store, as the writer (ngx_http_loyalty_write.c) takes
 * it: what it is, the step that makes it inside a write transaction, and
 * the handler that takes its outcome back in the event loop.  The writer
 * decides how the write is carried out: today one LMDB write transaction
 * in nginx's thread pool.
 */

typedef struct ngx_http_loyalty_write_s  ngx_http_loyalty_write_t;

typedef enum {
    NGX_HTTP_LOYALTY_WRITE_ADMIN = 0,   /* an admin API (or webhook) write */
    NGX_HTTP_LOYALTY_WRITE_CLICKS,      /* a click-zone flush */
    NGX_HTTP_LOYALTY_WRITE_SWEEP        /* a step of a cadence sweep */
} ngx_http_loyalty_write_kind_e;

/*
 * In the thread pool: the write, in txn.  0: commit it;
 * NGX_HTTP_LOYALTY_WRITE_NONE: nothing to commit, the outcome is the
 * caller's; else why it failed (LMDB's code or an errno).  It may run
 * again after the store was put right, so it starts from what it was
 * given each time.  Touches nothing of the event loop.
 */
typedef int (*ngx_http_loyalty_write_apply_pt)(ngx_http_loyalty_write_t *w,
    MDB_txn *txn);

/* in the same thread, once the write is in the live store */
typedef void (*ngx_http_loyalty_write_committed_pt)(
    ngx_http_loyalty_write_t *w, size_t txnid);

/* back in the event loop: the outcome is in w->rc */
typedef void (*ngx_http_loyalty_write_done_pt)(ngx_http_loyalty_write_t *w);

/*
 * In the thread pool, with loyalty_nats, once apply has checked the write
 * (its transaction is then aborted): the write as a message of the
 * cluster's stream (schema/repl-message.schema.json), which the edges'
 * followers apply; NULL: out of memory.
 */
typedef json_t *(*ngx_http_loyalty_write_message_pt)(
    ngx_http_loyalty_write_t *w);

/* a writer: what its writes are and their steps, the same for each */
typedef struct {
    ngx_http_loyalty_write_kind_e        kind;
    ngx_http_loyalty_write_apply_pt      apply;
    ngx_http_loyalty_write_committed_pt  committed;
    ngx_http_loyalty_write_done_pt       done;
    ngx_http_loyalty_write_message_pt    message;
} ngx_http_loyalty_writer_t;

struct ngx_http_loyalty_write_s {
    const ngx_http_loyalty_writer_t     *writer;
    ngx_http_loyalty_store_t            *store;
    ngx_log_t                           *log;
    ngx_http_request_t                  *request;  /* held until done */
    size_t                               size;     /* bytes it may add */
    unsigned                             retry:1;  /* again, at once, once
                                                      the store is right */
    unsigned                             read:1;   /* only reads: a read
                                                      transaction, never
                                                      committed, published */

    /* published once per cluster and tag (a sweep's period); 0: always */
    ngx_uint_t                           once;
    void                                *data;

    /* the outcome: 0, LMDB's code, an errno, or the store's own */
    int                                  rc;
    unsigned                             recovered:1;  /* store put right */
    unsigned                             elsewhere:1;  /* "once": another
                                                          edge published */
    char                                 why[128];     /* not published */

    /* the writer's */
    ngx_uint_t                           retried;
    ngx_event_t                          wait;
#if (NGX_THREADS)
    ngx_thread_task_t                   *task;
#endif
};



/* the directives' handlers: ngx_http_loyalty_directives.c */
extern ngx_conf_post_t  ngx_http_loyalty_store_post;
extern ngx_conf_post_t  ngx_http_loyalty_keys_post;
char *ngx_http_loyalty_price_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_share(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_loyalty_bots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_loyalty_share_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
extern ngx_conf_post_t  ngx_http_loyalty_admin_token_post;
/* a directive kept where it was written: see ngx_http_loyalty_conf_check.h */
char *ngx_http_loyalty_conf_set_where(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * A part of the configuration, made by the first of its directives (a
 * location's webhook, the cluster's NATS), at offset in their conf; the
 * part's ngx_uint_t at given holds the directives given, bits of their
 * commands' offsets.  Each directive once, then its own step,
 * sets[cmd->offset], given the directive's first argument.
 */
typedef char *(*ngx_http_loyalty_part_set_pt)(ngx_conf_t *cf,
    ngx_command_t *cmd, void *part, ngx_str_t *value);

typedef struct {
    size_t                         offset;
    size_t                         size;
    size_t                         given;
    /* a new part's values: unset, where it was written */
    ngx_int_t                    (*init)(ngx_conf_t *cf, void *part);
    ngx_http_loyalty_part_set_pt  *sets;
} ngx_http_loyalty_part_t;

char *ngx_http_loyalty_conf_set_part(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the checks: ngx_http_loyalty_conf_check.c */
ngx_int_t ngx_http_loyalty_where_set(ngx_conf_t *cf,
    ngx_http_loyalty_where_t *where);
ngx_conf_file_t *ngx_http_loyalty_where_enter(ngx_conf_t *cf,
    ngx_http_loyalty_where_t *where, ngx_conf_file_t *place);
void ngx_cdecl ngx_http_loyalty_where_error(ngx_uint_t level, ngx_conf_t *cf,
    ngx_http_loyalty_where_t *where, const char *fmt, ...);
char *ngx_http_loyalty_conf_set_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_conf_check(ngx_conf_t *cf, void *post, void *data);

char *ngx_http_loyalty_store_conf(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf);
char *ngx_http_loyalty_store_access(ngx_conf_t *cf,
    ngx_http_loyalty_store_t *store);
ngx_int_t ngx_http_loyalty_store_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_loyalty_store_init_worker(ngx_cycle_t *cycle);
void ngx_http_loyalty_store_exit_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_loyalty_store_look(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
MDB_txn *ngx_http_loyalty_store_begin(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
void ngx_http_loyalty_store_end(ngx_http_loyalty_store_t *store);

/*
 * The store's last snapshot, without a read transaction (see
 * ngx_http_loyalty_store_look()): in line while the store is open,
 * checked this second, and has no new snapshot, as is usual.
 */
static ngx_inline ngx_int_t
ngx_http_loyalty_store_peek(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    MDB_envinfo  info;

    if (store == NULL || !store->open || store->checked != ngx_time()
        || mdb_env_info(store->st.env, &info) != 0
        || info.me_last_txnid != store->seen)
    {
        return ngx_http_loyalty_store_look(store, log);
    }

    return NGX_OK;
}


ngx_http_loyalty_store_t *ngx_http_loyalty_store_get(ngx_http_request_t *r);
const loyalty_tierset_t *ngx_http_loyalty_store_tiers(
    ngx_http_loyalty_store_t *store, ngx_log_t *log);
ngx_int_t ngx_http_loyalty_store_open(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
ngx_int_t ngx_http_loyalty_store_replaced(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
void ngx_http_loyalty_store_lost(ngx_http_loyalty_store_t *store,
    ngx_log_t *log, const char *what, int rc);
ngx_int_t ngx_http_loyalty_store_remap(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
int ngx_http_loyalty_store_commit(ngx_http_loyalty_store_t *store,
    MDB_txn *txn);
ngx_int_t ngx_http_loyalty_store_recover(ngx_http_loyalty_store_t *store,
    int rc, size_t need, ngx_log_t *log);
const char *ngx_http_loyalty_store_strerror(int rc);

ngx_int_t ngx_http_loyalty_write_conf(ngx_conf_t *cf);
#if (NGX_THREADS)
/* the thread pool the module's writes and long reads run in */
ngx_thread_pool_t *ngx_http_loyalty_pool(void);
#endif
ngx_int_t ngx_http_loyalty_write_init(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_cycle_t *cycle);
void ngx_http_loyalty_write_request(ngx_http_loyalty_write_t *w,
    const ngx_http_loyalty_writer_t *writer, ngx_http_loyalty_store_t *store,
    void *data, ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_write_post(ngx_http_loyalty_write_t *w);
void ngx_http_loyalty_write_now(ngx_http_loyalty_write_t *w);
/* a handler's work in the thread pool: the request kept, then finished */
ngx_int_t ngx_http_loyalty_posted(ngx_http_request_t *r, ngx_int_t rc);
void ngx_http_loyalty_finish(ngx_http_request_t *r, ngx_int_t rc);
const char *ngx_http_loyalty_write_strerror(ngx_http_loyalty_write_t *w);
void ngx_http_loyalty_write_log(ngx_http_loyalty_write_t *w,
    ngx_uint_t level, const char *detail, const char *then);
ngx_uint_t ngx_http_loyalty_store_problem(ngx_http_loyalty_store_t *store,
    ngx_http_loyalty_problem_e problem);
ngx_int_t ngx_http_loyalty_store_read_failed(ngx_http_loyalty_store_t *store,
    ngx_log_t *log, const void *key, size_t len, int rc);

ngx_int_t ngx_http_loyalty_cache_init(ngx_http_loyalty_store_t *store,
    ngx_uint_t size, ngx_log_t *log);
void ngx_http_loyalty_cache_free(ngx_http_loyalty_store_t *store);
ngx_int_t ngx_http_loyalty_cache_get(ngx_http_loyalty_store_t *store,
    ngx_str_t *value, ngx_http_loyalty_ctx_t *ctx, int64_t *expires);
ngx_int_t ngx_http_loyalty_cache_changed(ngx_http_loyalty_store_t *store,
    size_t txnid);
void ngx_http_loyalty_cache_put(ngx_http_loyalty_store_t *store,
    ngx_str_t *value, int64_t expires, ngx_http_loyalty_ctx_t *ctx);

ngx_int_t ngx_http_loyalty_code_cache_init(ngx_http_loyalty_store_t *store,
    ngx_uint_t size, ngx_log_t *log);
void ngx_http_loyalty_code_cache_free(ngx_http_loyalty_store_t *store);
void *ngx_http_loyalty_huge_alloc(size_t size, ngx_log_t *log);
ngx_int_t ngx_http_loyalty_code_find(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store, MDB_txn *txn, const u_char *name,
    size_t len, uint32_t hash, ngx_http_loyalty_code_t **code);
void ngx_http_loyalty_code_prefetch(ngx_http_loyalty_store_t *store,
    uint32_t hash);
/* in ngx_http_loyalty_code_cache.c, on the core's member accessor */
ngx_int_t ngx_http_loyalty_store_referrer(ngx_http_loyalty_store_t *store,
    MDB_txn *txn, ngx_log_t *log, u_char *id, size_t len,
    const char **referrer, size_t *referrer_len);

ngx_http_loyalty_ctx_t *ngx_http_loyalty_identify_first(
    ngx_http_request_t *r);


/*
 * memcmp() == 0 for the short strings of the request path (cookie and
 * argument names, SKUs), without a call: up to 16 bytes as two
 * overlapping words (or half-words), longer ones by memcmp().  Not in
 * constant time: never for secrets (loyalty_ct_equal()).
 */
static ngx_inline ngx_uint_t
ngx_http_loyalty_equal(const u_char *a, const u_char *b, size_t n)
{
    size_t    i;
    uint32_t  a4, b4, c4, d4;
    uint64_t  a8, b8, c8, d8;

    if (n >= sizeof(uint64_t) && n <= 2 * sizeof(uint64_t)) {
        ngx_memcpy(&a8, a, sizeof(uint64_t));
        ngx_memcpy(&b8, b, sizeof(uint64_t));
        ngx_memcpy(&c8, a + n - sizeof(uint64_t), sizeof(uint64_t));
        ngx_memcpy(&d8, b + n - sizeof(uint64_t), sizeof(uint64_t));

        return ((a8 ^ b8) | (c8 ^ d8)) == 0;
    }

    if (n >= sizeof(uint32_t) && n < sizeof(uint64_t)) {
        ngx_memcpy(&a4, a, sizeof(uint32_t));
        ngx_memcpy(&b4, b, sizeof(uint32_t));
        ngx_memcpy(&c4, a + n - sizeof(uint32_t), sizeof(uint32_t));
        ngx_memcpy(&d4, b + n - sizeof(uint32_t), sizeof(uint32_t));

        return ((a4 ^ b4) | (c4 ^ d4)) == 0;
    }

    if (n < sizeof(uint32_t)) {
        for (i = 0; i < n; i++) {
            if (a[i] != b[i]) {
                return 0;
            }
        }

        return 1;
    }

    return ngx_memcmp(a, b, n) == 0;
}


/*
 * ngx_cpymem() of the short strings of an answer (SKUs, amounts, labels:
 * 4 to 64 bytes) as overlapping moves, without a call.
 */
static ngx_inline __attribute__((always_inline)) u_char *
ngx_http_loyalty_copy(u_char *dst, const u_char *src, size_t n)
{
    if (n >= 16 && n <= 64) {
        ngx_memcpy(dst, src, 16);
        ngx_memcpy(dst + n / 2 - 8, src + n / 2 - 8, 16);
        ngx_memcpy(dst + n - 16, src + n - 16, 16);

        if (n > 48) {
            ngx_memcpy(dst + 16, src + 16, 16);
            ngx_memcpy(dst + n - 32, src + n - 32, 16);
        }

        return dst + n;
    }

    if (n >= 8 && n < 16) {
        ngx_memcpy(dst, src, 8);
        ngx_memcpy(dst + n - 8, src + n - 8, 8);
        return dst + n;
    }

    if (n >= 4 && n < 8) {
        ngx_memcpy(dst, src, 4);
        ngx_memcpy(dst + n - 4, src + n - 4, 4);
        return dst + n;
    }

    return loyalty_cpymem(dst, src, n);
}

/*
 * Who the visitor is: identified the first time something asks, then the
 * main request's context answers (subrequests share it), without a call.
 */
static ngx_inline ngx_http_loyalty_ctx_t *
ngx_http_loyalty_identify(ngx_http_request_t *r)
{
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_loyalty_module);

    return ctx ? ctx : ngx_http_loyalty_identify_first(r);
}


/*
 * ngx_http_loyalty_identify(), and *peeked set when it identified the
 * visitor just now and peeked at the store doing so: the caller's peek
 * would find the same snapshot, so it need not look again.
 */
static ngx_inline ngx_http_loyalty_ctx_t *
ngx_http_loyalty_identify_peeked(ngx_http_request_t *r, ngx_uint_t *peeked)
{
    ngx_http_loyalty_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_loyalty_module);

    if (ctx) {
        *peeked = 0;
        return ctx;
    }

    ctx = ngx_http_loyalty_identify_first(r);

    *peeked = ctx && ctx->peeked;

    return ctx;
}

ngx_int_t ngx_http_loyalty_funnel(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx);
ngx_int_t ngx_http_loyalty_arg(ngx_http_request_t *r, u_char *name,
    size_t len, ngx_str_t *value);
ngx_int_t ngx_http_loyalty_get_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);

ngx_int_t ngx_http_loyalty_price_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_price_variable(ngx_http_request_t *r,
    ngx_http_loyalty_ctx_t *ctx);
ngx_str_t *ngx_http_loyalty_price_tier(ngx_http_loyalty_ctx_t *ctx);

ngx_int_t ngx_http_loyalty_add_variables(ngx_conf_t *cf);

ngx_int_t ngx_http_loyalty_lua_read_source(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *source, char *err, size_t errlen);

/*
 * ngx_http_loyalty_module.c: a request's kept state, a worker's timer, a
 * zone's data
 */
void *ngx_http_loyalty_pool_state(ngx_pool_t *pool,
    ngx_pool_cleanup_pt handler, size_t size);
void ngx_http_loyalty_timer_init(ngx_event_t *ev,
    ngx_event_handler_pt handler, void *data, ngx_log_t *log);
void *ngx_http_loyalty_zone_data(ngx_shm_zone_t *zone, void *old,
    size_t size, ngx_uint_t *fresh);

ngx_int_t ngx_http_loyalty_add_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len);
ngx_int_t ngx_http_loyalty_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);

ngx_http_loyalty_ref_t *ngx_http_loyalty_attribute(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_ref_init(ngx_conf_t *cf);
extern ngx_str_t  ngx_http_loyalty_ref_status_names[];

ngx_int_t ngx_http_loyalty_share_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_loyalty_admin_handler(ngx_http_request_t *r);
char *ngx_http_loyalty_admin_tokens(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t **out);
ngx_int_t ngx_http_loyalty_admin_token_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_loyalty_admin_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *doc);
/* {"error": message}, as the admin API's handlers answer a refusal */
ngx_int_t ngx_http_loyalty_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
/* GET .../stats, once the admin handler has checked the token */
ngx_int_t ngx_http_loyalty_stats_handler(ngx_http_request_t *r,
    ngx_http_loyalty_store_t *store);
u_char *ngx_http_loyalty_admin_dump(ngx_pool_t *pool, json_t *doc,
    size_t *len);
ngx_int_t ngx_http_loyalty_admin_apply(ngx_http_request_t *r, u_char *body,
    size_t len, ngx_http_loyalty_batch_done_pt done, void *data);
ngx_int_t ngx_http_loyalty_read_body(ngx_http_request_t *r, u_char **body,
    size_t *len);

/* the webhook directives, a part: their commands' offsets say which */
typedef enum {
    NGX_HTTP_LOYALTY_WEBHOOK_PLATFORM = 0,  /* loyalty_webhook */
    NGX_HTTP_LOYALTY_WEBHOOK_SECRET,
    NGX_HTTP_LOYALTY_WEBHOOK_MAP,
    NGX_HTTP_LOYALTY_WEBHOOK_REPLAY
} ngx_http_loyalty_webhook_directive_e;

extern ngx_http_loyalty_part_t  ngx_http_loyalty_webhook_part;
char *ngx_http_loyalty_webhook_merge(ngx_conf_t *cf,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_main_conf_t *lmcf);
ngx_int_t ngx_http_loyalty_webhook_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_webhook_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf);
void ngx_http_loyalty_webhook_exit_worker(ngx_http_loyalty_main_conf_t *lmcf);
json_t *ngx_http_loyalty_webhook_report(ngx_shm_zone_t *zone);

ngx_int_t ngx_http_loyalty_target_allowed(ngx_http_loyalty_loc_conf_t *llcf,
    ngx_str_t *target);

char *ngx_http_loyalty_click_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* loyalty_timezone (ngx_http_loyalty_tz.c) */
extern ngx_conf_post_t  ngx_http_loyalty_timezone_post;
ngx_http_loyalty_clicks_t *ngx_http_loyalty_clicks_get(
    ngx_http_loyalty_main_conf_t *lmcf);
ngx_int_t ngx_http_loyalty_clicks_slot(ngx_http_loyalty_clicks_t *clicks,
    const u_char *code, size_t len, uint32_t hash, ngx_log_t *log);
void ngx_http_loyalty_clicks_count(ngx_http_loyalty_clicks_t *clicks,
    ngx_int_t slot, loyalty_click_counter_e counter);
ngx_int_t ngx_http_loyalty_clicks_claim(ngx_http_loyalty_clicks_t *clicks,
    ngx_int_t slot, ngx_http_loyalty_store_t *store, MDB_txn *txn,
    int64_t max_clicks);
uint64_t ngx_http_loyalty_clicks_visit(ngx_http_loyalty_clicks_t *clicks,
    uint32_t hash, uint64_t visitor, const u_char *code, size_t len);
ngx_uint_t ngx_http_loyalty_clicks_unique(ngx_http_loyalty_clicks_t *clicks,
    uint64_t h);
ngx_int_t ngx_http_loyalty_clicks_init_worker(ngx_cycle_t *cycle);
/* ngx_http_loyalty_nats.c: writes go to the cluster's stream */
typedef enum {
    NGX_HTTP_LOYALTY_NATS_URLS = 0,         /* loyalty_nats */
    NGX_HTTP_LOYALTY_NATS_CREDS,
    NGX_HTTP_LOYALTY_NATS_TIMEOUT,
    NGX_HTTP_LOYALTY_NATS_STREAM,           /* loyalty_stream */
    NGX_HTTP_LOYALTY_NATS_EDGE              /* loyalty_edge */
} ngx_http_loyalty_nats_directive_e;

extern ngx_http_loyalty_part_t  ngx_http_loyalty_nats_part;
char *ngx_http_loyalty_nats_init_conf(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf);
ngx_int_t ngx_http_loyalty_nats_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf);
void ngx_http_loyalty_nats_exit_worker(void);
/* the worker's connection; NULL without loyalty_nats */
ngx_http_loyalty_nats_t *ngx_http_loyalty_nats_get(void);
json_t *ngx_http_loyalty_nats_message(ngx_http_loyalty_nats_t *n,
    const char *kind, int64_t at);
/* in the thread pool only: blocks until JetStream acknowledges */
ngx_int_t ngx_http_loyalty_nats_publish(ngx_http_loyalty_nats_t *n,
    json_t *msg, const char *id, char *err, size_t errlen);
/* once per cluster and tag: NGX_DECLINED when another edge came first */
ngx_int_t ngx_http_loyalty_nats_publish_once(ngx_http_loyalty_nats_t *n,
    json_t *msg, ngx_uint_t tag, char *err, size_t errlen);

ngx_int_t ngx_http_loyalty_sweep_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf);
void ngx_http_loyalty_clicks_exit_worker(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_LOYALTY_MODULE_H_INCLUDED_ */
