/*
 * nginx-loyalty: libFuzzer harness for event batches: the input is the
 * body of POST .../events (a JSON array, or JSON Lines), applied by
 * loyalty_batch_apply() to the store of fuzz_store.h (schema/examples)
 * in a transaction that is then aborted.  The invariants:
 *
 *   - the result is 0, LOYALTY_BATCH_INVALID, LOYALTY_BATCH_CONFLICT or
 *     LOYALTY_BATCH_TOO_MANY (an LMDB error is a finding: the store is
 *     small and healthy);
 *   - 0: applied + duplicates = events, no errors, and the same batch
 *     again in the same transaction is all duplicates (idempotence);
 *   - invalid or conflict: at least one error, each with a message and
 *     the index of its event (none: the whole body); a conflict's errors
 *     are all conflicts, each with its "conflict" object, an invalid
 *     batch's are not; nothing applied, and the store is as it was;
 *   - too many: more events than allowed, and the store is as it was.
 */

#include "loyalty_batch.h"
#include "fuzz_store.h"


#define FUZZ_MAX_EVENTS  64


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_store_open();
    return 0;
}


/* FNV-1a over every key and value of every database, as txn sees them */
static uint64_t
fuzz_store_hash(MDB_txn *txn)
{
    int          i, rc;
    size_t       k;
    uint64_t     h;
    MDB_val      key, val;
    MDB_cursor  *cur;

    h = 14695981039346656037ULL;

    for (i = 0; i < LOYALTY_DB_COUNT; i++) {
        FUZZ_CHECK(mdb_cursor_open(txn, fuzz_st.dbi[i], &cur) == 0);

        for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        {
            for (k = 0; k < key.mv_size; k++) {
                h = (h ^ ((const uint8_t *) key.mv_data)[k])
                    * 1099511628211ULL;
            }

            h = (h ^ 0x100) * 1099511628211ULL;

            for (k = 0; k < val.mv_size; k++) {
                h = (h ^ ((const uint8_t *) val.mv_data)[k])
                    * 1099511628211ULL;
            }

            h = (h ^ 0x200) * 1099511628211ULL;
        }

        FUZZ_CHECK(rc == MDB_NOTFOUND);
        mdb_cursor_close(cur);

        h = (h ^ 0x300) * 1099511628211ULL;
    }

    return h;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc;
    char             *body;
    size_t            i, conflicts;
    json_t           *e, *v;
    uint64_t          before;
    MDB_txn          *txn;
    loyalty_batch_t   res, again;
    char              err[LOYALTY_ERRLEN];

    /* exactly the input's size, so that a read past it is seen */
    body = malloc(size ? size : 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, data, size);

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    before = fuzz_store_hash(txn);

    rc = loyalty_batch_apply(&fuzz_st, txn, body, size, FUZZ_MAX_EVENTS,
                             FUZZ_NOW, NULL, &res, err, sizeof(err));

    FUZZ_CHECK(rc == 0 || rc == LOYALTY_BATCH_INVALID
               || rc == LOYALTY_BATCH_CONFLICT
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

    } else if (rc == LOYALTY_BATCH_INVALID || rc == LOYALTY_BATCH_CONFLICT) {
        FUZZ_CHECK(json_array_size(res.errors) > 0);
        FUZZ_CHECK(res.applied == 0 && res.duplicates == 0);
        FUZZ_CHECK(fuzz_store_hash(txn) == before);

        for (i = 0, conflicts = 0; i < json_array_size(res.errors); i++) {
            e = json_array_get(res.errors, i);
            v = json_object_get(e, "index");
            FUZZ_CHECK(v == NULL
                       || (json_is_integer(v) && json_integer_value(v) >= 0
                           && (size_t) json_integer_value(v) < res.events));
            FUZZ_CHECK(json_string_length(json_object_get(e, "error")) > 0);

            v = json_object_get(e, "conflict");
            FUZZ_CHECK(v == NULL || json_is_object(v));

            if (v != NULL) {
                FUZZ_CHECK(json_object_get(e, "index") != NULL);
                conflicts++;
            }
        }

        FUZZ_CHECK(conflicts == res.conflicts);

        if (rc == LOYALTY_BATCH_CONFLICT) {
            FUZZ_CHECK(conflicts == json_array_size(res.errors));

        } else {
            FUZZ_CHECK(conflicts < json_array_size(res.errors));
        }

    } else {
        FUZZ_CHECK(res.events > FUZZ_MAX_EVENTS);
        FUZZ_CHECK(fuzz_store_hash(txn) == before);
    }

    loyalty_batch_free(&res);
    mdb_txn_abort(txn);
    free(body);

    return 0;
}
