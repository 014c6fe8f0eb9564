/*
 * nginx-loyalty: events from the shop (signup, follow, order, refund,
 * action) and what they do to the store: the funnel, tiers, referrers,
 * points and the ledger.  schema/event.schema.json describes an event;
 * schema/lmdb-layout.md the ledger, events and referrals databases.
 *
 * A batch is applied in the caller's write transaction, all or nothing:
 * every event is checked, and effects that depend on the store (an
 * unknown member, an unknown order, a refund of more than was paid) are
 * found by applying the batch in a nested transaction that is committed
 * into the caller's only when every event was good.
 */

#ifndef _LOYALTY_EVENTS_H_INCLUDED_
#define _LOYALTY_EVENTS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_code.h"
#include "loyalty_record.h"
#include "loyalty_store.h"
#include "loyalty_util.h"


#define LOYALTY_BATCH_INVALID       (-1)
#define LOYALTY_BATCH_TOO_MANY      (-2)
/* as invalid, but every bad event reuses an id with other data */
#define LOYALTY_BATCH_CONFLICT      (-3)

#define LOYALTY_EVENT_ITEMS_MAX     256

#define LOYALTY_LEDGER_VERSION      1
#define LOYALTY_LEDGER_FIXED        24
#define LOYALTY_LEDGER_REC_MAX      (LOYALTY_LEDGER_FIXED + LOYALTY_ID_MAX)
/* member id, a zero byte, an 8-byte big-endian sequence */
#define LOYALTY_LEDGER_KEY_MAX      (LOYALTY_ID_MAX + 9)

#define LOYALTY_EVENT_VERSION       1
#define LOYALTY_EVENT_FIXED         56
#define LOYALTY_EVENT_REC_MAX       (LOYALTY_EVENT_FIXED + 4 * LOYALTY_ID_MAX)
/* a kind byte, then the id */
#define LOYALTY_EVENT_KEY_MAX       (LOYALTY_ID_MAX + 1)

#define LOYALTY_REFERRAL_VERSION    1
#define LOYALTY_REFERRAL_REC_LEN    16
/* referrer id, a zero byte, member id */
#define LOYALTY_REFERRAL_KEY_MAX    (2 * LOYALTY_ID_MAX + 1)
/* the longest chain of referrers followed to find a loop */
#define LOYALTY_REFERRER_CHAIN_MAX  10000


typedef enum {
    LOYALTY_EVENT_SIGNUP = 0,
    LOYALTY_EVENT_FOLLOW,
    LOYALTY_EVENT_ORDER,
    LOYALTY_EVENT_REFUND,
    LOYALTY_EVENT_ACTION,
    LOYALTY_EVENT_COUNT
} loyalty_event_e;


typedef enum {
    LOYALTY_LEDGER_ORDER = 1,
    LOYALTY_LEDGER_REFUND,
    LOYALTY_LEDGER_ACTION,
    LOYALTY_LEDGER_REFERRAL_L1,
    LOYALTY_LEDGER_REFERRAL_L2,
    LOYALTY_LEDGER_ADJUST,
    LOYALTY_LEDGER_CADENCE,
    LOYALTY_LEDGER_REASONS
} loyalty_ledger_reason_e;


/* a parsed event; strings point into the JSON it came from */
typedef struct {
    loyalty_event_e     type;
    int                 action;         /* loyalty_action_e */
    const char         *member;
    size_t              member_len;
    const char         *id;             /* order_id, refund_id, action id;
                                           the member for signup, follow */
    size_t              id_len;
    const char         *order;          /* a refund's order_id */
    size_t              order_len;
    const char         *referrer;       /* a signup's referrer */
    size_t              referrer_len;
    char                code[LOYALTY_CODE_MAX];
    size_t              code_len;       /* 0: no ref_code */
    int64_t             at;
    int64_t             amount;
    json_t             *items;          /* an order's, or NULL */
} loyalty_event_t;


/* one entry of the ledger; event points into the decoded buffer */
typedef struct {
    uint8_t             reason;         /* loyalty_ledger_reason_e */
    uint8_t             event_len;      /* 0: none (adjust) */
    int64_t             delta;
    int64_t             at;
    const char         *event;
} loyalty_ledger_entry_t;


/*
 * What the events database keeps of an applied event, so that a retry is
 * a no-op and a refund can reverse its order.  Strings point into the
 * decoded buffer.
 */
typedef struct {
    uint8_t             type;           /* loyalty_event_e */
    uint8_t             action;
    uint8_t             member_len;
    uint8_t             order_len;      /* refunds */
    uint8_t             r1_len;         /* orders: referrers credited */
    uint8_t             r2_len;
    int64_t             at;
    int64_t             amount;         /* paid, or refunded by a refund */
    int64_t             points;         /* the member's points it gave or
                                           took back */
    int64_t             refunded;       /* orders: refunded so far */
    int64_t             l1_points;      /* orders: given to r1 and r2 */
    int64_t             l2_points;
    const char         *member;
    const char         *order;
    const char         *r1;
    const char         *r2;
} loyalty_event_rec_t;


/*
 * A hook asked for an order or an action before its points are given:
 * the member as it was before the event, and the defaults the rules give.
 */
typedef struct {
    const loyalty_event_t   *ev;
    const char              *member_id;
    size_t                   member_len;
    const loyalty_member_t  *member;
    int32_t                  rank;
    int                      has_rank;
    int                      first;         /* the member's first order */
    int64_t                  points;        /* the rules' default */
    const char              *referrer;      /* NULL: none */
    size_t                   referrer_len;
    const char              *referrer2;
    size_t                   referrer2_len;
} loyalty_event_hook_in_t;


/* what the hook decided; has_* and stage < 0 leave the defaults */
typedef struct {
    int64_t                  points;
    int64_t                  l1_points;
    int64_t                  l2_points;
    unsigned                 has_points:1;
    unsigned                 has_l1:1;
    unsigned                 has_l2:1;
    int                      stage;
    char                     tier[LOYALTY_TIER_MAX];
    size_t                   tier_len;      /* 0: none */
} loyalty_event_hook_out_t;


/*
 * The caller's hook: 0 with out filled, or -1 to keep the defaults.  It
 * may read the store in txn, and must not write to it.
 */
typedef int (*loyalty_event_hook_pt)(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_event_hook_in_t *in,
    loyalty_event_hook_out_t *out);

/* loyalty_cadence.h: the cadences that events schedule */
typedef struct loyalty_cadences_s  loyalty_cadences_t;

typedef struct {
    loyalty_event_hook_pt    handler;   /* NULL: none */
    void                    *data;
    loyalty_cadences_t      *cadences;  /* NULL: none */
} loyalty_event_hook_t;


typedef struct {
    size_t              events;
    size_t              applied;
    size_t              duplicates;
    size_t              conflicts;      /* errors that are conflicts */
    json_t             *errors;         /* [{"index":N,"error":"...",
                                            "conflict":{...}}] */
} loyalty_batch_t;


extern const char  *loyalty_event_names[LOYALTY_EVENT_COUNT];
/* by reason; [0] is NULL */
extern const char  *loyalty_ledger_reasons[LOYALTY_LEDGER_REASONS];


/*
 * Checks one event against schema/event.schema.json; an absent "at"
 * is now.  -1 with err on the first problem.
 */
int loyalty_event_from_json(json_t *obj, int64_t now, loyalty_event_t *ev,
    char *err, size_t errlen);

/*
 * Applies a body of events: a JSON array, or JSON Lines when its first
 * non-blank byte is not "[".  Every event is checked and, if all are
 * good, the batch is applied in order in txn; the caller commits.
 * Returns 0; LOYALTY_BATCH_INVALID with res->errors listing every bad
 * event (nothing applied); LOYALTY_BATCH_CONFLICT likewise when every
 * bad event is an id applied before with other data (an order_id with
 * another member or amount, a refund_id with another order or amount, an
 * action id with another member or kind: the error's "conflict" names
 * the field, the stored value and the given one); an exact replay is a
 * duplicate and no error; LOYALTY_BATCH_TOO_MANY for more than
 * max_events; or an LMDB error (> 0), err saying where.  res is filled
 * in every case and released with loyalty_batch_free().  hook, when not
 * NULL, is asked about every order and action, and its cadences are
 * scheduled from orders in the same transaction.
 */
int loyalty_batch_apply(loyalty_store_t *st, MDB_txn *txn, const char *body,
    size_t len, size_t max_events, int64_t now,
    const loyalty_event_hook_t *hook, loyalty_batch_t *res, char *err,
    size_t errlen);
void loyalty_batch_free(loyalty_batch_t *res);


/* the ledger: keys are in order per member, oldest first */
size_t loyalty_ledger_key(const char *id, size_t len, uint64_t seq,
    uint8_t *key);
size_t loyalty_ledger_encode(const loyalty_ledger_entry_t *e, uint8_t *buf);
int loyalty_ledger_decode(const uint8_t *buf, size_t len,
    loyalty_ledger_entry_t *e);
/* appends an entry after the member's last: 0 or an LMDB error */
int loyalty_ledger_append(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_ledger_entry_t *e);
/*
 * The sum and count of a member's entries: 0, MDB_CORRUPTED for an entry
 * that does not decode, or an LMDB error.
 */
int loyalty_ledger_sum(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, int64_t *sum, size_t *n);

size_t loyalty_event_key(loyalty_event_e type, const char *id, size_t len,
    uint8_t *key);
size_t loyalty_event_rec_encode(const loyalty_event_rec_t *e, uint8_t *buf);
int loyalty_event_rec_decode(const uint8_t *buf, size_t len,
    loyalty_event_rec_t *e);

size_t loyalty_referral_key(const char *referrer, size_t rlen,
    const char *member, size_t mlen, uint8_t *key);
/* records that member was referred by referrer at the time at */
int loyalty_referral_put(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen,
    int64_t at);
int loyalty_referral_delete(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen);

/*
 * Whether referrer, as member's referrer, would close a loop: the chain
 * of referrers from referrer, walked for at most LOYALTY_REFERRER_CHAIN_MAX
 * members, reaches member.  0 when it does not (it ends, or at a member
 * not in the store); -1 with err naming the loop ("A -> B -> A") or a
 * chain too long to follow; or an LMDB error.
 */
int loyalty_referrer_loop(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t mlen, const char *referrer, size_t rlen,
    char *err, size_t errlen);


#endif /* _LOYALTY_EVENTS_H_INCLUDED_ */
