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
#include "loyalty_walk.h"


const char  *loyalty_store_dbs[LOYALTY_DB_COUNT] = {
    "meta", "members", "tiers", "prices", "codes", "clicks", "ledger",
    "events", "referrals", "touches", "due", "stats", "attributions",
    "changes"
};


int
loyalty_store_meta_get(loyalty_store_t *st, MDB_txn *txn, const char *name,
    MDB_val *val)
{
    return loyalty_store_get(txn, st->dbi[LOYALTY_DB_META], name,
                             strlen(name), val);
}


int
loyalty_store_meta_put(loyalty_store_t *st, MDB_txn *txn, const char *name,
    const void *data, size_t len)
{
    MDB_val  key, val;

    key.mv_data = (void *) name;
    key.mv_size = strlen(name);
    val.mv_data = (void *) data;
    val.mv_size = len;

    return mdb_put(txn, st->dbi[LOYALTY_DB_META], &key, &val, 0);
}


int
loyalty_store_meta_int(loyalty_store_t *st, MDB_txn *txn, const char *name,
    size_t width, uint64_t *v)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_meta_get(st, txn, name, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size != width) {
        return MDB_CORRUPTED;
    }

    *v = loyalty_le_get(val.mv_data, width);

    return 0;
}


int
loyalty_store_meta_put_int(loyalty_store_t *st, MDB_txn *txn,
    const char *name, size_t width, uint64_t v)
{
    uint8_t  buf[8];

    loyalty_le_put(buf, v, width);

    return loyalty_store_meta_put(st, txn, name, buf, width);
}


int
loyalty_store_meta(loyalty_store_t *st, MDB_txn *txn, uint32_t *version,
    int64_t *created)
{
    int       rc;
    uint64_t  v;

    rc = loyalty_store_meta_int(st, txn, LOYALTY_META_VERSION_KEY, 4, &v);
    if (rc != 0) {
        return rc;
    }

    *version = (uint32_t) v;

    rc = loyalty_store_meta_int(st, txn, LOYALTY_META_CREATED_KEY, 8, &v);
    if (rc != 0) {
        return rc;
    }

    *created = (int64_t) v;

    return 0;
}


static int
loyalty_store_init_meta(loyalty_store_t *st, MDB_txn *txn)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_meta_get(st, txn, LOYALTY_META_VERSION_KEY, &val);
    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    rc = loyalty_store_meta_put_int(st, txn, LOYALTY_META_VERSION_KEY, 4,
                                    LOYALTY_SCHEMA_VERSION);
    if (rc != 0) {
        return rc;
    }

    return loyalty_store_meta_put_int(st, txn, LOYALTY_META_CREATED_KEY, 8,
                                      (uint64_t) time(NULL));
}


/* the store's directory, made when creating; -1 with err when unusable */
static int
loyalty_store_dir(const char *path, unsigned flags, char *err,
    size_t errlen)
{
    struct stat  sb;

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

    return 0;
}


/* the LMDB environment, opened: 0 or an LMDB error */
static int
loyalty_store_env(loyalty_store_t *st, const char *path, unsigned flags)
{
    int       rc;
    unsigned  envflags;

    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_env_set_maxdbs(st->env, LOYALTY_DB_COUNT + 8);
    if (rc == 0) {
        rc = mdb_env_set_maxreaders(st->env, LOYALTY_MAXREADERS);
    }

    if (rc == 0 && (flags & LOYALTY_STORE_CREATE)) {
        rc = mdb_env_set_mapsize(st->env, LOYALTY_MAPSIZE_DEFAULT);
    }

    if (rc != 0) {
        return rc;
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
    return mdb_env_open(st->env, path, envflags, 0664);
}


/*
 * The sub-databases, opened (made when creating, with the meta records),
 * and the schema version checked, in txn: 0, an LMDB error, or -1 with
 * err saying what is wrong with the store.
 */
static int
loyalty_store_schema(loyalty_store_t *st, MDB_txn *txn, const char *path,
    unsigned flags, char *err, size_t errlen)
{
    int       rc, i;
    int64_t   created;
    uint32_t  version;
    unsigned  dbflags;

    dbflags = (flags & LOYALTY_STORE_CREATE) ? MDB_CREATE : 0;

    for (i = 0; i < LOYALTY_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, loyalty_store_dbs[i], dbflags, &st->dbi[i]);

        if (rc == MDB_NOTFOUND && i == LOYALTY_DB_CHANGES) {
            /* a store made before it: no notes, every write retires all */
            st->dbi[i] = 0;
            continue;
        }

        if (rc == MDB_NOTFOUND) {
            snprintf(err, errlen, "store \"%s\" has no \"%s\" database: "
                     "not a loyalty store, or not initialized "
                     "(loyaltyctl init)", path, loyalty_store_dbs[i]);
            return -1;
        }

        if (rc != 0) {
            return rc;
        }
    }

    if (flags & LOYALTY_STORE_CREATE) {
        rc = loyalty_store_init_meta(st, txn);
        if (rc != 0) {
            return rc;
        }
    }

    rc = loyalty_store_meta(st, txn, &version, &created);

    if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "store \"%s\" has no schema version", path);
        return -1;
    }

    if (rc != 0) {
        return rc;
    }

    if (version != LOYALTY_SCHEMA_VERSION) {
        snprintf(err, errlen, "store \"%s\" has schema version %u, "
                 "this build reads version %d", path, version,
                 LOYALTY_SCHEMA_VERSION);
        return -1;
    }

    return 0;
}


int
loyalty_store_open(loyalty_store_t *st, const char *path, unsigned flags,
    char *err, size_t errlen)
{
    int       rc;
    MDB_txn  *txn;

    memset(st, 0, sizeof(loyalty_store_t));
    txn = NULL;

    if (loyalty_store_dir(path, flags, err, errlen) != 0) {
        return -1;
    }

    rc = loyalty_store_env(st, path, flags);
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

    rc = loyalty_store_schema(st, txn, path, flags, err, errlen);
    if (rc == -1) {
        goto failed_msg;
    }

    if (rc != 0) {
        goto failed;
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

    loyalty_store_close(st);

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
loyalty_store_usage(loyalty_store_t *st, size_t *size, size_t *used)
{
    int          rc;
    MDB_stat     stat;
    MDB_envinfo  info;

    rc = mdb_env_info(st->env, &info);
    if (rc == 0) {
        rc = mdb_env_stat(st->env, &stat);
    }

    if (rc != 0) {
        return rc;
    }

    *size = info.me_mapsize;
    *used = (info.me_last_pgno + 1) * (size_t) stat.ms_psize;

    return 0;
}


int
loyalty_store_grow(loyalty_store_t *st, size_t need)
{
    size_t  used, size;
    int     rc;

    rc = loyalty_store_usage(st, &size, &used);
    if (rc != 0) {
        return rc;
    }

    if (used + need <= size) {
        return 0;
    }

    while (used + need > size) {
        size *= 2;
    }

    return mdb_env_set_mapsize(st->env, size);
}


int
loyalty_store_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    MDB_val *val)
{
    MDB_val  k;

    k.mv_data = (void *) key;
    k.mv_size = klen;

    return mdb_get(txn, dbi, &k, val);
}


int
loyalty_store_get_copy(MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t klen, uint8_t *buf, size_t max, size_t *len)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_get(txn, dbi, key, klen, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size > max) {
        return MDB_CORRUPTED;
    }

    memcpy(buf, val.mv_data, val.mv_size);
    *len = val.mv_size;

    return 0;
}


int
loyalty_store_get_rec(MDB_txn *txn, loyalty_store_t *st,
    const loyalty_store_rec_t *rec, const void *key, size_t klen,
    uint8_t *buf, void *out)
{
    int      rc;
    MDB_val  val;

    if (buf) {
        val.mv_data = buf;
        rc = loyalty_store_get_copy(txn, st->dbi[rec->db], key, klen, buf,
                                    rec->max, &val.mv_size);

    } else {
        rc = loyalty_store_get(txn, st->dbi[rec->db], key, klen, &val);
    }

    if (rc != 0) {
        return rc;
    }

    return rec->decode(val.mv_data, val.mv_size, out) == 0
           ? 0 : MDB_CORRUPTED;
}


int
loyalty_store_put_rec(MDB_txn *txn, loyalty_store_t *st,
    const loyalty_store_rec_t *rec, const void *key, size_t klen,
    const void *in, uint8_t *buf)
{
    MDB_val  k, val;

    k.mv_data = (void *) key;
    k.mv_size = klen;
    val.mv_data = buf;
    val.mv_size = rec->encode(in, buf);

    return mdb_put(txn, st->dbi[rec->db], &k, &val, 0);
}


int
loyalty_changes_note(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    uint8_t  buf[8 + LOYALTY_ID_MAX];
    MDB_val  key, val;

    if (st->dbi[LOYALTY_DB_CHANGES] == 0 || len > LOYALTY_ID_MAX) {
        return 0;
    }

    loyalty_be_put(buf, (uint64_t) mdb_txn_id(txn));
    loyalty_cpymem(buf + 8, id, len);

    key.mv_data = buf;
    key.mv_size = 8 + len;
    val.mv_data = buf;
    val.mv_size = 0;

    return mdb_put(txn, st->dbi[LOYALTY_DB_CHANGES], &key, &val, 0);
}


/* which notes of the changes database a walk drops */
typedef struct {
    uint64_t        before;   /* those of transactions before (seal) */
    const MDB_val  *id;       /* or those naming this member (forget) */
} loyalty_changes_drop_t;


/*
 * Drops a note as d says: a seal drops the notes of transactions before
 * the last ones kept and stops at the first one kept (the keys sort by
 * transaction); forgetting a member drops the notes naming it.
 */
static int
loyalty_changes_drop(loyalty_walk_t *w)
{
    const MDB_val           *key = &w->key;
    loyalty_changes_drop_t  *d = w->data;

    if (d->id == NULL) {
        if (key->mv_size < 8
            || loyalty_be_get(key->mv_data) + LOYALTY_CHANGES_KEEP
               >= d->before)
        {
            return LOYALTY_WALK_STOP;
        }

    } else if (key->mv_size != 8 + d->id->mv_size
               || memcmp((uint8_t *) key->mv_data + 8, d->id->mv_data,
                         d->id->mv_size)
                  != 0)
    {
        return LOYALTY_WALK_NEXT;
    }

    return loyalty_walk_del(w);
}


int
loyalty_changes_seal(loyalty_store_t *st, MDB_txn *txn)
{
    int                     rc;
    loyalty_changes_drop_t  d;

    if (st->dbi[LOYALTY_DB_CHANGES] == 0) {
        return 0;
    }

    d.before = (uint64_t) mdb_txn_id(txn);
    d.id = NULL;

    rc = loyalty_walk(st, txn, LOYALTY_DB_CHANGES, NULL, 0, 0,
                      loyalty_changes_drop, &d);
    if (rc != 0) {
        return rc;
    }

    /* the seal: the transaction's id alone, a note naming no one */
    return loyalty_changes_note(st, txn, NULL, 0);
}


int
loyalty_changes_forget(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    MDB_val                 name;
    loyalty_changes_drop_t  d;

    if (st->dbi[LOYALTY_DB_CHANGES] == 0) {
        return 0;
    }

    name.mv_data = (void *) id;
    name.mv_size = len;

    d.before = 0;
    d.id = &name;

    /* a few transactions' notes at most (LOYALTY_CHANGES_KEEP) */
    return loyalty_walk(st, txn, LOYALTY_DB_CHANGES, NULL, 0, 0,
                        loyalty_changes_drop, &d);
}
