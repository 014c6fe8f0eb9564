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


#define LOYALTY_REPL_SWEEP_CHUNK    1000
#define LOYALTY_REPL_HOSTS_MAX      64


typedef struct {
    const char                   *name;
    loyalty_repl_kind_fn         *apply;
    const loyalty_json_member_t  *fields;    /* NULL: none */
    const char                   *needs;     /* why a malformed one is not */
} loyalty_repl_kind_t;


int
loyalty_repl_refuse(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
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
static const loyalty_json_member_t  loyalty_repl_events_fields[] = {
    loyalty_json_str("body", 1, loyalty_repl_msg_t, body),
    loyalty_json_val("hook", JSON_OBJECT, 0, loyalty_repl_msg_t, hook),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_events(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int                    rc;
    json_t                *first;
    const char            *why;
    loyalty_batch_t        res;
    loyalty_event_hook_t   replay;
    const loyalty_event_hook_t  *hook;

    hook = ctx->hook;

    if (m->hook) {
        replay.handler = loyalty_repl_hook_replay;
        replay.data = m->hook;
        replay.cadences = ctx->hook ? ctx->hook->cadences : NULL;
        hook = &replay;
    }

    memset(&res, 0, sizeof(res));

    rc = loyalty_batch_apply(st, txn, m->body, m->body_len, (size_t) -1,
                             m->at, hook, &res, err, errlen);

    if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT
        || rc == LOYALTY_BATCH_TOO_MANY)
    {
        first = json_array_get(res.errors, 0);
        why = json_string_value(json_object_get(first, "error"));
        snprintf(err, errlen, "events refused: event %d: %s",
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
static const loyalty_json_member_t  loyalty_repl_put_fields[] = {
    loyalty_json_str("what", 1, loyalty_repl_msg_t, what),
    loyalty_json_str("key", 0, loyalty_repl_msg_t, key),
    loyalty_json_val("record", JSON_OBJECT, 1, loyalty_repl_msg_t, record),
    loyalty_json_val("hosts", 0, 0, loyalty_repl_msg_t, hosts),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_put(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int          rc;
    size_t       n, lens[LOYALTY_REPL_HOSTS_MAX];
    const char  *what, *hosts[LOYALTY_REPL_HOSTS_MAX];

    what = m->what;

    if ((m->key == NULL && strcmp(what, "rules") != 0)
        || (strcmp(what, "member") != 0 && strcmp(what, "code") != 0
            && strcmp(what, "price") != 0 && strcmp(what, "rules") != 0)
        || loyalty_repl_hosts(m->hosts, hosts, lens, &n) != 0)
    {
        return LOYALTY_REPL_MALFORMED;
    }

    rc = loyalty_admin_put(st, txn, what, m->key ? m->key : "", m->key_len,
                           m->record, hosts, lens, n, m->at, err, errlen);

    if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        return LOYALTY_REPL_REFUSED;
    }

    /* a warning (a weak code) is no refusal */
    if (rc == 0) {
        err[0] = '\0';
    }

    return rc;
}


/* "what": member; "key" */
static const loyalty_json_member_t  loyalty_repl_delete_fields[] = {
    loyalty_json_str("what", 1, loyalty_repl_msg_t, what),
    loyalty_json_str("key", 1, loyalty_repl_msg_t, key),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_delete(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int  rc;

    if (strcmp(m->what, "member") != 0) {
        return LOYALTY_REPL_MALFORMED;
    }

    rc = loyalty_admin_delete_member(st, txn, m->key, m->key_len);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(err, errlen, "delete: no such member");
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
static const loyalty_json_member_t  loyalty_repl_clicks_fields[] = {
    loyalty_json_val("day", JSON_INTEGER, 1, loyalty_repl_msg_t, day),
    loyalty_json_val("counts", JSON_OBJECT, 1, loyalty_repl_msg_t, counts),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_clicks(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int          rc;
    json_t      *deltas;
    const char  *code;

    json_object_foreach(m->counts, code, deltas) {
        rc = loyalty_repl_click_add(st, txn, code, deltas, m->day);
        if (rc == -1) {
            snprintf(err, errlen, "clicks: bad entry for code \"%.32s\"",
                     code);
            return LOYALTY_REPL_REFUSED;
        }

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* "until", "lease", "limit", "touches": the claim of GET .../due */
static const loyalty_json_member_t  loyalty_repl_claim_fields[] = {
    loyalty_json_val("until", JSON_INTEGER, 1, loyalty_repl_msg_t, until),
    loyalty_json_val("lease", JSON_INTEGER, 1, loyalty_repl_msg_t, lease),
    loyalty_json_val("limit", JSON_INTEGER, 1, loyalty_repl_msg_t, limit),
    loyalty_json_val("touches", JSON_INTEGER, 1, loyalty_repl_msg_t,
                     touches),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_claim(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int               rc;
    json_t           *out;
    loyalty_claim_t   c;

    if (m->lease <= 0 || m->limit <= 0 || m->limit > 1000) {
        return LOYALTY_REPL_MALFORMED;
    }

    c.now = m->at;
    c.until = m->until;
    c.lease = m->lease;
    c.limit = (size_t) m->limit;
    c.touches = (unsigned) m->touches;

    out = json_array();
    if (out == NULL) {
        return ENOMEM;
    }

    rc = loyalty_due_claim(st, txn, &c, out);
    json_decref(out);

    return rc;
}


/* "body": POST .../due/ack's document */
static const loyalty_json_member_t  loyalty_repl_ack_fields[] = {
    loyalty_json_val("body", 0, 1, loyalty_repl_msg_t, doc),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_ack(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int      rc;
    json_t  *res;

    res = NULL;
    rc = loyalty_due_ack_json(st, txn, m->doc, m->at, &res, err, errlen);
    json_decref(res);

    return rc == -1 ? LOYALTY_REPL_REFUSED : rc;
}


/* a whole cadence sweep at "at", with the replica's cadences */
static int
loyalty_repl_sweep(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int              rc;
    loyalty_sweep_t  sw;

    memset(&sw, 0, sizeof(sw));

    do {
        rc = loyalty_sweep_step(st, txn, ctx->cadences, m->at,
                                LOYALTY_REPL_SWEEP_CHUNK, &sw, err, errlen);
        if (rc != 0) {
            return rc;
        }

    } while (!sw.done);

    return 0;
}


/* "what": members, tiers, prices, codes or rules; "body"; "hosts" */
static const loyalty_json_member_t  loyalty_repl_import_fields[] = {
    loyalty_json_str("what", 1, loyalty_repl_msg_t, what),
    loyalty_json_str("body", 1, loyalty_repl_msg_t, body),
    loyalty_json_val("hosts", 0, 0, loyalty_repl_msg_t, hosts),
    { NULL, 0, 0, 0, 0 }
};


static int
loyalty_repl_import(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    int  rc;

    if (ctx->import == NULL) {
        return loyalty_repl_refuse(err, errlen, "import: not applied here");
    }

    rc = ctx->import(ctx->import_data, st, txn, m->what, m->body,
                     m->body_len, m->hosts, m->at, err, errlen);

    return rc == -1 ? LOYALTY_REPL_REFUSED : rc;
}


static const loyalty_repl_kind_t  loyalty_repl_kinds[] = {
    { "events", loyalty_repl_events, loyalty_repl_events_fields,
      "events without a body" },
    { "put", loyalty_repl_put, loyalty_repl_put_fields,
      "put: needs \"what\" (member, code, price, rules), \"key\", an "
      "object \"record\" and string \"hosts\"" },
    { "delete", loyalty_repl_delete, loyalty_repl_delete_fields,
      "delete: needs \"what\": \"member\" and a \"key\"" },
    { "clicks", loyalty_repl_clicks, loyalty_repl_clicks_fields,
      "clicks: needs an integer \"day\" and an object \"counts\"" },
    { "claim", loyalty_repl_claim, loyalty_repl_claim_fields,
      "claim: needs integers \"until\", \"lease\", \"limit\" (1-1000) "
      "and \"touches\"" },
    { "ack", loyalty_repl_ack, loyalty_repl_ack_fields,
      "ack without a body" },
    { "sweep", loyalty_repl_sweep, NULL, NULL },
    { "import", loyalty_repl_import, loyalty_repl_import_fields,
      "import: needs \"what\" and \"body\"" },
    { "patch", loyalty_repl_patch, loyalty_repl_patch_fields,
      "patch: needs a \"key\" and an object \"fields\"" },
    { "erase", loyalty_repl_erase, loyalty_repl_erase_fields,
      "erase: needs a \"key\", a \"pseudonym\" and, if any, an "
      "\"erase_key\" of 64 hex digits" },
    { "prune", loyalty_repl_prune, loyalty_repl_prune_fields,
      "prune: needs an integer \"before\", a time" },
    { NULL, NULL, NULL, NULL }
};


/* what every message has */
static const loyalty_json_member_t  loyalty_repl_head[] = {
    loyalty_json_val("v", JSON_INTEGER, 1, loyalty_repl_msg_t, v),
    loyalty_json_str("kind", 1, loyalty_repl_msg_t, kind),
    loyalty_json_val("at", JSON_INTEGER, 1, loyalty_repl_msg_t, at),
    { NULL, 0, 0, 0, 0 }
};


/* the message's kind, its fields read: NULL with err when refused */
static const loyalty_repl_kind_t *
loyalty_repl_read(json_t *msg, loyalty_repl_msg_t *m, char *err,
    size_t errlen)
{
    const loyalty_repl_kind_t  *k;

    memset(m, 0, sizeof(loyalty_repl_msg_t));

    if (loyalty_json_read(msg, loyalty_repl_head, m) != 0
        || m->v != LOYALTY_REPL_VERSION || !loyalty_time_in_window(m->at))
    {
        (void) loyalty_repl_refuse(err, errlen, "not a loyalty message of "
                                   "version 1 with a kind and a time");
        return NULL;
    }

    for (k = loyalty_repl_kinds; k->name; k++) {
        if (strcmp(k->name, m->kind) == 0) {
            break;
        }
    }

    if (k->name == NULL) {
        snprintf(err, errlen, "unknown kind \"%.32s\"", m->kind);
        return NULL;
    }

    if (k->fields && loyalty_json_read(msg, k->fields, m) != 0) {
        (void) loyalty_repl_refuse(err, errlen, k->needs);
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
    MDB_txn                    *child;
    json_error_t                jerr;
    loyalty_repl_msg_t          m;
    const loyalty_repl_kind_t  *k;

    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (msg == NULL) {
        snprintf(err, errlen, "not JSON: %s", jerr.text);
        return LOYALTY_REPL_REFUSED;
    }

    k = loyalty_repl_read(msg, &m, err, errlen);
    if (k == NULL) {
        json_decref(msg);
        return LOYALTY_REPL_REFUSED;
    }

    rc = mdb_txn_begin(st->env, txn, 0, &child);
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }

    err[0] = '\0';
    rc = k->apply(st, child, ctx, &m, err, errlen);
    json_decref(msg);

    if (rc == LOYALTY_REPL_MALFORMED) {
        rc = loyalty_repl_refuse(err, errlen, k->needs);
    }

    if (rc != 0) {
        mdb_txn_abort(child);
        return rc;
    }

    return mdb_txn_commit(child);
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
    uint8_t  buf[8];

    loyalty_le_put(buf, seq, 8);

    return loyalty_store_meta_put(st, txn, LOYALTY_META_REPL_SEQ, buf, 8);
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


int
loyalty_repl_checksum(loyalty_store_t *st, MDB_txn *txn,
    uint8_t digest[LOYALTY_REPL_DIGEST_LEN])
{
    int          rc, db;
    uint8_t      idx;
    MDB_val      key, val;
    EVP_MD_CTX  *md;
    MDB_cursor  *cur;

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

        rc = mdb_cursor_open(txn, st->dbi[db], &cur);
        if (rc != 0) {
            break;
        }

        idx = (uint8_t) db;

        for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        {
            if (db == LOYALTY_DB_META && loyalty_repl_local(&key)) {
                continue;
            }

            EVP_DigestUpdate(md, &idx, 1);
            loyalty_repl_digest_len(md, key.mv_size);
            EVP_DigestUpdate(md, key.mv_data, key.mv_size);
            loyalty_repl_digest_len(md, val.mv_size);
            EVP_DigestUpdate(md, val.mv_data, val.mv_size);
        }

        mdb_cursor_close(cur);

        if (rc == MDB_NOTFOUND) {
            rc = 0;
        }
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
