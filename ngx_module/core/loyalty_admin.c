/*
 * nginx-loyalty: single-record writes of the admin API, checked and put
 * with what follows them (the ledger, the referrals index).  Deleting a
 * member is loyalty_admin_delete.c's, reading one loyalty_admin_read.c's.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_json.h"
#include "loyalty_ledger.h"
#include "loyalty_referral.h"
#include "loyalty_rules.h"


static int
loyalty_admin_exists(loyalty_store_t *st, MDB_txn *txn, int db,
    const char *id, size_t len, const char *what, char *err, size_t errlen)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_get(txn, st->dbi[db], id, len, &val);
    if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "unknown %s \"%.*s\"", what, (int) len, id);
        return -1;
    }

    return rc;
}


/*
 * A code easy to guess is refused, unless it is a vanity code ("vanity":
 * true) or already in the store: both are kept, with a warning.
 */
static int
loyalty_admin_code_strength(loyalty_store_t *st, MDB_txn *txn,
    loyalty_admin_rec_t *rec, const loyalty_code_t *c, size_t len, char *err,
    size_t errlen)
{
    int      rc;
    MDB_val  val;

    if (loyalty_code_strong(rec->key, len)) {
        return 0;
    }

    if (c->flags & LOYALTY_CODE_VANITY) {
        snprintf(rec->warning, sizeof(rec->warning), "vanity code \"%.*s\" "
                 "is easy to guess: limit misses with limit_req",
                 (int) len, rec->key);
        return 0;
    }

    rc = loyalty_store_get(txn, st->dbi[LOYALTY_DB_CODES], rec->key, len,
                           &val);

    if (rc == 0) {
        snprintf(rec->warning, sizeof(rec->warning), "code \"%.*s\" is easy "
                 "to guess; kept, as it is already in the store",
                 (int) len, rec->key);
        return 0;
    }

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    snprintf(err, errlen, "code \"%.*s\" is too easy to guess: a new code "
             "needs at least %d characters, %d of them different, and 2^%d "
             "possible codes of its kind (letters alone: %d characters, "
             "digits alone: 9); or \"vanity\": true",
             (int) len, rec->key, LOYALTY_CODE_STRONG_LEN,
             LOYALTY_CODE_STRONG_CHARS, LOYALTY_CODE_STRONG_BITS,
             LOYALTY_CODE_STRONG_LEN);

    return -1;
}


int
loyalty_admin_prepare(loyalty_store_t *st, MDB_txn *txn, int db, json_t *obj,
    const loyalty_tierset_t *ts, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now,
    loyalty_admin_rec_t *rec, char *err, size_t errlen)
{
    int                       rc;
    char                      why[LOYALTY_ERRLEN];
    size_t                    i, len;
    const char               *id;
    loyalty_code_t            c;
    loyalty_price_t           p;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES];

    rec->db = db;
    rec->now = now;
    rec->warning[0] = '\0';

    switch (db) {

    case LOYALTY_DB_MEMBERS:
        if (loyalty_member_from_json(obj, &id, &len, &rec->m, err, errlen)) {
            return -1;
        }

        rc = loyalty_admin_exists(st, txn, LOYALTY_DB_TIERS, rec->m.tier,
                                  rec->m.tier_len, "tier", err, errlen);
        if (rc != 0) {
            return rc;
        }

        if (rec->m.referrer_len) {
            rc = loyalty_referrer_loop(st, txn, id, len, rec->m.referrer,
                                       rec->m.referrer_len, err, errlen);
            if (rc != 0) {
                return rc == -1 ? LOYALTY_ADMIN_CONFLICT : rc;
            }
        }

        rec->val_len = loyalty_member_encode(&rec->m, rec->val.member);
        break;

    case LOYALTY_DB_PRICES:
        if (loyalty_price_from_json(obj, &id, &len, &p, ov, err, errlen)) {
            return -1;
        }

        for (i = 0; i < p.noverrides; i++) {
            if (loyalty_tierset_find(ts, ov[i].tier, ov[i].tier_len) < 0) {
                snprintf(err, errlen, "\"tiers\": unknown tier \"%.*s\"",
                         (int) ov[i].tier_len, ov[i].tier);
                return -1;
            }
        }

        rec->val_len = loyalty_price_encode(&p, ov, rec->val.price);

        /* the guard reads the overrides from the record, as the module */
        if (loyalty_price_decode(rec->val.price, rec->val_len, &p) != 0) {
            snprintf(err, errlen, "price does not encode");
            return -1;
        }

        if (loyalty_price_check(&p, ts, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sku \"%.*s\" breaks the privilege guard: "
                     "%s", (int) len, id, why);
            return -1;
        }
        break;

    default:
        if (loyalty_code_from_json(obj, hosts, host_lens, nhosts, now,
                                   rec->key, &len, &c, err, errlen))
        {
            return -1;
        }

        /* the member may come from an earlier import or from this one */
        rc = loyalty_admin_exists(st, txn, LOYALTY_DB_MEMBERS, c.member,
                                  c.member_len, "member", err, errlen);
        if (rc != 0) {
            return rc;
        }

        rc = loyalty_admin_code_strength(st, txn, rec, &c, len, err, errlen);
        if (rc != 0) {
            return rc;
        }

        id = rec->key;
        rec->val_len = loyalty_code_encode(&c, rec->val.code);
        break;
    }

    memmove(rec->key, id, len);
    rec->key_len = len;

    return 0;
}


/* the ledger and the referrals index follow a member written by hand */
static int
loyalty_admin_member_links(loyalty_store_t *st, MDB_txn *txn,
    loyalty_admin_rec_t *rec, const uint8_t *old, size_t old_len)
{
    int                     rc;
    char                    was[LOYALTY_ID_MAX];
    size_t                  n, was_len;
    int64_t                 sum;
    loyalty_member_t        m;
    loyalty_ledger_entry_t  e;

    was_len = 0;

    if (old && loyalty_member_decode(old, old_len, &m) == 0) {
        was_len = m.referrer_len;
        loyalty_cpymem(was, m.referrer, was_len);
    }

    rc = loyalty_ledger_sum(st, txn, rec->key, rec->key_len, &sum, &n);
    if (rc != 0) {
        return rc;
    }

    if (sum != rec->m.points) {
        e.reason = LOYALTY_LEDGER_ADJUST;
        e.event_len = 0;
        e.event = NULL;
        e.at = rec->now;

        /* points are checked within +-10^12; a ledger far off is damage */
        if (__builtin_sub_overflow(rec->m.points, sum, &e.delta)) {
            return MDB_CORRUPTED;
        }

        rc = loyalty_ledger_append(st, txn, rec->key, rec->key_len, &e);
        if (rc != 0) {
            return rc;
        }
    }

    if (old && was_len == rec->m.referrer_len
        && (was_len == 0 || memcmp(was, rec->m.referrer, was_len) == 0))
    {
        return 0;
    }

    if (was_len) {
        rc = loyalty_referral_delete(st, txn, was, was_len, rec->key,
                                     rec->key_len);
        if (rc != 0) {
            return rc;
        }
    }

    if (rec->m.referrer_len == 0) {
        return 0;
    }

    return loyalty_referral_put(st, txn, rec->m.referrer,
                                rec->m.referrer_len, rec->key, rec->key_len,
                                rec->now);
}


int
loyalty_admin_write(loyalty_store_t *st, MDB_txn *txn,
    loyalty_admin_rec_t *rec, int append)
{
    int      rc;
    uint8_t  old[LOYALTY_MEMBER_MAX];
    size_t   old_len;
    MDB_val  key, val;

    key.mv_data = rec->key;
    key.mv_size = rec->key_len;

    old_len = 0;

    if (rec->db == LOYALTY_DB_MEMBERS) {
        rc = mdb_get(txn, st->dbi[rec->db], &key, &val);

        if (rc == 0 && val.mv_size <= sizeof(old)) {
            old_len = val.mv_size;
            memcpy(old, val.mv_data, old_len);

        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    val.mv_data = &rec->val;
    val.mv_size = rec->val_len;

    /* sorted input, as from a database dump, is appended cheaply */
    rc = MDB_KEYEXIST;

    if (append) {
        rc = mdb_put(txn, st->dbi[rec->db], &key, &val, MDB_APPEND);
    }

    if (rc == MDB_KEYEXIST) {
        rc = mdb_put(txn, st->dbi[rec->db], &key, &val, 0);
    }

    if (rc != 0 || rec->db != LOYALTY_DB_MEMBERS) {
        return rc;
    }

    return loyalty_admin_member_links(st, txn, rec, old_len ? old : NULL,
                                      old_len);
}


/* the body's id is the URL's, or absent and then taken from the URL */
static int
loyalty_admin_key(json_t *body, const char *field, const char *key,
    size_t key_len, int code, char *err, size_t errlen)
{
    char     a[LOYALTY_CODE_MAX], b[LOYALTY_CODE_MAX];
    long     na, nb;
    json_t  *v;

    if (!json_is_object(body)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }

    na = 0;

    if (code) {
        na = loyalty_code_normalize(key, key_len, a);
        if (na < 0) {
            snprintf(err, errlen, "\"%.*s\" is not a code",
                     (int) (key_len > 64 ? 64 : key_len), key);
            return -1;
        }

    } else if (!loyalty_valid_id(key, key_len)) {
        snprintf(err, errlen, "\"%.*s\" is not a valid %s",
                 (int) (key_len > 64 ? 64 : key_len), key, field);
        return -1;
    }

    v = json_object_get(body, field);

    if (v == NULL) {
        return json_object_set_new(body, field, json_stringn(key, key_len));
    }

    if (!json_is_string(v)) {
        /* the record's own check names the problem */
        return 0;
    }

    if (code) {
        nb = loyalty_code_normalize(json_string_value(v),
                                    json_string_length(v), b);
        if (nb < 0 || (na == nb && memcmp(a, b, (size_t) na) == 0)) {
            return 0;
        }

    } else if (json_string_length(v) == key_len
               && memcmp(json_string_value(v), key, key_len) == 0)
    {
        return 0;
    }

    snprintf(err, errlen, "the body's \"%s\" is not the one in the URL",
             field);
    return -1;
}


int
loyalty_admin_put(loyalty_store_t *st, MDB_txn *txn, const char *kind,
    const char *key, size_t key_len, json_t *body, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now, char *err,
    size_t errlen)
{
    int                  rc, db;
    const char          *field;
    loyalty_tierset_t    ts;
    loyalty_admin_rec_t  rec;

    if (strcmp(kind, "rules") == 0) {
        return loyalty_rules_put(st, txn, body, err, errlen);
    }

    if (strcmp(kind, "member") == 0) {
        db = LOYALTY_DB_MEMBERS;
        field = "id";

    } else if (strcmp(kind, "price") == 0) {
        db = LOYALTY_DB_PRICES;
        field = "sku";

    } else if (strcmp(kind, "code") == 0) {
        db = LOYALTY_DB_CODES;
        field = "code";

    } else {
        snprintf(err, errlen, "unknown kind \"%s\"", kind);
        return -1;
    }

    if (loyalty_admin_key(body, field, key, key_len, db == LOYALTY_DB_CODES,
                          err, errlen)
        != 0)
    {
        return -1;
    }

    ts.n = 0;

    if (db == LOYALTY_DB_PRICES) {
        rc = loyalty_tierset_load(txn, st->dbi[LOYALTY_DB_TIERS], &ts);
        if (rc != 0) {
            return rc;
        }
    }

    rc = loyalty_admin_prepare(st, txn, db, body, &ts, hosts, host_lens,
                               nhosts, now, &rec, err, errlen);

    if (rc == 0) {
        rc = loyalty_admin_write(st, txn, &rec, 0);
    }

    if (rc == 0) {
        snprintf(err, errlen, "%s", rec.warning);
    }

    return rc;
}
