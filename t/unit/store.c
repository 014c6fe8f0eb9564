/*
 * Unit tests of loyalty_store.c: opening, creating and growing the LMDB
 * store, in a temporary directory.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_store.h"
#include "loyalty_util.h"
#include "store_fixture.h"
#include "tap.h"


static char  tmp[FIXTURE_PATH_MAX];


static const char *
in_tmp(const char *name)
{
    static char  path[FIXTURE_PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    return path;
}


static int
dir_is_empty(const char *path)
{
    int             n;
    DIR            *dir;
    struct dirent  *de;

    dir = opendir(path);
    if (dir == NULL) {
        return 0;
    }

    n = 0;
    while ((de = readdir(dir)) != NULL) {
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }

    closedir(dir);
    return n == 0;
}


/*
 * Changes one meta record behind the store's back, with plain LMDB calls;
 * a NULL value deletes it.
 */
static int
raw_meta_put(const char *path, const char *key, const void *val, size_t len)
{
    int       rc;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;
    MDB_val   k, v;

    rc = mdb_env_create(&env);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_env_set_maxdbs(env, 4);
    if (rc == 0) {
        rc = mdb_env_open(env, path, 0, 0644);
    }

    if (rc == 0) {
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    }

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "meta", 0, &dbi);

        k.mv_data = (void *) key;
        k.mv_size = strlen(key);
        v.mv_data = (void *) val;
        v.mv_size = len;

        if (rc == 0) {
            rc = val ? mdb_put(txn, dbi, &k, &v, 0)
                     : mdb_del(txn, dbi, &k, NULL);
        }

        if (rc == 0) {
            rc = mdb_txn_commit(txn);

        } else {
            mdb_txn_abort(txn);
        }
    }

    mdb_env_close(env);

    if (rc != 0) {
        diag("raw LMDB on %s: %s", path, mdb_strerror(rc));
    }

    return rc;
}


static int
open_ok(loyalty_store_t *st, const char *path, unsigned flags)
{
    char  err[LOYALTY_ERRLEN];

    if (loyalty_store_open(st, path, flags, err, sizeof(err)) != 0) {
        diag("%s", err);
        return 0;
    }

    return 1;
}


/* opening fails, and err has both the path and the reason */
static void
open_fails(const char *path, unsigned flags, const char *reason,
    const char *what)
{
    int              rc;
    char             err[LOYALTY_ERRLEN];
    loyalty_store_t  st;

    strcpy(err, "(no error)");
    rc = loyalty_store_open(&st, path, flags, err, sizeof(err));

    if (rc == 0) {
        loyalty_store_close(&st);
    }

    if (!ok(rc == -1 && st.env == NULL && strstr(err, path)
            && strstr(err, reason),
            "%s", what))
    {
        diag("rc %d, \"%s\"", rc, err);
    }
}


static void
test_create(void)
{
    unsigned         envflags;
    int              rc, bad;
    size_t           i;
    time_t           before, after;
    MDB_txn         *txn;
    MDB_dbi          dbi;
    MDB_val          key, val;
    int64_t          created;
    uint32_t         version;
    char             path[PATH_MAX];
    struct stat      sb;
    loyalty_store_t  st;

    static const char  *names[] = { "meta", "members", "tiers" };

    snprintf(path, sizeof(path), "%s", in_tmp("shop"));

    before = time(NULL);
    if (!ok(open_ok(&st, path, LOYALTY_STORE_CREATE),
            "CREATE makes a store in a new directory"))
    {
        return;
    }
    after = time(NULL);

    ok(stat(in_tmp("shop/data.mdb"), &sb) == 0 && S_ISREG(sb.st_mode)
       && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode),
       "the store is a directory holding data.mdb");

    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    bad = rc != 0;

    for (i = 0; rc == 0 && i < nelts(names); i++) {
        if (mdb_dbi_open(txn, names[i], 0, &dbi) != 0) {
            diag("no \"%s\" database", names[i]);
            bad++;
        }
    }

    ok(bad == 0, "databases meta, members and tiers exist");

    bad = rc != 0;

    for (i = 0; rc == 0 && i < LOYALTY_DB_COUNT; i++) {
        if (mdb_dbi_open(txn, loyalty_store_dbs[i], 0, &dbi) != 0) {
            diag("no \"%s\" database", loyalty_store_dbs[i]);
            bad++;
        }
    }

    ok(bad == 0, "every database of loyalty_store_dbs exists");

    version = 0;
    created = 0;
    ok(rc == 0 && loyalty_store_meta(&st, txn, &version, &created) == 0
       && version == 1 && created >= before && created <= after,
       "schema version 1, created_at is the time of creation");

    key.mv_data = LOYALTY_META_VERSION_KEY;
    key.mv_size = strlen(LOYALTY_META_VERSION_KEY);
    ok(rc == 0 && mdb_get(txn, st.dbi[LOYALTY_DB_META], &key, &val) == 0
       && val.mv_size == 4 && memcmp(val.mv_data, "\1\0\0\0", 4) == 0,
       "schema_version is stored as u32 LE 1");

    if (rc == 0) {
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);
    ok(st.env == NULL, "close clears the environment");

    /* CREATE on an existing store keeps what is there */
    raw_meta_put(path, LOYALTY_META_CREATED_KEY, "\x39\x30\0\0\0\0\0\0", 8);

    rc = open_ok(&st, path, LOYALTY_STORE_CREATE)
         && mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) == 0;
    ok(rc && loyalty_store_meta(&st, txn, &version, &created) == 0
       && version == 1 && created == 12345,
       "CREATE again keeps created_at");
    if (rc) {
        mdb_txn_abort(txn);
    }
    loyalty_store_close(&st);

    rc = open_ok(&st, path, LOYALTY_STORE_RDONLY);
    ok(rc && mdb_env_get_flags(st.env, &envflags) == 0
       && (envflags & MDB_RDONLY), "reopened RDONLY");

    rc = rc && mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) == 0;
    ok(rc && loyalty_store_meta(&st, txn, &version, &created) == 0
       && version == 1,
       "RDONLY: meta readable");
    if (rc) {
        mdb_txn_abort(txn);
    }

    ok(st.env && mdb_txn_begin(st.env, NULL, 0, &txn) != 0,
       "RDONLY: no write transaction");
    loyalty_store_close(&st);

    rc = open_ok(&st, path, 0);
    ok(rc, "reopened read-write without CREATE");
    loyalty_store_close(&st);
}


static void
test_not_a_store(void)
{
    FILE  *f;
    char   path[PATH_MAX];

    snprintf(path, sizeof(path), "%s", in_tmp("empty"));
    mkdir(path, 0755);

    open_fails(path, LOYALTY_STORE_RDONLY, "store",
               "empty directory, RDONLY: fails, naming the path");
    ok(dir_is_empty(path), "empty directory, RDONLY: nothing created");

    open_fails(path, 0, "not initialized (loyaltyctl init)",
               "empty directory, read-write: not initialized");
    ok(dir_is_empty(path), "empty directory, read-write: nothing created");

    snprintf(path, sizeof(path), "%s", in_tmp("missing"));
    open_fails(path, LOYALTY_STORE_RDONLY, "No such file",
               "missing directory: fails, naming the path");

    snprintf(path, sizeof(path), "%s", in_tmp("missing/shop"));
    open_fails(path, LOYALTY_STORE_CREATE, "cannot create store",
               "CREATE under a missing directory");

    snprintf(path, sizeof(path), "%s", in_tmp("file"));
    f = fopen(path, "w");
    if (f) {
        fclose(f);
    }
    open_fails(path, LOYALTY_STORE_RDONLY, "is not a directory",
               "a regular file is not a store");
}


static void
test_schema(void)
{
    char             path[PATH_MAX];
    loyalty_store_t  st;

    snprintf(path, sizeof(path), "%s", in_tmp("v2"));
    ok(open_ok(&st, path, LOYALTY_STORE_CREATE), "store for version 2");
    loyalty_store_close(&st);

    raw_meta_put(path, LOYALTY_META_VERSION_KEY, "\2\0\0\0", 4);

    open_fails(path, LOYALTY_STORE_RDONLY, "schema version 2",
               "schema version 2 refused, RDONLY");
    open_fails(path, LOYALTY_STORE_CREATE, "schema version 2",
               "schema version 2 refused, and kept, with CREATE");
    open_fails(path, 0, "this build reads version 1",
               "schema version 2: the message says what this build reads");

    raw_meta_put(path, LOYALTY_META_VERSION_KEY, "\1\0\0", 3);
    open_fails(path, LOYALTY_STORE_RDONLY, "store",
               "schema_version of 3 bytes refused");

    raw_meta_put(path, LOYALTY_META_VERSION_KEY, NULL, 0);
    open_fails(path, LOYALTY_STORE_RDONLY, "has no schema version",
               "missing schema_version refused");
}


static void
test_grow(void)
{
    int              rc;
    char             path[PATH_MAX];
    size_t           before, used;
    MDB_txn         *txn;
    MDB_val          key, val;
    MDB_stat         ms;
    MDB_envinfo      info;
    loyalty_store_t  st;

    snprintf(path, sizeof(path), "%s", in_tmp("grow"));
    rc = open_ok(&st, path, LOYALTY_STORE_CREATE)
         && mdb_env_info(st.env, &info) == 0
         && mdb_env_stat(st.env, &ms) == 0;
    ok(rc && info.me_mapsize == LOYALTY_MAPSIZE_DEFAULT,
       "a new store maps 1 GiB");

    if (!rc) {
        return;
    }

    before = info.me_mapsize;
    used = (info.me_last_pgno + 1) * (size_t) ms.ms_psize;

    ok(loyalty_store_grow(&st, 1 << 20) == 0
       && mdb_env_info(st.env, &info) == 0 && info.me_mapsize == before,
       "grow for what fits leaves the map alone");

    ok(loyalty_store_grow(&st, before - used) == 0
       && mdb_env_info(st.env, &info) == 0 && info.me_mapsize == before,
       "grow for exactly the free space leaves the map alone");

    if (!ok(loyalty_store_grow(&st, before) == 0
            && mdb_env_info(st.env, &info) == 0 && info.me_mapsize > before
            && info.me_mapsize >= used + before,
            "grow for more than the free space enlarges the map"))
    {
        diag("mapsize %zu, was %zu", info.me_mapsize, before);
    }

    before = info.me_mapsize;

    key.mv_data = "alice";
    key.mv_size = 5;
    val.mv_data = "x";
    val.mv_size = 1;

    ok(mdb_txn_begin(st.env, NULL, 0, &txn) == 0
       && mdb_put(txn, st.dbi[LOYALTY_DB_MEMBERS], &key, &val, 0) == 0
       && mdb_txn_commit(txn) == 0,
       "write after grow");
    loyalty_store_close(&st);

    ok(open_ok(&st, path, LOYALTY_STORE_RDONLY)
       && mdb_env_info(st.env, &info) == 0 && info.me_mapsize == before,
       "a reader opens the grown map");
    loyalty_store_close(&st);
}


/* whether the changes database has this key */
static int
has_change(loyalty_store_t *st, uint64_t id, const char *member)
{
    int       rc;
    uint8_t   buf[8 + LOYALTY_ID_MAX];
    MDB_txn  *txn;
    MDB_val   key, val;

    loyalty_be_put(buf, id);
    memcpy(buf + 8, member, strlen(member));
    key.mv_data = buf;
    key.mv_size = 8 + strlen(member);

    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return -1;
    }

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_CHANGES], &key, &val);
    mdb_txn_abort(txn);

    return rc == 0;
}


static void
test_changes(void)
{
    int              rc, i;
    size_t           id;
    MDB_txn         *txn;
    loyalty_store_t  st;

    if (!open_ok(&st, in_tmp("changes"), LOYALTY_STORE_CREATE)) {
        ok(0, "changes: store created");
        ok(0, "changes: notes kept");
        ok(0, "changes: pruned");
        ok(0, "changes: newer kept");
        return;
    }

    ok(st.dbi[LOYALTY_DB_CHANGES] != 0, "changes: store created with it");

    rc = mdb_txn_begin(st.env, NULL, 0, &txn);
    id = rc == 0 ? mdb_txn_id(txn) : 0;
    if (rc == 0) {
        rc = loyalty_changes_note(&st, txn, "alice", 5);
    }
    if (rc == 0) {
        rc = loyalty_changes_note(&st, txn, "bob", 3);
    }
    if (rc == 0) {
        rc = loyalty_changes_seal(&st, txn);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    }

    ok(rc == 0 && has_change(&st, id, "") == 1
       && has_change(&st, id, "alice") == 1
       && has_change(&st, id, "bob") == 1
       && has_change(&st, id, "carol") == 0,
       "changes: the seal and both members noted under the id");

    /* LOYALTY_CHANGES_KEEP more sealed transactions */
    for (i = 0; rc == 0 && i <= LOYALTY_CHANGES_KEEP; i++) {
        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
        if (rc == 0) {
            rc = loyalty_changes_note(&st, txn, "carol", 5);
        }
        if (rc == 0) {
            rc = loyalty_changes_seal(&st, txn);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        }
    }

    ok(rc == 0 && has_change(&st, id, "") == 0
       && has_change(&st, id, "alice") == 0,
       "changes: notes older than the last %d transactions dropped",
       LOYALTY_CHANGES_KEEP);
    ok(has_change(&st, id + LOYALTY_CHANGES_KEEP + 1, "carol") == 1
       && has_change(&st, id + 1, "carol") == 1,
       "changes: the last ones kept");

    loyalty_store_close(&st);
}


int
main(void)
{
    plan(12 + 6 + 7 + 6 + 4);

    if (mkdtemp(fixture_tmp(tmp, "store")) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    test_create();
    test_not_a_store();
    test_schema();
    test_grow();
    test_changes();

    fixture_rm_tree(tmp);

    return done();
}
