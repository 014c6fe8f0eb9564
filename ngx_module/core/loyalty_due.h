/*
 * nginx-loyalty: touches of reward cadences and the queue of those due.
 *
 * A touch is one (cadence, member, period): a call, a message, a letter,
 * a visit or a gift that a cadence scheduled.  The "touches" database
 * keeps every touch for life, keyed by its id, so that nothing is
 * scheduled twice and staff can be counted by what they did; the "due"
 * database holds the touches not yet acknowledged, keyed by due time, so
 * that the shop's systems take them in order.  schema/lmdb-layout.md
 * describes both.
 */

#ifndef _LOYALTY_DUE_H_INCLUDED_
#define _LOYALTY_DUE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_store.h"
#include "loyalty_util.h"


#define LOYALTY_CADENCE_NAME_MAX    32
#define LOYALTY_PERIOD_MAX          64
#define LOYALTY_NOTE_MAX            256
/* cadence ":" member ":" period */
#define LOYALTY_TOUCH_ID_MAX        (LOYALTY_CADENCE_NAME_MAX + 1 \
                                     + LOYALTY_ID_MAX + 1 \
                                     + LOYALTY_PERIOD_MAX)

#define LOYALTY_TOUCH_VERSION       1
#define LOYALTY_TOUCH_FIXED         48
#define LOYALTY_TOUCH_REC_MAX       (LOYALTY_TOUCH_FIXED + LOYALTY_ID_MAX \
                                     + LOYALTY_NOTE_MAX)
/* touch flags */
#define LOYALTY_TOUCH_REWARDED      0x01

#define LOYALTY_DUE_VERSION         1
#define LOYALTY_DUE_REC_LEN         16
/* an 8-byte big-endian due time, then the touch's id */
#define LOYALTY_DUE_KEY_MAX         (8 + LOYALTY_TOUCH_ID_MAX)
/* due flags: the touch's reward waits for its due time */
#define LOYALTY_DUE_REWARD          0x01

#define LOYALTY_DUE_LIMIT_MAX       1000
#define LOYALTY_LEASE_DEFAULT       900
#define LOYALTY_LEASE_MIN           10
#define LOYALTY_LEASE_MAX           LOYALTY_DAY

/* loyalty_due_ack() results beside LMDB's */
#define LOYALTY_DUE_ACKED           0
#define LOYALTY_DUE_ALREADY         (-1)
#define LOYALTY_DUE_UNKNOWN         (-2)
#define LOYALTY_DUE_CONFLICT        (-3)


typedef enum {
    LOYALTY_TOUCH_CALL = 0,
    LOYALTY_TOUCH_MESSAGE,
    LOYALTY_TOUCH_LETTER,
    LOYALTY_TOUCH_VISIT,
    LOYALTY_TOUCH_GIFT,
    LOYALTY_TOUCH_KINDS
} loyalty_touch_e;


typedef enum {
    LOYALTY_OUTCOME_PENDING = 0,
    LOYALTY_OUTCOME_DONE,
    LOYALTY_OUTCOME_SKIPPED,
    LOYALTY_OUTCOME_FAILED,
    LOYALTY_OUTCOMES
} loyalty_outcome_e;


typedef enum {
    LOYALTY_TRIGGER_ORDER = 0,
    LOYALTY_TRIGGER_FIRST_ORDER,
    LOYALTY_TRIGGER_REFERRAL_CONVERTED,
    LOYALTY_TRIGGER_SPEND_CROSSED,
    LOYALTY_TRIGGER_BIRTHDAY,
    LOYALTY_TRIGGER_INACTIVE,
    LOYALTY_TRIGGER_YEARLY_TOP,
    LOYALTY_TRIGGER_CALENDAR,
    LOYALTY_TRIGGERS
} loyalty_trigger_e;


/* a touch record; by and note point into the decoded buffer */
typedef struct {
    uint8_t             state;          /* loyalty_outcome_e */
    uint8_t             touch;          /* loyalty_touch_e */
    uint8_t             trigger;        /* loyalty_trigger_e */
    uint8_t             flags;
    uint8_t             by_len;
    uint16_t            note_len;
    uint32_t            claims;
    int64_t             due_at;
    int64_t             scheduled_at;
    int64_t             acked_at;       /* 0 while pending */
    int64_t             reward;         /* points, 0 for none */
    const char         *by;
    const char         *note;
} loyalty_touch_t;


/* what GET .../due asks for */
typedef struct {
    int64_t             now;
    int64_t             until;
    int64_t             lease;
    size_t              limit;
    unsigned            touches;        /* a bit per loyalty_touch_e */
} loyalty_claim_t;


extern const char  *loyalty_touch_names[LOYALTY_TOUCH_KINDS];
extern const char  *loyalty_outcome_names[LOYALTY_OUTCOMES];
extern const char  *loyalty_trigger_names[LOYALTY_TRIGGERS];

size_t loyalty_touch_encode(const loyalty_touch_t *t, uint8_t *buf);
int loyalty_touch_decode(const uint8_t *buf, size_t len, loyalty_touch_t *t);

/* "cadence:member:period" into id (LOYALTY_TOUCH_ID_MAX bytes) */
size_t loyalty_touch_id(const char *cadence, size_t clen, const char *member,
    size_t mlen, const char *period, size_t plen, char *id);
/* splits an id; -1 when it is not one */
int loyalty_touch_id_split(const char *id, size_t len, size_t *clen,
    const char **member, size_t *mlen, const char **period, size_t *plen);

/* the touch id as JSON (schema/due.schema.json), lease_until 0: none */
json_t *loyalty_touch_json(const char *id, size_t len,
    const loyalty_touch_t *t, int64_t lease_until);

size_t loyalty_due_key(int64_t due_at, const char *id, size_t len,
    uint8_t *key);

/*
 * Schedules a touch unless its id was ever scheduled: 0, MDB_KEYEXIST
 * when it was, or an LMDB error.  A reward whose time has come by now is
 * credited at once.
 */
int loyalty_due_schedule(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_touch_t *t, int64_t now);

/* has the touch been scheduled: 1, 0, or an LMDB error (> 1) */
int loyalty_due_exists(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len);

/*
 * Credits the rewards of touches that fell due by now, oldest first,
 * looking at up to max entries of the queue after the key in after (of
 * LOYALTY_DUE_KEY_MAX bytes; *after_len 0: from the start), which is
 * left at the last one looked at.  *n is how many were, so that a caller
 * goes on until fewer than max were; *credited how many were credited.
 */
int loyalty_due_rewards(loyalty_store_t *st, MDB_txn *txn, int64_t now,
    uint8_t *after, size_t *after_len, size_t max, size_t *n,
    size_t *credited);

/*
 * Claims due touches for a lease: those due by c->until, of the kinds
 * asked, not leased to anyone now, oldest first.  Appends them to out.
 */
int loyalty_due_claim(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_claim_t *c, json_t *out);

/* lists pending touches due by until, leased or not, without claiming */
int loyalty_due_list(loyalty_store_t *st, MDB_txn *txn, int64_t until,
    size_t limit, json_t *out);

/*
 * Acknowledges a touch: LOYALTY_DUE_ACKED, LOYALTY_DUE_ALREADY (the same
 * outcome was given before), LOYALTY_DUE_UNKNOWN, LOYALTY_DUE_CONFLICT
 * (another outcome was), or an LMDB error (> 0).
 */
int loyalty_due_ack(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_outcome_e outcome, const char *by, size_t by_len,
    int64_t now);

/*
 * Acknowledgements from JSON: one object or an array of them (see
 * schema/due-ack.schema.json).  Each is applied on its own; *result is
 * an object for an object, {"results": [...]} for an array.  -1 with
 * err for a body that is not one, else 0 or an LMDB error.
 */
int loyalty_due_ack_json(loyalty_store_t *st, MDB_txn *txn, json_t *body,
    int64_t now, json_t **result, char *err, size_t errlen);

/*
 * Counts touches due since since: per cadence, scheduled (all), pending,
 * done, skipped, failed and points rewarded; per member of staff, done,
 * skipped and failed.  See schema/cadence-stats.schema.json.
 */
int loyalty_due_stats(loyalty_store_t *st, MDB_txn *txn, int64_t since,
    json_t **out);


/* within the queue (loyalty_due.c, loyalty_due_ack.c) */

/* the touch id's record, copied into buf (LOYALTY_TOUCH_REC_MAX bytes) */
int loyalty_touch_get(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, uint8_t *buf, loyalty_touch_t *t);
int loyalty_touch_put(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_touch_t *t);
/* the kind of the touches' records */
extern const loyalty_store_rec_t  loyalty_touch_rec;
/* the touch's reward into the member's points and ledger */
int loyalty_due_credit(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_touch_t *t);


#endif /* _LOYALTY_DUE_H_INCLUDED_ */
