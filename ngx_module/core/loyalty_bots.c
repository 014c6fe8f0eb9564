/*
 * nginx-loyalty: telling bots by User-Agent, a case-insensitive substring
 * match of many patterns in one pass.
 *
 * The patterns' first two bytes, lower-cased, are bits in a 65536-bit
 * map.  Scanning the User-Agent, each pair of bytes that hits a bit finds
 * its patterns through the rank of that bit: the number of set bits
 * before it, counted per 64-bit word when the list changes.  A pair that
 * starts no pattern costs one bit test, and the 8 KB map stays in cache.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_bots.h"


#define LOYALTY_BOTS_PAIRS      65536
#define LOYALTY_BOTS_WORDS      (LOYALTY_BOTS_PAIRS / 64)
/* far above any real list: a file this large is not a bots list */
#define LOYALTY_BOTS_FILE_MAX   (1024 * 1024)


struct loyalty_bots_s {
    size_t          n;

    /* the patterns, lower-cased and NUL-terminated, one after another */
    char           *text;
    size_t          used;
    size_t          size;
    uint32_t        off[LOYALTY_BOTS_MAX];
    uint8_t         len[LOYALTY_BOTS_MAX];
    /* "^pattern": only at the start of a User-Agent */
    uint8_t         anchored[LOYALTY_BOTS_MAX];

    /* the index, rebuilt from the patterns when a list is added */
    uint64_t        map[LOYALTY_BOTS_WORDS];
    uint16_t        rank[LOYALTY_BOTS_WORDS];
    uint16_t        start[LOYALTY_BOTS_MAX + 1];
    uint16_t        order[LOYALTY_BOTS_MAX];
};


/* ASCII only: a User-Agent's other bytes are compared as they are */
static inline uint8_t
loyalty_bots_lower(uint8_t c)
{
    return (uint8_t) (c - 'A') < 26 ? c | 0x20 : c;
}


static inline unsigned
loyalty_bots_pair(const char *p)
{
    return (unsigned) loyalty_bots_lower((uint8_t) p[0]) << 8
           | loyalty_bots_lower((uint8_t) p[1]);
}


loyalty_bots_t *
loyalty_bots_new(void)
{
    return calloc(1, sizeof(loyalty_bots_t));
}


void
loyalty_bots_free(loyalty_bots_t *b)
{
    if (b) {
        free(b->text);
        free(b);
    }
}


size_t
loyalty_bots_count(const loyalty_bots_t *b)
{
    return b->n;
}


const char *
loyalty_bots_pattern(const loyalty_bots_t *b, size_t i, size_t *len)
{
    *len = b->len[i];
    return b->text + b->off[i];
}


int
loyalty_bots_anchored(const loyalty_bots_t *b, size_t i)
{
    return b->anchored[i];
}


static size_t
loyalty_bots_slot(const loyalty_bots_t *b, unsigned pair)
{
    uint64_t  below;

    below = b->map[pair / 64] & ((UINT64_C(1) << (pair % 64)) - 1);

    return b->rank[pair / 64] + (size_t) __builtin_popcountll(below);
}


/* a counting sort of the patterns by the rank of their first pair */
static void
loyalty_bots_index(loyalty_bots_t *b)
{
    size_t    i, w, nslots;
    unsigned  pair;
    uint16_t  slot[LOYALTY_BOTS_MAX], fill[LOYALTY_BOTS_MAX];

    memset(b->map, 0, sizeof(b->map));

    for (i = 0; i < b->n; i++) {
        pair = loyalty_bots_pair(b->text + b->off[i]);
        b->map[pair / 64] |= UINT64_C(1) << (pair % 64);
    }

    nslots = 0;

    for (w = 0; w < LOYALTY_BOTS_WORDS; w++) {
        b->rank[w] = (uint16_t) nslots;
        nslots += (size_t) __builtin_popcountll(b->map[w]);
    }

    memset(b->start, 0, sizeof(b->start));

    for (i = 0; i < b->n; i++) {
        slot[i] = (uint16_t) loyalty_bots_slot(b,
                                 loyalty_bots_pair(b->text + b->off[i]));
        b->start[slot[i] + 1]++;
    }

    for (i = 0; i < nslots; i++) {
        b->start[i + 1] += b->start[i];
    }

    memcpy(fill, b->start, nslots * sizeof(uint16_t));

    /* within a slot in list order, so that a match does not vary */
    for (i = 0; i < b->n; i++) {
        b->order[fill[slot[i]]++] = (uint16_t) i;
    }
}


static int
loyalty_bots_add(loyalty_bots_t *b, const char *s, size_t len)
{
    char    *text;
    size_t   i, size;
    uint8_t  anchored;

    anchored = (*s == '^');

    if (anchored) {
        s++;
        len--;
    }

    if (b->size - b->used < len + 1) {
        size = b->size ? b->size : 4096;

        while (size - b->used < len + 1) {
            size *= 2;
        }

        text = realloc(b->text, size);
        if (text == NULL) {
            return -1;
        }

        b->text = text;
        b->size = size;
    }

    b->off[b->n] = (uint32_t) b->used;
    b->len[b->n] = (uint8_t) len;
    b->anchored[b->n] = anchored;

    for (i = 0; i < len; i++) {
        b->text[b->used++] = (char) loyalty_bots_lower((uint8_t) s[i]);
    }

    b->text[b->used++] = '\0';
    b->n++;

    return 0;
}


int
loyalty_bots_add_list(loyalty_bots_t *b, const char *text, size_t len,
    char *err, size_t errlen)
{
    size_t       i, n, used, line, plen;
    const char  *p, *end, *eol, *next;

    n = b->n;
    used = b->used;
    line = 0;
    p = text;
    end = text + len;

    while (p < end) {
        line++;

        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        plen = (size_t) (eol - p);

        if (plen && p[plen - 1] == '\r') {
            plen--;
        }

        while (plen && (p[plen - 1] == ' ' || p[plen - 1] == '\t')) {
            plen--;
        }

        while (plen && (*p == ' ' || *p == '\t')) {
            p++;
            plen--;
        }

        next = (eol < end) ? eol + 1 : end;

        if (plen == 0 || *p == '#') {
            p = next;
            continue;
        }

        if (plen - (*p == '^') < LOYALTY_BOT_PATTERN_MIN) {
            snprintf(err, errlen, "line %zu: pattern shorter than %d bytes",
                     line, LOYALTY_BOT_PATTERN_MIN);
            goto failed;
        }

        if (plen > LOYALTY_BOT_PATTERN_MAX) {
            snprintf(err, errlen, "line %zu: pattern longer than %d bytes",
                     line, LOYALTY_BOT_PATTERN_MAX);
            goto failed;
        }

        for (i = 0; i < plen; i++) {
            if ((uint8_t) p[i] < 0x20 || p[i] == 0x7f) {
                snprintf(err, errlen, "line %zu: control character 0x%02x "
                         "in pattern", line, (unsigned) (uint8_t) p[i]);
                goto failed;
            }
        }

        if (b->n == LOYALTY_BOTS_MAX) {
            snprintf(err, errlen, "line %zu: more than %d patterns", line,
                     LOYALTY_BOTS_MAX);
            goto failed;
        }

        if (loyalty_bots_add(b, p, plen) != 0) {
            snprintf(err, errlen, "line %zu: out of memory", line);
            goto failed;
        }

        p = next;
    }

    loyalty_bots_index(b);

    return 0;

failed:

    /* all or nothing: the index still describes the patterns before */
    b->n = n;
    b->used = used;

    return -1;
}


int
loyalty_bots_load(loyalty_bots_t *b, const char *path, char *err,
    size_t errlen)
{
    int     rc;
    char   *text, *bigger, msg[256];
    FILE   *f;
    size_t  len, size, got;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    text = NULL;
    len = 0;
    size = 0;
    rc = -1;

    for ( ;; ) {
        if (len == size) {
            if (size > LOYALTY_BOTS_FILE_MAX) {
                snprintf(err, errlen, "%s: larger than %d bytes", path,
                         LOYALTY_BOTS_FILE_MAX);
                goto done;
            }

            /* one byte more than allowed tells a file that is too large */
            size = size ? size * 2 : 16384;
            if (size > LOYALTY_BOTS_FILE_MAX) {
                size = LOYALTY_BOTS_FILE_MAX + 1;
            }

            bigger = realloc(text, size);
            if (bigger == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            text = bigger;
        }

        got = fread(text + len, 1, size - len, f);
        len += got;

        if (got == 0) {
            break;
        }
    }

    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }

    rc = loyalty_bots_add_list(b, text, len, msg, sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, msg);
    }

done:

    free(text);
    fclose(f);

    return rc;
}


long
loyalty_bots_match(const loyalty_bots_t *b, const char *ua, size_t len)
{
    size_t       i, j, k, slot, plen;
    uint8_t      next;
    unsigned     pair;
    uint16_t     idx;
    const char  *pat;

    if (len < LOYALTY_BOT_PATTERN_MIN) {
        return -1;
    }

    next = loyalty_bots_lower((uint8_t) ua[0]);

    /* each byte is lower-cased once, as the second of a pair */
    for (i = 0; i + LOYALTY_BOT_PATTERN_MIN <= len; i++) {
        pair = (unsigned) next << 8;
        next = loyalty_bots_lower((uint8_t) ua[i + 1]);
        pair |= next;

        if (!(b->map[pair / 64] & (UINT64_C(1) << (pair % 64)))) {
            continue;
        }

        slot = loyalty_bots_slot(b, pair);

        for (j = b->start[slot]; j < b->start[slot + 1]; j++) {
            idx = b->order[j];
            plen = b->len[idx];

            if (plen > len - i || (i && b->anchored[idx])) {
                continue;
            }

            pat = b->text + b->off[idx];

            /* the first two bytes are those of the pair */
            for (k = 2; k < plen; k++) {
                if (loyalty_bots_lower((uint8_t) ua[i + k])
                    != (uint8_t) pat[k])
                {
                    break;
                }
            }

            if (k == plen) {
                return idx;
            }
        }
    }

    return -1;
}


int
loyalty_bots_bare(const char *ua, size_t len)
{
    static const char  mozilla[] = "mozilla/";

    size_t  i;

    while (len && (ua[len - 1] == ' ' || ua[len - 1] == '\t')) {
        len--;
    }

    while (len && (*ua == ' ' || *ua == '\t')) {
        ua++;
        len--;
    }

    if (len == 0) {
        return 1;
    }

    if (len < sizeof(mozilla) - 1) {
        return 0;
    }

    for (i = 0; i < sizeof(mozilla) - 1; i++) {
        if (loyalty_bots_lower((uint8_t) ua[i]) != (uint8_t) mozilla[i]) {
            return 0;
        }
    }

    for ( /* void */ ; i < len; i++) {
        if ((ua[i] < '0' || ua[i] > '9') && ua[i] != '.') {
            return 0;
        }
    }

    return 1;
}
