/*
 * nginx-loyalty: libFuzzer harness for loyalty_bots.c.
 *
 * The input is a bots list and a User-Agent: two bytes (little-endian)
 * give the list's length, the list follows, the rest is the User-Agent.
 * Each goes into a buffer of its own exact size, so that ASan catches a
 * read past either.  Invariants:
 *
 *   - a list that fails adds nothing, and its message names a line;
 *   - a list that loads holds exactly the lines that are neither blank
 *     nor comments, trimmed and lower-cased, as a second reader written
 *     here finds them;
 *   - the index loyalty_bots_match() gives is that of a pattern that
 *     occurs in the User-Agent without regard to ASCII case, and it finds
 *     one exactly when a brute-force search over every pattern does.
 */

#include <stdlib.h>
#include <string.h>

#include "loyalty_bots.h"
#include "fuzz.h"


static int
fuzz_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


/* pat in ua, case-insensitively; at its start only if anchored */
static int
fuzz_occurs(const char *pat, size_t plen, int anchored, const char *ua,
    size_t len)
{
    size_t  i, k;

    for (i = 0; i + plen <= len && (i == 0 || !anchored); i++) {
        for (k = 0; k < plen; k++) {
            if (fuzz_lower((unsigned char) ua[i + k])
                != fuzz_lower((unsigned char) pat[k]))
            {
                break;
            }
        }

        if (k == plen) {
            return 1;
        }
    }

    return 0;
}


/*
 * The lines of a list that are patterns, compared in order with those
 * loaded from the first on; returns how many there are, or -1 if one
 * differs.
 */
static long
fuzz_list_oracle(const loyalty_bots_t *b, size_t first, const char *text,
    size_t len)
{
    long         n;
    size_t       i, plen, k;
    const char  *line, *end, *pat;

    n = 0;
    i = 0;

    while (i < len) {
        line = text + i;
        end = memchr(line, '\n', len - i);
        if (end == NULL) {
            end = text + len;
        }

        i = (size_t) (end - text) + 1;

        if (end > line && end[-1] == '\r') {
            end--;
        }

        while (end > line && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        while (line < end && (*line == ' ' || *line == '\t')) {
            line++;
        }

        if (line == end || *line == '#') {
            continue;
        }

        if (first + (size_t) n >= loyalty_bots_count(b)) {
            return -1;
        }

        pat = loyalty_bots_pattern(b, first + (size_t) n, &plen);

        /* "^..." is anchored, and kept without its "^" */
        if (*line == '^') {
            if (!loyalty_bots_anchored(b, first + (size_t) n)) {
                return -1;
            }

            line++;

        } else if (loyalty_bots_anchored(b, first + (size_t) n)) {
            return -1;
        }

        if (plen != (size_t) (end - line) || pat[plen] != '\0') {
            return -1;
        }

        for (k = 0; k < plen; k++) {
            if ((unsigned char) pat[k] != fuzz_lower((unsigned char) line[k])) {
                return -1;
            }
        }

        n++;
    }

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              rc, any;
    long             m;
    char             err[64], *text, *ua;
    size_t           i, k, text_len, ua_len, plen;
    const char      *pat;
    loyalty_bots_t  *b;

    if (size < 2) {
        return 0;
    }

    text_len = (size_t) (data[0] | data[1] << 8);
    if (text_len > size - 2) {
        text_len = size - 2;
    }

    ua_len = size - 2 - text_len;

    /* malloc(0) may give NULL: one byte more, never read */
    text = malloc(text_len + 1);
    ua = malloc(ua_len + 1);
    FUZZ_CHECK(text != NULL && ua != NULL);

    memcpy(text, data + 2, text_len);
    memcpy(ua, data + 2 + text_len, ua_len);

    b = loyalty_bots_new();
    FUZZ_CHECK(b != NULL);

    /* a list that loads first, so that a failing one has some to keep */
    rc = loyalty_bots_add_list(b, "curl/\n", 6, err, sizeof(err));
    FUZZ_CHECK(rc == 0 && loyalty_bots_count(b) == 1);

    memset(err, 'x', sizeof(err));
    rc = loyalty_bots_add_list(b, text, text_len, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc == -1) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_CHECK(strncmp(err, "line ", 5) == 0);
        FUZZ_CHECK(loyalty_bots_count(b) == 1);

    } else {
        FUZZ_CHECK(loyalty_bots_count(b) <= LOYALTY_BOTS_MAX);
        FUZZ_CHECK(fuzz_list_oracle(b, 1, text, text_len) + 1
                   == (long) loyalty_bots_count(b));
    }

    for (i = 0; i < loyalty_bots_count(b); i++) {
        pat = loyalty_bots_pattern(b, i, &plen);

        FUZZ_CHECK(plen >= LOYALTY_BOT_PATTERN_MIN
                   && plen <= LOYALTY_BOT_PATTERN_MAX);

        for (k = 0; k < plen; k++) {
            FUZZ_CHECK((unsigned char) pat[k] >= 0x20 && pat[k] != 0x7f);
            FUZZ_CHECK(pat[k] < 'A' || pat[k] > 'Z');
        }
    }

    m = loyalty_bots_match(b, ua, ua_len);
    FUZZ_CHECK(m >= -1 && m < (long) loyalty_bots_count(b));

    any = 0;

    for (i = 0; i < loyalty_bots_count(b) && !any; i++) {
        pat = loyalty_bots_pattern(b, i, &plen);
        any = fuzz_occurs(pat, plen, loyalty_bots_anchored(b, i), ua,
                          ua_len);
    }

    FUZZ_CHECK((m >= 0) == any);

    if (m >= 0) {
        pat = loyalty_bots_pattern(b, (size_t) m, &plen);
        FUZZ_CHECK(fuzz_occurs(pat, plen, loyalty_bots_anchored(b, (size_t) m),
                               ua, ua_len));
    }

    loyalty_bots_free(b);
    free(text);
    free(ua);

    return 0;
}
