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


/* one acknowledgement: its result object, or NULL when out of memory */
static json_t *
loyalty_due_ack_one(loyalty_store_t *st, MDB_txn *txn, json_t *a,
    int64_t now, int *lmdb)
{
    int          rc, outcome;
    json_t      *res, *v;
    size_t       len, by_len;
    const char  *id, *by, *status, *s;
    char         err[LOYALTY_ERRLEN];

    res = json_object();
    if (res == NULL) {
        return NULL;
    }

    *lmdb = 0;
    status = "error";
    err[0] = '\0';
    id = NULL;
    len = 0;
    by = NULL;
    by_len = 0;
    outcome = -1;

    v = json_is_object(a) ? json_object_get(a, "id") : NULL;

    if (!json_is_object(a)) {
        snprintf(err, sizeof(err), "an acknowledgement is an object");
        goto done;
    }

    if (!json_is_string(v)) {
        snprintf(err, sizeof(err), "\"id\" must be a string");
        goto done;
    }

    id = json_string_value(v);
    len = json_string_length(v);
    json_object_set(res, "id", v);

    v = json_object_get(a, "outcome");
    if (json_is_string(v)) {
        outcome = loyalty_name_index(loyalty_outcome_names,
                                     LOYALTY_OUTCOMES,
                                     json_string_value(v),
                                     json_string_length(v));
    }

    if (outcome <= LOYALTY_OUTCOME_PENDING) {
        snprintf(err, sizeof(err), "\"outcome\" must be \"done\", "
                 "\"skipped\" or \"failed\"");
        goto done;
    }

    v = json_object_get(a, "by");
    if (v) {
        if (!json_is_string(v)
            || !loyalty_valid_id(json_string_value(v), json_string_length(v)))
        {
            snprintf(err, sizeof(err), "\"by\" must be 1-64 characters of "
                     "A-Z, a-z, 0-9, \"_\", \".\" and \"-\"");
            goto done;
        }

        by = json_string_value(v);
        by_len = json_string_length(v);
    }

    json_object_foreach(a, s, v) {
        if (strcmp(s, "id") && strcmp(s, "outcome") && strcmp(s, "by")) {
            snprintf(err, sizeof(err), "unknown field \"%.64s\"", s);
            goto done;
        }
    }

    /* LMDB takes no empty key: MDB_BAD_VALSIZE, a server error */
    if (len == 0 || len > LOYALTY_TOUCH_ID_MAX) {
        rc = LOYALTY_DUE_UNKNOWN;

    } else {
        rc = loyalty_due_ack(st, txn, id, len, (loyalty_outcome_e) outcome,
                             by, by_len, now);
    }

    switch (rc) {

    case LOYALTY_DUE_ACKED:
        status = "acked";
        break;

    case LOYALTY_DUE_ALREADY:
        status = "already";
        break;

    case LOYALTY_DUE_UNKNOWN:
        status = "unknown";
        snprintf(err, sizeof(err), "no touch has this id");
        break;

    case LOYALTY_DUE_CONFLICT:
        status = "conflict";
        snprintf(err, sizeof(err), "already acknowledged with another "
                 "outcome");
        break;

    default:
        *lmdb = rc;
        break;
    }

done:

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
