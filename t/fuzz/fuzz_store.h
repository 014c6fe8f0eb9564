/*
 * nginx-loyalty: a store for the libFuzzer harnesses that write (events,
 * rules, due): made once per process in a fresh directory under /tmp
 * from schema/examples (tiers, members, codes, rules), removed at exit.
 * Each input runs in a write transaction that is aborted, so every input
 * sees the same store and the fuzzing costs no disk writes.
 */

#ifndef _LOYALTY_FUZZ_STORE_H_INCLUDED_
#define _LOYALTY_FUZZ_STORE_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "loyalty_admin.h"
#include "loyalty_json.h"
#include "loyalty_record.h"
#include "loyalty_store.h"
#include "fuzz.h"
#include "store_fixture.h"


/* 2027-01-15T08:00:00Z, as the other harnesses */
#define FUZZ_NOW  1800000000


static const char *const  fuzz_hosts[] = { "mall.example.cn" };
static const size_t       fuzz_host_lens[] = {
    sizeof("mall.example.cn") - 1
};

static loyalty_store_t  fuzz_st;
static char             fuzz_dir[FIXTURE_PATH_MAX];


static void
fuzz_store_remove(void)
{
    char  path[FIXTURE_PATH_MAX + 16];

    mdb_env_close(fuzz_st.env);

    snprintf(path, sizeof(path), "%s/data.mdb", fuzz_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", fuzz_dir);
    unlink(path);
    rmdir(fuzz_dir);
}


/* one example file, kind "tier" or a loyalty_admin_put() kind */
static void
fuzz_store_import(MDB_txn *txn, const char *kind, const char *file)
{
    FILE            *f;
    json_t          *obj;
    size_t           id_len;
    MDB_val          key, val;
    const char      *id;
    json_error_t     jerr;
    loyalty_tier_t   tier;
    char             line[4096], err[LOYALTY_ERRLEN];
    uint8_t          buf[LOYALTY_TIER_REC_MAX];

    f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "fuzz: %s: run from the top of the tree\n", file);
        abort();
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        obj = json_loads(line, 0, &jerr);
        FUZZ_CHECK(obj != NULL);

        if (strcmp(kind, "tier") == 0) {
            FUZZ_CHECK(loyalty_tier_from_json(obj, &id, &id_len, &tier, err,
                                              sizeof(err)) == 0);
            key.mv_data = (void *) id;
            key.mv_size = id_len;
            val.mv_data = buf;
            val.mv_size = loyalty_tier_encode(&tier, buf);
            FUZZ_CHECK(mdb_put(txn, fuzz_st.dbi[LOYALTY_DB_TIERS], &key,
                               &val, 0) == 0);

        } else {
            id = json_string_value(json_object_get(obj, "id"));
            if (id == NULL) {
                id = json_string_value(json_object_get(obj, "code"));
            }

            if (loyalty_admin_put(&fuzz_st, txn, kind, id,
                                  id ? strlen(id) : 0, obj, fuzz_hosts,
                                  fuzz_host_lens, 1, FUZZ_NOW, err,
                                  sizeof(err))
                != 0)
            {
                fprintf(stderr, "fuzz: %s: %s\n", file, err);
                abort();
            }
        }

        json_decref(obj);
    }

    fclose(f);
}


static void
fuzz_store_open(void)
{
    json_t        *rules;
    MDB_txn       *txn;
    json_error_t   jerr;
    char           err[LOYALTY_ERRLEN];

    FUZZ_CHECK(mkdtemp(fixture_tmp(fuzz_dir, "fuzz")) != NULL);

    if (loyalty_store_open(&fuzz_st, fuzz_dir, LOYALTY_STORE_CREATE, err,
                           sizeof(err))
        != 0)
    {
        fprintf(stderr, "fuzz: store: %s\n", err);
        abort();
    }

    atexit(fuzz_store_remove);

    FUZZ_CHECK(mdb_txn_begin(fuzz_st.env, NULL, 0, &txn) == 0);

    fuzz_store_import(txn, "tier", "schema/examples/tiers.jsonl");
    fuzz_store_import(txn, "member", "schema/examples/members.jsonl");
    fuzz_store_import(txn, "code", "schema/examples/codes.jsonl");

    rules = json_load_file("schema/examples/rules.json", 0, &jerr);
    FUZZ_CHECK(rules != NULL);
    FUZZ_CHECK(loyalty_admin_put(&fuzz_st, txn, "rules", NULL, 0, rules,
                                 NULL, NULL, 0, FUZZ_NOW, err, sizeof(err))
               == 0);
    json_decref(rules);

    FUZZ_CHECK(mdb_txn_commit(txn) == 0);
}


#endif /* _LOYALTY_FUZZ_STORE_H_INCLUDED_ */
