/*
 * nginx-loyalty: libFuzzer harness for event batches: the input is the
 * body of POST .../events (a JSON array, or JSON Lines), applied by
 * loyalty_batch_apply() to the store of fuzz_store.h (schema/examples)
 * in a transaction that is then aborted.  The invariants:
 *
 *   - the result is 0, LOYALTY_BATCH_INVALID or LOYALTY_BATCH_TOO_MANY
 *     (an LMDB error is a finding: the store is small and healthy);
 *   - 0: applied + duplicates = events, no errors, and the same batch
 *     again in the same transaction is all duplicates (idempotence);
 *   - invalid: at least one error, each with a message and the index of
 *     its event (none: the whole body).
 */

#include "loyalty_events.h"
#include "fuzz_store.h"


#define FUZZ_MAX_EVENTS  64


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_store_open();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc;
    char             *body;
    size_t            i;
    json_t           *e, *v;
    MDB_txn          *txn;
    loyalty_batch_t   res, again;
    char              err[LOYALTY_ERRLEN];

    /* exactly the input's size, so that a read past it is seen */
    body = malloc(size ? size : 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, data, size);

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    rc = loyalty_batch_apply(&fuzz_st, txn, body, size, FUZZ_MAX_EVENTS,
                             FUZZ_NOW, NULL, &res, err, sizeof(err));

    FUZZ_CHECK(rc == 0 || rc == LOYALTY_BATCH_INVALID
               || rc == LOYALTY_BATCH_TOO_MANY);

    if (rc == 0) {
        FUZZ_CHECK(res.applied + res.duplicates == res.events);
        FUZZ_CHECK(res.errors == NULL || json_array_size(res.errors) == 0);

        memset(&again, 0, sizeof(loyalty_batch_t));
        FUZZ_CHECK(loyalty_batch_apply(&fuzz_st, txn, body, size,
                                       FUZZ_MAX_EVENTS, FUZZ_NOW, NULL,
                                       &again, err, sizeof(err))
                   == 0);
        FUZZ_CHECK(again.events == res.events);
        FUZZ_CHECK(again.applied == 0);
        FUZZ_CHECK(again.duplicates == res.events);
        loyalty_batch_free(&again);

    } else if (rc == LOYALTY_BATCH_INVALID) {
        FUZZ_CHECK(json_array_size(res.errors) > 0);

        for (i = 0; i < json_array_size(res.errors); i++) {
            e = json_array_get(res.errors, i);
            v = json_object_get(e, "index");
            FUZZ_CHECK(v == NULL
                       || (json_is_integer(v) && json_integer_value(v) >= 0
                           && (size_t) json_integer_value(v) < res.events));
            FUZZ_CHECK(json_string_length(json_object_get(e, "error")) > 0);
        }

    } else {
        FUZZ_CHECK(res.events > FUZZ_MAX_EVENTS);
    }

    loyalty_batch_free(&res);
    mdb_txn_abort(txn);
    free(body);

    return 0;
}
