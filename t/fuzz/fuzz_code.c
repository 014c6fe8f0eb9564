/*
 * nginx-loyalty: libFuzzer harness for loyalty_code.c.  Every input goes
 * through every function; the invariants are:
 *
 *   - loyalty_code_decode(): whatever decodes re-encodes to exactly the
 *     input bytes, and holds a valid member id, campaign and target;
 *   - loyalty_code_normalize(): accepts exactly 3-32 bytes of
 *     [A-Za-z0-9_-], and gives their upper case;
 *   - loyalty_target_check(): agrees with a second checker written here
 *     from the rules; an accepted target has no "\", no byte outside
 *     0x21-0x7e, and a URL's host lies within it, right after "://";
 *   - loyalty_host_allowed(): a host is allowed by a list holding it in
 *     another case, not by one holding it one byte shorter;
 *   - the clicks key and record: whatever parses re-encodes to exactly
 *     the input bytes;
 *   - loyalty_day(): midnight of the day <= t < the next midnight, in
 *     128 bits.
 */

#include <string.h>

#include "loyalty_code.h"
#include "fuzz.h"


static int
fuzz_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


static int
fuzz_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


static void
fuzz_decode(const uint8_t *buf, size_t len)
{
    int             rc;
    size_t          n, host_len;
    uint8_t         out[LOYALTY_CODE_REC_MAX];
    const char     *host;
    loyalty_code_t  c;

    memset(&c, 0x5a, sizeof(c));

    rc = loyalty_code_decode(buf, len, &c);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        return;
    }

    FUZZ_CHECK(len == LOYALTY_CODE_FIXED + (size_t) c.member_len
                      + c.campaign_len + c.target_len);
    FUZZ_CHECK(len <= LOYALTY_CODE_REC_MAX);
    FUZZ_CHECK((c.flags & ~LOYALTY_CODE_FLAGS) == 0);
    FUZZ_CHECK(c.member == (const char *) buf + LOYALTY_CODE_FIXED);
    FUZZ_CHECK(loyalty_valid_id(c.member, c.member_len));

    if (c.campaign_len) {
        FUZZ_CHECK(c.campaign == c.member + c.member_len);
        FUZZ_CHECK(loyalty_valid_campaign(c.campaign, c.campaign_len));

    } else {
        FUZZ_CHECK(c.campaign == NULL);
    }

    if (c.target_len) {
        FUZZ_CHECK(c.target == c.member + c.member_len + c.campaign_len);
        FUZZ_CHECK(loyalty_target_check(c.target, c.target_len, &host,
                                        &host_len)
                   != LOYALTY_TARGET_INVALID);

    } else {
        FUZZ_CHECK(c.target == NULL);
    }

    FUZZ_CHECK((c.flags & LOYALTY_CODE_EXPIRES) || c.expires_at == 0);
    FUZZ_CHECK((c.flags & LOYALTY_CODE_MAX_CLICKS) ? c.max_clicks >= 1
                                                   : c.max_clicks == 0);

    memset(out, 0xa5, sizeof(out));
    n = loyalty_code_encode(&c, out);

    FUZZ_CHECK(n == len);
    FUZZ_CHECK(memcmp(out, buf, len) == 0);
}


static void
fuzz_normalize(const char *s, size_t len)
{
    int     valid;
    long    n;
    char    out[LOYALTY_CODE_MAX + 1];
    size_t  i;

    valid = len >= 3 && len <= 32;

    for (i = 0; valid && i < len; i++) {
        valid = fuzz_alnum((unsigned char) s[i]) || s[i] == '_'
                || s[i] == '-';
    }

    out[LOYALTY_CODE_MAX] = '!';
    n = loyalty_code_normalize(s, len, out);

    FUZZ_CHECK(out[LOYALTY_CODE_MAX] == '!');
    FUZZ_CHECK(valid ? n == (long) len : n == -1);

    for (i = 0; valid && i < len; i++) {
        FUZZ_CHECK(out[i] == ((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32
                                                           : s[i]));
    }
}


/* one DNS label: 1-63 of [A-Za-z0-9-], no "-" at either end */
static int
fuzz_label_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!fuzz_alnum((unsigned char) s[i]) && s[i] != '-') {
            return 0;
        }
    }

    return 1;
}


static int
fuzz_prefix(const char *s, size_t len, const char *prefix)
{
    size_t  i;

    for (i = 0; prefix[i]; i++) {
        if (i == len || fuzz_lower((unsigned char) s[i]) != prefix[i]) {
            return 0;
        }
    }

    return 1;
}


/* the target rules, checked another way: split first, then test parts */
static loyalty_target_e
fuzz_target_oracle(const char *s, size_t len, size_t *host_at,
    size_t *host_len)
{
    size_t  i, scheme, auth_end, colon, dot, port;

    if (len == 0 || len > LOYALTY_TARGET_MAX) {
        return LOYALTY_TARGET_INVALID;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f
            || s[i] == '\\')
        {
            return LOYALTY_TARGET_INVALID;
        }
    }

    if (s[0] == '/') {
        return (len > 1 && s[1] == '/') ? LOYALTY_TARGET_INVALID
                                        : LOYALTY_TARGET_PATH;
    }

    if (fuzz_prefix(s, len, "http://")) {
        scheme = 7;

    } else if (fuzz_prefix(s, len, "https://")) {
        scheme = 8;

    } else {
        return LOYALTY_TARGET_INVALID;
    }

    auth_end = scheme;
    while (auth_end < len && !strchr("/?#", s[auth_end])) {
        auth_end++;
    }

    colon = auth_end;
    for (i = auth_end; i > scheme; i--) {
        if (s[i - 1] == ':') {
            colon = i - 1;
        }
    }

    if (colon < auth_end) {
        if (auth_end - colon - 1 < 1 || auth_end - colon - 1 > 5) {
            return LOYALTY_TARGET_INVALID;
        }

        port = 0;
        for (i = colon + 1; i < auth_end; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return LOYALTY_TARGET_INVALID;
            }
            port = port * 10 + (size_t) (s[i] - '0');
        }

        if (port == 0 || port > 65535) {
            return LOYALTY_TARGET_INVALID;
        }
    }

    if (colon - scheme == 0 || colon - scheme > LOYALTY_HOST_MAX) {
        return LOYALTY_TARGET_INVALID;
    }

    for (i = scheme; ; i = dot + 1) {
        for (dot = i; dot < colon && s[dot] != '.'; dot++) {
            /* void */
        }

        if (!fuzz_label_ok(s + i, dot - i)) {
            return LOYALTY_TARGET_INVALID;
        }

        if (dot == colon) {
            break;
        }
    }

    *host_at = scheme;
    *host_len = colon - scheme;

    return LOYALTY_TARGET_URL;
}


static void
fuzz_target(const char *s, size_t len)
{
    char              alt[LOYALTY_HOST_MAX + 1];
    size_t            i, host_len, want_at, want_len, lens[2];
    const char       *host, *hosts[2];
    loyalty_target_e  t, want;

    host = (const char *) 1;
    host_len = 99;
    want_at = 0;
    want_len = 0;

    t = loyalty_target_check(s, len, &host, &host_len);
    want = fuzz_target_oracle(s, len, &want_at, &want_len);

    FUZZ_CHECK(t == want);

    if (t == LOYALTY_TARGET_INVALID || t == LOYALTY_TARGET_PATH) {
        FUZZ_CHECK(host == NULL && host_len == 0);
    }

    if (t == LOYALTY_TARGET_INVALID) {
        return;
    }

    FUZZ_CHECK(len >= 1 && len <= LOYALTY_TARGET_MAX);
    FUZZ_CHECK(memchr(s, '\\', len) == NULL);

    for (i = 0; i < len; i++) {
        FUZZ_CHECK((unsigned char) s[i] >= 0x21
                   && (unsigned char) s[i] <= 0x7e);
    }

    if (t == LOYALTY_TARGET_PATH) {
        FUZZ_CHECK(s[0] == '/' && (len == 1 || s[1] != '/'));
        return;
    }

    FUZZ_CHECK(host == s + want_at && host_len == want_len);
    FUZZ_CHECK(host_len >= 1 && host_len <= LOYALTY_HOST_MAX);
    FUZZ_CHECK(host >= s + 7 && host + host_len <= s + len);
    FUZZ_CHECK(memcmp(host - 3, "://", 3) == 0);
    FUZZ_CHECK(memchr(host, '@', host_len) == NULL);
    FUZZ_CHECK(host + host_len == s + len
               || strchr(":/?#", host[host_len]) != NULL);

    /* the host in another case is allowed; one byte shorter it is not */
    for (i = 0; i < host_len; i++) {
        alt[i] = (char) (fuzz_lower((unsigned char) host[i]) >= 'a'
                         && fuzz_lower((unsigned char) host[i]) <= 'z'
                         ? host[i] ^ 0x20 : host[i]);
    }

    hosts[0] = "example.invalid";
    lens[0] = 15;
    hosts[1] = alt;
    lens[1] = host_len;

    FUZZ_CHECK(loyalty_host_allowed(host, host_len, hosts, lens, 2));

    lens[1] = host_len - 1;
    FUZZ_CHECK(!loyalty_host_allowed(host, host_len, hosts + 1, lens + 1, 1));
}


static void
fuzz_clicks(const uint8_t *buf, size_t len)
{
    int          rc;
    size_t       n, code_len;
    int64_t      day;
    uint8_t      key[LOYALTY_CLICKS_KEY_MAX], rec[LOYALTY_CLICKS_REC_LEN];
    uint64_t     counts[LOYALTY_CLICK_COUNTERS];
    const char  *code;

    rc = loyalty_clicks_key_parse(buf, len, &code, &code_len, &day);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc == 0) {
        FUZZ_CHECK(code == (const char *) buf && code_len + 5 == len);
        FUZZ_CHECK(day >= 0 && day <= 2932896);

        n = loyalty_clicks_key(code, code_len, day, key);
        FUZZ_CHECK(n == len && memcmp(key, buf, len) == 0);
    }

    rc = loyalty_clicks_decode(buf, len, counts);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc == 0) {
        loyalty_clicks_encode(counts, rec);
        FUZZ_CHECK(len == LOYALTY_CLICKS_REC_LEN
                   && memcmp(rec, buf, len) == 0);
    }
}


static void
fuzz_day(const uint8_t *buf, size_t len)
{
    int64_t   t, d;
    uint64_t  u;

    if (len < 8) {
        return;
    }

    u = loyalty_le_get(buf, 8);
    memcpy(&t, &u, sizeof(t));

    d = loyalty_day(t);

    FUZZ_CHECK((__int128) d * 86400 <= t);
    FUZZ_CHECK(t < ((__int128) d + 1) * 86400);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_normalize((const char *) data, size);
    fuzz_target((const char *) data, size);
    fuzz_clicks(data, size);
    fuzz_day(data, size);

    return 0;
}
