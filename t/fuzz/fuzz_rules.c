/*
 * nginx-loyalty: libFuzzer harness for the rules document: the input is
 * the body of PUT .../rules (or loyaltyctl's rules file), parsed with the
 * flags the admin API uses.  The invariants:
 *
 *   - loyalty_rules_from_json() accepts (0) or refuses with a message;
 *   - accepted, loyalty_rules_put() into the store of fuzz_store.h
 *     stores it or refuses it with a message (a tier not in the store),
 *     never an LMDB error; stored, loyalty_rules_load() gives exactly
 *     what loyalty_rules_from_json() gave, and loyalty_rules_get() a
 *     document that is accepted again;
 *   - with the rules, every example member has a lifecycle among the
 *     names, RFM scores of 1-5 and a segment named by the rules, at the
 *     fuzzing time and a century later (no overflow: UBSan).
 */

#include "loyalty_rules.h"
#include "fuzz_store.h"


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_store_open();
    return 0;
}


static void
fuzz_members(MDB_txn *txn, const loyalty_rules_t *r)
{
    int                  rc;
    size_t               i, len;
    int64_t              now;
    unsigned             rs, fs, ms;
    MDB_val              key, val;
    MDB_cursor          *cur;
    const char          *name;
    loyalty_member_t     m;
    loyalty_lifecycle_e  lc;

    FUZZ_CHECK(mdb_cursor_open(txn, fuzz_st.dbi[LOYALTY_DB_MEMBERS], &cur)
               == 0);

    while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
        FUZZ_CHECK(loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0);

        for (now = FUZZ_NOW; now <= FUZZ_NOW + 100LL * 366 * 86400;
             now += 100LL * 366 * 86400)
        {
            lc = loyalty_lifecycle(r, &m, now);
            FUZZ_CHECK((unsigned) lc < LOYALTY_LIFECYCLE_COUNT);

            loyalty_rfm(r, &m, now, &rs, &fs, &ms);
            FUZZ_CHECK(rs >= 1 && rs <= 5 && fs >= 1 && fs <= 5
                       && ms >= 1 && ms <= 5);

            rc = loyalty_segment(r, &m, now, &name, &len);
            if (rc != 0) {
                continue;
            }

            for (i = 0; i < r->nsegments; i++) {
                if (name == r->segments[i].name
                    && len == r->segments[i].len)
                {
                    break;
                }
            }

            FUZZ_CHECK(i < r->nsegments);
        }
    }

    mdb_cursor_close(cur);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc;
    json_t           *doc, *got;
    MDB_txn          *txn;
    json_error_t      jerr;
    loyalty_rules_t  *r1, *r2;
    char              err[LOYALTY_ERRLEN];

    doc = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                     &jerr);
    if (doc == NULL) {
        return 0;
    }

    r1 = calloc(2, sizeof(loyalty_rules_t));
    FUZZ_CHECK(r1 != NULL);
    r2 = r1 + 1;

    err[0] = '\0';
    rc = loyalty_rules_from_json(doc, r1, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));

    if (rc != 0) {
        goto done;
    }

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    err[0] = '\0';
    rc = loyalty_rules_put(&fuzz_st, txn, doc, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));

    if (rc == 0) {
        FUZZ_CHECK(loyalty_rules_load(&fuzz_st, txn, r2) == 0);
        FUZZ_CHECK(memcmp(r1, r2, sizeof(loyalty_rules_t)) == 0);

        got = loyalty_rules_get(&fuzz_st, txn, &rc);
        FUZZ_CHECK(got != NULL);
        memset(r2, 0, sizeof(loyalty_rules_t));
        FUZZ_CHECK(loyalty_rules_from_json(got, r2, err, sizeof(err)) == 0);
        json_decref(got);

        fuzz_members(txn, r1);
    }

    mdb_txn_abort(txn);

done:

    free(r1);
    json_decref(doc);

    return 0;
}
