/*
 * nginx-loyalty: the LMDB store: environment, sub-databases, schema.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "loyalty_store.h"
#include "loyalty_util.h"


const char  *loyalty_store_dbs[LOYALTY_DB_COUNT] = {
    "meta", "members", "tiers", "prices", "codes", "clicks", "ledger",
    "events", "referrals", "touches", "due", "stats", "attributions"
};


int
loyalty_store_meta(loyalty_store_t *st, MDB_txn *txn, uint32_t *version,
    int64_t *created)
{
    int      rc;
    MDB_val  key, val;

    key.mv_data = LOYALTY_META_VERSION_KEY;
    key.mv_size = sizeof(LOYALTY_META_VERSION_KEY) - 1;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_META], &key, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size != 4) {
        return MDB_CORRUPTED;
    }

    *version = (uint32_t) loyalty_le_get(val.mv_data, 4);

    key.mv_data = LOYALTY_META_CREATED_KEY;
    key.mv_size = sizeof(LOYALTY_META_CREATED_KEY) - 1;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_META], &key, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size != 8) {
        return MDB_CORRUPTED;
    }

    *created = (int64_t) loyalty_le_get(val.mv_data, 8);

    return 0;
}


static int
loyalty_store_init_meta(loyalty_store_t *st, MDB_txn *txn)
{
    int      rc;
    uint8_t  buf[8];
    MDB_val  key, val;

    key.mv_data = LOYALTY_META_VERSION_KEY;
    key.mv_size = sizeof(LOYALTY_META_VERSION_KEY) - 1;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_META], &key, &val);
    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    loyalty_le_put(buf, LOYALTY_SCHEMA_VERSION, 4);
    val.mv_data = buf;
    val.mv_size = 4;

    rc = mdb_put(txn, st->dbi[LOYALTY_DB_META], &key, &val, 0);
    if (rc != 0) {
        return rc;
    }

    loyalty_le_put(buf, (uint64_t) time(NULL), 8);
    key.mv_data = LOYALTY_META_CREATED_KEY;
    key.mv_size = sizeof(LOYALTY_META_CREATED_KEY) - 1;
    val.mv_size = 8;

    return mdb_put(txn, st->dbi[LOYALTY_DB_META], &key, &val, 0);
}


int
loyalty_store_open(loyalty_store_t *st, const char *path, unsigned flags,
    char *err, size_t errlen)
{
    int          rc, i;
    int64_t      created;
    uint32_t     version;
    unsigned     envflags, dbflags;
    MDB_txn     *txn;
    struct stat  sb;

    memset(st, 0, sizeof(loyalty_store_t));
    txn = NULL;

    if (flags & LOYALTY_STORE_CREATE) {
        if (mkdir(path, 0755) == -1 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create store \"%s\": %s", path,
                     strerror(errno));
            return -1;
        }
    }

    if (stat(path, &sb) == -1) {
        snprintf(err, errlen, "store \"%s\": %s", path, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "store \"%s\" is not a directory", path);
        return -1;
    }

    /* check before LMDB creates files in a directory that is no store */
    if (!(flags & LOYALTY_STORE_CREATE)) {
        snprintf(err, errlen, "%s/data.mdb", path);

        if (stat(err, &sb) == -1 && errno == ENOENT) {
            snprintf(err, errlen, "store \"%s\" has no data.mdb: not a "
                     "loyalty store, or not initialized (loyaltyctl init)",
                     path);
            return -1;
        }
    }

    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        goto failed;
    }

    rc = mdb_env_set_maxdbs(st->env, LOYALTY_DB_COUNT + 8);
    if (rc == 0) {
        rc = mdb_env_set_maxreaders(st->env, LOYALTY_MAXREADERS);
    }

    if (rc == 0 && (flags & LOYALTY_STORE_CREATE)) {
        rc = mdb_env_set_mapsize(st->env, LOYALTY_MAPSIZE_DEFAULT);
    }

    if (rc != 0) {
        goto failed;
    }

    /*
     * MDB_NOTLS: the module keeps one read transaction per worker and
     * resets and renews it, which LMDB ties to a thread unless told not to.
     */
    envflags = MDB_NOTLS;
    if (flags & LOYALTY_STORE_RDONLY) {
        envflags |= MDB_RDONLY;
    }

    if (flags & LOYALTY_STORE_NOLOCK) {
        envflags |= MDB_NOLOCK;
    }

    /*
     * 0664 and the umask: a store shared by a group (the Debian package's
     * /var/lib/loyalty, made with umask 007) has group-writable files, so
     * that loyaltyctl and the workers can both write the lock file once
     * nginx's master has handed it to the workers' user.
     */
    rc = mdb_env_open(st->env, path, envflags, 0664);
    if (rc != 0) {
        goto failed;
    }

    /*
     * Only creating writes: opening a writable store must not wait on
     * the writer lock that a long import holds (the handles a read-only
     * transaction opens outlive its commit).
     */
    rc = mdb_txn_begin(st->env, NULL,
                       (flags & LOYALTY_STORE_CREATE) ? 0 : MDB_RDONLY, &txn);
    if (rc != 0) {
        goto failed;
    }

    dbflags = (flags & LOYALTY_STORE_CREATE) ? MDB_CREATE : 0;

    for (i = 0; i < LOYALTY_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, loyalty_store_dbs[i], dbflags, &st->dbi[i]);

        if (rc == MDB_NOTFOUND) {
            snprintf(err, errlen, "store \"%s\" has no \"%s\" database: "
                     "not a loyalty store, or not initialized "
                     "(loyaltyctl init)", path, loyalty_store_dbs[i]);
            goto failed_msg;
        }

        if (rc != 0) {
            goto failed;
        }
    }

    if (flags & LOYALTY_STORE_CREATE) {
        rc = loyalty_store_init_meta(st, txn);
        if (rc != 0) {
            goto failed;
        }
    }

    rc = loyalty_store_meta(st, txn, &version, &created);

    if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "store \"%s\" has no schema version", path);
        goto failed_msg;
    }

    if (rc != 0) {
        goto failed;
    }

    if (version != LOYALTY_SCHEMA_VERSION) {
        snprintf(err, errlen, "store \"%s\" has schema version %u, "
                 "this build reads version %d", path, version,
                 LOYALTY_SCHEMA_VERSION);
        goto failed_msg;
    }

    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        goto failed;
    }

    return 0;

failed:

    snprintf(err, errlen, "store \"%s\": %s", path, mdb_strerror(rc));

failed_msg:

    if (txn) {
        mdb_txn_abort(txn);
    }

    if (st->env) {
        mdb_env_close(st->env);
        st->env = NULL;
    }

    return -1;
}


void
loyalty_store_close(loyalty_store_t *st)
{
    if (st->env) {
        mdb_env_close(st->env);
        st->env = NULL;
    }
}


int
loyalty_store_grow(loyalty_store_t *st, size_t need)
{
    MDB_envinfo  info;
    MDB_stat     stat;
    size_t       used, size;
    int          rc;

    rc = mdb_env_info(st->env, &info);
    if (rc == 0) {
        rc = mdb_env_stat(st->env, &stat);
    }

    if (rc != 0) {
        return rc;
    }

    used = (info.me_last_pgno + 1) * (size_t) stat.ms_psize;
    size = info.me_mapsize;

    if (used + need <= size) {
        return 0;
    }

    while (used + need > size) {
        size *= 2;
    }

    return mdb_env_set_mapsize(st->env, size);
}
