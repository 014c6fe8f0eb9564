/*
 * nginx-loyalty: events from the shop (signup, follow, order, refund,
 * action): their JSON, checked against schema/event.schema.json, and
 * what the events database keeps of an applied one (schema/lmdb-layout.md).
 * What an event does to the store is loyalty_apply.h's; batches of them
 * loyalty_batch.h's.
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


#define LOYALTY_EVENT_ITEMS_MAX     256

#define LOYALTY_EVENT_VERSION       1
#define LOYALTY_EVENT_FIXED         56
#define LOYALTY_EVENT_REC_MAX       (LOYALTY_EVENT_FIXED + 4 * LOYALTY_ID_MAX)
/* a kind byte, then the id */
#define LOYALTY_EVENT_KEY_MAX       (LOYALTY_ID_MAX + 1)


typedef enum {
    LOYALTY_EVENT_SIGNUP = 0,
    LOYALTY_EVENT_FOLLOW,
    LOYALTY_EVENT_ORDER,
    LOYALTY_EVENT_REFUND,
    LOYALTY_EVENT_ACTION,
    LOYALTY_EVENT_COUNT
} loyalty_event_e;


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
    int64_t             ref_at;         /* the click's time; 0: none */
    int64_t             at;
    int64_t             amount;
    json_t             *items;          /* an order's, or NULL */
} loyalty_event_t;


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


extern const char  *loyalty_event_names[LOYALTY_EVENT_COUNT];


/*
 * Checks one event against schema/event.schema.json; an absent "at"
 * is now.  -1 with err on the first problem.
 */
int loyalty_event_from_json(json_t *obj, int64_t now, loyalty_event_t *ev,
    char *err, size_t errlen);

size_t loyalty_event_key(loyalty_event_e type, const char *id, size_t len,
    uint8_t *key);
size_t loyalty_event_rec_encode(const loyalty_event_rec_t *e, uint8_t *buf);
int loyalty_event_rec_decode(const uint8_t *buf, size_t len,
    loyalty_event_rec_t *e);
/* whether the event names member id: as its member or a referrer */
int loyalty_event_rec_names(const loyalty_event_rec_t *e, const char *id,
    size_t len);
/*
 * Where the event names member id, it names to instead (to_len bytes,
 * which must stay valid while e is used); whether it named id.
 */
int loyalty_event_rec_rename(loyalty_event_rec_t *e, const char *id,
    size_t len, const char *to, uint8_t to_len);


#endif /* _LOYALTY_EVENTS_H_INCLUDED_ */
