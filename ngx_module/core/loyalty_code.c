/*
 * nginx-loyalty: share codes, short-link targets, and the clicks kept per
 * code and day.
 */

#include <string.h>
#include <openssl/rand.h>

#include "loyalty_code.h"


#define LOYALTY_ALPHABET_LEN    (sizeof(LOYALTY_CODE_ALPHABET) - 1)
/* the largest multiple of the alphabet's size that a byte can reach */
#define LOYALTY_MINT_LIMIT      (256 - 256 % LOYALTY_ALPHABET_LEN)

/* 9999-12-31, the last day a time in range can fall on */
#define LOYALTY_DAY_MAX         2932896

#define LOYALTY_PORT_DIGITS     5
#define LOYALTY_DNS_LABEL_MAX   63


const char  *loyalty_click_counter_names[LOYALTY_CLICK_COUNTERS] = {
    "total", "unique", "bot", "self", "rejected", "attributed"
};


/* each character of a code, [A-Za-z0-9_-], as the store keys it; else 0 */
static const unsigned char  loyalty_code_upper[256] = {
    ['-'] = '-', ['_'] = '_',
    ['0'] = '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
    ['A'] = 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M',
            'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z',
    ['a'] = 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M',
            'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z'
};


static int
loyalty_code_char(unsigned char c)
{
    return loyalty_code_upper[c] != 0;
}


static unsigned char
loyalty_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}


long
loyalty_code_normalize(const char *s, size_t len, char *out)
{
    size_t         i;
    unsigned char  c;

    if (len < LOYALTY_CODE_MIN || len > LOYALTY_CODE_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = loyalty_code_upper[(unsigned char) s[i]];

        if (c == 0) {
            return -1;
        }

        out[i] = (char) c;
    }

    return (long) len;
}


int
loyalty_code_strong(const char *code, size_t len)
{
    size_t         i, k, distinct, classes;
    uint64_t       space;
    unsigned char  c;

    if (len < LOYALTY_CODE_STRONG_LEN) {
        return 0;
    }

    classes = 0;
    distinct = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) code[i];

        if (c >= '0' && c <= '9') {
            classes |= 1;

        } else if (c == '-' || c == '_') {
            classes |= 2;

        } else {
            classes |= 4;
        }

        for (k = 0; k < i && code[k] != code[i]; k++) {
            /* void */
        }

        if (k == i) {
            distinct++;
        }
    }

    if (distinct < LOYALTY_CODE_STRONG_CHARS) {
        return 0;
    }

    /* the codes an attacker walks: the classes used, to the length */
    space = 1;

    for (i = 0; i < len; i++) {
        space *= ((classes & 1) ? 10 : 0) + ((classes & 2) ? 2 : 0)
                 + ((classes & 4) ? 26 : 0);

        if (space >= (UINT64_C(1) << LOYALTY_CODE_STRONG_BITS)) {
            return 1;
        }
    }

    return 0;
}


int
loyalty_code_mint(char *out)
{
    size_t         i, k;
    unsigned char  rnd[32];

    i = 0;

    while (i < LOYALTY_CODE_MINT_LEN) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return -1;
        }

        for (k = 0; k < sizeof(rnd) && i < LOYALTY_CODE_MINT_LEN; k++) {
            /* bytes past the limit would favour the first characters */
            if (rnd[k] < LOYALTY_MINT_LIMIT) {
                out[i++] = LOYALTY_CODE_ALPHABET[rnd[k]
                                                 % LOYALTY_ALPHABET_LEN];
            }
        }
    }

    return 0;
}


int
loyalty_valid_campaign(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > LOYALTY_CAMPAIGN_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!loyalty_code_char((unsigned char) s[i]) && s[i] != '.') {
            return 0;
        }
    }

    return 1;
}


/*
 * A host name as DNS spells one: labels of letters, digits and "-", not
 * starting or ending with "-", joined by single dots.  Anything a browser
 * would read as user information, an IPv6 literal or a second host is not.
 */
int
loyalty_valid_host(const char *s, size_t len)
{
    size_t         i, label;
    unsigned char  c;

    if (len == 0 || len > LOYALTY_HOST_MAX) {
        return 0;
    }

    label = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return 0;
            }
            label = 0;
            continue;
        }

        if (c == '-') {
            if (label == 0) {
                return 0;
            }

        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                     || (c >= '0' && c <= '9')))
        {
            return 0;
        }

        if (++label > LOYALTY_DNS_LABEL_MAX) {
            return 0;
        }
    }

    return label != 0 && s[len - 1] != '-';
}


static int
loyalty_valid_port(const char *s, size_t len)
{
    size_t    i;
    uint32_t  port;

    if (len == 0 || len > LOYALTY_PORT_DIGITS) {
        return 0;
    }

    port = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        port = port * 10 + (uint32_t) (s[i] - '0');
    }

    return port >= 1 && port <= 65535;
}


static int
loyalty_prefix_ci(const char *s, size_t len, const char *prefix, size_t n)
{
    size_t  i;

    if (len < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (loyalty_lower((unsigned char) s[i]) != (unsigned char) prefix[i]) {
            return 0;
        }
    }

    return 1;
}


loyalty_target_e
loyalty_target_check(const char *s, size_t len, const char **host,
    size_t *host_len)
{
    size_t         i, start, end, colon;
    unsigned char  c;

    *host = NULL;
    *host_len = 0;

    if (len == 0 || len > LOYALTY_TARGET_MAX) {
        return LOYALTY_TARGET_INVALID;
    }

    /*
     * Browsers drop tabs and line breaks from URLs and read "\" as "/":
     * with none of them, what is checked here is what a browser follows.
     */
    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c < 0x21 || c > 0x7e || c == '\\') {
            return LOYALTY_TARGET_INVALID;
        }
    }

    if (s[0] == '/') {
        /* "//host" is a URL of another site, relative to the scheme */
        return (len == 1 || s[1] != '/') ? LOYALTY_TARGET_PATH
                                         : LOYALTY_TARGET_INVALID;
    }

    if (loyalty_prefix_ci(s, len, "http://", 7)) {
        start = 7;

    } else if (loyalty_prefix_ci(s, len, "https://", 8)) {
        start = 8;

    } else {
        return LOYALTY_TARGET_INVALID;
    }

    for (end = start; end < len; end++) {
        if (s[end] == '/' || s[end] == '?' || s[end] == '#') {
            break;
        }
    }

    /*
     * The authority is a host name and maybe a port: an "@" (user
     * information), "[" (an IPv6 literal) or any other byte fails.
     */
    for (colon = start; colon < end && s[colon] != ':'; colon++) {
        /* void */
    }

    if (!loyalty_valid_host(s + start, colon - start)) {
        return LOYALTY_TARGET_INVALID;
    }

    if (colon < end && !loyalty_valid_port(s + colon + 1, end - colon - 1)) {
        return LOYALTY_TARGET_INVALID;
    }

    *host = s + start;
    *host_len = colon - start;

    return LOYALTY_TARGET_URL;
}


int
loyalty_host_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t  k;

    if (alen != blen) {
        return 0;
    }

    for (k = 0; k < alen; k++) {
        if (loyalty_lower((unsigned char) a[k])
            != loyalty_lower((unsigned char) b[k]))
        {
            return 0;
        }
    }

    return 1;
}


int
loyalty_host_allowed(const char *host, size_t host_len,
    const char *const *hosts, const size_t *lens, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (loyalty_host_equal(host, host_len, hosts[i], lens[i])) {
            return 1;
        }
    }

    return 0;
}


#define loyalty_put_u16(p, v)  loyalty_le_put(p, (uint16_t) (v), 2)
#define loyalty_put_i64(p, v)  loyalty_le_put(p, (uint64_t) (v), 8)
#define loyalty_get_u16(p)     ((uint16_t) loyalty_le_get(p, 2))
#define loyalty_get_i64(p)     ((int64_t) loyalty_le_get(p, 8))


/*
 * code v1:
 *   0 version, 1 flags, 2 member length, 3 campaign length (0: none),
 *   4 target length (u16, 0: none), 6 reserved (u16, zero),
 *   8 created_at (i64, years 0000-9999), 16 expires_at (i64, years
 *   0000-9999 with its flag, else zero), 24 max_clicks (i64, >= 1 with
 *   its flag, else zero), 32 member id, then campaign, then target
 */

size_t
loyalty_code_encode(const loyalty_code_t *c, uint8_t *buf)
{
    uint8_t  *p;

    buf[0] = LOYALTY_CODE_VERSION;
    buf[1] = c->flags;
    buf[2] = c->member_len;
    buf[3] = c->campaign_len;
    loyalty_put_u16(buf + 4, c->target_len);
    loyalty_put_u16(buf + 6, 0);
    loyalty_put_i64(buf + 8, c->created_at);
    loyalty_put_i64(buf + 16, c->expires_at);
    loyalty_put_i64(buf + 24, c->max_clicks);

    p = buf + LOYALTY_CODE_FIXED;

    memcpy(p, c->member, c->member_len);
    p += c->member_len;

    if (c->campaign_len) {
        memcpy(p, c->campaign, c->campaign_len);
        p += c->campaign_len;
    }

    if (c->target_len) {
        memcpy(p, c->target, c->target_len);
        p += c->target_len;
    }

    return (size_t) (p - buf);
}


static int
loyalty_time_ok(int64_t t)
{
    return t >= LOYALTY_TIME_MIN && t <= LOYALTY_TIME_MAX;
}


int
loyalty_code_decode(const uint8_t *buf, size_t len, loyalty_code_t *c)
{
    size_t       host_len;
    const char  *host;

    if (len < LOYALTY_CODE_FIXED || buf[0] != LOYALTY_CODE_VERSION
        || (buf[1] & ~LOYALTY_CODE_FLAGS) || buf[6] || buf[7])
    {
        return -1;
    }

    c->flags = buf[1];
    c->member_len = buf[2];
    c->campaign_len = buf[3];
    c->target_len = loyalty_get_u16(buf + 4);
    c->created_at = loyalty_get_i64(buf + 8);
    c->expires_at = loyalty_get_i64(buf + 16);
    c->max_clicks = loyalty_get_i64(buf + 24);

    if (len != (size_t) LOYALTY_CODE_FIXED + c->member_len + c->campaign_len
               + c->target_len)
    {
        return -1;
    }

    c->member = (const char *) buf + LOYALTY_CODE_FIXED;
    c->campaign = c->campaign_len ? c->member + c->member_len : NULL;
    c->target = c->target_len
                ? c->member + c->member_len + c->campaign_len : NULL;

    if (!loyalty_valid_id(c->member, c->member_len)
        || (c->campaign_len
            && !loyalty_valid_campaign(c->campaign, c->campaign_len))
        || (c->target_len
            && loyalty_target_check(c->target, c->target_len, &host,
                                    &host_len)
               == LOYALTY_TARGET_INVALID))
    {
        return -1;
    }

    /* times that can be written as RFC 3339, and one encoding of each */
    if (!loyalty_time_ok(c->created_at)
        || ((c->flags & LOYALTY_CODE_EXPIRES) ? !loyalty_time_ok(c->expires_at)
                                              : c->expires_at != 0)
        || ((c->flags & LOYALTY_CODE_MAX_CLICKS) ? c->max_clicks < 1
                                                 : c->max_clicks != 0))
    {
        return -1;
    }

    return 0;
}


LOYALTY_STORE_REC(loyalty_code_rec, LOYALTY_DB_CODES, LOYALTY_CODE_REC_MAX,
                  loyalty_code_t, loyalty_code_decode, loyalty_code_encode);


int
loyalty_code_get(loyalty_store_t *st, MDB_txn *txn, const char *code,
    size_t len, loyalty_code_t *c)
{
    return loyalty_store_get_rec(txn, st, &loyalty_code_rec, code, len, NULL,
                                 c);
}


typedef struct {
    const char             *member;
    size_t                  len;
    loyalty_code_visit_pt   visit;
    void                   *data;
} loyalty_code_walking_t;


/* a code of the member goes to the visitor, with the caller's data */
static int
loyalty_code_of_member(loyalty_walk_t *w)
{
    int                      rc;
    loyalty_code_t           c;
    loyalty_code_walking_t  *cw = w->data;

    if (w->key.mv_size > LOYALTY_CODE_MAX
        || loyalty_code_decode(w->val.mv_data, w->val.mv_size, &c) != 0
        || c.member_len != cw->len
        || memcmp(c.member, cw->member, cw->len) != 0)
    {
        return LOYALTY_WALK_NEXT;
    }

    w->data = cw->data;
    rc = cw->visit(w, &c);
    w->data = cw;

    return rc;
}


int
loyalty_code_walk_member(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t len, loyalty_code_visit_pt visit, void *data)
{
    loyalty_code_walking_t  cw;

    cw.member = member;
    cw.len = len;
    cw.visit = visit;
    cw.data = data;

    return loyalty_walk(st, txn, LOYALTY_DB_CODES, NULL, 0, 0,
                        loyalty_code_of_member, &cw);
}


static int
loyalty_normalized(const char *code, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len < LOYALTY_CODE_MIN || len > LOYALTY_CODE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) code[i];

        if (!loyalty_code_char(c) || (c >= 'a' && c <= 'z')) {
            return 0;
        }
    }

    return 1;
}


size_t
loyalty_clicks_key(const char *code, size_t len, int64_t day, uint8_t *key)
{
    if (!loyalty_normalized(code, len) || day < 0 || day > LOYALTY_DAY_MAX) {
        return 0;
    }

    memcpy(key, code, len);

    /* a NUL sorts before any code character: "ABC"'s days before "ABCD" */
    key[len] = 0;
    loyalty_be32_put(key + len + 1, (uint32_t) day);

    return len + 5;
}


int
loyalty_clicks_key_parse(const uint8_t *key, size_t len, const char **code,
    size_t *code_len, int64_t *day)
{
    int64_t  d;

    if (len < LOYALTY_CODE_MIN + 5 || len > LOYALTY_CLICKS_KEY_MAX
        || key[len - 5] != 0
        || !loyalty_normalized((const char *) key, len - 5))
    {
        return -1;
    }

    d = loyalty_be32_get(key + len - 4);

    if (d > LOYALTY_DAY_MAX) {
        return -1;
    }

    *code = (const char *) key;
    *code_len = len - 5;
    *day = d;

    return 0;
}


/*
 * clicks v1:
 *   0 version, 1 reserved (7 bytes, zero), 8 the counters in the order of
 *   loyalty_click_counter_e (u64 each)
 */

void
loyalty_clicks_encode(const uint64_t *counts, uint8_t *buf)
{
    size_t  i;

    memset(buf, 0, 8);
    buf[0] = LOYALTY_CLICKS_VERSION;

    for (i = 0; i < LOYALTY_CLICK_COUNTERS; i++) {
        loyalty_le_put(buf + 8 + 8 * i, counts[i], 8);
    }
}


int
loyalty_clicks_decode(const uint8_t *buf, size_t len, uint64_t *counts)
{
    size_t  i;

    if (len != LOYALTY_CLICKS_REC_LEN || buf[0] != LOYALTY_CLICKS_VERSION) {
        return -1;
    }

    for (i = 1; i < 8; i++) {
        if (buf[i]) {
            return -1;
        }
    }

    for (i = 0; i < LOYALTY_CLICK_COUNTERS; i++) {
        counts[i] = loyalty_le_get(buf + 8 + 8 * i, 8);
    }

    return 0;
}
