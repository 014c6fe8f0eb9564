/*
 * nginx-loyalty: applying replicated writes (see loyalty_repl.h).
 *
 * A message is one JSON object: {"v":1,"kind","edge","at", ...the kind's
 * fields}.  Each kind is applied by the core function that the local
 * write path calls, with "at" as its time, so the outcome depends only on
 * the replica's content and the message: deterministic.  A message runs
 * in a nested transaction, so one that the store refuses halfway leaves
 * nothing behind, and the rest of the batch goes on.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "loyalty_admin.h"
#include "loyalty_cadence.h"
#include "loyalty_code.h"
#include "loyalty_due.h"
#include "loyalty_repl.h"
#include "loyalty_stats.h"
#include "loyalty_util.h"
#include "loyalty_walk.h"


#define LOYALTY_REPL_SWEEP_CHUNK    1000
#define LOYALTY_REPL_HOSTS_MAX      64


int
loyalty_repl_refuse(loyalty_repl_run_t *r, const char *what)
{
    snprintf(r->err, r->errlen, "%s", what);
    return LOYALTY_REPL_REFUSED;
}


/* "TYPE:ID" of the event a hook is asked about */
static int
loyalty_repl_hook_key(const loyalty_event_hook_in_t *in, char *key,
    size_t size)
{
    const loyalty_event_t  *ev;

    ev = in->ev;

    if (ev == NULL || ev->type >= LOYALTY_EVENT_COUNT) {
        return -1;
    }

    snprintf(key, size, "%s:%.*s", loyalty_event_names[ev->type],
             (int) ev->id_len, ev->id);

    return 0;
}


int
loyalty_repl_hook_record(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    loyalty_repl_recorder_t *r = data;

    int      rc;
    char     key[LOYALTY_ID_MAX + 32];
    json_t  *d;

    if (r->inner == NULL || r->inner->handler == NULL) {
        return -1;
    }

    rc = r->inner->handler(r->inner->data, st, txn, in, out);

    if (rc != 0 || loyalty_repl_hook_key(in, key, sizeof(key)) != 0) {
        return rc;
    }

    d = json_object();
    if (d == NULL) {
        return rc;
    }

    if (out->has_points) {
        json_object_set_new(d, "points", json_integer(out->points));
    }

    if (out->has_l1) {
        json_object_set_new(d, "l1", json_integer(out->l1_points));
    }

    if (out->has_l2) {
        json_object_set_new(d, "l2", json_integer(out->l2_points));
    }

    if (out->stage >= 0) {
        json_object_set_new(d, "stage", json_integer(out->stage));
    }

    if (out->tier_len) {
        json_object_set_new(d, "tier", json_stringn(out->tier,
                                                    out->tier_len));
    }

    json_object_set_new(r->decisions, key, d);

    return 0;
}


/* the follower's side: the edge's decisions, by event */
static int
loyalty_repl_hook_replay(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    json_t *decisions = data;

    char         key[LOYALTY_ID_MAX + 32];
    json_t      *d, *v;
    const char  *tier;

    if (loyalty_repl_hook_key(in, key, sizeof(key)) != 0) {
        return -1;
    }

    d = json_object_get(decisions, key);
    if (!json_is_object(d)) {
        return -1;
    }

    if (json_is_integer(v = json_object_get(d, "points"))) {
        out->points = json_integer_value(v);
        out->has_points = 1;
    }

    if (json_is_integer(v = json_object_get(d, "l1"))) {
        out->l1_points = json_integer_value(v);
        out->has_l1 = 1;
    }

    if (json_is_integer(v = json_object_get(d, "l2"))) {
        out->l2_points = json_integer_value(v);
        out->has_l2 = 1;
    }

    if (json_is_integer(v = json_object_get(d, "stage"))) {
        out->stage = (int) json_integer_value(v);
    }

    tier = json_string_value(json_object_get(d, "tier"));

    if (tier && strlen(tier) <= sizeof(out->tier)) {
        out->tier_len = strlen(tier);
        memcpy(out->tier, tier, out->tier_len);
    }

    return 0;
}


/*
 * "body": the batch's text, as POST .../events took it; "hook", when the
 * edge ran an event hook: its decisions, which stand for the follower's
 */
static int
loyalty_repl_events(loyalty_repl_run_t *r)
{
    int                          rc;
    json_t                      *first;
    const char                  *why;
    loyalty_batch_t              res;
    loyalty_event_hook_t         replay;
    const loyalty_event_hook_t  *hook;

    hook = r->ctx->hook;

    if (r->m.hook) {
        replay.handler = loyalty_repl_hook_replay;
        replay.data = r->m.hook;
        replay.cadences = hook ? hook->cadences : NULL;
        hook = &replay;
    }

    memset(&res, 0, sizeof(res));

    rc = loyalty_batch_apply(r->st, r->txn, r->m.body.data, r->m.body.len,
                             (size_t) -1, r->m.at, hook, &res, r->err,
                             r->errlen);

    if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT
        || rc == LOYALTY_BATCH_TOO_MANY)
    {
        first = json_array_get(res.errors, 0);
        why = json_string_value(json_object_get(first, "error"));
        snprintf(r->err, r->errlen, "events refused: event %d: %s",
                 (int) json_integer_value(json_object_get(first, "index")),
                 why ? why : "invalid");
        rc = LOYALTY_REPL_REFUSED;
    }

    loyalty_batch_free(&res);
    return rc;
}


/* the names of "hosts", for a code's target; -1 when malformed */
static int
loyalty_repl_hosts(json_t *list, const char **hosts, size_t *lens,
    size_t *n)
{
    size_t   i;
    json_t  *h;

    *n = 0;

    if (list == NULL) {
        return 0;
    }

    if (!json_is_array(list) || json_array_size(list) > LOYALTY_REPL_HOSTS_MAX)
    {
        return -1;
    }

    json_array_foreach(list, i, h) {
        if (!json_is_string(h)) {
            return -1;
        }

        hosts[i] = json_string_value(h);
        lens[i] = json_string_length(h);
    }

    *n = json_array_size(list);
    return 0;
}


/* "what": member, code, price or rules; "key"; "record"; "hosts" */
static int
loyalty_repl_put(loyalty_repl_run_t *r)
{
    int                        rc;
    size_t                     n, lens[LOYALTY_REPL_HOSTS_MAX];
    const char                *what, *hosts[LOYALTY_REPL_HOSTS_MAX];
    const loyalty_json_text_t *key;

    what = r->m.what.data;
    key = &r->m.key;

    if ((key->data == NULL && strcmp(what, "rules") != 0)
        || (strcmp(what, "member") != 0 && strcmp(what, "code") != 0
            && strcmp(what, "price") != 0 && strcmp(what, "rules") != 0)
        || loyalty_repl_hosts(r->m.hosts, hosts, lens, &n) != 0)
    {
        return LOYALTY_REPL_MALFORMED;
    }

    rc = loyalty_admin_put(r->st, r->txn, what, key->data ? key->data : "",
                           key->len, r->m.record, hosts, lens, n, r->m.at,
                           r->err, r->errlen);

    if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        return LOYALTY_REPL_REFUSED;
    }

    /* a warning (a weak code) is no refusal */
    if (rc == 0) {
        r->err[0] = '\0';
    }

    return rc;
}


/* "what": member; "key" */
static int
loyalty_repl_delete(loyalty_repl_run_t *r)
{
    int  rc;

    if (strcmp(r->m.what.data, "member") != 0) {
        return LOYALTY_REPL_MALFORMED;
    }

    rc = loyalty_admin_delete_member(r->st, r->txn, r->m.key.data,
                                     r->m.key.len);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(r, "delete: no such member");
    }

    return rc;
}


/* adds one code's deltas to its day; -1 for a malformed entry */
static int
loyalty_repl_click_add(loyalty_store_t *st, MDB_txn *txn, const char *code,
    json_t *deltas, int64_t day)
{
    int       rc;
    long      n;
    char      norm[LOYALTY_CODE_MAX];
    size_t    i;
    uint8_t   kbuf[LOYALTY_CLICKS_KEY_MAX], vbuf[LOYALTY_CLICKS_REC_LEN];
    json_t   *d;
    uint64_t  counts[LOYALTY_CLICK_COUNTERS];
    uint64_t  delta[LOYALTY_CLICK_COUNTERS];
    MDB_val   key, val;

    n = loyalty_code_normalize(code, strlen(code), norm);

    if (n < 0 || !json_is_array(deltas)
        || json_array_size(deltas) != LOYALTY_CLICK_COUNTERS)
    {
        return -1;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_clicks_key(norm, (size_t) n, day, kbuf);

    if (key.mv_size == 0) {
        return -1;
    }

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_CLICKS], &key, &val);

    if (rc == 0 && loyalty_clicks_decode(val.mv_data, val.mv_size, counts)
                   != 0)
    {
        /* a damaged day starts again, as the local flush does */
        rc = MDB_NOTFOUND;
    }

    if (rc == MDB_NOTFOUND) {
        memset(counts, 0, sizeof(counts));

    } else if (rc != 0) {
        return rc;
    }

    json_array_foreach(deltas, i, d) {
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            return -1;
        }

        delta[i] = (uint64_t) json_integer_value(d);
        counts[i] += delta[i];
    }

    loyalty_clicks_encode(counts, vbuf);
    val.mv_data = vbuf;
    val.mv_size = sizeof(vbuf);

    rc = mdb_put(txn, st->dbi[LOYALTY_DB_CLICKS], &key, &val, 0);
    if (rc != 0) {
        return rc;
    }

    /* the same counts per day in the conversion counters, as the local
     * flush does */
    return loyalty_stats_clicks(st, txn, norm, (size_t) n, day, delta);
}


/*
 * "day" and "counts": {CODE: [total, unique, bot, self, rejected,
 * attributed]}, one edge's clicks since its last flush: added to the
 * code's day, so a code's counts are the sum over edges.
 */
static int
loyalty_repl_clicks(loyalty_repl_run_t *r)
{
    int          rc;
    json_t      *deltas;
    const char  *code;

    json_object_foreach(r->m.counts, code, deltas) {
        rc = loyalty_repl_click_add(r->st, r->txn, code, deltas, r->m.day);
        if (rc == -1) {
            snprintf(r->err, r->errlen,
                     "clicks: bad entry for code \"%.32s\"", code);
            return LOYALTY_REPL_REFUSED;
        }

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* "until", "lease", "limit", "touches": the claim of GET .../due */
static int
loyalty_repl_claim(loyalty_repl_run_t *r)
{
    int               rc;
    json_t           *out;
    loyalty_claim_t   c;

    if (r->m.lease <= 0 || r->m.limit <= 0 || r->m.limit > 1000) {
        return LOYALTY_REPL_MALFORMED;
    }

    c.now = r->m.at;
    c.until = r->m.until;
    c.lease = r->m.lease;
    c.limit = (size_t) r->m.limit;
    c.touches = (unsigned) r->m.touches;

    out = json_array();
    if (out == NULL) {
        return ENOMEM;
    }

    rc = loyalty_due_claim(r->st, r->txn, &c, out);
    json_decref(out);

    return rc;
}


/* "body": POST .../due/ack's document */
static int
loyalty_repl_ack(loyalty_repl_run_t *r)
{
    int      rc;
    json_t  *res;

    res = NULL;
    rc = loyalty_due_ack_json(r->st, r->txn, r->m.doc, r->m.at, &res, r->err,
                              r->errlen);
    json_decref(res);

    return rc == -1 ? LOYALTY_REPL_REFUSED : rc;
}


/* a whole cadence sweep at "at", with the replica's cadences */
static int
loyalty_repl_sweep(loyalty_repl_run_t *r)
{
    int              rc;
    loyalty_sweep_t  sw;

    memset(&sw, 0, sizeof(sw));

    do {
        rc = loyalty_sweep_step(r->st, r->txn, r->ctx->cadences, r->m.at,
                                LOYALTY_REPL_SWEEP_CHUNK, &sw, r->err,
                                r->errlen);
        if (rc != 0) {
            return rc;
        }

    } while (!sw.done);

    return 0;
}


/* "what": members, tiers, prices, codes or rules; "body"; "hosts" */
static int
loyalty_repl_import(loyalty_repl_run_t *r)
{
    int                        rc;
    const loyalty_repl_ctx_t  *ctx;

    ctx = r->ctx;

    if (ctx->import == NULL) {
        return loyalty_repl_refuse(r, "import: not applied here");
    }

    rc = ctx->import(r->st, r->txn, r->m.what.data, r->m.body.data,
                     r->m.body.len, r->m.hosts, r->m.at, r->err, r->errlen);

    return rc == -1 ? LOYALTY_REPL_REFUSED : rc;
}


/* the fields of every kind's messages */
typedef enum {
    LOYALTY_REPL_V = 0,
    LOYALTY_REPL_KIND,
    LOYALTY_REPL_AT,
    LOYALTY_REPL_WHAT,
    LOYALTY_REPL_KEY,
    LOYALTY_REPL_BODY,
    LOYALTY_REPL_DOC,
    LOYALTY_REPL_PSEUDONYM,
    LOYALTY_REPL_RECORD,
    LOYALTY_REPL_HOSTS,
    LOYALTY_REPL_HOOK,
    LOYALTY_REPL_FIELDS,
    LOYALTY_REPL_COUNTS,
    LOYALTY_REPL_ERASE_KEY,
    LOYALTY_REPL_DAY,
    LOYALTY_REPL_UNTIL,
    LOYALTY_REPL_LEASE,
    LOYALTY_REPL_LIMIT,
    LOYALTY_REPL_TOUCHES,
    LOYALTY_REPL_BEFORE
} loyalty_repl_field_e;

#define LOYALTY_REPL_NEED(f)        (1u << LOYALTY_REPL_##f)
#define LOYALTY_REPL_HEAD                                                    \
    (LOYALTY_REPL_NEED(V) | LOYALTY_REPL_NEED(KIND) | LOYALTY_REPL_NEED(AT))

#define loyalty_repl_field(f, name, jtype, member)                           \
    [LOYALTY_REPL_##f] = loyalty_json_member(name, jtype,                    \
                                             loyalty_repl_msg_t, member)

static const loyalty_json_field_t  loyalty_repl_fields[] = {
    loyalty_repl_field(V, "v", JSON_INTEGER, v),
    loyalty_repl_field(KIND, "kind", JSON_STRING, kind),
    loyalty_repl_field(AT, "at", JSON_INTEGER, at),
    loyalty_repl_field(WHAT, "what", JSON_STRING, what),
    loyalty_repl_field(KEY, "key", JSON_STRING, key),
    loyalty_repl_field(BODY, "body", JSON_STRING, body),
    loyalty_repl_field(DOC, "body", LOYALTY_JSON_ANY, doc),
    loyalty_repl_field(PSEUDONYM, "pseudonym", JSON_STRING, pseudonym),
    loyalty_repl_field(RECORD, "record", JSON_OBJECT, record),
    loyalty_repl_field(HOSTS, "hosts", LOYALTY_JSON_ANY, hosts),
    loyalty_repl_field(HOOK, "hook", JSON_OBJECT, hook),
    loyalty_repl_field(FIELDS, "fields", JSON_OBJECT, fields),
    loyalty_repl_field(COUNTS, "counts", JSON_OBJECT, counts),
    loyalty_repl_field(ERASE_KEY, "erase_key", LOYALTY_JSON_ANY,
                       erase_key),
    loyalty_repl_field(DAY, "day", JSON_INTEGER, day),
    loyalty_repl_field(UNTIL, "until", JSON_INTEGER, until),
    loyalty_repl_field(LEASE, "lease", JSON_INTEGER, lease),
    loyalty_repl_field(LIMIT, "limit", JSON_INTEGER, limit),
    loyalty_repl_field(TOUCHES, "touches", JSON_INTEGER, touches),
    loyalty_repl_field(BEFORE, "before", JSON_INTEGER, before),
    LOYALTY_JSON_END
};


/*
 * The kinds: the fields each needs, and what a message that lacks one
 * (or has one the kind finds wrong) is refused with.
 */
typedef struct {
    const char    *name;
    int          (*apply)(loyalty_repl_run_t *r);
    uint32_t       need;
    const char    *needs;
} loyalty_repl_kind_t;


static const loyalty_repl_kind_t  loyalty_repl_kinds[] = {

    { "events", loyalty_repl_events, LOYALTY_REPL_NEED(BODY),
      "events without a body" },

    { "put", loyalty_repl_put,
      LOYALTY_REPL_NEED(WHAT) | LOYALTY_REPL_NEED(RECORD),
      "put: needs \"what\" (member, code, price, rules), \"key\", an "
      "object \"record\" and string \"hosts\"" },

    { "delete", loyalty_repl_delete,
      LOYALTY_REPL_NEED(WHAT) | LOYALTY_REPL_NEED(KEY),
      "delete: needs \"what\": \"member\" and a \"key\"" },

    { "clicks", loyalty_repl_clicks,
      LOYALTY_REPL_NEED(DAY) | LOYALTY_REPL_NEED(COUNTS),
      "clicks: needs an integer \"day\" and an object \"counts\"" },

    { "claim", loyalty_repl_claim,
      LOYALTY_REPL_NEED(UNTIL) | LOYALTY_REPL_NEED(LEASE)
      | LOYALTY_REPL_NEED(LIMIT) | LOYALTY_REPL_NEED(TOUCHES),
      "claim: needs integers \"until\", \"lease\", \"limit\" (1-1000) "
      "and \"touches\"" },

    { "ack", loyalty_repl_ack, LOYALTY_REPL_NEED(DOC),
      "ack without a body" },

    { "sweep", loyalty_repl_sweep, 0, NULL },

    { "import", loyalty_repl_import,
      LOYALTY_REPL_NEED(WHAT) | LOYALTY_REPL_NEED(BODY),
      "import: needs \"what\" and \"body\"" },

    { "patch", loyalty_repl_patch,
      LOYALTY_REPL_NEED(KEY) | LOYALTY_REPL_NEED(FIELDS),
      "patch: needs a \"key\" and an object \"fields\"" },

    { "erase", loyalty_repl_erase,
      LOYALTY_REPL_NEED(KEY) | LOYALTY_REPL_NEED(PSEUDONYM),
      "erase: needs a \"key\", a \"pseudonym\" and, if any, an "
      "\"erase_key\" of 64 hex digits" },

    { "prune", loyalty_repl_prune, LOYALTY_REPL_NEED(BEFORE),
      "prune: needs an integer \"before\", a time" },

    { NULL, NULL, 0, NULL }
};


/* the message's kind, its fields read: NULL, refused, with err */
static const loyalty_repl_kind_t *
loyalty_repl_read(json_t *msg, loyalty_repl_run_t *r)
{
    uint32_t                    found;
    loyalty_repl_msg_t         *m;
    const loyalty_repl_kind_t  *k;

    m = &r->m;
    found = loyalty_json_read(msg, loyalty_repl_fields, m);

    if ((found & LOYALTY_REPL_HEAD) != LOYALTY_REPL_HEAD
        || m->v != LOYALTY_REPL_VERSION || !loyalty_time_in_window(m->at))
    {
        (void) loyalty_repl_refuse(r, "not a loyalty message of version 1 "
                                   "with a kind and a time");
        return NULL;
    }

    for (k = loyalty_repl_kinds; k->name; k++) {
        if (strcmp(k->name, m->kind.data) == 0) {
            break;
        }
    }

    if (k->name == NULL) {
        snprintf(r->err, r->errlen, "unknown kind \"%.32s\"", m->kind.data);
        return NULL;
    }

    if ((found & k->need) != k->need) {
        (void) loyalty_repl_refuse(r, k->needs);
        return NULL;
    }

    return k;
}


int
loyalty_repl_apply(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const char *data, size_t len, char *err,
    size_t errlen)
{
    int                         rc;
    json_t                     *msg;
    json_error_t                jerr;
    loyalty_repl_run_t          r;
    const loyalty_repl_kind_t  *k;

    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (msg == NULL) {
        snprintf(err, errlen, "not JSON: %s", jerr.text);
        return LOYALTY_REPL_REFUSED;
    }

    r.st = st;
    r.ctx = ctx;
    r.err = err;
    r.errlen = errlen;

    k = loyalty_repl_read(msg, &r);
    if (k == NULL) {
        json_decref(msg);
        return LOYALTY_REPL_REFUSED;
    }

    rc = mdb_txn_begin(st->env, txn, 0, &r.txn);
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }

    err[0] = '\0';
    rc = k->apply(&r);
    json_decref(msg);

    if (rc == LOYALTY_REPL_MALFORMED) {
        rc = loyalty_repl_refuse(&r, k->needs);
    }

    if (rc != 0) {
        mdb_txn_abort(r.txn);
        return rc;
    }

    return mdb_txn_commit(r.txn);
}


int
loyalty_repl_seq(loyalty_store_t *st, MDB_txn *txn, uint64_t *seq)
{
    int  rc;

    *seq = 0;

    rc = loyalty_store_meta_int(st, txn, LOYALTY_META_REPL_SEQ, 8, seq);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_repl_set_seq(loyalty_store_t *st, MDB_txn *txn, uint64_t seq)
{
    return loyalty_store_meta_put_int(st, txn, LOYALTY_META_REPL_SEQ, 8, seq);
}


int
loyalty_repl_stream(loyalty_store_t *st, MDB_txn *txn, char *name)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_meta_get(st, txn, LOYALTY_META_REPL_STREAM, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size == 0 || val.mv_size > LOYALTY_REPL_STREAM_MAX) {
        return MDB_CORRUPTED;
    }

    memcpy(name, val.mv_data, val.mv_size);
    name[val.mv_size] = '\0';

    return 0;
}


int
loyalty_repl_set_stream(loyalty_store_t *st, MDB_txn *txn, const char *name)
{
    return loyalty_store_meta_put(st, txn, LOYALTY_META_REPL_STREAM, name,
                                  strlen(name));
}


/* meta entries that are the node's own, not replicated content */
static int
loyalty_repl_local(MDB_val *key)
{
    static const char  *local[] = {
        LOYALTY_META_CREATED_KEY, LOYALTY_META_REPL_SEQ,
        LOYALTY_META_REPL_STREAM, NULL
    };

    const char  **l;

    for (l = local; *l; l++) {
        if (key->mv_size == strlen(*l)
            && memcmp(key->mv_data, *l, key->mv_size) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
loyalty_repl_digest_len(EVP_MD_CTX *md, size_t len)
{
    uint8_t  buf[8];

    loyalty_le_put(buf, len, 8);
    EVP_DigestUpdate(md, buf, 8);
}


/* loyalty_walk()'s visitor: one entry into the checksum */
static int
loyalty_repl_digest_one(loyalty_walk_t *w)
{
    uint8_t      idx;
    EVP_MD_CTX  *md = w->data;

    if (w->db == LOYALTY_DB_META && loyalty_repl_local(&w->key)) {
        return LOYALTY_WALK_NEXT;
    }

    idx = (uint8_t) w->db;

    EVP_DigestUpdate(md, &idx, 1);
    loyalty_repl_digest_len(md, w->key.mv_size);
    EVP_DigestUpdate(md, w->key.mv_data, w->key.mv_size);
    loyalty_repl_digest_len(md, w->val.mv_size);
    EVP_DigestUpdate(md, w->val.mv_data, w->val.mv_size);

    return LOYALTY_WALK_NEXT;
}


int
loyalty_repl_checksum(loyalty_store_t *st, MDB_txn *txn,
    uint8_t digest[LOYALTY_REPL_DIGEST_LEN])
{
    int          rc, db;
    EVP_MD_CTX  *md;

    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return ENOMEM;
    }

    rc = 0;

    for (db = 0; db < LOYALTY_DB_COUNT && rc == 0; db++) {
        /* the members each commit changed: this node's transaction ids */
        if (db == LOYALTY_DB_CHANGES) {
            continue;
        }

        rc = loyalty_walk(st, txn, db, NULL, 0, 0, loyalty_repl_digest_one,
                          md);
    }

    if (rc == 0 && EVP_DigestFinal_ex(md, digest, NULL) != 1) {
        rc = ENOMEM;
    }

    EVP_MD_CTX_free(md);
    return rc;
}


json_t *
loyalty_repl_message(const char *kind, const char *edge, int64_t at)
{
    return json_pack("{s:i,s:s,s:s,s:I}", "v", LOYALTY_REPL_VERSION,
                     "kind", kind, "edge", edge, "at", (json_int_t) at);
}
