/*
 * nginx-loyalty: a batch of events, a JSON array or JSON Lines, checked
 * and applied all or nothing in a nested transaction.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_batch.h"



static int
loyalty_batch_error(loyalty_batch_t *res, long index, const char *error)
{
    json_t  *e;

    e = json_object();
    if (e == NULL) {
        return -1;
    }

    if (index >= 0) {
        json_object_set_new(e, "index", json_integer(index));
    }

    json_object_set_new(e, "error", json_string(error));

    return json_array_append_new(res->errors, e);
}


/* one event of the batch: checks it and, in the nested txn, applies it */
static int
loyalty_batch_event(loyalty_apply_t *ap, loyalty_batch_t *res, json_t *obj,
    size_t index, int64_t now)
{
    int              rc, dup;
    char             why[LOYALTY_ERRLEN + 64];
    loyalty_event_t  ev;

    ap->err = why;
    ap->errlen = sizeof(why);

    if (loyalty_event_from_json(obj, now, &ev, why, sizeof(why)) != 0) {
        loyalty_batch_error(res, (long) index, why);
        return 0;
    }

    ap->conflict = NULL;

    rc = loyalty_apply_event(ap, &ev, &dup);

    if (rc == -1) {
        loyalty_batch_error(res, (long) index, why);
        return 0;
    }

    if (rc == LOYALTY_APPLY_CONFLICT) {
        if (loyalty_batch_error(res, (long) index, why) == 0) {
            json_object_set_new(json_array_get(res->errors,
                                    json_array_size(res->errors) - 1),
                                "conflict", ap->conflict);
        } else {
            json_decref(ap->conflict);
        }

        ap->conflict = NULL;
        res->conflicts++;
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    if (dup) {
        res->duplicates++;

    } else {
        res->applied++;
    }

    return 0;
}


static int
loyalty_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/*
 * The next line of JSON Lines from *p on that is not blank: 1 with it in
 * [*line, *eol) and *p after it, or 0 at end.
 */
static int
loyalty_lines_next(const char **p, const char *end, const char **line,
    const char **eol)
{
    const char  *q, *e;

    while (*p < end) {
        e = memchr(*p, '\n', (size_t) (end - *p));
        if (e == NULL) {
            e = end;
        }

        for (q = *p; q < e && loyalty_blank(*q); q++) {
            /* void */
        }

        *line = *p;
        *p = e < end ? e + 1 : end;

        if (q < e) {
            *eol = e;
            return 1;
        }
    }

    return 0;
}


/* the events of a body of JSON Lines, counted: blank lines are none */
static size_t
loyalty_lines_count(const char *p, const char *end)
{
    size_t       n;
    const char  *line, *eol;

    for (n = 0; loyalty_lines_next(&p, end, &line, &eol); n++) {
        /* void */
    }

    return n;
}


/*
 * Counts the events of the body: a JSON array, parsed into *doc, or JSON
 * Lines, counted.  0, or LOYALTY_BATCH_INVALID for an array that is not
 * JSON.
 */
static int
loyalty_batch_count(const char *body, size_t len, json_t **doc,
    loyalty_batch_t *res, char *err, size_t errlen)
{
    char          why[LOYALTY_ERRLEN];
    const char   *p, *end;
    json_error_t  jerr;

    end = body + len;

    for (p = body; p < end && loyalty_blank(*p); p++) {
        /* void */
    }

    *doc = NULL;

    if (!(p < end && *p == '[')) {
        res->events = loyalty_lines_count(body, end);
        return 0;
    }

    *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*doc == NULL) {
        snprintf(why, sizeof(why), "bad JSON: %s at line %d column %d",
                 jerr.text, jerr.line, jerr.column);
        loyalty_batch_error(res, -1, why);
        snprintf(err, errlen, "%s", why);
        return LOYALTY_BATCH_INVALID;
    }

    res->events = json_array_size(*doc);

    return 0;
}


/* the events of a JSON array, in order: 0 or an LMDB error */
static int
loyalty_batch_array(loyalty_apply_t *ap, loyalty_batch_t *res, json_t *doc,
    int64_t now)
{
    int      rc;
    size_t   i;
    json_t  *obj;

    json_array_foreach(doc, i, obj) {
        rc = loyalty_batch_event(ap, res, obj, i, now);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/*
 * The events of JSON Lines, in order, blank lines skipped; a line that
 * is not JSON is a bad event.  0 or an LMDB error.
 */
static int
loyalty_batch_lines(loyalty_apply_t *ap, loyalty_batch_t *res,
    const char *body, size_t len, int64_t now)
{
    int           rc;
    char          why[LOYALTY_ERRLEN];
    size_t        index;
    json_t       *obj;
    const char   *p, *end, *line, *eol;
    json_error_t  jerr;

    p = body;
    end = body + len;

    for (index = 0; loyalty_lines_next(&p, end, &line, &eol); index++) {
        rc = 0;

        obj = json_loadb(line, (size_t) (eol - line), JSON_REJECT_DUPLICATES,
                         &jerr);
        if (obj == NULL) {
            snprintf(why, sizeof(why), "bad JSON: %s", jerr.text);
            loyalty_batch_error(res, (long) index, why);

        } else {
            rc = loyalty_batch_event(ap, res, obj, index, now);
            json_decref(obj);
        }

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/*
 * Ends the nested transaction child after the events were applied (rc):
 * committed when every event was good, else aborted, with the result.
 */
static int
loyalty_batch_end(MDB_txn *child, int rc, loyalty_batch_t *res, char *err,
    size_t errlen)
{
    if (rc != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s", mdb_strerror(rc));
        }

        mdb_txn_abort(child);
        return rc;
    }

    if (json_array_size(res->errors)) {
        mdb_txn_abort(child);
        res->applied = 0;
        res->duplicates = 0;

        if (res->conflicts == json_array_size(res->errors)) {
            snprintf(err, errlen, "%zu of %zu events conflict with events "
                     "applied before", res->conflicts, res->events);
            return LOYALTY_BATCH_CONFLICT;
        }

        snprintf(err, errlen, "%zu of %zu events are invalid",
                 json_array_size(res->errors), res->events);
        return LOYALTY_BATCH_INVALID;
    }

    rc = mdb_txn_commit(child);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
    }

    return rc;
}


int
loyalty_batch_apply(loyalty_store_t *st, MDB_txn *txn, const char *body,
    size_t len, size_t max_events, int64_t now,
    const loyalty_event_hook_t *hook, loyalty_batch_t *res, char *err,
    size_t errlen)
{
    int               rc;
    json_t           *doc;
    MDB_txn          *child;
    loyalty_apply_t  *ap;

    memset(res, 0, sizeof(loyalty_batch_t));
    err[0] = '\0';

    res->errors = json_array();
    if (res->errors == NULL) {
        snprintf(err, errlen, "out of memory");
        return ENOMEM;
    }

    rc = loyalty_batch_count(body, len, &doc, res, err, errlen);
    if (rc != 0) {
        return rc;
    }

    if (res->events > max_events) {
        snprintf(err, errlen, "more than %zu events", max_events);
        json_decref(doc);
        return LOYALTY_BATCH_TOO_MANY;
    }

    ap = malloc(sizeof(loyalty_apply_t));
    if (ap == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(doc);
        return ENOMEM;
    }

    loyalty_stats_acc_init(&ap->stats);

    /* a nested transaction: a bad batch leaves the caller's untouched */
    rc = mdb_txn_begin(mdb_txn_env(txn), txn, 0, &child);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
        goto done;
    }

    rc = loyalty_apply_init(ap, st, child, hook, now, err, errlen);
    if (rc != 0) {
        mdb_txn_abort(child);
        goto done;
    }

    rc = doc ? loyalty_batch_array(ap, res, doc, now)
             : loyalty_batch_lines(ap, res, body, len, now);

    /* the batch's counters, summed in memory, written once */
    if (rc == 0 && json_array_size(res->errors) == 0) {
        rc = loyalty_stats_flush(st, child, &ap->stats);
    }

    /*
     * Every member it wrote is noted (the callers commit only the batch);
     * a batch of duplicates alone writes nothing, not even a seal.
     */
    if (rc == 0 && json_array_size(res->errors) == 0 && res->applied) {
        rc = loyalty_changes_seal(st, child);
    }

    rc = loyalty_batch_end(child, rc, res, err, errlen);

done:

    loyalty_stats_acc_free(&ap->stats);
    free(ap);
    json_decref(doc);

    return rc;
}


void
loyalty_batch_free(loyalty_batch_t *res)
{
    json_decref(res->errors);
    res->errors = NULL;
}
