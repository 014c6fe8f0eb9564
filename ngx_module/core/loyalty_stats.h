/*
 * nginx-loyalty: what sharing brings, counted per day in the store.
 *
 * A member whom a share code (or a named referrer) brought keeps, in
 * the attributions database, the code, its campaign, the click day and
 * both levels of referrer.  Their signup, orders, revenue and refunds,
 * the points paid to their referrers, and the clicks of every code are
 * added to per-day counters in the stats database, in the write
 * transaction of the event or of the click flush, so that a question
 * over a range of days is a cursor range per block of 32 days and never
 * a scan of members or events.  schema/lmdb-layout.md documents both databases;
 * schema/stats*.schema.json the answers.
 */

#ifndef _LOYALTY_STATS_H_INCLUDED_
#define _LOYALTY_STATS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_code.h"
#include "loyalty_store.h"
#include "loyalty_tz.h"
#include "loyalty_util.h"


#define LOYALTY_STATS_VERSION       1
/* the version, the counters present, a varint of at most 10 bytes each */
#define LOYALTY_STATS_REC_MAX       (3 + 10 * LOYALTY_STATS_COUNTERS)
#define LOYALTY_STATS_MOVE_LEN      16
/* a kind byte, a 4-byte big-endian day, a name of 0-64 bytes */
#define LOYALTY_STATS_KEY_MAX       (5 + LOYALTY_ID_MAX)

#define LOYALTY_ATTRIB_VERSION      1
#define LOYALTY_ATTRIB_FIXED        24
#define LOYALTY_ATTRIB_REC_MAX      (LOYALTY_ATTRIB_FIXED + LOYALTY_CODE_MAX \
                                     + LOYALTY_CAMPAIGN_MAX \
                                     + 2 * LOYALTY_ID_MAX)

/* the longest range of days one question may cover */
#define LOYALTY_STATS_DAYS_MAX      366
#define LOYALTY_STATS_TOP_MAX       1000
#define LOYALTY_STATS_TOP_DEFAULT   20
#define LOYALTY_STATS_OFFSET_MAX    1000000

/* "YYYY-MM-DD" */
#define LOYALTY_DAY_LEN             10


typedef enum {
    LOYALTY_STATS_CLICKS = 0,
    LOYALTY_STATS_UNIQUE,
    LOYALTY_STATS_BOT,
    LOYALTY_STATS_ATTRIBUTED,
    LOYALTY_STATS_SIGNUPS,
    LOYALTY_STATS_FIRST_ORDERS,
    LOYALTY_STATS_ORDERS,
    LOYALTY_STATS_REVENUE,
    LOYALTY_STATS_REFUNDS,
    LOYALTY_STATS_REFUNDED,
    LOYALTY_STATS_POINTS_L1,
    LOYALTY_STATS_POINTS_L2,
    LOYALTY_STATS_COUNTERS
} loyalty_stats_counter_e;


/* what a question groups by; the first four are kinds of counters */
typedef enum {
    LOYALTY_STATS_BY_CODE = 0,
    LOYALTY_STATS_BY_CAMPAIGN,
    LOYALTY_STATS_BY_REFERRER,
    LOYALTY_STATS_BY_DAY,
    LOYALTY_STATS_BY_FUNNEL,
    LOYALTY_STATS_BY_CADENCE,
    LOYALTY_STATS_BY_COUNT
} loyalty_stats_by_e;


/* the stats database's kind bytes */
#define LOYALTY_STATS_KIND_CODE      'c'
#define LOYALTY_STATS_KIND_CAMPAIGN  'p'
#define LOYALTY_STATS_KIND_REFERRER  'r'
#define LOYALTY_STATS_KIND_DAY       'd'
#define LOYALTY_STATS_KIND_MOVE      'm'
/*
 * Blocks of 32 days (v2 of the layout): one record a code, campaign or
 * referrer and block, its days' counters in it; the day in the key is
 * the block's first (a multiple of 32).  The day records of "c", "p",
 * "r" that a store made before keeps are read too, never written.
 */
#define LOYALTY_STATS_KIND_CODE_BLOCK      'C'
#define LOYALTY_STATS_KIND_CAMPAIGN_BLOCK  'P'
#define LOYALTY_STATS_KIND_REFERRER_BLOCK  'R'
#define LOYALTY_STATS_BLOCK_DAYS     32
/* the version, the days present (u32), each day's length, running sums */
#define LOYALTY_STATS_BLOCK_MAX      (5 + LOYALTY_STATS_BLOCK_DAYS \
                                      * LOYALTY_STATS_REC_MAX)
/* a batch's pending delta: the kind, a 8-byte big-endian sequence */
#define LOYALTY_STATS_KIND_PENDING   'z'
#define LOYALTY_STATS_PENDING_KEY    9

/*
 * A batch's rows of codes, campaigns and referrers (at most
 * LOYALTY_STATS_PENDING_ROWS, else they are written straight) go into
 * one pending delta; the batch that leaves LOYALTY_STATS_PENDING_MAX of
 * them folds them all into the day counters.
 */
#define LOYALTY_STATS_PENDING_ROWS   1024
#define LOYALTY_STATS_PENDING_MAX    32

/* the sort key of a question that sorts by its rows' names (days) */
#define LOYALTY_STATS_SORT_KEY       (-1)


/* what the attributions database keeps of a member */
typedef struct {
    char            code[LOYALTY_CODE_MAX];
    size_t          code_len;       /* 0: referred by name */
    char            campaign[LOYALTY_CAMPAIGN_MAX];
    size_t          campaign_len;
    char            r1[LOYALTY_ID_MAX];
    size_t          r1_len;
    char            r2[LOYALTY_ID_MAX];
    size_t          r2_len;         /* 0: r1 had no referrer */
    int64_t         since;          /* orders at or after this count */
    int64_t         click_day;      /* days since 1970-01-01 */
} loyalty_attrib_t;


typedef enum {
    LOYALTY_STATS_EV_SIGNUP = 0,
    LOYALTY_STATS_EV_ORDER,
    LOYALTY_STATS_EV_REFUND,
    LOYALTY_STATS_EV_ACTION
} loyalty_stats_ev_e;


/*
 * One applied event, as the counters see it.  For a refund, at is its
 * order's time and amount, l1 and l2 what it takes back; r1 and r2 are
 * the referrers its order paid (the action's, the order's), or none.
 */
typedef struct {
    loyalty_stats_ev_e  kind;
    const char         *member;
    size_t              member_len;
    int64_t             at;
    int64_t             amount;
    int                 first;          /* the member's first order */
    const char         *r1;
    size_t              r1_len;
    int64_t             l1;
    const char         *r2;
    size_t              r2_len;
    int64_t             l2;
} loyalty_stats_event_t;


/*
 * What a batch of events adds, summed in memory per record and written
 * once when the batch is done: a batch adds to the same day's records
 * over and over.
 */
typedef struct {
    uint8_t             key[LOYALTY_STATS_KEY_MAX];
    uint8_t             len;
    int64_t             d[LOYALTY_STATS_COUNTERS];
} loyalty_stats_acc_entry_t;


typedef struct {
    loyalty_stats_acc_entry_t  *entries;
    size_t                      n;
    size_t                      nalloc;
    uint64_t                   *slots;      /* hash << 32 | entry index
                                               + 1; 0: free */
    size_t                      nslots;     /* a power of two */
} loyalty_stats_acc_t;


/* a question, checked */
typedef struct {
    loyalty_stats_by_e  by;
    int64_t             from;           /* days since 1970-01-01 */
    int64_t             to;
    int                 sort;           /* a counter, or _SORT_KEY */
    size_t              top;
    size_t              offset;
} loyalty_stats_query_t;


/* a question's arguments as text; NULL or empty: the default */
typedef struct {
    loyalty_str_t       by;
    loyalty_str_t       from;
    loyalty_str_t       to;
    loyalty_str_t       sort;
    loyalty_str_t       top;
    loyalty_str_t       offset;
} loyalty_stats_args_t;


extern const char  *loyalty_stats_counter_names[LOYALTY_STATS_COUNTERS];
extern const char  *loyalty_stats_by_names[LOYALTY_STATS_BY_COUNT];


/*
 * The day that counters count a time in: the shop's day in its zone tz
 * (loyalty_timezone, loyaltyctl --tz; NULL: UTC), as st->tz is for the
 * writes, so that an order placed at 07:30 on the shop's clock counts on
 * the shop's day whatever UTC says.
 */
int64_t loyalty_stats_day(const loyalty_tz_t *tz, int64_t t);

/* "YYYY-MM-DD", 2000-01-01 to 2100-12-31, to days: 0, or -1 */
int loyalty_stats_parse_day(const char *s, size_t len, int64_t *day);
/* writes LOYALTY_DAY_LEN characters and a NUL */
void loyalty_stats_format_day(int64_t day, char *buf);

/*
 * Checks a question: 0, or -1 with err saying which argument is bad.
 * Without from and to, the 30 days to now's day in the shop's zone tz.
 */
int loyalty_stats_query_parse(const loyalty_stats_args_t *args,
    const loyalty_tz_t *tz, int64_t now, loyalty_stats_query_t *q,
    char *err, size_t errlen);

/*
 * Answers a question in txn: 0 with *out, or an LMDB error (ENOMEM for
 * memory).  now is for the lifecycles of by=funnel.
 */
int loyalty_stats_query(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, int64_t now, json_t **out);


/* the attributions database */
int loyalty_attrib_get(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t len, loyalty_attrib_t *a);
int loyalty_attrib_delete(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t len);
size_t loyalty_attrib_encode(const loyalty_attrib_t *a, uint8_t *buf);
int loyalty_attrib_decode(const uint8_t *buf, size_t len,
    loyalty_attrib_t *a);

/* what brought a member, as the event that referred them found it */
typedef struct {
    const char         *code;
    size_t              code_len;       /* 0: a named referrer */
    const char         *campaign;       /* the code's */
    size_t              campaign_len;
    const char         *r1;
    size_t              r1_len;
    const char         *r2;             /* r1's referrer; 0: none */
    size_t              r2_len;
} loyalty_stats_source_t;


/*
 * Called when an event gives the member their referrer src->r1: keeps
 * the attribution (the click time clicked_at, 0 for the event's) for
 * life, and counts nothing.  A member with orders before counts only
 * orders after the last of them.
 */
int loyalty_stats_attribute(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t len, const loyalty_stats_source_t *src,
    int64_t at, int64_t clicked_at, uint32_t orders, int64_t last_order_at);

/*
 * Counts an applied event against its member's attribution: into acc
 * when not NULL (then written by loyalty_stats_flush()), else straight
 * into the store.
 */
int loyalty_stats_event(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, const loyalty_stats_event_t *e);

/* counts a member's move from stage from (-1: new) to stage to */
int loyalty_stats_move(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, int from, int to, int64_t at);

void loyalty_stats_acc_init(loyalty_stats_acc_t *acc);
/* the hash of a key or name, for the accumulator and a question's sums */
uint32_t loyalty_stats_hash(const uint8_t *key, size_t len);
/*
 * Writes what acc holds into txn and empties it: the rows of names as
 * a pending delta (loyalty_stats_pend.c), the rest in key order; folds
 * the pending deltas when there are LOYALTY_STATS_PENDING_MAX.
 */
int loyalty_stats_flush(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc);
/* the rows of acc with a key into the day counters, in key order */
int loyalty_stats_write_acc(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc);
/*
 * The rows e[0..n) sorted by loyalty_stats_row_cmp() added to their
 * records at cur (loyalty_stats_block.c): a block's rows spliced into
 * it with one read and one write; rows of len 0 skipped
 */
int loyalty_stats_row_cmp(const void *a, const void *b);
int loyalty_stats_write_rows(MDB_cursor *cur,
    const loyalty_stats_acc_entry_t *e, size_t n);

/*
 * Pending deltas (loyalty_stats_pend.c).  _pend_put() takes the rows of
 * names of acc into one pending delta (their len set to 0)
 * unless there are more than LOYALTY_STATS_PENDING_ROWS, and says how
 * many deltas are pending; _fold() adds every pending delta to the day
 * counters and deletes it, in txn: counted once, lost never.
 */
int loyalty_stats_pend_put(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, uint64_t *pending);
int loyalty_stats_fold(loyalty_store_t *st, MDB_txn *txn);
/* a pending delta's value: 0 when it decodes, or -1 */
int loyalty_stats_pend_check(const uint8_t *buf, size_t len);
void loyalty_stats_acc_free(loyalty_stats_acc_t *acc);

/*
 * Counts a flush of a code's clicks on a day (delta as the clicks
 * record's counters) against the code, its campaign, its member and
 * the day.
 */
int loyalty_stats_clicks(loyalty_store_t *st, MDB_txn *txn,
    const char *code, size_t len, int64_t day, const uint64_t *delta);

/*
 * Adds d to the counters of (kind, day, name): in acc, or in the store
 * when acc is NULL (to a record that does not decode as to none).
 */
int loyalty_stats_add(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, int kind, int64_t day, const char *name,
    size_t len, const int64_t *d);

/* the stats database's records */
size_t loyalty_stats_key(int kind, int64_t day, const char *name, size_t len,
    uint8_t *key);
/* the record's length; buf holds LOYALTY_STATS_REC_MAX bytes */
size_t loyalty_stats_encode(const int64_t *c, uint8_t *buf);
int loyalty_stats_decode(const uint8_t *buf, size_t len, int64_t *c);
/* sets only the counters present, bit i of *present for counter i */
int loyalty_stats_decode_present(const uint8_t *buf, size_t len, int64_t *c,
    unsigned *present);
/*
 * Adds the record's counters to c: 0; or -1 when it does not decode,
 * what it added to c then added to undo too (c less undo as it was)
 */
int loyalty_stats_decode_add(const uint8_t *buf, size_t len, int64_t *c,
    int64_t *undo);

/* the block kind of a day kind ("c" "C"...), or 0 for one without */
int loyalty_stats_block_kind(int kind);
/* the first day of the block of day */
int64_t loyalty_stats_block_day(int64_t day);
/* the days from..to of the block that starts at block: bit i, day i */
uint32_t loyalty_stats_block_mask(int64_t block, int64_t from, int64_t to);
/*
 * Adds the counters of the days of a block record that want has (bit
 * i: its day i; days lo..hi, one run of bits) to c: 0; 1 when it has
 * none of those days, -1 when the days it reads do not decode (c then
 * as it was).  A block keeps each day's running sums: two days are
 * decoded, the others skipped (loyalty_stats_block_add(), for many).
 */
int loyalty_stats_block_sum(const uint8_t *buf, size_t len, uint32_t want,
    int64_t *c);
/* 0 when every byte of a block record decodes, and every day counts */
int loyalty_stats_block_check(const uint8_t *buf, size_t len);
/* the days a block record holds (bit i: its day i); 0 if it has none */
uint32_t loyalty_stats_block_days(const uint8_t *buf, size_t len);
/*
 * Moves the counters of the record key, val (of a day or a block of
 * kind "r" or "R") to the name to: added to to's records, key deleted;
 * 0, or an LMDB error.  A record that does not decode stays.
 */
int loyalty_stats_rename(loyalty_store_t *st, MDB_txn *txn,
    const MDB_val *key, const MDB_val *val, const char *to, size_t len);


#endif /* _LOYALTY_STATS_H_INCLUDED_ */
