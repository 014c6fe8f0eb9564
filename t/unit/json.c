/*
 * Unit tests of loyalty_json.c: member and tier records to and from the
 * JSON of schema/member.schema.json and schema/tier.schema.json, and the
 * field-table reader loyalty_json_read().
 */

#include <string.h>

#include "loyalty_json.h"
#include "tap.h"


#define ID64       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789_."
#define GOLD8      "\xe9\x87\x91\xe9\x87\x91\xe9\x87\x91\xe9\x87\x91" \
                   "\xe9\x87\x91\xe9\x87\x91\xe9\x87\x91\xe9\x87\x91"
#define GOLD64     GOLD8 GOLD8 GOLD8 GOLD8 GOLD8 GOLD8 GOLD8 GOLD8
#define EMOJI8     "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" \
                   "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
#define EMOJI64    EMOJI8 EMOJI8 EMOJI8 EMOJI8 EMOJI8 EMOJI8 EMOJI8 EMOJI8

#define MEMBER(fields)  "{\"id\":\"alice\",\"tier\":\"gold\"," \
                        "\"stage\":\"fan\"" fields "}"
#define TIER(fields)    "{\"name\":\"gold\",\"rank\":1" fields "}"


typedef struct {
    const char  *json;
    const char  *err;           /* NULL: accepted */
    const char  *what;
} json_case_t;


static const json_case_t  member_cases[] = {
    { MEMBER(""), NULL, "only the required fields" },
    { MEMBER(",\"nick\":\"al\""), "unknown field \"nick\"", "unknown field" },
    { MEMBER(",\"Orders\":1"), "unknown field \"Orders\"",
      "field names are case-sensitive" },
    { MEMBER(",\"orders\":\"3\""), "\"orders\" must be an integer",
      "string for orders" },
    { MEMBER(",\"spend\":1.5"), "\"spend\" must be an integer",
      "1.5 for spend" },
    /* JSON Schema counts 100.0 as an integer; so do we, while exact */
    { MEMBER(",\"spend\":100.0"), NULL, "100.0 for spend" },
    { MEMBER(",\"spend\":1e3"), NULL, "1e3 for spend" },
    { MEMBER(",\"spend\":9007199254740994.0"), "\"spend\" must be an integer",
      "a real past 2^53 for spend" },
    { MEMBER(",\"points\":null"), "\"points\" must be an integer",
      "null for points" },
    { MEMBER(",\"blocked\":\"true\""), "\"blocked\" must be a boolean",
      "string \"true\" for blocked" },
    { MEMBER(",\"blocked\":1"), "\"blocked\" must be a boolean",
      "1 for blocked" },
    { MEMBER(",\"referrer\":null"), "\"referrer\" must be a string",
      "null for referrer" },
    { "{\"id\":\"alice\",\"tier\":5,\"stage\":\"fan\"}",
      "\"tier\" must be a string", "number for tier" },
    { "{\"id\":[\"alice\"],\"tier\":\"gold\",\"stage\":\"fan\"}",
      "\"id\" must be a string", "array for id" },
    { "{\"tier\":\"gold\",\"stage\":\"fan\"}", "\"id\" is required",
      "missing id" },
    { "{\"id\":\"alice\",\"stage\":\"fan\"}", "\"tier\" is required",
      "missing tier" },
    { "{\"id\":\"alice\",\"tier\":\"gold\"}", "\"stage\" is required",
      "missing stage" },
    { "{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"gold\"}",
      "\"stage\" must be one of prospect, fan, customer, member, partner",
      "unknown stage" },
    { "{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"Fan\"}",
      "\"stage\" must be one of", "stage in the wrong case" },
    { "{\"id\":\"" ID64 "x\",\"tier\":\"gold\",\"stage\":\"fan\"}",
      "\"id\" must be 1-64 characters of [A-Za-z0-9_.-]", "id of 65 chars" },
    { "{\"id\":\"" ID64 "\",\"tier\":\"gold\",\"stage\":\"fan\"}", NULL,
      "id of 64 chars" },
    { "{\"id\":\"\",\"tier\":\"gold\",\"stage\":\"fan\"}",
      "\"id\" must be 1-64", "empty id" },
    { "{\"id\":\"al ice\",\"tier\":\"gold\",\"stage\":\"fan\"}",
      "\"id\" must be 1-64", "space in id" },
    { "{\"id\":\"a\\u0000b\",\"tier\":\"gold\",\"stage\":\"fan\"}",
      "\"id\" must be 1-64", "NUL in id" },
    { "{\"id\":\"alice\",\"tier\":\"gold~\",\"stage\":\"fan\"}",
      "\"tier\" must be 1-32 characters of [A-Za-z0-9_.-]", "'~' in tier" },
    { "{\"id\":\"alice\",\"tier\":\"abcdefghijklmnopqrstuvwxyz0123456\","
      "\"stage\":\"fan\"}", "\"tier\" must be 1-32", "tier of 33 chars" },
    { MEMBER(",\"referrer\":\"alice\""),
      "a member cannot be their own referrer", "self-referrer" },
    { MEMBER(",\"referrer\":\"alice.\""), NULL,
      "referrer that extends the id" },
    { MEMBER(",\"referrer\":\"bo b\""), "\"referrer\" must be a member id",
      "space in referrer" },
    { MEMBER(",\"referrer\":\"\""), "\"referrer\" must be a member id",
      "empty referrer" },
    { MEMBER(",\"birthday\":\"02-29\""), NULL, "birthday 02-29" },
    { MEMBER(",\"birthday\":\"02-30\""), "\"birthday\" must be MM-DD",
      "birthday 02-30" },
    { MEMBER(",\"birthday\":\"13-01\""), "\"birthday\" must be MM-DD",
      "birthday 13-01" },
    { MEMBER(",\"birthday\":\"1-01\""), "\"birthday\" must be MM-DD",
      "birthday 1-01" },
    { MEMBER(",\"birthday\":\"2000-01-01\""), "\"birthday\" must be MM-DD",
      "birthday with a year" },
    { MEMBER(",\"joined_at\":\"2024-13-01T00:00:00Z\""),
      "\"joined_at\" must be an RFC 3339 date-time", "joined_at month 13" },
    { MEMBER(",\"first_order_at\":\"yesterday\""),
      "\"first_order_at\" must be an RFC 3339 date-time",
      "first_order_at not a date" },
    { MEMBER(",\"last_order_at\":\"2024-01-01T00:00:00\""),
      "\"last_order_at\" must be an RFC 3339 date-time",
      "last_order_at without an offset" },
    { MEMBER(",\"last_order_at\":\"2023-02-29T00:00:00Z\""),
      "\"last_order_at\" must be an RFC 3339 date-time",
      "last_order_at on 2023-02-29" },
    { MEMBER(",\"spend\":-1"),
      "\"spend\" must be between 0 and 9223372036854775807",
      "negative spend" },
    { MEMBER(",\"spend\":9223372036854775807"), NULL, "spend INT64_MAX" },
    { MEMBER(",\"orders\":4294967296"),
      "\"orders\" must be between 0 and 4294967295", "orders 4294967296" },
    { MEMBER(",\"orders\":-1"), "\"orders\" must be between 0 and",
      "orders -1" },
    { MEMBER(",\"orders\":4294967295"), NULL, "orders 4294967295" },
    { MEMBER(",\"points\":-9223372036854775808"),
      "\"points\" must be between -1000000000000 and 1000000000000",
      "points INT64_MIN" },
    { MEMBER(",\"points\":-1000000000000"), NULL, "points -10^12" },
    { MEMBER(",\"points\":1000000000001"),
      "\"points\" must be between -1000000000000 and 1000000000000",
      "points 10^12 + 1" },
    { MEMBER(",\"joined_at\":\"1999-12-31T23:59:59Z\""),
      "\"joined_at\" must be between 2000-01-01T00:00:00Z and "
      "2100-12-31T23:59:59Z", "joined_at in 1999" },
    { MEMBER(",\"last_order_at\":\"2100-12-31T23:59:59-00:01\""),
      "\"last_order_at\" must be between 2000-01-01T00:00:00Z and "
      "2100-12-31T23:59:59Z", "last_order_at in 2101 by its offset" },
    { MEMBER(",\"first_order_at\":\"2000-01-01T00:00:00Z\""), NULL,
      "first_order_at at the window's first second" },
    { MEMBER(",\"blocked\":false"), NULL, "blocked false" },
    { "[\"alice\"]", "expected a JSON object", "an array" },
    { "\"alice\"", "expected a JSON object", "a string" },
};


static const json_case_t  tier_cases[] = {
    { TIER(""), NULL, "only the required fields" },
    { TIER(",\"label\":\"" GOLD64 "\""), NULL,
      "label of 64 CJK characters" },
    { TIER(",\"label\":\"" GOLD64 "\\u91d1\""),
      "\"label\" must be at most 64 characters",
      "label of 65 CJK characters" },
    { TIER(",\"label\":\"" EMOJI64 "\""), NULL,
      "label of 64 four-byte characters (256 bytes)" },
    { TIER(",\"label\":\"" EMOJI64 "a\""), "\"label\" must be at most 64",
      "label of 65 characters, 257 bytes" },
    { TIER(",\"label\":\"a\\u0000b\""), "\"label\" must be at most 64",
      "NUL in label" },
    { TIER(",\"discount_bp\":10000"), NULL, "discount_bp 10000" },
    { TIER(",\"discount_bp\":10001"),
      "\"discount_bp\" must be between 0 and 10000", "discount_bp 10001" },
    { TIER(",\"discount_bp\":-1"), "\"discount_bp\" must be between",
      "discount_bp -1" },
    { TIER(",\"discount_bp\":\"5\""), "\"discount_bp\" must be an integer",
      "string for discount_bp" },
    { "{\"name\":\"gold\",\"rank\":2147483647}", NULL, "rank INT32_MAX" },
    { "{\"name\":\"gold\",\"rank\":-2147483648}", NULL, "rank INT32_MIN" },
    { "{\"name\":\"gold\",\"rank\":2147483648}",
      "\"rank\" must be between -2147483648 and 2147483647",
      "rank INT32_MAX + 1" },
    { "{\"name\":\"gold\",\"rank\":-2147483649}", "\"rank\" must be between",
      "rank INT32_MIN - 1" },
    { "{\"name\":\"gold\",\"rank\":1.0}", NULL, "rank 1.0" },
    { "{\"name\":\"gold\",\"rank\":1.25}", "\"rank\" must be an integer",
      "rank 1.25" },
    { "{\"name\":\"gold\"}", "\"rank\" is required", "missing rank" },
    { "{\"rank\":1}", "\"name\" is required", "missing name" },
    { "{\"name\":\"go ld\",\"rank\":1}", "\"name\" must be 1-32",
      "space in name" },
    { TIER(",\"colour\":\"gold\""), "unknown field \"colour\"",
      "unknown field" },
};


static json_t *
load(const char *text)
{
    json_t        *obj;
    json_error_t   error;

    /* NUL and bare values get through, to test the decoders' own checks */
    obj = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &error);
    if (obj == NULL) {
        diag("json_loads: %s in %s", error.text, text);
    }

    return obj;
}


static void
test_member_round_trip(void)
{
    char              err[LOYALTY_ERRLEN];
    size_t            id_len, n;
    json_t           *in, *out, *want;
    uint8_t           buf[LOYALTY_MEMBER_MAX];
    const char       *id;
    loyalty_member_t  m, d;

    in = load("{\"id\":\"alice.b\",\"tier\":\"gold\",\"stage\":\"customer\","
              "\"referrer\":\"bob\",\"joined_at\":\"2023-11-14T22:13:20Z\","
              "\"first_order_at\":\"2024-01-02T03:04:05Z\","
              "\"last_order_at\":\"2024-02-29T23:59:59Z\","
              "\"orders\":42,\"spend\":1234567,\"points\":-50,"
              "\"birthday\":\"02-29\",\"blocked\":true}");

    err[0] = '\0';
    if (!ok(loyalty_member_from_json(in, &id, &id_len, &m, err,
                                     sizeof(err))
            == 0,
            "member with every field decodes"))
    {
        diag("%s", err);
    }

    ok(id_len == 7 && memcmp(id, "alice.b", 7) == 0
       && m.tier_len == 4 && memcmp(m.tier, "gold", 4) == 0
       && m.referrer_len == 3 && memcmp(m.referrer, "bob", 3) == 0
       && m.stage == LOYALTY_STAGE_CUSTOMER
       && m.flags == LOYALTY_MEMBER_FLAGS
       && m.joined_at == 1700000000 && m.first_order_at == 1704164645
       && m.last_order_at == 1709251199
       && m.orders == 42 && m.spend == 1234567 && m.points == -50
       && m.birth_month == 2 && m.birth_day == 29,
       "member with every field: decoded values");

    out = loyalty_member_to_json(id, id_len, &m);
    ok(out && json_equal(out, in), "member with every field: to_json "
       "gives back the input");
    json_decref(out);

    /* and through the binary record, as loyaltyctl import and get do */
    n = loyalty_member_encode(&m, buf);
    out = NULL;
    if (loyalty_member_decode(buf, n, &d) == 0) {
        out = loyalty_member_to_json(id, id_len, &d);
    }
    ok(out && json_equal(out, in), "member with every field: JSON, record, "
       "JSON round trip");
    json_decref(out);
    json_decref(in);

    in = load("{\"id\":\"a\",\"tier\":\"t\",\"stage\":\"prospect\"}");
    want = load("{\"id\":\"a\",\"tier\":\"t\",\"stage\":\"prospect\","
                "\"orders\":0,\"spend\":0,\"points\":0,\"blocked\":false}");
    out = NULL;
    if (loyalty_member_from_json(in, &id, &id_len, &m, err, sizeof(err))
        == 0)
    {
        out = loyalty_member_to_json(id, id_len, &m);
    }
    ok(out && json_equal(out, want) && m.flags == 0 && m.referrer == NULL,
       "minimal member: defaults written out, no optional fields");
    json_decref(out);
    json_decref(in);
    json_decref(want);

    in = load("{\"id\":\"a\",\"tier\":\"t\",\"stage\":\"partner\","
              "\"joined_at\":\"2024-01-01T08:00:00.75+08:00\","
              "\"first_order_at\":\"2023-12-31t18:30:00-05:30\","
              "\"last_order_at\":\"2100-12-31T23:59:59Z\","
              "\"blocked\":false}");
    want = load("{\"id\":\"a\",\"tier\":\"t\",\"stage\":\"partner\","
                "\"joined_at\":\"2024-01-01T00:00:00Z\","
                "\"first_order_at\":\"2024-01-01T00:00:00Z\","
                "\"last_order_at\":\"2100-12-31T23:59:59Z\","
                "\"orders\":0,\"spend\":0,\"points\":0,\"blocked\":false}");
    out = NULL;
    if (loyalty_member_from_json(in, &id, &id_len, &m, err, sizeof(err))
        == 0)
    {
        out = loyalty_member_to_json(id, id_len, &m);
    }
    ok(out && json_equal(out, want),
       "times in any offset come out in UTC, to the second");
    json_decref(out);
    json_decref(in);
    json_decref(want);
}


static void
test_member_cases(void)
{
    int               rc;
    char              err[LOYALTY_ERRLEN];
    size_t            i, id_len;
    json_t           *obj;
    const char       *id;
    loyalty_member_t  m;

    for (i = 0; i < nelts(member_cases); i++) {
        obj = load(member_cases[i].json);
        strcpy(err, "(no error)");
        rc = obj ? loyalty_member_from_json(obj, &id, &id_len, &m, err,
                                            sizeof(err))
                 : -2;

        if (member_cases[i].err == NULL) {
            if (!ok(rc == 0, "member: %s: accepted", member_cases[i].what)) {
                diag("%s", err);
            }

        } else {
            ok(rc == -1, "member: %s: refused", member_cases[i].what);
            has_str(err, member_cases[i].err, "member: %s: reason",
                    member_cases[i].what);
        }

        json_decref(obj);
    }
}


static void
test_tiers(void)
{
    int              rc;
    char             err[LOYALTY_ERRLEN];
    size_t           i, name_len;
    json_t          *in, *out;
    const char      *name;
    loyalty_tier_t   t;

    /* a label of four CJK characters, 12 bytes of UTF-8 */
    in = load("{\"name\":\"gold\",\"rank\":-3,\"discount_bp\":1500,"
              "\"label\":\"\xe9\xbb\x84\xe9\x87\x91"
              "\xe4\xbc\x9a\xe5\x91\x98\"}");
    out = NULL;
    if (loyalty_tier_from_json(in, &name, &name_len, &t, err, sizeof(err))
        == 0)
    {
        out = loyalty_tier_to_json(name, name_len, &t);
    }
    ok(out && json_equal(out, in) && t.rank == -3 && t.discount_bp == 1500
       && t.label_len == 12,
       "tier round trip");
    json_decref(out);
    json_decref(in);

    in = load("{\"name\":\"basic\",\"rank\":0}");
    out = NULL;
    if (loyalty_tier_from_json(in, &name, &name_len, &t, err, sizeof(err))
        == 0)
    {
        out = loyalty_tier_to_json(name, name_len, &t);
    }
    json_decref(in);
    in = load("{\"name\":\"basic\",\"rank\":0,\"discount_bp\":0,"
              "\"label\":\"\"}");
    ok(out && json_equal(out, in) && t.label_len == 0 && t.label != NULL,
       "tier defaults: no discount, empty label");
    json_decref(out);
    json_decref(in);

    for (i = 0; i < nelts(tier_cases); i++) {
        in = load(tier_cases[i].json);
        strcpy(err, "(no error)");
        rc = in ? loyalty_tier_from_json(in, &name, &name_len, &t, err,
                                         sizeof(err))
                : -2;

        if (tier_cases[i].err == NULL) {
            if (!ok(rc == 0, "tier: %s: accepted", tier_cases[i].what)) {
                diag("%s", err);
            }

        } else {
            ok(rc == -1, "tier: %s: refused", tier_cases[i].what);
            has_str(err, tier_cases[i].err, "tier: %s: reason",
                    tier_cases[i].what);
        }

        json_decref(in);
    }
}


typedef struct {
    loyalty_json_text_t   name;
    json_int_t            n;
    json_t               *obj;
    json_t               *any;
} read_t;

static const loyalty_json_field_t  read_members[] = {
    loyalty_json_member("name", JSON_STRING, read_t, name),
    loyalty_json_member("n", JSON_INTEGER, read_t, n),
    loyalty_json_member("obj", JSON_OBJECT, read_t, obj),
    loyalty_json_member("any", LOYALTY_JSON_ANY, read_t, any),
    LOYALTY_JSON_END
};


/* which members loyalty_json_read() finds, and what it copies */
static void
test_read(void)
{
    json_t    *in;
    read_t     r;
    uint32_t   found;

    in = json_loads("{\"name\":\"ann\",\"n\":7,\"obj\":{},\"any\":[1],"
                    "\"other\":1}", 0, NULL);
    found = loyalty_json_read(in, read_members, &r);
    is_int(found, 0xf, "read: every member found");
    ok(r.name.len == 3 && memcmp(r.name.data, "ann", 3) == 0 && r.n == 7
       && json_is_object(r.obj) && json_is_array(r.any),
       "read: the values copied");
    json_decref(in);

    /* another type counts as absent; an integral real is no integer */
    in = json_loads("{\"name\":5,\"n\":7.0,\"obj\":[],\"any\":\"x\"}", 0,
                    NULL);
    found = loyalty_json_read(in, read_members, &r);
    is_int(found, 0x8, "read: members of another type not found");
    ok(r.name.data == NULL && r.name.len == 0 && r.n == 0 && r.obj == NULL
       && json_is_string(r.any), "read: and left NULL or 0");
    json_decref(in);

    in = json_loads("[1]", 0, NULL);
    is_int(loyalty_json_read(in, read_members, &r), 0,
           "read: not an object, nothing found");
    json_decref(in);
}


int
main(void)
{
    size_t  i, refused;

    refused = 0;

    for (i = 0; i < nelts(member_cases); i++) {
        refused += member_cases[i].err != NULL;
    }

    for (i = 0; i < nelts(tier_cases); i++) {
        refused += tier_cases[i].err != NULL;
    }

    plan(6 + nelts(member_cases) + 2 + nelts(tier_cases) + refused + 5);

    test_member_round_trip();
    test_member_cases();
    test_tiers();
    test_read();

    return done();
}
