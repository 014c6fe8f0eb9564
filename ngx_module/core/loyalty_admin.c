/*
 * nginx-loyalty: single-record operations of the admin API.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loyalty_admin.h"
#include "loyalty_due.h"
#include "loyalty_json.h"
#include "loyalty_ledger.h"
#include "loyalty_referral.h"
#include "loyalty_rules.h"
#include "loyalty_stats.h"


json_t *
loyalty_admin_get_member(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    MDB_val           key, val;
    loyalty_member_t  m;

    if (!loyalty_valid_id(id, len)) {
        return NULL;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    if (mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val) != 0
        || loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0)
    {
        return NULL;
    }

    return loyalty_member_to_json(id, len, &m);
}


static int
loyalty_admin_exists(loyalty_store_t *st, MDB_txn *txn, int db,
    const char *id, size_t len, const char *what, char *err, size_t errlen)
{
    int      rc;
    MDB_val  key, val;

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_get(txn, st->dbi[db], &key, &val);
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
    MDB_val  key, val;

    if (loyalty_code_strong(rec->key, len)) {
        return 0;
    }

    if (c->flags & LOYALTY_CODE_VANITY) {
        snprintf(rec->warning, sizeof(rec->warning), "vanity code \"%.*s\" "
                 "is easy to guess: limit misses with limit_req",
                 (int) len, rec->key);
        return 0;
    }

    key.mv_data = rec->key;
    key.mv_size = len;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_CODES], &key, &val);

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


/* the member mid no longer has a referrer: their referrer is deleted */
static int
loyalty_admin_unrefer(loyalty_store_t *st, MDB_txn *txn, const char *mid,
    size_t mlen)
{
    int               rc;
    char              id[LOYALTY_ID_MAX];
    uint8_t           buf[LOYALTY_MEMBER_MAX], out[LOYALTY_MEMBER_MAX];
    MDB_val           key, val;
    loyalty_member_t  m;

    if (mlen > sizeof(id)) {
        return 0;
    }

    /* copied: the key is on a page the writes below may change */
    memcpy(id, mid, mlen);
    key.mv_data = id;
    key.mv_size = mlen;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    if (val.mv_size > sizeof(buf)) {
        return MDB_CORRUPTED;
    }

    memcpy(buf, val.mv_data, val.mv_size);

    if (loyalty_member_decode(buf, val.mv_size, &m) != 0) {
        return MDB_CORRUPTED;
    }

    m.referrer_len = 0;

    val.mv_data = out;
    val.mv_size = loyalty_member_encode(&m, out);

    return mdb_put(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val, 0);
}


/*
 * deletes every referrals key that starts with prefix and a zero byte,
 * and the referrer of each member it names
 */
int
loyalty_admin_forget_downline(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int          rc;
    char         mid[LOYALTY_ID_MAX];
    size_t       mlen;
    uint8_t      buf[LOYALTY_ID_MAX + 1];
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_REFERRALS], &cur);
    if (rc != 0) {
        return rc;
    }

    memcpy(buf, id, len);
    buf[len] = '\0';

    /* each search starts afresh: a delete leaves the cursor in between */
    for ( ;; ) {
        key.mv_data = buf;
        key.mv_size = len + 1;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        if (rc != 0 || key.mv_size <= len + 1
            || memcmp(key.mv_data, buf, len + 1) != 0)
        {
            break;
        }

        mlen = key.mv_size - len - 1;
        if (mlen > sizeof(mid)) {
            mlen = sizeof(mid);
        }

        memcpy(mid, (uint8_t *) key.mv_data + len + 1, mlen);

        rc = mdb_cursor_del(cur, 0);

        if (rc == 0) {
            rc = loyalty_admin_unrefer(st, txn, mid, mlen);
        }

        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* deletes every key of db that starts with prefix */
static int
loyalty_admin_forget_prefix(loyalty_store_t *st, MDB_txn *txn, int db,
    const uint8_t *prefix, size_t len)
{
    int          rc;
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    for ( ;; ) {
        key.mv_data = (void *) prefix;
        key.mv_size = len;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        if (rc != 0 || key.mv_size < len
            || memcmp(key.mv_data, prefix, len) != 0)
        {
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* the member's share codes and their click counts: one pass over codes */
static int
loyalty_admin_forget_codes(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int              rc;
    uint8_t          code[LOYALTY_CODE_MAX + 1];
    size_t           clen;
    MDB_val          key, val;
    MDB_cursor      *cur;
    MDB_cursor_op    op;
    loyalty_code_t   c;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CODES], &cur);
    if (rc != 0) {
        return rc;
    }

    op = MDB_FIRST;

    for ( ;; ) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc != 0) {
            break;
        }

        op = MDB_NEXT;

        if (key.mv_size > LOYALTY_CODE_MAX
            || loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0
            || c.member_len != len || memcmp(c.member, id, len) != 0)
        {
            continue;
        }

        clen = key.mv_size;
        memcpy(code, key.mv_data, clen);
        code[clen] = '\0';

        rc = mdb_cursor_del(cur, 0);

        /* the clicks key: the code, a zero byte, the day */
        if (rc == 0) {
            rc = loyalty_admin_forget_prefix(st, txn, LOYALTY_DB_CLICKS,
                                             code, clen + 1);
        }

        if (rc != 0) {
            break;
        }

        /* on from the first code after the deleted one */
        key.mv_data = code;
        key.mv_size = clen;
        op = MDB_SET_RANGE;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}
/* a touch of the member and its due entry, if pending */
static int
loyalty_admin_forget_touch(loyalty_store_t *st, MDB_txn *txn,
    MDB_cursor *cur, MDB_val *key, MDB_val *val)
{
    int              rc;
    char             id[LOYALTY_TOUCH_ID_MAX];
    size_t           len;
    uint8_t          dkey[LOYALTY_DUE_KEY_MAX];
    MDB_val          due;
    loyalty_touch_t  t;

    len = key->mv_size;

    if (len <= sizeof(id)
        && loyalty_touch_decode(val->mv_data, val->mv_size, &t) == 0)
    {
        memcpy(id, key->mv_data, len);

        due.mv_data = dkey;
        due.mv_size = loyalty_due_key(t.due_at, id, len, dkey);

        rc = mdb_del(txn, st->dbi[LOYALTY_DB_DUE], &due, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return mdb_cursor_del(cur, 0);
}


/*
 * The member's touches, "CADENCE:ID:PERIOD", and their due entries: a
 * range per cadence, the next cadence found by seeking past "CADENCE:".
 */
int
loyalty_admin_forget_touches(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int             rc;
    size_t          clen, plen;
    uint8_t         seek[LOYALTY_TOUCH_ID_MAX];
    MDB_val         key, val;
    MDB_cursor     *cur;
    MDB_cursor_op   op;
    const uint8_t  *colon;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_TOUCHES], &cur);
    if (rc != 0) {
        return rc;
    }

    for (op = MDB_FIRST; /* void */; op = MDB_SET_RANGE) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc != 0) {
            break;
        }

        colon = memchr(key.mv_data, ':', key.mv_size);
        if (colon == NULL
            || (size_t) (colon - (uint8_t *) key.mv_data)
               > LOYALTY_CADENCE_NAME_MAX)
        {
            /* not a touch id: on to the next key */
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            if (rc != 0) {
                break;
            }

            plen = key.mv_size < sizeof(seek) ? key.mv_size : sizeof(seek);
            memcpy(seek, key.mv_data, plen);
            key.mv_data = seek;
            key.mv_size = plen;
            continue;
        }

        clen = (size_t) (colon - (uint8_t *) key.mv_data);
        memcpy(seek, key.mv_data, clen + 1);
        memcpy(seek + clen + 1, id, len);
        seek[clen + 1 + len] = ':';
        plen = clen + len + 2;

        for ( ;; ) {
            key.mv_data = seek;
            key.mv_size = plen;

            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            if (rc != 0 || key.mv_size < plen
                || memcmp(key.mv_data, seek, plen) != 0)
            {
                break;
            }

            rc = loyalty_admin_forget_touch(st, txn, cur, &key, &val);
            if (rc != 0) {
                break;
            }
        }

        if (rc != 0 && rc != MDB_NOTFOUND) {
            break;
        }

        /* ';' follows ':': past every touch of this cadence */
        seek[clen] = ':' + 1;
        key.mv_data = seek;
        key.mv_size = clen + 1;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_admin_delete_member(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int               rc;
    char              ref[LOYALTY_ID_MAX];
    size_t            ref_len;
    uint8_t           prefix[LOYALTY_ID_MAX + 1];
    MDB_val           key, val;
    loyalty_member_t  m;

    if (!loyalty_valid_id(id, len)) {
        return MDB_NOTFOUND;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val);
    if (rc != 0) {
        return rc;
    }

    ref_len = 0;

    if (loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0) {
        ref_len = m.referrer_len;
        loyalty_cpymem(ref, m.referrer, ref_len);
    }

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, NULL);

    if (rc == 0 && ref_len) {
        rc = loyalty_referral_delete(st, txn, ref, ref_len, id, len);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_downline(st, txn, id, len);
    }

    /* the ledger: a member made again under this id starts empty */
    if (rc == 0) {
        memcpy(prefix, id, len);
        prefix[len] = '\0';

        rc = loyalty_admin_forget_prefix(st, txn, LOYALTY_DB_LEDGER, prefix,
                                         len + 1);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_codes(st, txn, id, len);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_touches(st, txn, id, len);
    }

    /* what brought them; the counters are the days', and stay */
    if (rc == 0) {
        rc = loyalty_attrib_delete(st, txn, id, len);
    }

    return rc;
}


/* appends {"id","stage"[,"via"]} for each member referred by id */
static int
loyalty_admin_downline(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, json_t *arr, int via, const char *self, size_t self_len)
{
    int               rc;
    uint8_t           buf[LOYALTY_ID_MAX + 1];
    size_t            mlen;
    json_t           *e;
    MDB_val           key, val, mkey, mval;
    MDB_cursor       *cur;
    const char       *mid;
    loyalty_member_t  m;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_REFERRALS], &cur);
    if (rc != 0) {
        return rc;
    }

    memcpy(buf, id, len);
    buf[len] = '\0';
    key.mv_data = buf;
    key.mv_size = len + 1;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (key.mv_size <= len + 1 || memcmp(key.mv_data, buf, len + 1)) {
            break;
        }

        mid = (const char *) key.mv_data + len + 1;
        mlen = key.mv_size - len - 1;

        /* a cycle in imported records must not list the member itself */
        if (mlen == self_len && memcmp(mid, self, self_len) == 0) {
            continue;
        }

        mkey.mv_data = (void *) mid;
        mkey.mv_size = mlen;

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &mkey, &mval);
        if (rc == MDB_NOTFOUND) {
            continue;
        }

        if (rc != 0) {
            break;
        }

        if (loyalty_member_decode(mval.mv_data, mval.mv_size, &m) != 0) {
            continue;
        }

        e = json_object();
        if (e == NULL) {
            rc = ENOMEM;
            break;
        }

        json_object_set_new(e, "id", json_stringn(mid, mlen));
        json_object_set_new(e, "stage",
                            json_string(loyalty_stage_names[m.stage]));

        if (via) {
            json_object_set_new(e, "via", json_stringn(id, len));
        }

        json_array_append_new(arr, e);
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


json_t *
loyalty_admin_referrals(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    int          rc;
    size_t       i;
    json_t      *obj, *l1, *l2, *v, *e;
    MDB_val      key, val;

    if (!loyalty_valid_id(id, len)) {
        return NULL;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    if (mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val) != 0) {
        return NULL;
    }

    obj = json_object();
    l1 = json_array();
    l2 = json_array();

    if (obj == NULL || l1 == NULL || l2 == NULL) {
        goto failed;
    }

    rc = loyalty_admin_downline(st, txn, id, len, l1, 0, id, len);

    json_array_foreach(l1, i, e) {
        if (rc != 0) {
            break;
        }

        v = json_object_get(e, "id");
        rc = loyalty_admin_downline(st, txn, json_string_value(v),
                                    json_string_length(v), l2, 1, id, len);
    }

    if (rc != 0) {
        goto failed;
    }

    json_object_set_new(obj, "member", json_stringn(id, len));
    json_object_set_new(obj, "level1", l1);
    json_object_set_new(obj, "level2", l2);

    return obj;

failed:

    json_decref(obj);
    json_decref(l1);
    json_decref(l2);

    return NULL;
}


static json_t *
loyalty_admin_entry(const loyalty_ledger_entry_t *le)
{
    json_t  *e;

    e = json_object();
    if (e == NULL) {
        return NULL;
    }

    json_object_set_new(e, "delta", json_integer(le->delta));
    json_object_set_new(e, "reason",
                        json_string(loyalty_ledger_reasons[le->reason]));

    if (le->event_len) {
        json_object_set_new(e, "event",
                            json_stringn(le->event, le->event_len));
    }

    loyalty_json_set_time(e, "at", le->at);

    return e;
}


json_t *
loyalty_admin_ledger(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, size_t limit)
{
    int                     rc;
    size_t                  n;
    uint8_t                 buf[LOYALTY_LEDGER_KEY_MAX];
    json_t                 *obj, *entries, *e;
    MDB_val                 key, val;
    MDB_cursor             *cur;
    loyalty_member_t        m;
    loyalty_ledger_entry_t  le;

    if (!loyalty_valid_id(id, len)) {
        return NULL;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    if (mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val) != 0
        || loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0)
    {
        return NULL;
    }

    obj = json_object();
    entries = json_array();

    if (obj == NULL || entries == NULL
        || mdb_cursor_open(txn, st->dbi[LOYALTY_DB_LEDGER], &cur) != 0)
    {
        json_decref(obj);
        json_decref(entries);
        return NULL;
    }

    json_object_set_new(obj, "member", json_stringn(id, len));
    json_object_set_new(obj, "balance", json_integer(m.points));
    json_object_set_new(obj, "entries", entries);

    /* from the newest back, so that a limit costs only what it shows */
    key.mv_data = buf;
    key.mv_size = loyalty_ledger_key(id, len, UINT64_MAX, buf);

    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    rc = mdb_cursor_get(cur, &key, &val, rc == 0 ? MDB_PREV : MDB_LAST);

    for (n = 0; rc == 0 && (limit == 0 || n < limit); n++) {
        if (key.mv_size != len + 9 || memcmp(key.mv_data, id, len) != 0
            || ((uint8_t *) key.mv_data)[len] != '\0')
        {
            break;
        }

        if (loyalty_ledger_decode(val.mv_data, val.mv_size, &le) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }

        e = loyalty_admin_entry(&le);
        if (e == NULL || json_array_insert_new(entries, 0, e) != 0) {
            rc = ENOMEM;
            break;
        }

        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(obj);
        return NULL;
    }

    return obj;
}
