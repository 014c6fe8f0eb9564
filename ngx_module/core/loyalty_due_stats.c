/*
 * nginx-loyalty: the due queue's statistics, per cadence and per member
 * of staff (schema/cadence-stats.schema.json).
 */

#include <errno.h>
#include <string.h>

#include "loyalty_due.h"


static json_t *
loyalty_due_counter(json_t *parent, const char *name, size_t len,
    const char *const *fields)
{
    char     buf[LOYALTY_ID_MAX + 1];
    json_t  *o;
    size_t   i;

    memcpy(buf, name, len);
    buf[len] = '\0';

    o = json_object_get(parent, buf);
    if (o) {
        return o;
    }

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    for (i = 0; fields[i]; i++) {
        json_object_set_new(o, fields[i], json_integer(0));
    }

    if (json_object_set_new(parent, buf, o) != 0) {
        return NULL;
    }

    return o;
}


static void
loyalty_due_count(json_t *o, const char *field, json_int_t n)
{
    json_t  *v;

    v = json_object_get(o, field);
    json_integer_set(v, json_integer_value(v) + n);
}


int
loyalty_due_stats(loyalty_store_t *st, MDB_txn *txn, int64_t since,
    json_t **out)
{
    static const char  *cfields[] = {
        "scheduled", "pending", "done", "skipped", "failed", "points", NULL
    };
    static const char  *sfields[] = { "done", "skipped", "failed", NULL };

    int               rc;
    json_t           *doc, *cads, *staff, *c, *s;
    size_t            clen, mlen, plen;
    MDB_val           key, val;
    MDB_cursor       *cur;
    const char       *member, *period;
    loyalty_touch_t   t;

    doc = json_object();
    cads = json_object();
    staff = json_object();

    if (doc == NULL || cads == NULL || staff == NULL) {
        json_decref(doc);
        json_decref(cads);
        json_decref(staff);
        return ENOMEM;
    }

    json_object_set_new(doc, "cadences", cads);
    json_object_set_new(doc, "staff", staff);

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_TOUCHES], &cur);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_touch_decode(val.mv_data, val.mv_size, &t) != 0
            || loyalty_touch_id_split(key.mv_data, key.mv_size, &clen,
                                      &member, &mlen, &period, &plen)
               != 0)
        {
            rc = MDB_CORRUPTED;
            break;
        }

        if (t.due_at < since) {
            continue;
        }

        c = loyalty_due_counter(cads, key.mv_data, clen, cfields);
        if (c == NULL) {
            rc = ENOMEM;
            break;
        }

        loyalty_due_count(c, "scheduled", 1);
        loyalty_due_count(c, loyalty_outcome_names[t.state], 1);

        if (t.flags & LOYALTY_TOUCH_REWARDED) {
            loyalty_due_count(c, "points", t.reward);
        }

        if (t.by_len) {
            s = loyalty_due_counter(staff, t.by, t.by_len, sfields);
            if (s == NULL) {
                rc = ENOMEM;
                break;
            }

            loyalty_due_count(s, loyalty_outcome_names[t.state], 1);
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        json_decref(doc);
        return rc;
    }

    *out = doc;

    return 0;
}
