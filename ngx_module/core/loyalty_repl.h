/*
 * nginx-loyalty: replication of writes through a stream (NATS JetStream
 * in practice; nothing here knows of NATS).
 *
 * An edge that replicates does not write its store: it publishes each
 * write as one message (schema/repl-message.schema.json), and a follower
 * applies the stream to every replica, in stream order, with the same
 * core functions a local write uses and with the write's own time, so
 * that replicas that applied the same sequence hold the same content.
 * The last sequence applied is kept in meta, in the same transaction as
 * the writes, so that a follower killed at any moment neither loses nor
 * repeats a message.
 */

#ifndef _LOYALTY_REPL_H_INCLUDED_
#define _LOYALTY_REPL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_batch.h"
#include "loyalty_json.h"
#include "loyalty_store.h"


#define LOYALTY_REPL_VERSION        1

/* meta keys of a replica: node-local, not in the checksum */
#define LOYALTY_META_REPL_SEQ       "repl_seq"
#define LOYALTY_META_REPL_STREAM    "repl_stream"

#define LOYALTY_REPL_STREAM_MAX     64
#define LOYALTY_REPL_EDGE_MAX       64
#define LOYALTY_REPL_DIGEST_LEN     32

/* a message the store refuses or cannot read: skipped, err says why */
#define LOYALTY_REPL_REFUSED        (-1)


/*
 * Applies "import" messages (loyaltyctl's import, which lives in the
 * CLI): 0, -1 with err for refused input, or an LMDB error.
 */
typedef int (*loyalty_repl_import_pt)(loyalty_store_t *st, MDB_txn *txn,
    const char *what, const char *buf, size_t len, json_t *hosts,
    int64_t now, char *err, size_t errlen);


typedef struct {
    const loyalty_event_hook_t  *hook;      /* events; NULL: none */
    loyalty_cadences_t          *cadences;  /* sweeps; NULL: none */
    loyalty_repl_import_pt       import;    /* NULL: refused */
} loyalty_repl_ctx_t;


/*
 * The edge's side of the event hook (the operator's Lua event hook): what
 * it decided for each event of a batch, recorded while the batch is
 * checked, so that the followers apply those decisions instead of asking
 * a hook of their own.  The recorder is a loyalty_event_hook_t whose
 * handler is loyalty_repl_hook_record() and data this: inner is the real
 * hook, decisions a JSON object {"TYPE:ID": {"points", "l1", "l2",
 * "stage", "tier"}} that goes into the message as "hook".
 */
typedef struct {
    const loyalty_event_hook_t  *inner;
    json_t                      *decisions;
} loyalty_repl_recorder_t;

int loyalty_repl_hook_record(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out);

/*
 * Applies one message (its JSON text) in txn, in a nested transaction:
 * 0 applied; LOYALTY_REPL_REFUSED with err when the message is malformed,
 * foreign or refused by the store's checks (nothing of it is written);
 * any other value is an LMDB error, and the caller aborts txn.
 */
int loyalty_repl_apply(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, const char *data, size_t len, char *err,
    size_t errlen);

/* the last stream sequence applied: 0 when none */
int loyalty_repl_seq(loyalty_store_t *st, MDB_txn *txn, uint64_t *seq);
int loyalty_repl_set_seq(loyalty_store_t *st, MDB_txn *txn, uint64_t seq);

/*
 * The stream the store follows, NUL-terminated in name (at least
 * LOYALTY_REPL_STREAM_MAX + 1 bytes): 0, or MDB_NOTFOUND when the store
 * follows none.  set_stream marks the store as a replica.
 */
int loyalty_repl_stream(loyalty_store_t *st, MDB_txn *txn, char *name);
int loyalty_repl_set_stream(loyalty_store_t *st, MDB_txn *txn,
    const char *name);

/*
 * SHA-256 of the replicated content: every sub-database but meta's
 * node-local keys (created_at, repl_*), in key order, each entry as
 * its database's index, key length, key, value length and value.
 */
int loyalty_repl_checksum(loyalty_store_t *st, MDB_txn *txn,
    uint8_t digest[LOYALTY_REPL_DIGEST_LEN]);

/*
 * A message's fields (schema/repl-message.schema.json), as
 * loyalty_json_read() copies them: a field of another type counts as
 * absent.  Strings point into the message.
 */
typedef struct {
    json_int_t            v;
    loyalty_json_text_t   kind;
    json_int_t            at;

    loyalty_json_text_t   what;
    loyalty_json_text_t   key;
    loyalty_json_text_t   body;         /* events', import's: text */
    json_t               *doc;          /* ack's "body": any JSON */
    loyalty_json_text_t   pseudonym;
    json_t               *record;
    json_t               *hosts;
    json_t               *hook;
    json_t               *fields;
    json_t               *counts;
    json_t               *erase_key;
    json_int_t            day;
    json_int_t            until;
    json_int_t            lease;
    json_int_t            limit;
    json_int_t            touches;
    json_int_t            before;
} loyalty_repl_msg_t;

/* one message being applied, in txn (a nested transaction) */
typedef struct {
    loyalty_store_t           *st;
    MDB_txn                   *txn;
    const loyalty_repl_ctx_t  *ctx;
    loyalty_repl_msg_t         m;
    char                      *err;
    size_t                     errlen;
} loyalty_repl_run_t;

/*
 * A kind's result: 0, LOYALTY_REPL_REFUSED with err, an LMDB error, or
 * LOYALTY_REPL_MALFORMED for fields the kind finds wrong after they were
 * read: refused with the kind's "needs" text.
 */
#define LOYALTY_REPL_MALFORMED      (-2)

/* a refusal: LOYALTY_REPL_REFUSED, with what in err */
int loyalty_repl_refuse(loyalty_repl_run_t *r, const char *what);

/*
 * The kinds of loyalty_repl_member.c: "patch" (a member's PATCH), "erase"
 * (an erasure under the edge's pseudonym) and "prune" (retention, from
 * loyaltyctl prune --nats).
 */
int loyalty_repl_patch(loyalty_repl_run_t *r);
int loyalty_repl_erase(loyalty_repl_run_t *r);
int loyalty_repl_prune(loyalty_repl_run_t *r);

/*
 * The message of one write, as JSON (the caller adds the kind's fields
 * and dumps it compact).
 */
json_t *loyalty_repl_message(const char *kind, const char *edge,
    int64_t at);


#endif /* _LOYALTY_REPL_H_INCLUDED_ */
