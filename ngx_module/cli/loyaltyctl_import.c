/*
 * loyaltyctl import: JSON Lines into the store, all or nothing.
 *
 * The whole input is read first, so that a file from stdin can be applied
 * again when the map has to grow.  Every line is checked and written in
 * one write transaction; the first bad line aborts it, leaving the store
 * as it was.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "loyalty_json.h"
#include "loyalty_record.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_LINE_MAX      65536
#define LOYALTYCTL_PROGRESS      100000
#define LOYALTYCTL_GROW_TRIES    8


static const char  loyaltyctl_usage_import[] =
    "usage: loyaltyctl -s DIR import members|tiers FILE\n"
    "Imports JSON Lines (\"-\" reads stdin) in one transaction.  A repeated\n"
    "id replaces the earlier record.  Any bad line rejects the whole file,\n"
    "naming the line and the reason, and leaves the store unchanged\n"
    "(exit 1).  Members must name a tier that is already in the store.\n";


typedef struct {
    loyalty_store_t  *st;
    MDB_txn          *txn;
    int               db;
    size_t            lineno;
    size_t            records;
    char              last[LOYALTY_ID_MAX];
    size_t            last_len;
    char              err[LOYALTY_ERRLEN];
} loyaltyctl_import_t;


static char *
loyaltyctl_read_all(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf, *p;
    size_t   size, n;

    f = (strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "loyaltyctl: cannot open \"%s\": %s\n", path,
                strerror(errno));
        return NULL;
    }

    size = 1 << 20;
    *len = 0;
    buf = malloc(size);

    while (buf) {
        n = fread(buf + *len, 1, size - *len, f);
        *len += n;

        if (*len < size) {
            break;
        }

        size *= 2;
        p = realloc(buf, size);
        if (p == NULL) {
            free(buf);
        }
        buf = p;
    }

    if (buf == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory reading \"%s\"\n", path);

    } else if (ferror(f)) {
        fprintf(stderr, "loyaltyctl: cannot read \"%s\": %s\n", path,
                strerror(errno));
        free(buf);
        buf = NULL;
    }

    if (f != stdin) {
        fclose(f);
    }

    return buf;
}


/* LMDB's default order: bytes, then length */
static int
loyaltyctl_key_after(loyaltyctl_import_t *im, MDB_val *key)
{
    int     c;
    size_t  n;

    if (im->last_len == 0) {
        return 0;
    }

    n = key->mv_size < im->last_len ? key->mv_size : im->last_len;
    c = memcmp(key->mv_data, im->last, n);

    return c > 0 || (c == 0 && key->mv_size > im->last_len);
}


static int
loyaltyctl_put(loyaltyctl_import_t *im, MDB_val *key, MDB_val *val)
{
    int  rc;

    /* sorted input, as from a database dump, is appended cheaply */
    rc = MDB_KEYEXIST;

    if (loyaltyctl_key_after(im, key)) {
        rc = mdb_put(im->txn, im->st->dbi[im->db], key, val, MDB_APPEND);
    }

    if (rc == MDB_KEYEXIST) {
        rc = mdb_put(im->txn, im->st->dbi[im->db], key, val, 0);
    }

    if (rc == 0) {
        memcpy(im->last, key->mv_data, key->mv_size);
        im->last_len = key->mv_size;
    }

    return rc;
}


/* returns 0, -1 with im->err set for bad data, or an LMDB error */
static int
loyaltyctl_import_line(loyaltyctl_import_t *im, const char *line,
    size_t len)
{
    int               rc;
    uint8_t           buf[LOYALTY_MEMBER_MAX > LOYALTY_TIER_REC_MAX
                          ? LOYALTY_MEMBER_MAX : LOYALTY_TIER_REC_MAX];
    json_t           *obj;
    MDB_val           key, val, tmp;
    const char       *id;
    size_t            id_len;
    json_error_t      jerr;
    loyalty_tier_t    tier;
    loyalty_member_t  m;

    obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        snprintf(im->err, sizeof(im->err), "bad JSON: %s", jerr.text);
        return -1;
    }

    if (im->db == LOYALTY_DB_MEMBERS) {
        rc = loyalty_member_from_json(obj, &id, &id_len, &m, im->err,
                                      sizeof(im->err));
        if (rc == 0) {
            key.mv_data = (void *) m.tier;
            key.mv_size = m.tier_len;

            rc = mdb_get(im->txn, im->st->dbi[LOYALTY_DB_TIERS], &key, &tmp);
            if (rc == MDB_NOTFOUND) {
                snprintf(im->err, sizeof(im->err), "unknown tier \"%.*s\"",
                         (int) m.tier_len, m.tier);
                rc = -1;
            }
        }

        if (rc == 0) {
            val.mv_size = loyalty_member_encode(&m, buf);
        }

    } else {
        rc = loyalty_tier_from_json(obj, &id, &id_len, &tier, im->err,
                                    sizeof(im->err));
        if (rc == 0) {
            val.mv_size = loyalty_tier_encode(&tier, buf);
        }
    }

    if (rc == 0) {
        key.mv_data = (void *) id;
        key.mv_size = id_len;
        val.mv_data = buf;

        rc = loyaltyctl_put(im, &key, &val);
        im->records++;
    }

    json_decref(obj);

    return rc;
}


static int
loyaltyctl_import_buffer(loyaltyctl_import_t *im, const char *buf,
    size_t len, int progress)
{
    int          rc;
    const char  *p, *end, *eol, *q;

    rc = mdb_txn_begin(im->st->env, NULL, 0, &im->txn);
    if (rc != 0) {
        return rc;
    }

    im->lineno = 0;
    im->records = 0;
    im->last_len = 0;

    end = buf + len;

    for (p = buf; p < end; p = eol + 1) {
        im->lineno++;

        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        if (progress && im->lineno % LOYALTYCTL_PROGRESS == 0) {
            fprintf(stderr, "\rloyaltyctl: import %s: %zu lines",
                    loyalty_store_dbs[im->db], im->lineno);
        }

        for (q = p; q < eol && (*q == ' ' || *q == '\t' || *q == '\r'); q++)
        {
            /* void */
        }

        if (q == eol) {
            continue;
        }

        if (eol - p > LOYALTYCTL_LINE_MAX) {
            snprintf(im->err, sizeof(im->err), "line longer than %d bytes",
                     LOYALTYCTL_LINE_MAX);
            rc = -1;

        } else {
            rc = loyaltyctl_import_line(im, p, (size_t) (eol - p));
        }

        if (rc != 0) {
            mdb_txn_abort(im->txn);
            return rc;
        }
    }

    if (progress && im->lineno >= LOYALTYCTL_PROGRESS) {
        fprintf(stderr, "\n");
    }

    return mdb_txn_commit(im->txn);
}


int
loyaltyctl_import(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc, tries;
    char                *buf;
    size_t               len;
    loyalty_store_t      st;
    loyaltyctl_import_t  im;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_import)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 3) {
        return loyaltyctl_usage(loyaltyctl_usage_import);
    }

    memset(&im, 0, sizeof(im));

    if (strcmp(argv[1], "members") == 0) {
        im.db = LOYALTY_DB_MEMBERS;

    } else if (strcmp(argv[1], "tiers") == 0) {
        im.db = LOYALTY_DB_TIERS;

    } else {
        return loyaltyctl_usage(loyaltyctl_usage_import);
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    im.st = &st;

    buf = loyaltyctl_read_all(argv[2], &len);
    if (buf == NULL) {
        loyalty_store_close(&st);
        return LOYALTYCTL_DATA;
    }

    /* records take less room than their JSON; B-tree pages about double */
    rc = loyalty_store_grow(&st, len * 2);

    for (tries = 0; rc == 0 && tries < LOYALTYCTL_GROW_TRIES; tries++) {
        rc = loyaltyctl_import_buffer(&im, buf, len, isatty(STDERR_FILENO));

        if (rc != MDB_MAP_FULL) {
            break;
        }

        rc = loyalty_store_grow(&st, len * 4 << tries);
    }

    free(buf);
    loyalty_store_close(&st);

    if (rc == -1) {
        fprintf(stderr, "loyaltyctl: %s line %zu: %s; nothing imported\n",
                argv[2], im.lineno, im.err);
        return LOYALTYCTL_DATA;
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: import %s: %s; nothing imported\n",
                argv[1], mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    printf("imported %zu %s\n", im.records, argv[1]);
    return LOYALTYCTL_OK;
}
