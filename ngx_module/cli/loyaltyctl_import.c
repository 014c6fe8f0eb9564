/*
 * loyaltyctl import: JSON Lines into the store, all or nothing.
 *
 * The whole input is read first, so that a file from stdin can be applied
 * again when the map has to grow.  Every line is checked and written in
 * one write transaction; the first bad line aborts it, leaving the store
 * as it was.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <jansson.h>

#include "loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_json.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyaltyctl.h"


#define LOYALTYCTL_LINE_MAX      65536
#define LOYALTYCTL_PROGRESS      100000


typedef struct {
    const char       *file;
    loyalty_store_t  *st;
    MDB_txn          *txn;
    int               db;
    size_t            lineno;
    size_t            records;
    char              last[LOYALTY_ID_MAX];
    size_t            last_len;
    loyalty_tierset_t tiers;
    loyaltyctl_hosts_t hosts;
    int64_t           now;
    int               refused;
    char              what[32];
    char              err[2 * LOYALTY_ERRLEN];
} loyaltyctl_import_t;


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


/* tiers changed: every stored price must still keep the guard */
static int
loyaltyctl_check_prices(loyaltyctl_import_t *im)
{
    int              rc;
    char             why[LOYALTY_ERRLEN];
    MDB_val          key, val;
    MDB_cursor      *cur;
    loyalty_price_t  p;

    rc = loyalty_tierset_load(im->txn, im->st->dbi[LOYALTY_DB_TIERS],
                              &im->tiers);
    if (rc == MDB_CORRUPTED) {
        snprintf(im->err, sizeof(im->err), "the store would hold more than "
                 "%d tiers", LOYALTY_TIERS_MAX);
        return -1;
    }

    if (rc != 0) {
        return rc;
    }

    rc = mdb_cursor_open(im->txn, im->st->dbi[LOYALTY_DB_PRICES], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_price_decode(val.mv_data, val.mv_size, &p) == 0
            && loyalty_price_check(&p, &im->tiers, why, sizeof(why)) != 0)
        {
            snprintf(im->err, sizeof(im->err), "these tiers break the "
                     "privilege guard for sku \"%.*s\": %s",
                     (int) key.mv_size, (char *) key.mv_data, why);
            rc = -1;
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* returns 0, -1 with im->err set for bad data, or an LMDB error */
static int
loyaltyctl_import_line(loyaltyctl_import_t *im, const char *line,
    size_t len)
{
    int                  rc;
    json_t              *obj;
    MDB_val              key, val;
    const char          *id;
    size_t               id_len;
    json_error_t         jerr;
    loyalty_tier_t       tier;
    loyalty_admin_rec_t  rec;
    uint8_t              buf[LOYALTY_TIER_REC_MAX];

    obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        snprintf(im->err, sizeof(im->err), "bad JSON: %s", jerr.text);
        return -1;
    }

    if (im->db != LOYALTY_DB_TIERS) {
        /* the admin API checks and writes a record with the same code */
        rc = loyalty_admin_prepare(im->st, im->txn, im->db, obj, &im->tiers,
                                   im->hosts.name, im->hosts.len,
                                   im->hosts.n, im->now, &rec, im->err,
                                   sizeof(im->err));

        /* a referrer loop: the line is refused as any bad line */
        if (rc == LOYALTY_ADMIN_CONFLICT) {
            rc = -1;
        }

        if (rc == 0) {
            key.mv_data = rec.key;
            key.mv_size = rec.key_len;

            rc = loyalty_admin_write(im->st, im->txn, &rec,
                                     loyaltyctl_key_after(im, &key));
        }

        if (rc == 0 && rec.warning[0]) {
            fprintf(stderr, "loyaltyctl: %s line %zu: warning: %s\n",
                    im->file, im->lineno, rec.warning);
        }

    } else {
        rc = loyalty_tier_from_json(obj, &id, &id_len, &tier, im->err,
                                    sizeof(im->err));
        if (rc == 0) {
            key.mv_data = (void *) id;
            key.mv_size = id_len;
            val.mv_data = buf;
            val.mv_size = loyalty_tier_encode(&tier, buf);

            rc = mdb_put(im->txn, im->st->dbi[im->db], &key, &val,
                         loyaltyctl_key_after(im, &key) ? MDB_APPEND : 0);

            if (rc == MDB_KEYEXIST) {
                rc = mdb_put(im->txn, im->st->dbi[im->db], &key, &val, 0);
            }
        }
    }

    if (rc == 0) {
        memcpy(im->last, key.mv_data, key.mv_size);
        im->last_len = key.mv_size;
        im->records++;
    }

    json_decref(obj);

    return rc;
}


/* one document, not JSON Lines: its errors name no line */
static int
loyaltyctl_import_rules(loyaltyctl_import_t *im, const char *buf, size_t len)
{
    int           rc;
    json_t       *doc;
    json_error_t  jerr;

    doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        snprintf(im->err, sizeof(im->err), "bad JSON: %s at line %d "
                 "column %d", jerr.text, jerr.line, jerr.column);
        return -1;
    }

    rc = loyalty_rules_put(im->st, im->txn, doc, im->err, sizeof(im->err));
    json_decref(doc);

    return rc;
}


/* returns 0, -1 with im->err set for bad data, or an LMDB error */
static int
loyaltyctl_import_buffer(loyaltyctl_import_t *im, const char *buf,
    size_t len, int progress)
{
    int          rc;
    const char  *p, *end, *eol, *q;

    im->lineno = 0;
    im->records = 0;
    im->last_len = 0;

    if (im->db == LOYALTY_DB_META) {
        return loyaltyctl_import_rules(im, buf, len);
    }

    if (im->db == LOYALTY_DB_PRICES) {
        rc = loyalty_tierset_load(im->txn, im->st->dbi[LOYALTY_DB_TIERS],
                                  &im->tiers);
        if (rc != 0) {
            return rc;
        }
    }

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
            return rc;
        }
    }

    if (progress && im->lineno >= LOYALTYCTL_PROGRESS) {
        fprintf(stderr, "\n");
    }

    if (im->db == LOYALTY_DB_TIERS) {
        im->lineno = 0;
        return loyaltyctl_check_prices(im);
    }

    return 0;
}


static int
loyaltyctl_import_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                   rc;
    loyaltyctl_import_t  *im;

    im = w->data;
    im->st = &w->st;
    im->txn = txn;

    rc = loyaltyctl_import_buffer(im, w->buf, w->len, isatty(STDERR_FILENO));
    if (rc == -1) {
        im->refused = 1;
        return LOYALTYCTL_WRITE_REFUSED;
    }

    return rc;
}


/* the database an import kind writes: -1 unknown */
int
loyaltyctl_import_db(const char *kind)
{
    int  db;

    /* the rules document lives in meta */
    if (strcmp(kind, "rules") == 0) {
        return LOYALTY_DB_META;
    }

    /* the records fill the database of their name */
    for (db = LOYALTY_DB_MEMBERS; db <= LOYALTY_DB_CODES; db++) {
        if (strcmp(loyalty_store_dbs[db], kind) == 0) {
            return db;
        }
    }

    return -1;
}


/*
 * An "import" message of the cluster's stream, in the follower's
 * transaction (loyalty_repl_import_pt): the checks and writes of a local
 * import, at the time the import was published.  0, -1 with err, or an
 * LMDB error.
 */
int
loyaltyctl_import_replicated(loyalty_store_t *st, MDB_txn *txn,
    const char *what, const char *buf, size_t len, json_t *hosts,
    int64_t now, char *err, size_t errlen)
{
    int                  rc;
    size_t               i;
    json_t              *h;
    loyaltyctl_import_t  im;

    memset(&im, 0, sizeof(im));

    im.file = "stream";
    im.st = st;
    im.txn = txn;
    im.now = now;
    im.db = loyaltyctl_import_db(what);

    if (im.db < 0) {
        snprintf(err, errlen, "import: unknown kind \"%.16s\"", what);
        return -1;
    }

    if (json_is_array(hosts)) {
        json_array_foreach(hosts, i, h) {
            if (!json_is_string(h) || im.hosts.n == LOYALTYCTL_HOSTS_MAX) {
                snprintf(err, errlen, "import: bad hosts");
                return -1;
            }

            im.hosts.name[im.hosts.n] = json_string_value(h);
            im.hosts.len[im.hosts.n++] = json_string_length(h);
        }
    }

    rc = loyaltyctl_import_buffer(&im, buf, len, 0);

    if (rc == -1) {
        snprintf(err, errlen, "import %s%s%.0zu: %s", what,
                 im.lineno ? " line " : "", im.lineno, im.err);
    }

    return rc;
}


int
loyaltyctl_import(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    const char          *kind, *file;
    loyaltyctl_write_t   w;
    loyaltyctl_import_t  im;

    loyaltyctl_option_t  opts[] = {
        { "hosts", 0, 1, loyaltyctl_set_hosts, &im.hosts, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    /* into the cluster's stream, for every edge: loyaltyctl_nats.c */
    if (loyaltyctl_nats_wanted(argc, argv)) {
        return loyaltyctl_import_nats(o, argc, argv);
    }

    memset(&im, 0, sizeof(im));

    rc = loyaltyctl_options(o, argc, argv, opts, 2, 2);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    kind = argv[optind];
    file = argv[optind + 1];
    im.file = file;
    im.db = loyaltyctl_import_db(kind);

    if (im.db < 0) {
        return loyaltyctl_usage(o->usage);
    }

    /* only codes have targets */
    if (im.hosts.n && im.db != LOYALTY_DB_CODES) {
        return loyaltyctl_usage(o->usage);
    }

    im.now = (int64_t) time(NULL);
    snprintf(im.what, sizeof(im.what), "import %s", kind);

    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = im.what;
    w.undone = "; nothing imported";
    w.step = loyaltyctl_import_step;
    w.data = &im;

    /* records take less room than their JSON; B-tree pages about double */
    w.input = file;
    w.per_byte = 2;

    rc = loyaltyctl_write(o, &w);

    if (rc == LOYALTYCTL_DATA && im.refused && im.lineno == 0) {
        fprintf(stderr, "loyaltyctl: %s: %s; nothing imported\n", file,
                im.err);
        return LOYALTYCTL_DATA;
    }

    if (rc == LOYALTYCTL_DATA && im.refused) {
        fprintf(stderr, "loyaltyctl: %s line %zu: %s; nothing imported\n",
                file, im.lineno, im.err);
        return LOYALTYCTL_DATA;
    }

    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (im.db == LOYALTY_DB_META) {
        printf("imported rules\n");
        return LOYALTYCTL_OK;
    }

    printf("imported %zu %s\n", im.records, kind);
    return LOYALTYCTL_OK;
}
