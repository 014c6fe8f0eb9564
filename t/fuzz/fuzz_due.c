/*
 * nginx-loyalty: libFuzzer harness for due acknowledgements: the input is
 * the body of POST .../due/ack (or loyaltyctl ack's), parsed with the
 * flags the admin API uses and given to loyalty_due_ack_json() in the
 * store of fuzz_store.h, where three touches are due (FUZZ_TOUCHES; one
 * with a reward).  The invariants:
 *
 *   - the result is 0, or -1 with a message for a body that is neither
 *     an acknowledgement nor an array of them; never an LMDB error;
 *   - 0: an object with a status of schema/due-ack.schema.json, or
 *     {"results": [...]} with one such object per element;
 *   - the same body again: "acked" becomes "already", every other
 *     status stays (an acknowledgement is idempotent).
 */

#include "loyalty_due.h"
#include "fuzz_store.h"


static const char  *fuzz_touches[] = {
    "bday:lin.fan:2027",
    "thanks:wang.partner:zhou.fan",
    "miss:li.member:2026-11",
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t            i;
    MDB_txn          *txn;
    loyalty_touch_t   t;

    fuzz_store_open();

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    for (i = 0; i < sizeof(fuzz_touches) / sizeof(fuzz_touches[0]); i++) {
        memset(&t, 0, sizeof(loyalty_touch_t));
        t.state = LOYALTY_OUTCOME_PENDING;
        t.touch = (uint8_t) (i % LOYALTY_TOUCH_KINDS);
        t.due_at = FUZZ_NOW - 3600;
        t.scheduled_at = FUZZ_NOW - 86400;
        t.reward = i == 0 ? 10 : 0;

        FUZZ_CHECK(loyalty_due_schedule(&fuzz_st, txn, fuzz_touches[i],
                                        strlen(fuzz_touches[i]), &t,
                                        FUZZ_NOW - 86400)
                   == 0);
    }

    FUZZ_CHECK(mdb_txn_commit(txn) == 0);

    return 0;
}


/* the status of one result, checked against the schema's list */
static const char *
fuzz_status(json_t *res)
{
    size_t       i;
    const char  *s;

    static const char  *statuses[] = {
        "acked", "already", "unknown", "conflict", "error"
    };

    FUZZ_CHECK(json_is_object(res));

    s = json_string_value(json_object_get(res, "status"));
    FUZZ_CHECK(s != NULL);

    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (strcmp(s, statuses[i]) == 0) {
            return statuses[i];
        }
    }

    FUZZ_CHECK(0 && "unknown status");
    return NULL;
}


static void
fuzz_again(json_t *first, json_t *second)
{
    const char  *a, *b;

    a = fuzz_status(first);
    b = fuzz_status(second);

    FUZZ_CHECK(strcmp(a, "acked") == 0 ? strcmp(b, "already") == 0
                                       : strcmp(a, b) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc;
    size_t         i;
    json_t        *body, *res, *again, *list, *list2;
    MDB_txn       *txn;
    json_error_t   jerr;
    char           err[LOYALTY_ERRLEN];

    body = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      &jerr);
    if (body == NULL) {
        return 0;
    }

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    err[0] = '\0';
    rc = loyalty_due_ack_json(&fuzz_st, txn, body, FUZZ_NOW, &res, err,
                              sizeof(err));
    FUZZ_CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));

    if (rc == 0) {
        FUZZ_CHECK(loyalty_due_ack_json(&fuzz_st, txn, body, FUZZ_NOW + 60,
                                        &again, err, sizeof(err))
                   == 0);

        if (json_is_object(body)) {
            fuzz_again(res, again);

        } else {
            list = json_object_get(res, "results");
            list2 = json_object_get(again, "results");
            FUZZ_CHECK(json_array_size(list) == json_array_size(body));
            FUZZ_CHECK(json_array_size(list2) == json_array_size(body));

            for (i = 0; i < json_array_size(list); i++) {
                fuzz_again(json_array_get(list, i),
                           json_array_get(list2, i));
            }
        }

        json_decref(again);
    }

    json_decref(res);
    mdb_txn_abort(txn);
    json_decref(body);

    return 0;
}
