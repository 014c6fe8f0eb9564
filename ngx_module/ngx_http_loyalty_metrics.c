/*
 * nginx-loyalty: Prometheus metrics, "loyalty_metrics".
 *
 * The "loyalty_metrics" zone holds a slot of counters per process.  A
 * worker claims a free slot when it starts (a compare-and-swap of the
 * slot's owner) and gives it back when it exits; from then on it is the
 * only writer of its slot, so counting is a plain increment of a word in
 * memory no other process writes: no lock, no atomic instruction, no
 * cache line shared with another counting process.  A scrape sums the
 * slots.  Counts stay in a slot that is given back, so that a sum never
 * goes down; the next worker to claim the slot counts on from there, and
 * the slot of a worker that died is claimed again once its process is
 * gone.  The zone is kept across reloads: counters go on.
 *
 * Gauges are read when scraped: the store's map and readers, the age of
 * its data file, the members and the due touches it holds; the click
 * zone's fill; the Lua hooks' counts, which the "loyalty_lua" zone keeps.
 *
 * The answer is the text exposition format 0.0.4.  It names no member,
 * code or referrer; where it is served is the operator's choice (the
 * README shows it behind allow/deny, like stub_status).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_lua.h"


/* processes counting at once, old and new workers during a reload */
#define NGX_HTTP_LOYALTY_METRICS_SLOTS  256
#define NGX_HTTP_LOYALTY_METRICS_LINE   128
#define NGX_HTTP_LOYALTY_METRICS_BUF    16384


/* a process's counters, whole cache lines of their own */
typedef struct {
    ngx_atomic_t                 owner;     /* pid; 0: free */
    ngx_atomic_t                 count[NGX_HTTP_LOYALTY_METRICS];
} ngx_http_loyalty_metrics_slot_t;


typedef struct {
    u_char                      *slots;
    size_t                       stride;
} ngx_http_loyalty_metrics_sh_t;


/* a run of counters shown as one family, a sample per label value */
typedef struct {
    const char                  *name;
    const char                  *help;
    const char                  *label;     /* NULL: one sample */
    ngx_str_t                   *values;    /* indexed like the run */
    ngx_uint_t                   first;
    ngx_uint_t                   n;
    ngx_uint_t                   skip;      /* a mask of values not shown */
} ngx_http_loyalty_family_t;


typedef struct {
    u_char                      *pos;
    u_char                      *end;
} ngx_http_loyalty_out_t;


/* what the store says, read when scraped */
typedef struct {
    ngx_uint_t                   up;
    size_t                       map_size;
    size_t                       map_used;
    ngx_uint_t                   readers;
    ngx_uint_t                   readers_max;
    time_t                       write_age;
    unsigned                     write_known:1;
    size_t                       members;
    size_t                       due;
} ngx_http_loyalty_store_gauges_t;


static ngx_int_t ngx_http_loyalty_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_loyalty_metrics_handler(ngx_http_request_t *r);
static void ngx_http_loyalty_metrics_sum(ngx_http_loyalty_metrics_sh_t *sh,
    uint64_t *sum, ngx_uint_t *procs);
static void ngx_http_loyalty_metrics_counters(ngx_http_loyalty_out_t *out,
    uint64_t *sum);
static void ngx_http_loyalty_metrics_lua(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_main_conf_t *lmcf);
static void ngx_http_loyalty_metrics_clicks(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_main_conf_t *lmcf);
static void ngx_http_loyalty_metrics_store(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_store_t *store, ngx_log_t *log);
static void ngx_http_loyalty_metrics_store_read(
    ngx_http_loyalty_store_t *store, ngx_log_t *log,
    ngx_http_loyalty_store_gauges_t *g);
static int ngx_http_loyalty_metrics_reader(const char *msg, void *ctx);
static void ngx_http_loyalty_metrics_head(ngx_http_loyalty_out_t *out,
    const char *name, const char *type, const char *help);
static void ngx_http_loyalty_metrics_gauge(ngx_http_loyalty_out_t *out,
    const char *name, const char *help, uint64_t value);


ngx_atomic_t  *ngx_http_loyalty_metrics_slot;

static ngx_http_loyalty_metrics_slot_t  *ngx_http_loyalty_metrics_own;

static ngx_str_t  ngx_http_loyalty_metrics_zone_name =
    ngx_string("loyalty_metrics");


static ngx_str_t  ngx_http_loyalty_metrics_outcomes[] = {
    ngx_string("none"),
    ngx_string("valid"),
    ngx_string("invalid"),
    ngx_string("expired"),
    ngx_string("unknown")
};

static ngx_str_t  ngx_http_loyalty_metrics_cache[] = {
    ngx_string("hit"),
    ngx_string("miss")
};

/*
 * The results of an admin write and of a price API answer: the same
 * refusals (ngx_http_loyalty_result_e after RESULT_OK), success named
 * for each.
 */
#define ngx_http_loyalty_metrics_refusals                                     \
    ngx_string("bad_request"),                                                \
    ngx_string("not_found"),                                                  \
    ngx_string("conflict"),                                                   \
    ngx_string("too_large"),                                                  \
    ngx_string("invalid"),                                                    \
    ngx_string("unavailable"),                                                \
    ngx_string("error")

static ngx_str_t  ngx_http_loyalty_metrics_results[] = {
    ngx_string("accepted"),
    ngx_http_loyalty_metrics_refusals
};

static ngx_str_t  ngx_http_loyalty_metrics_price[] = {
    ngx_string("ok"),
    ngx_http_loyalty_metrics_refusals
};

static ngx_str_t  ngx_http_loyalty_metrics_denied[] = {
    ngx_string("token"),
    ngx_string("loopback"),
    ngx_string("scope")
};


#define ngx_http_loyalty_bit(v)  ((ngx_uint_t) 1 << NGX_HTTP_LOYALTY_ ## v)

static ngx_http_loyalty_family_t  ngx_http_loyalty_metrics_families[] = {

    { "loyalty_identity_requests_total",
      "Visitors identified, by the member cookie's outcome.",
      "outcome", ngx_http_loyalty_metrics_outcomes,
      NGX_HTTP_LOYALTY_M_IDENTITY, NGX_HTTP_LOYALTY_ID_OUTCOMES, 0 },

    { "loyalty_member_cache_lookups_total",
      "Verified member cookies looked up in the worker's member cache.",
      "result", ngx_http_loyalty_metrics_cache,
      NGX_HTTP_LOYALTY_M_CACHE_HIT, 2, 0 },

    { "loyalty_clicks_total",
      "Share-link clicks, by what became of the attribution.",
      "class", ngx_http_loyalty_ref_status_names,
      NGX_HTTP_LOYALTY_M_CLICK, NGX_HTTP_LOYALTY_REF_STATUSES,
      ngx_http_loyalty_bit(REF_NONE) },

    { "loyalty_price_api_answers_total",
      "Answers of the price API, by result.",
      "result", ngx_http_loyalty_metrics_price,
      NGX_HTTP_LOYALTY_M_PRICE, NGX_HTTP_LOYALTY_RESULTS,
      ngx_http_loyalty_bit(RESULT_NOT_FOUND)
      | ngx_http_loyalty_bit(RESULT_CONFLICT)
      | ngx_http_loyalty_bit(RESULT_TOO_LARGE)
      | ngx_http_loyalty_bit(RESULT_INVALID) },

    { "loyalty_price_guard_clamps_total",
      "Prices the privilege guard lowered to what a lower tier pays.",
      NULL, NULL, NGX_HTTP_LOYALTY_M_PRICE_CLAMP, 1, 0 },

    { "loyalty_admin_writes_total",
      "Writes through the admin API, accepted or refused, by result.",
      "result", ngx_http_loyalty_metrics_results,
      NGX_HTTP_LOYALTY_M_WRITE, NGX_HTTP_LOYALTY_RESULTS, 0 },

    { "loyalty_admin_denied_total",
      "Admin API requests denied: no valid token, not a loopback "
      "client, or a read token asking to write.",
      "reason", ngx_http_loyalty_metrics_denied,
      NGX_HTTP_LOYALTY_M_DENIED_TOKEN, 3, 0 },

    { NULL, NULL, NULL, NULL, 0, 0, 0 }
};


char *
ngx_http_loyalty_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    size_t                          stride;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_loyalty_main_conf_t   *lmcf;
    ngx_http_loyalty_metrics_sh_t  *sh;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_loyalty_metrics_handler) {
        return "is duplicate";
    }

    if (clcf->handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_metrics\" cannot share a location "
                           "with another content handler");
        return NGX_CONF_ERROR;
    }

    clcf->handler = ngx_http_loyalty_metrics_handler;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->metrics_zone) {
        return NGX_CONF_OK;
    }

    sh = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_metrics_sh_t));
    if (sh == NULL) {
        return NGX_CONF_ERROR;
    }

    stride = ngx_align(sizeof(ngx_http_loyalty_metrics_slot_t),
                       NGX_HTTP_LOYALTY_METRICS_LINE);

    /* the slots, and room for the slab allocator's own pages */
    lmcf->metrics_zone = ngx_shared_memory_add(cf,
                             &ngx_http_loyalty_metrics_zone_name,
                             stride * NGX_HTTP_LOYALTY_METRICS_SLOTS * 2
                             + 16 * ngx_pagesize,
                             &ngx_http_loyalty_module);
    if (lmcf->metrics_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->metrics_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the zone \"loyalty_metrics\" is taken by "
                           "another directive");
        return NGX_CONF_ERROR;
    }

    sh->stride = stride;
    lmcf->metrics_zone->init = ngx_http_loyalty_metrics_init_zone;
    lmcf->metrics_zone->data = sh;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_loyalty_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_loyalty_metrics_sh_t *osh = data;

    ngx_uint_t                      fresh;
    ngx_http_loyalty_metrics_sh_t  *sh;

    sh = zone->data;

    /* the counts go on across reloads */
    sh->slots = ngx_http_loyalty_zone_data(zone, osh ? osh->slots : NULL,
                                           sh->stride
                                           * NGX_HTTP_LOYALTY_METRICS_SLOTS,
                                           &fresh);

    return sh->slots ? NGX_OK : NGX_ERROR;
}


/*
 * A slot of its own for a worker: a free one, else one whose process is
 * gone.  Helper processes (the cache manager) count nothing.
 */
ngx_int_t
ngx_http_loyalty_metrics_init_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i, pass;
    ngx_atomic_uint_t                 pid;
    ngx_http_loyalty_main_conf_t     *lmcf;
    ngx_http_loyalty_metrics_sh_t    *sh;
    ngx_http_loyalty_metrics_slot_t  *s;

    ngx_http_loyalty_metrics_slot = NULL;
    ngx_http_loyalty_metrics_own = NULL;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->metrics_zone == NULL
        || ngx_process == NGX_PROCESS_HELPER)
    {
        return NGX_OK;
    }

    sh = lmcf->metrics_zone->data;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < NGX_HTTP_LOYALTY_METRICS_SLOTS; i++) {
            s = (ngx_http_loyalty_metrics_slot_t *)
                    (sh->slots + i * sh->stride);
            pid = s->owner;

            if (pass == 1
                && (pid == 0 || kill((ngx_pid_t) pid, 0) == 0
                    || ngx_errno != NGX_ESRCH))
            {
                continue;
            }

            if ((pass == 0 && pid != 0)
                || !ngx_atomic_cmp_set(&s->owner, pid,
                                       (ngx_atomic_uint_t) ngx_pid))
            {
                continue;
            }

            ngx_http_loyalty_metrics_own = s;
            ngx_http_loyalty_metrics_slot = s->count;

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                           "loyalty: metrics slot %ui", i);
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                  "loyalty_metrics: all %d slots are taken; this worker's "
                  "events are not counted", NGX_HTTP_LOYALTY_METRICS_SLOTS);

    return NGX_OK;
}


/* the counts stay in the slot for the sums */
void
ngx_http_loyalty_metrics_exit_worker(void)
{
    if (ngx_http_loyalty_metrics_own) {
        ngx_memory_barrier();
        ngx_http_loyalty_metrics_own->owner = 0;
        ngx_http_loyalty_metrics_own = NULL;
    }

    ngx_http_loyalty_metrics_slot = NULL;
}


void
ngx_http_loyalty_metrics_answer(ngx_uint_t base, ngx_uint_t status)
{
    ngx_uint_t  result;

    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        result = NGX_HTTP_LOYALTY_RESULT_BAD_REQUEST;
        break;

    case NGX_HTTP_NOT_FOUND:
        result = NGX_HTTP_LOYALTY_RESULT_NOT_FOUND;
        break;

    case NGX_HTTP_CONFLICT:
        result = NGX_HTTP_LOYALTY_RESULT_CONFLICT;
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        result = NGX_HTTP_LOYALTY_RESULT_TOO_LARGE;
        break;

    case NGX_HTTP_LOYALTY_UNPROCESSABLE:
        result = NGX_HTTP_LOYALTY_RESULT_INVALID;
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        result = NGX_HTTP_LOYALTY_RESULT_UNAVAILABLE;
        break;

    default:
        result = (status >= 200 && status < 300)
                 ? NGX_HTTP_LOYALTY_RESULT_OK
                 : NGX_HTTP_LOYALTY_RESULT_ERROR;
    }

    ngx_http_loyalty_metric(base + result);
}


static ngx_int_t
ngx_http_loyalty_metrics_handler(ngx_http_request_t *r)
{
    uint64_t                       sum[NGX_HTTP_LOYALTY_METRICS];
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     procs;
    ngx_chain_t                    out;
    ngx_http_loyalty_out_t         o;
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_loyalty_add_header(r, "Allow", (u_char *) "GET, HEAD",
                                        sizeof("GET, HEAD") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    b = ngx_create_temp_buf(r->pool, NGX_HTTP_LOYALTY_METRICS_BUF);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o.pos = b->pos;
    o.end = b->end;

    ngx_http_loyalty_metrics_sum(lmcf->metrics_zone->data, sum, &procs);
    ngx_http_loyalty_metrics_counters(&o, sum);
    ngx_http_loyalty_metrics_lua(&o, lmcf);
    ngx_http_loyalty_metrics_clicks(&o, lmcf);
    ngx_http_loyalty_metrics_store(&o, lmcf->store, r->connection->log);
    ngx_http_loyalty_metrics_gauge(&o, "loyalty_metrics_processes",
                                   "Processes counting in the metrics zone.",
                                   procs);

    if (o.pos == o.end) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "loyalty_metrics: the answer outgrew %d bytes",
                      NGX_HTTP_LOYALTY_METRICS_BUF);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = o.pos;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_loyalty_add_header(r, "Cache-Control", (u_char *) "no-store",
                                    sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* every slot's counts, and the processes alive that count */
static void
ngx_http_loyalty_metrics_sum(ngx_http_loyalty_metrics_sh_t *sh,
    uint64_t *sum, ngx_uint_t *procs)
{
    ngx_uint_t                        i, m;
    ngx_http_loyalty_metrics_slot_t  *s;

    ngx_memzero(sum, NGX_HTTP_LOYALTY_METRICS * sizeof(uint64_t));
    *procs = 0;

    for (i = 0; i < NGX_HTTP_LOYALTY_METRICS_SLOTS; i++) {
        s = (ngx_http_loyalty_metrics_slot_t *) (sh->slots + i * sh->stride);

        /* a killed worker's slot keeps its owner until taken again */
        if (s->owner
            && (kill((ngx_pid_t) s->owner, 0) == 0 || ngx_errno != NGX_ESRCH))
        {
            (*procs)++;
        }

        for (m = 0; m < NGX_HTTP_LOYALTY_METRICS; m++) {
            sum[m] += s->count[m];
        }
    }
}


static void
ngx_http_loyalty_metrics_counters(ngx_http_loyalty_out_t *out, uint64_t *sum)
{
    ngx_uint_t                  i;
    ngx_http_loyalty_family_t  *f;

    for (f = ngx_http_loyalty_metrics_families; f->name; f++) {
        ngx_http_loyalty_metrics_head(out, f->name, "counter", f->help);

        if (f->label == NULL) {
            out->pos = ngx_slprintf(out->pos, out->end, "%s %uL\n", f->name,
                                    sum[f->first]);
            continue;
        }

        for (i = 0; i < f->n; i++) {
            if (f->skip & ((ngx_uint_t) 1 << i)) {
                continue;
            }

            out->pos = ngx_slprintf(out->pos, out->end, "%s{%s=\"%V\"} %uL\n",
                                    f->name, f->label, &f->values[i],
                                    sum[f->first + i]);
        }
    }

    ngx_http_loyalty_metrics_head(out, "loyalty_attributions_total",
                                  "counter",
                                  "Clicks that attributed the visitor to the "
                                  "code, new or replacing another.");
    out->pos = ngx_slprintf(out->pos, out->end,
                            "loyalty_attributions_total %uL\n",
                            sum[NGX_HTTP_LOYALTY_M_CLICK
                                + NGX_HTTP_LOYALTY_REF_NEW]
                            + sum[NGX_HTTP_LOYALTY_M_CLICK
                                  + NGX_HTTP_LOYALTY_REF_REPLACED]);
}


/* the "loyalty_lua" zone's counts, for every hook, zeros without a script */
static void
ngx_http_loyalty_metrics_lua(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_uint_t                        i, k;
    ngx_http_loyalty_lua_conf_t      *lcf;
    ngx_http_loyalty_lua_counters_t  *c, none;

    static const char  *names[] = {
        "loyalty_lua_hook_calls_total",
        "loyalty_lua_hook_errors_total",
        "loyalty_lua_hook_stops_total"
    };

    static const char  *helps[] = {
        "Calls of the operator's Lua hooks.",
        "Lua hook calls that failed (an error, a bad answer or a limit); "
        "the request or event goes on without the hook.",
        "Lua hook calls stopped by a limit: loyalty_lua_budget and "
        "loyalty_lua_time (budget) or loyalty_lua_memory (memory)."
    };

    lcf = lmcf->lua;
    ngx_memzero(&none, sizeof(ngx_http_loyalty_lua_counters_t));

    for (k = 0; k < 3; k++) {
        ngx_http_loyalty_metrics_head(out, names[k], "counter", helps[k]);

        for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
            c = (lcf && lcf->stats) ? &lcf->stats->hooks[i] : &none;

            if (k < 2) {
                out->pos = ngx_slprintf(out->pos, out->end,
                                        "%s{hook=\"%s\"} %uA\n", names[k],
                                        loyalty_lua_hook_names[i],
                                        k == 0 ? c->calls : c->errors);
                continue;
            }

            out->pos = ngx_slprintf(out->pos, out->end,
                                    "%s{hook=\"%s\",limit=\"budget\"} %uA\n"
                                    "%s{hook=\"%s\",limit=\"memory\"} %uA\n",
                                    names[k], loyalty_lua_hook_names[i],
                                    c->budget, names[k],
                                    loyalty_lua_hook_names[i], c->memory);
        }
    }
}


static void
ngx_http_loyalty_metrics_clicks(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_uint_t                  used, size, lost;
    ngx_http_loyalty_clicks_t  *clicks;

    clicks = ngx_http_loyalty_clicks_get(lmcf);

    if (clicks == NULL) {
        return;
    }

    ngx_http_loyalty_clicks_fill(clicks, &used, &size, &lost);

    ngx_http_loyalty_metrics_gauge(out, "loyalty_click_zone_codes",
                                   "Codes counted in the click zone.", used);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_click_zone_codes_max",
                                   "Codes the click zone has room for.",
                                   size);
    ngx_http_loyalty_metrics_head(out, "loyalty_click_zone_lost_total",
                                  "counter",
                                  "Clicks not counted: no room in the click "
                                  "zone for their code.");
    out->pos = ngx_slprintf(out->pos, out->end,
                            "loyalty_click_zone_lost_total %ui\n", lost);
}


static void
ngx_http_loyalty_metrics_store(ngx_http_loyalty_out_t *out,
    ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    ngx_http_loyalty_store_gauges_t  g;

    if (store == NULL) {
        return;
    }

    ngx_http_loyalty_metrics_store_read(store, log, &g);

    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_up",
                                   "1 if this worker can read the store.",
                                   g.up);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_map_size_bytes",
                                   "The size of the store's memory map.",
                                   g.map_size);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_map_used_bytes",
                                   "The part of the map the store's pages "
                                   "use.", g.map_used);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_readers",
                                   "LMDB reader slots with a read "
                                   "transaction open, of every process.",
                                   g.readers);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_readers_max",
                                   "LMDB reader slots the store has.",
                                   g.readers_max);

    if (g.write_known) {
        ngx_http_loyalty_metrics_gauge(out,
                                   "loyalty_store_last_write_age_seconds",
                                   "Seconds since the store's data file "
                                   "was last written, by anyone.",
                                   g.write_age);
    }

    ngx_http_loyalty_metrics_gauge(out, "loyalty_store_members",
                                   "Members in the store.", g.members);
    ngx_http_loyalty_metrics_gauge(out, "loyalty_cadence_due_touches",
                                   "Cadence touches in the due queue, not "
                                   "acknowledged yet.", g.due);
}


static void
ngx_http_loyalty_metrics_store_read(ngx_http_loyalty_store_t *store,
    ngx_log_t *log, ngx_http_loyalty_store_gauges_t *g)
{
    size_t            size, used;
    MDB_txn          *txn;
    MDB_stat          st;
    unsigned int      maxreaders;
    ngx_file_info_t   fi;

    ngx_memzero(g, sizeof(ngx_http_loyalty_store_gauges_t));

    txn = ngx_http_loyalty_store_begin(store, log);

    if (txn) {
        g->up = 1;

        if (mdb_stat(txn, store->st.dbi[LOYALTY_DB_MEMBERS], &st) == 0) {
            g->members = st.ms_entries;
        }

        if (mdb_stat(txn, store->st.dbi[LOYALTY_DB_DUE], &st) == 0) {
            g->due = st.ms_entries;
        }

        ngx_http_loyalty_store_end(store);
    }

    /* after the read transaction is reset: the scrape's own is not shown */
    if (store->open) {
        if (loyalty_store_usage(&store->st, &size, &used) == 0) {
            g->map_size = size;
            g->map_used = used;
        }

        if (mdb_env_get_maxreaders(store->st.env, &maxreaders) == 0) {
            g->readers_max = maxreaders;
        }

        (void) mdb_reader_list(store->st.env,
                               ngx_http_loyalty_metrics_reader, &g->readers);
    }

    /* LMDB keeps no time: the data file's, which any writer's commit sets */
    if (store->data_path
        && ngx_file_info(store->data_path, &fi) != NGX_FILE_ERROR)
    {
        g->write_known = 1;
        g->write_age = ngx_max(ngx_time() - ngx_file_mtime(&fi), 0);
    }
}


/*
 * mdb_reader_list's lines: a header ending in "txnid", then a slot's
 * "pid thread txnid", with "-" for a slot whose transaction is reset
 */
static int
ngx_http_loyalty_metrics_reader(const char *msg, void *ctx)
{
    ngx_uint_t *readers = ctx;

    size_t  len;

    len = ngx_strlen(msg);

    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) {
        len--;
    }

    if (len && msg[len - 1] != '-' && msg[len - 1] != 'd') {
        (*readers)++;
    }

    return 0;
}


static void
ngx_http_loyalty_metrics_head(ngx_http_loyalty_out_t *out, const char *name,
    const char *type, const char *help)
{
    out->pos = ngx_slprintf(out->pos, out->end,
                            "# HELP %s %s\n# TYPE %s %s\n",
                            name, help, name, type);
}


static void
ngx_http_loyalty_metrics_gauge(ngx_http_loyalty_out_t *out, const char *name,
    const char *help, uint64_t value)
{
    ngx_http_loyalty_metrics_head(out, name, "gauge", help);
    out->pos = ngx_slprintf(out->pos, out->end, "%s %uL\n", name, value);
}
