/*
 * loyaltyctl: dry runs of the --lua script's hooks against the store, so
 * that an operator tries a promotion for next Saturday before it goes
 * live: price, click and event, each at --now.
 *
 * The hooks run in the core's sandbox (core/loyalty_lua.c) with the
 * module's contexts and checks of their answers (core/loyalty_lua_hook.c),
 * within --lua-budget, --lua-time and --lua-memory.  The price dry run
 * prices as the price API does: the tier's price after the privilege
 * guard, the hook asked for the visitor's tier, then for the public and
 * every lower tier, the lowest line kept.  The event dry run applies the
 * event with the store's rules in a write transaction that it aborts:
 * nothing is written.
 */

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>

#include "loyalty_code.h"
#include "loyalty_apply.h"
#include "loyalty_batch.h"
#include "loyalty_json.h"
#include "loyalty_lua_hook.h"
#include "loyalty_member.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_QTY_MAX  1000


/* a dry run: its options and operands, and the script, store and
 * transaction it runs with */
typedef struct {
    int64_t                 now;
    const char             *member;    /* --member */
    const char             *tier;      /* --tier */
    const char             *currency;  /* --currency */
    const char             *ua;        /* --ua */
    const char             *host;      /* --host */
    const char             *uri;       /* --uri */
    int                     replaced;  /* --replaced */
    char                  **args;      /* the operands, after the command */
    int                     nargs;

    loyalty_lua_t           vm;
    loyalty_store_t         st;
    MDB_txn                *txn;

    /* the operand, checked: click's code, event's event (released by
     * loyaltyctl_dry()) */
    char                    code[LOYALTY_CODE_MAX];
    size_t                  code_len;
    json_t                 *ev;
    loyalty_event_t         e;
} loyaltyctl_dry_t;


/* the options that not every dry run takes: it takes those it names */
#define LOYALTYCTL_DRY_MEMBER  1
#define LOYALTYCTL_DRY_TIER    2


/*
 * A dry run, as loyaltyctl_dry() runs it: its options (--member and
 * --tier if it takes them, never both), check of its operands (1 to max)
 * before anything opens, the script with the hook and the store (a read
 * transaction, or with flags 0 a write transaction that is aborted),
 * then run.  check and run return an exit code.
 */
typedef struct {
    const char             *name;
    loyalty_lua_hook_e      hook;
    unsigned                flags;
    int                     max;
    unsigned                takes;
    int                   (*check)(loyaltyctl_dry_t *d);
    int                   (*run)(loyaltyctl_dry_t *d);
} loyaltyctl_dry_run_t;


/* a price line being worked out */
typedef struct {
    loyalty_lua_t          *vm;
    loyalty_tierset_t      *ts;
    loyalty_price_t        *p;         /* the item's */
    int64_t                 now;
    int64_t                 total;
    char                    promo[LOYALTY_LUA_LABEL_MAX];
    size_t                  promo_len;
    int                     failed;    /* a call of the hook */
} loyaltyctl_line_t;


static int loyaltyctl_dry_options(const loyaltyctl_opts_t *o, int argc,
    char **argv, loyaltyctl_dry_t *d, const loyaltyctl_dry_run_t *run);
static int loyaltyctl_dry_vm(const loyaltyctl_opts_t *o, loyaltyctl_dry_t *d,
    const loyaltyctl_dry_run_t *run);
static int loyaltyctl_dry_member(loyalty_store_t *st, MDB_txn *txn,
    const char *id, loyalty_member_t *m);
static int loyaltyctl_price_check(loyaltyctl_dry_t *d);
static int loyaltyctl_price_run(loyaltyctl_dry_t *d);
static int loyaltyctl_click_check(loyaltyctl_dry_t *d);
static int loyaltyctl_click_run(loyaltyctl_dry_t *d);
static int loyaltyctl_event_check(loyaltyctl_dry_t *d);
static int loyaltyctl_event_run(loyaltyctl_dry_t *d);
static int loyaltyctl_price_items(loyaltyctl_line_t *line,
    const loyaltyctl_dry_t *d, loyalty_store_t *st, MDB_txn *txn,
    loyalty_lua_price_t *q, int tier, json_t *items);
static int loyaltyctl_price_visitor(const loyaltyctl_dry_t *d,
    loyalty_store_t *st, MDB_txn *txn, const loyalty_tierset_t *ts,
    loyalty_member_t *m, loyalty_lua_price_t *q, int *tier);
static int loyaltyctl_price_item(loyaltyctl_line_t *line,
    loyalty_lua_price_t *q, int tier, json_t *item);
static void loyaltyctl_price_ask(loyaltyctl_line_t *line,
    loyalty_lua_price_t *q, int tier, int64_t unit);
static int loyaltyctl_click_question(const loyaltyctl_dry_t *d,
    loyalty_store_t *st, MDB_txn *txn, const char *code, size_t n,
    loyalty_code_t *c, loyalty_lua_click_t *q, loyalty_member_t *m);
static int loyaltyctl_dry_apply(loyalty_store_t *st, MDB_txn *txn,
    json_t *ev, int64_t now, const loyalty_event_hook_t *hook);
static int loyaltyctl_item_parse(const char *arg, char *sku, size_t *len,
    int64_t *qty);
static int loyaltyctl_dry_event_hook(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_event_hook_in_t *in,
    loyalty_event_hook_out_t *out);


static const loyaltyctl_dry_run_t  loyaltyctl_dry_runs[] = {
    { "price", LOYALTY_LUA_HOOK_PRICE, LOYALTY_STORE_RDONLY, -1,
      LOYALTYCTL_DRY_MEMBER | LOYALTYCTL_DRY_TIER,
      loyaltyctl_price_check, loyaltyctl_price_run },
    { "click", LOYALTY_LUA_HOOK_CLICK, LOYALTY_STORE_RDONLY, 1,
      LOYALTYCTL_DRY_MEMBER, loyaltyctl_click_check, loyaltyctl_click_run },
    { "event", LOYALTY_LUA_HOOK_EVENT, 0, 1, 0,
      loyaltyctl_event_check, loyaltyctl_event_run },
    { NULL, 0, 0, 0, 0, NULL, NULL }
};


/* price, click or event: the dry run argv[0] names, from the table */
int
loyaltyctl_dry(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                          rc;
    loyaltyctl_dry_t             d;
    const loyaltyctl_dry_run_t  *run;

    for (run = loyaltyctl_dry_runs; run->name; run++) {
        if (strcmp(run->name, argv[0]) == 0) {
            break;
        }
    }

    if (run->name == NULL) {
        return loyaltyctl_usage(o->usage);
    }

    rc = loyaltyctl_dry_options(o, argc, argv, &d, run);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = run->check(&d);

    if (rc == LOYALTYCTL_OK) {
        rc = loyaltyctl_dry_vm(o, &d, run);
    }

    /* nothing the dry run did is kept */
    if (rc == LOYALTYCTL_OK) {
        rc = run->run(&d);

        mdb_txn_abort(d.txn);
        loyalty_store_close(&d.st);
        loyalty_lua_close(&d.vm);
    }

    json_decref(d.ev);

    return rc;
}


/* options shared by the dry runs; the rest, 1 to max, left in d->args */
static int
loyaltyctl_dry_options(const loyaltyctl_opts_t *o, int argc, char **argv,
    loyaltyctl_dry_t *d, const loyaltyctl_dry_run_t *run)
{
    int                  rc;

    loyaltyctl_option_t  opts[] = {
        { "now", 0, 1, loyaltyctl_time, &d->now,
          ": RFC 3339, as 2026-12-05T10:00:00+08:00" },
        { "member", 0, 1, loyaltyctl_set_string, &d->member, NULL },
        { "tier", 0, 1, loyaltyctl_set_string, &d->tier, NULL },
        { "currency", 0, 1, loyaltyctl_set_string, &d->currency, NULL },
        { "ua", 0, 1, loyaltyctl_set_string, &d->ua, NULL },
        { "host", 0, 1, loyaltyctl_set_string, &d->host, NULL },
        { "uri", 0, 1, loyaltyctl_set_string, &d->uri, NULL },
        { "replaced", 0, 0, loyaltyctl_set_flag, &d->replaced, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    memset(d, 0, sizeof(loyaltyctl_dry_t));
    d->currency = "CNY";
    d->uri = "/";

    rc = loyaltyctl_options(o, argc, argv, opts, 1, run->max);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    d->args = argv + optind;
    d->nargs = argc - optind;

    if ((d->member && !(run->takes & LOYALTYCTL_DRY_MEMBER))
        || (d->tier && !(run->takes & LOYALTYCTL_DRY_TIER))
        || (d->member && d->tier))
    {
        return loyaltyctl_usage(o->usage);
    }

    return LOYALTYCTL_OK;
}


/*
 * The --lua script with the run's hook, the store, and a transaction on
 * it: an exit code; loyaltyctl_dry() closes them.
 */
static int
loyaltyctl_dry_vm(const loyaltyctl_opts_t *o, loyaltyctl_dry_t *d,
    const loyaltyctl_dry_run_t *run)
{
    int  rc;

    rc = loyaltyctl_lua_open(o, &d->vm);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (d->vm.hooks[run->hook] == LUA_NOREF) {
        fprintf(stderr, "loyaltyctl: --lua \"%s\": the script has no %s "
                "hook\n", o->lua, loyalty_lua_hook_names[run->hook]);
        loyalty_lua_close(&d->vm);
        return LOYALTYCTL_DATA;
    }

    rc = loyaltyctl_open(o, &d->st, run->flags);
    if (rc != LOYALTYCTL_OK) {
        loyalty_lua_close(&d->vm);
        return rc;
    }

    rc = mdb_txn_begin(d->st.env, NULL,
                       (run->flags & LOYALTY_STORE_RDONLY) ? MDB_RDONLY : 0,
                       &d->txn);
    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        loyalty_store_close(&d->st);
        loyalty_lua_close(&d->vm);
        return LOYALTYCTL_STORE;
    }

    return LOYALTYCTL_OK;
}


/* the member id in txn: LOYALTYCTL_OK, or LOYALTYCTL_DATA after saying */
static int
loyaltyctl_dry_member(loyalty_store_t *st, MDB_txn *txn, const char *id,
    loyalty_member_t *m)
{
    size_t  len;

    len = strlen(id);

    if (!loyalty_valid_id(id, len)
        || loyalty_member_get(txn, st, id, len, m) != 0)
    {
        return loyaltyctl_absent("member", id, len);
    }

    return LOYALTYCTL_OK;
}


/* price's operands: SKU or SKU:QTY each */
static int
loyaltyctl_price_check(loyaltyctl_dry_t *d)
{
    int      i;
    char     sku[LOYALTY_ID_MAX + 1];
    size_t   len;
    int64_t  qty;

    for (i = 0; i < d->nargs; i++) {
        if (loyaltyctl_item_parse(d->args[i], sku, &len, &qty) != 0) {
            fprintf(stderr, "loyaltyctl: invalid item \"%s\": SKU or "
                    "SKU:QTY, QTY 1 to %d\n", d->args[i], LOYALTYCTL_QTY_MAX);
            return LOYALTYCTL_USAGE;
        }
    }

    return LOYALTYCTL_OK;
}


static int
loyaltyctl_price_run(loyaltyctl_dry_t *d)
{
    int                  rc, tier, failed;
    json_t              *doc, *items;
    loyalty_price_t      p;
    loyalty_member_t     m;
    loyalty_tierset_t    ts;
    loyaltyctl_line_t    line;
    loyalty_lua_price_t  q;

    rc = loyalty_tierset_load(d->txn, d->st.dbi[LOYALTY_DB_TIERS], &ts);
    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: tiers: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    memset(&q, 0, sizeof(loyalty_lua_price_t));

    rc = loyaltyctl_price_visitor(d, &d->st, d->txn, &ts, &m, &q, &tier);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_lua_store(&d->vm, &d->st, d->txn);

    line.vm = &d->vm;
    line.ts = &ts;
    line.p = &p;
    line.now = d->now;

    doc = json_object();
    items = json_array();

    json_object_set_new(doc, "tier",
                        tier >= 0 ? json_stringn(ts.tiers[tier].name,
                                                 ts.tiers[tier].name_len)
                                  : json_string("public"));
    loyalty_json_set_time(doc, "now", d->now);
    json_object_set(doc, "items", items);

    failed = loyaltyctl_price_items(&line, d, &d->st, d->txn, &q, tier,
                                    items);

    json_decref(items);
    rc = loyaltyctl_print_json(doc);

    if (rc == LOYALTYCTL_OK && failed) {
        rc = LOYALTYCTL_DATA;
    }

    return rc;
}


/* every item of the command line priced into items: 1 if a call failed */
static int
loyaltyctl_price_items(loyaltyctl_line_t *line, const loyaltyctl_dry_t *d,
    loyalty_store_t *st, MDB_txn *txn, loyalty_lua_price_t *q, int tier,
    json_t *items)
{
    int               i, failed;
    char              sku[LOYALTY_ID_MAX + 1];
    size_t            len;
    json_t           *item;
    MDB_val           key, val;
    loyalty_price_t  *p;

    p = line->p;
    failed = 0;

    for (i = 0; i < d->nargs; i++) {
        (void) loyaltyctl_item_parse(d->args[i], sku, &len, &q->qty);

        key.mv_data = sku;
        key.mv_size = len;

        item = json_object();
        json_object_set_new(item, "sku", json_string(sku));
        json_object_set_new(item, "qty", json_integer(q->qty));
        json_array_append_new(items, item);

        if (!loyalty_valid_id(sku, len)
            || mdb_get(txn, st->dbi[LOYALTY_DB_PRICES], &key, &val) != 0
            || loyalty_price_decode(val.mv_data, val.mv_size, p) != 0)
        {
            json_object_set_new(item, "error", json_string("unknown sku"));
            continue;
        }

        q->sku = sku;
        q->sku_len = len;
        q->retail = line->p->retail;
        q->currency = p->currency[0] ? p->currency : d->currency;
        q->currency_len = p->currency[0] ? 3 : strlen(d->currency);

        failed |= loyaltyctl_price_item(line, q, tier, item);
    }

    return failed;
}


/* the visitor: a member (priced at their tier), a tier, or the public */
static int
loyaltyctl_price_visitor(const loyaltyctl_dry_t *d, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_tierset_t *ts, loyalty_member_t *m,
    loyalty_lua_price_t *q, int *tier)
{
    *tier = -1;

    if (d->member) {
        if (loyaltyctl_dry_member(st, txn, d->member, m) != LOYALTYCTL_OK) {
            return LOYALTYCTL_DATA;
        }

        *tier = loyalty_tierset_find(ts, m->tier, m->tier_len);

        /* as the module: a member is priced as one with a known tier */
        if (*tier >= 0) {
            q->member = d->member;
            q->member_len = strlen(d->member);
            q->member_tier = m->tier;
            q->member_tier_len = m->tier_len;
            q->member_rank = ts->tiers[*tier].rank;
            q->member_points = m->points;
            q->member_stage = m->stage;
        }

    } else if (d->tier && strcmp(d->tier, "public") != 0) {
        *tier = loyalty_tierset_find(ts, d->tier, strlen(d->tier));

        if (*tier < 0) {
            fprintf(stderr, "loyaltyctl: no tier \"%s\"\n", d->tier);
            return LOYALTYCTL_DATA;
        }
    }

    return LOYALTYCTL_OK;
}


/*
 * One item as the price API prices it: the tier's unit price after the
 * guard, the hook asked at the visitor's tier, then (for a tier) at the
 * public's and every lower tier's price, the lowest line kept.  1 if a
 * call of the hook failed.
 */
static int
loyaltyctl_price_item(loyaltyctl_line_t *line, loyalty_lua_price_t *q,
    int tier, json_t *item)
{
    int                 i, clamped;
    int64_t             unit, guard;
    loyalty_tierset_t  *ts;

    ts = line->ts;
    unit = line->p->retail;

    if (tier >= 0) {
        unit = loyalty_price_guard(line->p, ts, (size_t) tier,
                                   loyalty_price_raw(line->p,
                                                     &ts->tiers[tier]),
                                   &clamped);
    }

    line->total = unit * q->qty;
    line->promo_len = 0;
    line->failed = 0;

    loyaltyctl_price_ask(line, q, tier, unit);

    if (tier >= 0) {
        /* what the public, and every lower tier, would pay */
        q->member = NULL;

        for (i = -1; i < (int) ts->n; i++) {
            if (i >= 0 && ts->tiers[i].rank >= ts->tiers[tier].rank) {
                continue;
            }

            guard = (i >= 0)
                    ? loyalty_price_guard(line->p, ts, (size_t) i,
                                          loyalty_price_raw(line->p,
                                                            &ts->tiers[i]),
                                          &clamped)
                    : line->p->retail;

            loyaltyctl_price_ask(line, q, i, guard);
        }
    }

    json_object_set_new(item, "retail", json_integer(line->p->retail
                                                     * q->qty));
    json_object_set_new(item, "price", json_integer(line->total));
    json_object_set_new(item, "saved", json_integer(line->p->retail * q->qty
                                                    - line->total));

    if (tier >= 0 && ts->tiers[tier].label_len) {
        json_object_set_new(item, "label",
                            json_stringn(ts->tiers[tier].label,
                                         ts->tiers[tier].label_len));
    }

    if (line->promo_len) {
        json_object_set_new(item, "promo", json_stringn(line->promo,
                                                        line->promo_len));
    }

    return line->failed;
}


/* the hook asked what tier (-1: public) pays a unit; the line lowered */
static void
loyaltyctl_price_ask(loyaltyctl_line_t *line, loyalty_lua_price_t *q,
    int tier, int64_t unit)
{
    int64_t             cap;
    loyalty_lua_ask_t   ask;
    loyalty_tierset_t  *ts;

    ts = line->ts;
    q->price = unit;

    if (tier >= 0) {
        q->tier = ts->tiers[tier].name;
        q->tier_len = ts->tiers[tier].name_len;
        q->rank = ts->tiers[tier].rank;
        q->has_rank = 1;

    } else {
        q->tier = "public";
        q->tier_len = sizeof("public") - 1;
        q->has_rank = 0;
    }

    memset(&ask, 0, sizeof(loyalty_lua_ask_t));
    ask.now = line->now;
    ask.price = q;

    if (loyalty_lua_ask(line->vm, LOYALTY_LUA_HOOK_PRICE, &ask) != 0) {
        line->failed = 1;
        return;
    }

    if (!ask.answered) {
        return;
    }

    /* the privilege guard: never above what the tier pays without it */
    cap = unit * q->qty;

    if (q->total < cap && q->total < line->total) {
        line->total = q->total;
        memcpy(line->promo, q->label, q->label_len);
        line->promo_len = q->label_len;
    }
}


/* "SKU" or "SKU:QTY": 0, or -1 if malformed */
static int
loyaltyctl_item_parse(const char *arg, char *sku, size_t *len, int64_t *qty)
{
    char        *end;
    long         n;
    const char  *colon;

    colon = strchr(arg, ':');
    *len = colon ? (size_t) (colon - arg) : strlen(arg);
    *qty = 1;

    if (*len == 0 || *len > LOYALTY_ID_MAX) {
        return -1;
    }

    memcpy(sku, arg, *len);
    sku[*len] = '\0';

    if (colon == NULL) {
        return 0;
    }

    n = strtol(colon + 1, &end, 10);

    if (end == colon + 1 || *end != '\0' || n < 1 || n > LOYALTYCTL_QTY_MAX)
    {
        return -1;
    }

    *qty = n;

    return 0;
}


/* click's operand: a share code, in any case */
static int
loyaltyctl_click_check(loyaltyctl_dry_t *d)
{
    long  n;

    n = loyalty_code_normalize(d->args[0], strlen(d->args[0]), d->code);
    if (n < 0) {
        fprintf(stderr, "loyaltyctl: invalid code \"%s\"\n", d->args[0]);
        return LOYALTYCTL_USAGE;
    }

    d->code_len = (size_t) n;

    return LOYALTYCTL_OK;
}


static int
loyaltyctl_click_run(loyaltyctl_dry_t *d)
{
    int                  rc;
    json_t              *doc;
    loyalty_code_t       c;
    loyalty_member_t     m;
    loyalty_lua_ask_t    ask;
    loyalty_lua_click_t  q;

    rc = loyaltyctl_click_question(d, &d->st, d->txn, d->code, d->code_len,
                                   &c, &q, &m);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_lua_store(&d->vm, &d->st, d->txn);

    memset(&ask, 0, sizeof(loyalty_lua_ask_t));
    ask.now = d->now;
    ask.click = &q;

    if (loyalty_lua_ask(&d->vm, LOYALTY_LUA_HOOK_CLICK, &ask) != 0) {
        return LOYALTYCTL_DATA;
    }

    doc = json_object();
    json_object_set_new(doc, "code", json_stringn(d->code, d->code_len));
    json_object_set_new(doc, "referrer", json_stringn(c.member,
                                                      c.member_len));
    loyalty_json_set_time(doc, "now", d->now);
    json_object_set_new(doc, "refuse", json_boolean(q.refuse));
    json_object_set_new(doc, "campaign",
                        q.campaign_len ? json_stringn(q.campaign,
                                                      q.campaign_len)
                                       : json_null());

    return loyaltyctl_print_json(doc);
}


/* the click hook's question: the code's referrer, theirs, the visitor */
static int
loyaltyctl_click_question(const loyaltyctl_dry_t *d, loyalty_store_t *st,
    MDB_txn *txn, const char *code, size_t n, loyalty_code_t *c,
    loyalty_lua_click_t *q, loyalty_member_t *m)
{
    loyalty_member_t  r;

    if (loyalty_code_get(st, txn, code, n, c) != 0) {
        return loyaltyctl_absent("code", d->args[0], strlen(d->args[0]));
    }

    memset(q, 0, sizeof(loyalty_lua_click_t));
    q->code = code;
    q->code_len = n;
    q->referrer = c->member;
    q->referrer_len = c->member_len;
    q->status = d->replaced ? "replaced" : "new";
    q->user_agent = d->ua;
    q->user_agent_len = d->ua ? strlen(d->ua) : 0;
    q->host = d->host;
    q->host_len = d->host ? strlen(d->host) : 0;
    q->uri = d->uri;
    q->uri_len = strlen(d->uri);

    /* the referrer's own referrer, as the module's code cache has it */
    if (loyalty_member_get(txn, st, c->member, c->member_len, &r) == 0
        && r.referrer_len)
    {
        q->referrer2 = r.referrer;
        q->referrer2_len = r.referrer_len;
    }

    if (d->member) {
        if (loyaltyctl_dry_member(st, txn, d->member, m) != LOYALTYCTL_OK) {
            return LOYALTYCTL_DATA;
        }

        q->member = d->member;
        q->member_len = strlen(d->member);
        q->m = m;
    }

    return LOYALTYCTL_OK;
}


/* what the event hook was asked and answered, for the dry run */
typedef struct {
    loyalty_lua_t             *vm;
    int64_t                    now;
    json_t                    *hook;
    int                        failed;
} loyaltyctl_dry_event_t;


/* event's operand: one event, as JSON */
static int
loyaltyctl_event_check(loyaltyctl_dry_t *d)
{
    char          err[LOYALTY_ERRLEN];
    json_error_t  jerr;

    d->ev = json_loads(d->args[0], JSON_REJECT_DUPLICATES, &jerr);

    if (d->ev == NULL || !json_is_object(d->ev)
        || loyalty_event_from_json(d->ev, d->now, &d->e, err, sizeof(err))
           != 0)
    {
        fprintf(stderr, "loyaltyctl: invalid event: %s\n",
                d->ev == NULL ? jerr.text
                              : json_is_object(d->ev) ? err
                                                      : "not an object");
        return LOYALTYCTL_DATA;
    }

    return LOYALTYCTL_OK;
}


static int
loyaltyctl_event_run(loyaltyctl_dry_t *d)
{
    int                      rc;
    json_t                  *doc;
    loyalty_member_t         m;
    loyalty_event_hook_t     hook;
    loyaltyctl_dry_event_t   dry;

    dry.vm = &d->vm;
    dry.now = d->now;
    dry.hook = json_object();
    dry.failed = 0;
    json_object_set_new(dry.hook, "called", json_false());

    hook.handler = loyaltyctl_dry_event_hook;
    hook.data = &dry;
    hook.cadences = NULL;

    if (loyaltyctl_dry_apply(&d->st, d->txn, d->ev, d->now, &hook)
        != LOYALTYCTL_OK)
    {
        json_decref(dry.hook);
        return LOYALTYCTL_DATA;
    }

    doc = json_object();
    json_object_set(doc, "event", d->ev);
    loyalty_json_set_time(doc, "now", d->now);
    json_object_set_new(doc, "hook", dry.hook);

    if (loyalty_member_get(d->txn, &d->st, d->e.member, d->e.member_len, &m)
        == 0)
    {
        json_object_set_new(doc, "member",
                            loyalty_member_to_json(d->e.member,
                                                   d->e.member_len, &m));
    }

    rc = loyaltyctl_print_json(doc);

    if (rc == LOYALTYCTL_OK && dry.failed) {
        rc = LOYALTYCTL_DATA;
    }

    return rc;
}


/* the event applied in txn, with the hook: an exit code, after saying why */
static int
loyaltyctl_dry_apply(loyalty_store_t *st, MDB_txn *txn, json_t *ev,
    int64_t now, const loyalty_event_hook_t *hook)
{
    int               rc;
    char             *body, err[LOYALTY_ERRLEN];
    loyalty_batch_t   res;

    err[0] = '\0';
    res.errors = NULL;

    body = json_dumps(ev, JSON_COMPACT);
    rc = body ? loyalty_batch_apply(st, txn, body, strlen(body), 1, now, hook,
                                    &res, err, sizeof(err))
              : -1;
    free(body);

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: event: %s\n",
                res.errors ? json_string_value(json_object_get(
                                 json_array_get(res.errors, 0), "error"))
                           : err[0] ? err : "out of memory");
    }

    loyalty_batch_free(&res);

    return rc == 0 ? LOYALTYCTL_OK : LOYALTYCTL_DATA;
}


/* the apply engine's hook: the core's ask, with what it said noted */
static int
loyaltyctl_dry_event_hook(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    json_t                  *answer;
    loyalty_lua_ask_t        ask;
    loyaltyctl_dry_event_t  *dry = data;

    json_object_set_new(dry->hook, "called", json_true());
    json_object_set_new(dry->hook, "defaults",
                        json_pack("{sI}", "points", (json_int_t) in->points));

    loyalty_lua_store(dry->vm, st, txn);

    memset(&ask, 0, sizeof(loyalty_lua_ask_t));
    ask.now = dry->now;
    ask.in = in;
    ask.out = out;

    if (loyalty_lua_ask(dry->vm, LOYALTY_LUA_HOOK_EVENT, &ask) != 0) {
        dry->failed = 1;
        ask.answered = 0;
    }

    if (!ask.answered) {
        /* as the module: what a failed call may have set is not kept */
        memset(out, 0, sizeof(loyalty_event_hook_out_t));
        out->stage = -1;
        json_object_set_new(dry->hook, "answer", json_null());
        return -1;
    }

    answer = json_object();

    if (out->has_points) {
        json_object_set_new(answer, "points", json_integer(out->points));
    }

    if (out->has_l1) {
        json_object_set_new(answer, "referrer_points",
                            json_integer(out->l1_points));
    }

    if (out->has_l2) {
        json_object_set_new(answer, "referrer2_points",
                            json_integer(out->l2_points));
    }

    if (out->stage >= 0) {
        json_object_set_new(answer, "stage",
                            json_string(loyalty_stage_names[out->stage]));
    }

    if (out->tier_len) {
        json_object_set_new(answer, "tier",
                            json_stringn(out->tier, out->tier_len));
    }

    json_object_set_new(dry->hook, "answer", answer);

    return 0;
}
