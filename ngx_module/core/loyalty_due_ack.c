/*
 * nginx-loyalty: acknowledgements of touches of the due queue, one or
 * many from JSON (schema/due-ack.schema.json): the outcome, who, and the
 * touch's reward when it is done.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_due.h"


int
loyalty_due_ack(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_outcome_e outcome, const char *by, size_t by_len,
    int64_t now)
{
    int              rc;
    uint8_t          buf[LOYALTY_TOUCH_REC_MAX];
    uint8_t          kbuf[LOYALTY_DUE_KEY_MAX];
    MDB_val          key;
    loyalty_touch_t  t;

    rc = loyalty_touch_get(st, txn, id, len, buf, &t);
    if (rc == MDB_NOTFOUND) {
        return LOYALTY_DUE_UNKNOWN;
    }

    if (rc != 0) {
        return rc;
    }

    if (t.state != LOYALTY_OUTCOME_PENDING) {
        return (t.state == outcome) ? LOYALTY_DUE_ALREADY
                                    : LOYALTY_DUE_CONFLICT;
    }

    /* acknowledged before it fell due: its reward is given now */
    if (!(t.flags & LOYALTY_TOUCH_REWARDED)) {
        rc = loyalty_due_credit(st, txn, id, len, &t);
        if (rc != 0) {
            return rc;
        }
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_due_key(t.due_at, id, len, kbuf);

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_DUE], &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    t.state = (uint8_t) outcome;
    t.acked_at = now;
    t.by = by;
    t.by_len = (uint8_t) by_len;

    rc = loyalty_touch_put(st, txn, id, len, &t);

    return rc == 0 ? LOYALTY_DUE_ACKED : rc;
}


/* an acknowledgement's fields, checked; -1 with err */
typedef struct {
    const char  *id;
    size_t       len;
    const char  *by;
    size_t       by_len;
    int          outcome;
} loyalty_due_acking_t;


static int
loyalty_due_ack_parse(json_t *a, json_t *res, loyalty_due_acking_t *ak,
    char *err, size_t errlen)
{
    json_t      *v;
    const char  *s;

    v = json_is_object(a) ? json_object_get(a, "id") : NULL;

    if (!json_is_object(a)) {
        snprintf(err, errlen, "an acknowledgement is an object");
        return -1;
    }

    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"id\" must be a string");
        return -1;
    }

    ak->id = json_string_value(v);
    ak->len = json_string_length(v);
    json_object_set(res, "id", v);

    v = json_object_get(a, "outcome");
    if (json_is_string(v)) {
        ak->outcome = loyalty_name_index(loyalty_outcome_names,
                                         LOYALTY_OUTCOMES,
                                         json_string_value(v),
                                         json_string_length(v));
    }

    if (ak->outcome <= LOYALTY_OUTCOME_PENDING) {
        snprintf(err, errlen, "\"outcome\" must be \"done\", "
                 "\"skipped\" or \"failed\"");
        return -1;
    }

    v = json_object_get(a, "by");
    if (v) {
        if (!json_is_string(v)
            || !loyalty_valid_id(json_string_value(v), json_string_length(v)))
        {
            snprintf(err, errlen, "\"by\" must be 1-64 characters of "
                     "A-Z, a-z, 0-9, \"_\", \".\" and \"-\"");
            return -1;
        }

        ak->by = json_string_value(v);
        ak->by_len = json_string_length(v);
    }

    json_object_foreach(a, s, v) {
        if (strcmp(s, "id") && strcmp(s, "outcome") && strcmp(s, "by")) {
            snprintf(err, errlen, "unknown field \"%.64s\"", s);
            return -1;
        }
    }

    return 0;
}


/* the status of loyalty_due_ack()'s result rc; *lmdb for an LMDB error */
static const char *
loyalty_due_ack_status(int rc, int *lmdb, char *err, size_t errlen)
{
    switch (rc) {

    case LOYALTY_DUE_ACKED:
        return "acked";

    case LOYALTY_DUE_ALREADY:
        return "already";

    case LOYALTY_DUE_UNKNOWN:
        snprintf(err, errlen, "no touch has this id");
        return "unknown";

    case LOYALTY_DUE_CONFLICT:
        snprintf(err, errlen, "already acknowledged with another outcome");
        return "conflict";

    default:
        *lmdb = rc;
        return "error";
    }
}


/* one acknowledgement: its result object, or NULL when out of memory */
static json_t *
loyalty_due_ack_one(loyalty_store_t *st, MDB_txn *txn, json_t *a,
    int64_t now, int *lmdb)
{
    int                   rc;
    char                  err[LOYALTY_ERRLEN];
    json_t               *res;
    const char           *status;
    loyalty_due_acking_t  ak;

    res = json_object();
    if (res == NULL) {
        return NULL;
    }

    *lmdb = 0;
    status = "error";
    err[0] = '\0';
    memset(&ak, 0, sizeof(loyalty_due_acking_t));
    ak.outcome = -1;

    if (loyalty_due_ack_parse(a, res, &ak, err, sizeof(err)) == 0) {

        /* LMDB takes no empty key: MDB_BAD_VALSIZE, a server error */
        if (ak.len == 0 || ak.len > LOYALTY_TOUCH_ID_MAX) {
            rc = LOYALTY_DUE_UNKNOWN;

        } else {
            rc = loyalty_due_ack(st, txn, ak.id, ak.len,
                                 (loyalty_outcome_e) ak.outcome, ak.by,
                                 ak.by_len, now);
        }

        status = loyalty_due_ack_status(rc, lmdb, err, sizeof(err));
    }

    json_object_set_new(res, "status", json_string(status));

    if (err[0]) {
        json_object_set_new(res, "error", json_string(err));
    }

    return res;
}


int
loyalty_due_ack_json(loyalty_store_t *st, MDB_txn *txn, json_t *body,
    int64_t now, json_t **result, char *err, size_t errlen)
{
    int      rc;
    size_t   i;
    json_t  *a, *res, *list;

    *result = NULL;

    if (json_is_object(body)) {
        *result = loyalty_due_ack_one(st, txn, body, now, &rc);
        return *result ? rc : ENOMEM;
    }

    if (!json_is_array(body) || json_array_size(body) == 0
        || json_array_size(body) > LOYALTY_DUE_LIMIT_MAX)
    {
        snprintf(err, errlen, "the body must be an acknowledgement or an "
                 "array of 1-%d of them", LOYALTY_DUE_LIMIT_MAX);
        return -1;
    }

    list = json_array();
    *result = json_object();

    if (list == NULL || *result == NULL) {
        json_decref(list);
        return ENOMEM;
    }

    json_object_set_new(*result, "results", list);

    json_array_foreach(body, i, a) {
        res = loyalty_due_ack_one(st, txn, a, now, &rc);

        if (res == NULL) {
            return ENOMEM;
        }

        json_array_append_new(list, res);

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}
