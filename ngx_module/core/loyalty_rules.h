/*
 * nginx-loyalty: the rules document: what makes a member and a partner,
 * tier upgrades by spend, points, lifecycle thresholds, RFM scores and
 * segments.  schema/rules.schema.json describes the document.
 *
 * The store keeps the document in meta under "rules" as compact JSON
 * text; loyalty_rules_load() parses it into a loyalty_rules_t, which has
 * no pointers and takes no heap, so that a worker can keep one and
 * re-parse only when the store snapshot changes.
 */

#ifndef _LOYALTY_RULES_H_INCLUDED_
#define _LOYALTY_RULES_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_json.h"
#include "loyalty_record.h"
#include "loyalty_store.h"
#include "loyalty_util.h"


#define LOYALTY_META_RULES_KEY      "rules"

#define LOYALTY_RULES_VERSION       1
#define LOYALTY_RULES_SKUS          16
#define LOYALTY_RULES_UPGRADES      16
#define LOYALTY_RULES_SEGMENTS      64
#define LOYALTY_SEGMENT_MAX         16
#define LOYALTY_RFM_BREAKS          4       /* 4 breakpoints: scores 1-5 */
/* the most of one item: an event's items, a stage's skus */
#define LOYALTY_QTY_MAX             1000000
/* the stored document: far below this, but a bound for the reader */
#define LOYALTY_RULES_TEXT_MAX      65536


typedef enum {
    LOYALTY_ACTION_SHARE = 0,
    LOYALTY_ACTION_INVITE,
    LOYALTY_ACTION_GROUP_BUY,
    LOYALTY_ACTION_ASSIST,
    LOYALTY_ACTION_REVIEW,
    LOYALTY_ACTION_COUNT
} loyalty_action_e;


typedef enum {
    LOYALTY_LIFECYCLE_NONE = 0,         /* no order yet */
    LOYALTY_LIFECYCLE_ACTIVE,
    LOYALTY_LIFECYCLE_AT_RISK,
    LOYALTY_LIFECYCLE_DORMANT,
    LOYALTY_LIFECYCLE_LOST,
    LOYALTY_LIFECYCLE_COUNT
} loyalty_lifecycle_e;


/* a SKU, and for partners the quantity one order must hold */
typedef struct {
    char            sku[LOYALTY_ID_MAX];
    uint8_t         len;
    int64_t         qty;
} loyalty_rules_sku_t;


typedef struct {
    char            tier[LOYALTY_TIER_MAX];
    uint8_t         len;
    int64_t         spend;
} loyalty_rules_upgrade_t;


typedef struct {
    char            name[LOYALTY_SEGMENT_MAX];
    uint8_t         len;
    uint8_t         r;
    uint8_t         f;
    uint8_t         m;
} loyalty_rules_segment_t;


/* the stage a member or partner reaches, and how */
typedef struct {
    int64_t                 spend;      /* cumulative; 0: no threshold */
    loyalty_rules_sku_t     skus[LOYALTY_RULES_SKUS];
    size_t                  nskus;
    char                    tier[LOYALTY_TIER_MAX];
    uint8_t                 tier_len;   /* 0: the stage brings no tier */
} loyalty_rules_stage_t;


typedef struct {
    loyalty_rules_stage_t   member;
    loyalty_rules_stage_t   partner;

    /* by spend, ascending */
    loyalty_rules_upgrade_t upgrades[LOYALTY_RULES_UPGRADES];
    size_t                  nupgrades;

    char                    signup_tier[LOYALTY_TIER_MAX];
    uint8_t                 signup_tier_len;

    int64_t                 spend_per_point;    /* 0: no points for spend */
    int64_t                 action_points[LOYALTY_ACTION_COUNT];
    int64_t                 referral_points[2]; /* level 1, level 2 */

    /* seconds without an order; at_risk < dormant < lost */
    int64_t                 at_risk;
    int64_t                 dormant;
    int64_t                 lost;

    /* ascending: recency in days, frequency in orders, monetary in minor
     * units */
    int64_t                 recency[LOYALTY_RFM_BREAKS];
    int64_t                 frequency[LOYALTY_RFM_BREAKS];
    int64_t                 monetary[LOYALTY_RFM_BREAKS];

    loyalty_rules_segment_t segments[LOYALTY_RULES_SEGMENTS];
    size_t                  nsegments;
} loyalty_rules_t;


extern const char  *loyalty_lifecycle_names[LOYALTY_LIFECYCLE_COUNT];
extern const char  *loyalty_action_names[LOYALTY_ACTION_COUNT];
/*
 * A sku and its quantity, {"sku", "qty"}: an order's item, a rules
 * stage's sku.  Checked and read into item ("qty" 1 when absent; "sku"
 * copied); -1 with err.
 */
int loyalty_sku_from_json(json_t *v, loyalty_rules_sku_t *item, char *err,
    size_t errlen);

/* the action kind by name, or -1 */
int loyalty_action_parse(const char *s, size_t len);

/*
 * Checks a whole rules document against schema/rules.schema.json and
 * fills r; -1 with err on the first problem.  Tier names are checked for
 * form only: loyalty_rules_put() checks that they exist.
 */
int loyalty_rules_from_json(json_t *doc, loyalty_rules_t *r, char *err,
    size_t errlen);

/*
 * The store's rules: 0, MDB_NOTFOUND when it has none, MDB_CORRUPTED when
 * the stored text does not validate, or an LMDB error.
 */
int loyalty_rules_load(loyalty_store_t *st, MDB_txn *txn,
    loyalty_rules_t *r);

/*
 * Validates doc, including that every tier it names is in the store, and
 * stores it: 0, -1 with err on invalid input, or an LMDB error (> 0).
 */
int loyalty_rules_put(loyalty_store_t *st, MDB_txn *txn, json_t *doc,
    char *err, size_t errlen);

/* the stored document as JSON: NULL with *rc MDB_NOTFOUND when none */
json_t *loyalty_rules_get(loyalty_store_t *st, MDB_txn *txn, int *rc);

/*
 * Per request: no allocation, no JSON.  A member without an order is
 * LOYALTY_LIFECYCLE_NONE; an order in the future counts as active.
 */
loyalty_lifecycle_e loyalty_lifecycle(const loyalty_rules_t *r,
    const loyalty_member_t *m, int64_t now);

/* the member's recency, frequency and monetary scores, 1-5 each */
void loyalty_rfm(const loyalty_rules_t *r, const loyalty_member_t *m,
    int64_t now, unsigned *rs, unsigned *fs, unsigned *ms);

/*
 * The first segment whose minimum scores the member's reach: 0 and its
 * name (pointing into r), or -1 when none matches.
 */
int loyalty_segment(const loyalty_rules_t *r, const loyalty_member_t *m,
    int64_t now, const char **name, size_t *len);


#endif /* _LOYALTY_RULES_H_INCLUDED_ */
