/*
 * Unit tests of loyalty_record.c: the member and tier records of the
 * LMDB store (schema/lmdb-layout.md).
 */

#include <string.h>

#include "loyalty_record.h"
#include "tap.h"


#define TIER32     "platinum.plus-tier_0123456789ABC"
#define ID64       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789_-"
#define EMOJI16    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80"
#define LABEL256   EMOJI16 EMOJI16 EMOJI16 EMOJI16


typedef struct {
    size_t       offset;
    uint8_t      value;
    int          rc;
    const char  *what;
} patch_case_t;


/*
 * A customer with a birthday on 12-25, joined 1969-12-31 (-86400),
 * first order 1700000000, last order 1712345678, spend 123456789,
 * points -5, orders 0x01020304, tier "gold", referrer "bob": the bytes
 * written out from the table in schema/lmdb-layout.md.
 */
static const uint8_t  golden_member[] = {
    0x01,                                           /* version */
    0x02,                                           /* stage: customer */
    0x1e, 0x00,                                     /* flags */
    0x0c,                                           /* birth month */
    0x19,                                           /* birth day */
    0x04,                                           /* tier length */
    0x03,                                           /* referrer length */
    0x80, 0xae, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, /* joined_at */
    0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, /* first_order_at */
    0x4e, 0x52, 0x10, 0x66, 0x00, 0x00, 0x00, 0x00, /* last_order_at */
    0x15, 0xcd, 0x5b, 0x07, 0x00, 0x00, 0x00, 0x00, /* spend */
    0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* points */
    0x04, 0x03, 0x02, 0x01,                         /* orders */
    0x00, 0x00, 0x00, 0x00,                         /* reserved */
    'g', 'o', 'l', 'd',
    'b', 'o', 'b'
};


/* rank -2, discount 15.00%, label "VIP" */
static const uint8_t  golden_tier[] = {
    0x01,                                           /* version */
    0x00,                                           /* reserved */
    0xdc, 0x05,                                     /* discount_bp */
    0xfe, 0xff, 0xff, 0xff,                         /* rank */
    0x03, 0x00,                                     /* label length */
    'V', 'I', 'P'
};


/* single-byte changes to golden_member and what decode must make of them */
static const patch_case_t  member_patches[] = {
    { 0, 0x00, -1, "version 0" },
    { 0, 0x02, -1, "version 2" },
    { 0, 0xff, -1, "version 255" },
    { 1, 0x04, 0, "stage 4 (partner)" },
    { 1, 0x05, -1, "stage 5" },
    { 1, 0xff, -1, "stage 255" },
    { 2, 0x1f, 0, "all five flags" },
    { 2, 0x3e, -1, "flag 0x0020" },
    { 2, 0x9e, -1, "flag 0x0080" },
    { 3, 0x01, -1, "flag 0x0100" },
    { 3, 0x80, -1, "flag 0x8000" },
    { 2, 0x1c, -1, "birth date without the birthday flag" },
    { 4, 0x00, -1, "birth month 0" },
    { 4, 0x0d, -1, "birth month 13" },
    { 5, 0x00, -1, "birth day 0" },
    { 5, 0x1f, 0, "birth day 31" },
    { 5, 0x20, -1, "birth day 32" },
    { 39, 0x80, -1, "negative spend" },
    { 39, 0x7f, 0, "spend near INT64_MAX" },
    { 52, 0x01, -1, "reserved byte 52" },
    { 53, 0x01, -1, "reserved byte 53" },
    { 54, 0x01, -1, "reserved byte 54" },
    { 55, 0x80, -1, "reserved byte 55" },
    { 56, '.', 0, "'.' in the tier name" },
    { 56, '~', -1, "'~' in the tier name" },
    { 57, ' ', -1, "' ' in the tier name" },
    { 58, '/', -1, "'/' in the tier name" },
    { 59, 0x00, -1, "NUL in the tier name" },
    { 59, 0xc3, -1, "non-ASCII byte in the tier name" },
    { 60, '@', -1, "'@' in the referrer" },
    { 62, 0x00, -1, "NUL in the referrer" },
};


static int
member_eq(const loyalty_member_t *got, const loyalty_member_t *want)
{
    int  bad;

    bad = 0;

#define member_field(f)                                                      \
    if (got->f != want->f) {                                                 \
        diag("%s: got %lld, expected %lld", #f, (long long) got->f,         \
             (long long) want->f);                                          \
        bad++;                                                               \
    }

    member_field(flags);
    member_field(stage);
    member_field(birth_month);
    member_field(birth_day);
    member_field(tier_len);
    member_field(referrer_len);
    member_field(orders);
    member_field(joined_at);
    member_field(first_order_at);
    member_field(last_order_at);
    member_field(spend);
    member_field(points);

#undef member_field

    if (got->tier_len == want->tier_len
        && memcmp(got->tier, want->tier, want->tier_len) != 0)
    {
        diag("tier: got \"%.*s\"", (int) got->tier_len, got->tier);
        bad++;
    }

    if (got->referrer_len == want->referrer_len && want->referrer_len
        && memcmp(got->referrer, want->referrer, want->referrer_len) != 0)
    {
        diag("referrer: got \"%.*s\"", (int) got->referrer_len,
             got->referrer);
        bad++;
    }

    return bad == 0;
}


static int
peek_agrees(const uint8_t *buf, size_t len, const loyalty_member_t *m)
{
    size_t       tier_len;
    uint8_t      stage;
    int64_t      points;
    uint16_t     flags;
    const char  *tier;

    return loyalty_member_peek(buf, len, &stage, &flags, &points, &tier,
                               &tier_len) == 0
           && stage == m->stage && flags == m->flags && points == m->points
           && tier == m->tier && tier_len == m->tier_len;
}


static int
peek_fails(const uint8_t *buf, size_t len)
{
    size_t       tier_len;
    uint8_t      stage;
    int64_t      points;
    uint16_t     flags;
    const char  *tier;

    return loyalty_member_peek(buf, len, &stage, &flags, &points, &tier,
                               &tier_len) == -1;
}


/* every length shorter than the record, and one byte more, is refused */
static int
member_lengths_refused(const loyalty_member_t *m)
{
    int               bad;
    size_t            len, n;
    uint8_t           buf[LOYALTY_MEMBER_MAX + 1];
    loyalty_member_t  d;

    n = loyalty_member_encode(m, buf);
    buf[n] = 'x';
    bad = 0;

    for (len = 0; len <= n + 1; len++) {
        if (len == n) {
            continue;
        }

        if ((loyalty_member_decode(buf, len, &d) != -1
             || !peek_fails(buf, len))
            && bad++ < 5)
        {
            diag("a record of %zu bytes cut to %zu was accepted", n, len);
        }
    }

    return bad == 0;
}


static void
test_member_round_trip(void)
{
    size_t            n;
    uint8_t           buf[LOYALTY_MEMBER_MAX];
    loyalty_member_t  m, d;

    memset(&m, 0, sizeof(loyalty_member_t));
    m.flags = LOYALTY_MEMBER_FLAGS;
    m.stage = LOYALTY_STAGE_PARTNER;
    m.birth_month = 2;
    m.birth_day = 29;
    m.tier = TIER32;
    m.tier_len = 32;
    m.referrer = ID64;
    m.referrer_len = 64;
    m.orders = UINT32_MAX;
    m.joined_at = -1;
    m.first_order_at = 1700000000;
    m.last_order_at = LOYALTY_TIME_MAX;
    m.spend = INT64_MAX;
    m.points = INT64_MIN;

    n = loyalty_member_encode(&m, buf);
    is_int(n, LOYALTY_MEMBER_MAX, "largest member record is %d bytes",
           LOYALTY_MEMBER_MAX);

    memset(&d, 0xa5, sizeof(loyalty_member_t));
    is_int(loyalty_member_decode(buf, n, &d), 0, "largest member decodes");
    ok(member_eq(&d, &m), "largest member: every field round trips");
    ok(d.tier == (const char *) buf + 56 && d.referrer == d.tier + 32,
       "tier and referrer point into the record");
    ok(peek_agrees(buf, n, &d), "peek agrees with decode");
    ok(member_lengths_refused(&m),
       "largest member: every shorter length and one byte more refused");

    m.points = -1;
    m.spend = 0;
    m.orders = 0;
    m.joined_at = LOYALTY_TIME_MIN;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == 0 && member_eq(&d, &m),
       "points -1, spend 0, joined_at at year 0000 round trip");

    /* a time that RFC 3339 cannot write back does not decode */
    m.joined_at = LOYALTY_TIME_MIN - 1;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == -1, "joined_at before 0000");
    m.joined_at = 0;
    m.last_order_at = LOYALTY_TIME_MAX + 1;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == -1, "last_order_at after 9999");

    memset(&m, 0, sizeof(loyalty_member_t));
    m.stage = LOYALTY_STAGE_PROSPECT;
    m.tier = "t";
    m.tier_len = 1;

    n = loyalty_member_encode(&m, buf);
    is_int(n, 57, "smallest member record is 57 bytes");

    memset(&d, 0xa5, sizeof(loyalty_member_t));
    ok(loyalty_member_decode(buf, n, &d) == 0 && member_eq(&d, &m)
       && d.referrer == NULL,
       "smallest member round trips, without a referrer");
    ok(peek_agrees(buf, n, &d), "smallest member: peek agrees");
    ok(member_lengths_refused(&m),
       "smallest member: every shorter length and one byte more refused");
}


static void
test_member_golden(void)
{
    size_t            n, i;
    uint8_t           buf[LOYALTY_MEMBER_MAX];
    loyalty_member_t  m, d;

    memset(&m, 0, sizeof(loyalty_member_t));
    m.stage = LOYALTY_STAGE_CUSTOMER;
    m.flags = LOYALTY_MEMBER_BIRTHDAY | LOYALTY_MEMBER_JOINED
              | LOYALTY_MEMBER_FIRST_ORDER | LOYALTY_MEMBER_LAST_ORDER;
    m.birth_month = 12;
    m.birth_day = 25;
    m.tier = "gold";
    m.tier_len = 4;
    m.referrer = "bob";
    m.referrer_len = 3;
    m.joined_at = -86400;
    m.first_order_at = 1700000000;
    m.last_order_at = 1712345678;
    m.spend = 123456789;
    m.points = -5;
    m.orders = 0x01020304;

    n = loyalty_member_encode(&m, buf);
    is_int(n, sizeof(golden_member), "golden member: length");
    is_mem(buf, golden_member, sizeof(golden_member),
           "golden member: encoded bytes match the documented layout");

    ok(loyalty_member_decode(golden_member, sizeof(golden_member), &d) == 0
       && member_eq(&d, &m),
       "golden member: decoded fields");
    ok(peek_agrees(golden_member, sizeof(golden_member), &d),
       "golden member: peek reads stage, flags, points and tier");

    for (i = 0; i < nelts(member_patches); i++) {
        memcpy(buf, golden_member, sizeof(golden_member));
        buf[member_patches[i].offset] = member_patches[i].value;

        is_int(loyalty_member_decode(buf, sizeof(golden_member), &d),
               member_patches[i].rc, "member decode, %s: %s",
               member_patches[i].what,
               member_patches[i].rc ? "refused" : "accepted");
    }

    /* peek is what the request path trusts: it checks the header too */
    memcpy(buf, golden_member, sizeof(golden_member));
    buf[0] = 2;
    ok(peek_fails(buf, sizeof(golden_member)), "peek refuses version 2");

    memcpy(buf, golden_member, sizeof(golden_member));
    buf[1] = LOYALTY_STAGE_COUNT;
    ok(peek_fails(buf, sizeof(golden_member)), "peek refuses stage 5");
}


static void
test_member_lengths(void)
{
    size_t            n;
    uint8_t           buf[512];
    loyalty_member_t  m, d;

    memset(&m, 0, sizeof(loyalty_member_t));
    m.tier = ID64;
    m.referrer = "bob";
    m.referrer_len = 3;

    /* the encoder trusts its input: it writes what the decoder refuses */
    m.tier_len = 0;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == -1 && peek_fails(buf, n),
       "tier length 0 refused");

    m.tier_len = 33;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == -1 && peek_fails(buf, n),
       "tier length 33 refused");

    m.tier_len = 32;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == 0, "tier length 32 accepted");

    m.tier_len = 4;
    m.referrer = ID64 "x";
    m.referrer_len = 65;
    n = loyalty_member_encode(&m, buf);
    ok(loyalty_member_decode(buf, n, &d) == -1 && peek_fails(buf, n),
       "referrer length 65 refused");
}


static void
test_tiers(void)
{
    int             bad;
    size_t          n, len;
    uint8_t         buf[LOYALTY_TIER_REC_MAX + 16];
    loyalty_tier_t  t, d;

    t.rank = INT32_MIN;
    t.discount_bp = 10000;
    t.label = LABEL256;
    t.label_len = 256;

    n = loyalty_tier_encode(&t, buf);
    is_int(n, LOYALTY_TIER_REC_MAX, "largest tier record is %d bytes",
           LOYALTY_TIER_REC_MAX);
    ok(loyalty_tier_decode(buf, n, &d) == 0 && d.rank == INT32_MIN
       && d.discount_bp == 10000 && d.label_len == 256
       && d.label == (const char *) buf + 10
       && memcmp(d.label, LABEL256, 256) == 0,
       "rank INT32_MIN, discount 10000, label of 256 bytes round trip");

    bad = 0;

    for (len = 0; len <= n + 1; len++) {
        if (len != n && loyalty_tier_decode(buf, len, &d) != -1
            && bad++ < 5)
        {
            diag("a tier of %zu bytes cut to %zu was accepted", n, len);
        }
    }

    ok(bad == 0, "tier: every shorter length and one byte more refused");

    t.rank = INT32_MAX;
    t.discount_bp = 0;
    t.label = "";
    t.label_len = 0;

    n = loyalty_tier_encode(&t, buf);
    ok(n == 10 && loyalty_tier_decode(buf, n, &d) == 0
       && d.rank == INT32_MAX && d.discount_bp == 0 && d.label_len == 0,
       "rank INT32_MAX, no discount, empty label round trip");

    t.rank = -2;
    t.discount_bp = 1500;
    t.label = "VIP";
    t.label_len = 3;

    n = loyalty_tier_encode(&t, buf);
    is_int(n, sizeof(golden_tier), "golden tier: length");
    is_mem(buf, golden_tier, sizeof(golden_tier),
           "golden tier: encoded bytes match the documented layout");
    ok(loyalty_tier_decode(golden_tier, sizeof(golden_tier), &d) == 0
       && d.rank == -2 && d.discount_bp == 1500 && d.label_len == 3
       && memcmp(d.label, "VIP", 3) == 0,
       "golden tier: decoded fields");

    t.discount_bp = 10001;
    n = loyalty_tier_encode(&t, buf);
    is_int(loyalty_tier_decode(buf, n, &d), -1, "discount_bp 10001 refused");

    t.discount_bp = 0xffff;
    n = loyalty_tier_encode(&t, buf);
    is_int(loyalty_tier_decode(buf, n, &d), -1, "discount_bp 65535 refused");

    memcpy(buf, golden_tier, sizeof(golden_tier));
    buf[0] = 0;
    is_int(loyalty_tier_decode(buf, sizeof(golden_tier), &d), -1,
           "tier version 0 refused");
    buf[0] = 2;
    is_int(loyalty_tier_decode(buf, sizeof(golden_tier), &d), -1,
           "tier version 2 refused");

    memcpy(buf, golden_tier, sizeof(golden_tier));
    buf[1] = 1;
    is_int(loyalty_tier_decode(buf, sizeof(golden_tier), &d), -1,
           "tier with a non-zero reserved byte refused");

    /* a length field that disagrees with the label */
    memcpy(buf, golden_tier, sizeof(golden_tier));
    buf[8] = 4;
    is_int(loyalty_tier_decode(buf, sizeof(golden_tier), &d), -1,
           "tier label length longer than the record refused");
    buf[8] = 2;
    is_int(loyalty_tier_decode(buf, sizeof(golden_tier), &d), -1,
           "tier label length shorter than the record refused");

    t.label = LABEL256 "x";
    t.label_len = 257;
    n = loyalty_tier_encode(&t, buf);
    is_int(loyalty_tier_decode(buf, n, &d), -1,
           "tier label of 257 bytes refused");
}


static void
test_stages(void)
{
    int  i;

    for (i = 0; i < LOYALTY_STAGE_COUNT; i++) {
        is_int(loyalty_stage_parse(loyalty_stage_names[i],
                                   strlen(loyalty_stage_names[i])),
               i, "stage \"%s\"", loyalty_stage_names[i]);
    }

    ok(loyalty_stage_parse("Fan", 3) == -1
       && loyalty_stage_parse("fa", 2) == -1
       && loyalty_stage_parse("fans", 4) == -1
       && loyalty_stage_parse("", 0) == -1,
       "unknown stages refused");
    is_int(loyalty_stage_parse("member~", 6), LOYALTY_STAGE_MEMBER,
           "stage: only len bytes are compared");
}


int
main(void)
{
    plan(11 + 8 + nelts(member_patches) + 4 + 15 + LOYALTY_STAGE_COUNT + 2);

    test_member_round_trip();
    test_member_golden();
    test_member_lengths();
    test_tiers();
    test_stages();

    return done();
}
