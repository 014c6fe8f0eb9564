/*
 * nginx-loyalty: share codes, their short-link targets, and the daily
 * click counts kept per code.
 *
 * Codes are case-insensitive: the store keys them in upper case, and
 * every code that comes from outside goes through loyalty_code_normalize()
 * before it is looked up.  Layouts: schema/lmdb-layout.md.
 */

#ifndef _LOYALTY_CODE_H_INCLUDED_
#define _LOYALTY_CODE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "loyalty_store.h"
#include "loyalty_util.h"
#include "loyalty_walk.h"


#define LOYALTY_CODE_MIN            3
#define LOYALTY_CODE_MAX            32
/* minted codes: 10 characters of a 31-character alphabet, 49.5 bits */
#define LOYALTY_CODE_MINT_LEN       10
#define LOYALTY_CODE_ALPHABET       "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

#define LOYALTY_CAMPAIGN_MAX        64
#define LOYALTY_TARGET_MAX          1024
#define LOYALTY_HOST_MAX            253

#define LOYALTY_CODE_VERSION        1
#define LOYALTY_CODE_FIXED          32
#define LOYALTY_CODE_REC_MAX        (LOYALTY_CODE_FIXED + LOYALTY_ID_MAX \
                                     + LOYALTY_CAMPAIGN_MAX \
                                     + LOYALTY_TARGET_MAX)

#define LOYALTY_CODE_REVOKED        0x01
#define LOYALTY_CODE_EXPIRES        0x02
#define LOYALTY_CODE_MAX_CLICKS     0x04
/* made weak on purpose: "vanity": true */
#define LOYALTY_CODE_VANITY         0x08
#define LOYALTY_CODE_FLAGS          0x0f

/*
 * A new code must be hard to guess by walking the code space: at least
 * 6 characters, 4 of them different, and at least 2^28 codes of its
 * length and character classes (digits 10, letters 26, "-" and "_" 2):
 * letters alone need 6 characters, digits alone 9.  Minted codes have
 * 31^10, 2^49.5.
 */
#define LOYALTY_CODE_STRONG_LEN     6
#define LOYALTY_CODE_STRONG_CHARS   4
#define LOYALTY_CODE_STRONG_BITS    28

#define LOYALTY_CLICKS_VERSION      1
#define LOYALTY_CLICKS_REC_LEN      56
/* code, a NUL, and the day as 4 big-endian bytes: a code's days in order */
#define LOYALTY_CLICKS_KEY_MAX      (LOYALTY_CODE_MAX + 5)


/*
 * A decoded code record.  member, campaign and target point into the
 * buffer that was decoded: valid only while it is.
 */
typedef struct {
    uint8_t         flags;
    uint8_t         member_len;
    uint8_t         campaign_len;   /* 0: no campaign */
    uint16_t        target_len;     /* 0: no target, short links use the
                                       fallback */
    int64_t         created_at;
    int64_t         expires_at;     /* with LOYALTY_CODE_EXPIRES */
    int64_t         max_clicks;     /* with LOYALTY_CODE_MAX_CLICKS, >= 1 */
    const char     *member;
    const char     *campaign;
    const char     *target;
} loyalty_code_t;


/* what a target is; see loyalty_target_check() */
typedef enum {
    LOYALTY_TARGET_INVALID = 0,
    LOYALTY_TARGET_PATH,            /* "/..." on the same site */
    LOYALTY_TARGET_URL              /* "http(s)://host[:port]/..." */
} loyalty_target_e;


typedef enum {
    LOYALTY_CLICK_TOTAL = 0,        /* every click */
    LOYALTY_CLICK_UNIQUE,           /* a visitor's first on the code in 24h */
    LOYALTY_CLICK_BOT,              /* bots and link-preview fetchers */
    LOYALTY_CLICK_SELF,             /* the owner clicking their own code */
    LOYALTY_CLICK_REJECTED,         /* revoked, expired, exhausted */
    LOYALTY_CLICK_ATTRIBUTED,       /* set a new attribution to the code */
    LOYALTY_CLICK_COUNTERS
} loyalty_click_counter_e;


extern const char  *loyalty_click_counter_names[LOYALTY_CLICK_COUNTERS];


/*
 * Copies a code to out in upper case; returns its length, or -1 when it
 * is not 3-32 characters of [A-Za-z0-9_-].  out holds LOYALTY_CODE_MAX.
 */
long loyalty_code_normalize(const char *s, size_t len, char *out);

/*
 * Whether a normalized code is strong enough to be created without
 * "vanity": see LOYALTY_CODE_STRONG_LEN.
 */
int loyalty_code_strong(const char *code, size_t len);

/*
 * Writes LOYALTY_CODE_MINT_LEN characters of LOYALTY_CODE_ALPHABET from
 * OpenSSL's RAND_bytes (rejection sampling: no bias); -1 on failure.
 */
int loyalty_code_mint(char *out);

/* 1-64 chars of [A-Za-z0-9_.-] */
int loyalty_valid_campaign(const char *s, size_t len);

/*
 * Checks a short-link target: a path ("/" not followed by "/" or "\") or
 * an http or https URL whose authority is a host name with an optional
 * port and no user information.  Targets at most LOYALTY_TARGET_MAX bytes
 * of printable ASCII other than "\" and space: a browser must not be able
 * to read another site into it.  For a URL, *host and *host_len give the
 * host name (without the port).
 */
loyalty_target_e loyalty_target_check(const char *s, size_t len,
    const char **host, size_t *host_len);

/*
 * The one host name check, for targets, loyalty_share_hosts and
 * loyaltyctl's --hosts: labels of letters, digits and "-", not starting
 * or ending with "-", joined by single dots, at most LOYALTY_HOST_MAX
 * characters.
 */
int loyalty_valid_host(const char *s, size_t len);
/* two host names, compared without regard to case */
int loyalty_host_equal(const char *a, size_t alen, const char *b,
    size_t blen);
/*
 * Whether host (as found by loyalty_target_check) is one of the n names
 * in hosts, compared without regard to case.
 */
int loyalty_host_allowed(const char *host, size_t host_len,
    const char *const *hosts, const size_t *lens, size_t n);

/* encoder returns the record length; buf holds LOYALTY_CODE_REC_MAX */
size_t loyalty_code_encode(const loyalty_code_t *c, uint8_t *buf);
/* 0, or -1 on a record that is not a valid v1 code record */
int loyalty_code_decode(const uint8_t *buf, size_t len, loyalty_code_t *c);
/* the kind of the codes' records */
extern const loyalty_store_rec_t  loyalty_code_rec;
/*
 * The code record of code, decoded in place (valid until txn writes):
 * 0, MDB_NOTFOUND, MDB_CORRUPTED, or an LMDB error.
 */
int loyalty_code_get(loyalty_store_t *st, MDB_txn *txn, const char *code,
    size_t len, loyalty_code_t *c);

/*
 * Walks the share codes of member (one pass over them all): visit() is
 * handed the walk, its w->data the data given here, and each code of the
 * member, decoded from the map (copy or encode it before writing).
 */
typedef int (*loyalty_code_visit_pt)(loyalty_walk_t *w, loyalty_code_t *c);

int loyalty_code_walk_member(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t len, loyalty_code_visit_pt visit, void *data);

/*
 * Writes the clicks key of a normalized code and a day; returns its
 * length, or 0 for a code that is not normalized or a day outside
 * 1970-01-01 to 9999-12-31 (0 to 2932896).
 */
size_t loyalty_clicks_key(const char *code, size_t len, int64_t day,
    uint8_t *key);
/* splits a clicks key; -1 when it is not one */
int loyalty_clicks_key_parse(const uint8_t *key, size_t len,
    const char **code, size_t *code_len, int64_t *day);

/* counts[LOYALTY_CLICK_COUNTERS]; buf holds LOYALTY_CLICKS_REC_LEN */
void loyalty_clicks_encode(const uint64_t *counts, uint8_t *buf);
int loyalty_clicks_decode(const uint8_t *buf, size_t len, uint64_t *counts);


#endif /* _LOYALTY_CODE_H_INCLUDED_ */
