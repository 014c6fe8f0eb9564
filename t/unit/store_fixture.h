/*
 * nginx-loyalty unit tests: a store of their own in a temporary
 * directory, and its removal.  Every function is static inline: each
 * test uses what it needs.
 */

#ifndef _STORE_FIXTURE_H_INCLUDED_
#define _STORE_FIXTURE_H_INCLUDED_


#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "loyalty_admin.h"
#include "loyalty_record.h"
#include "loyalty_store.h"


/* the size of a test's temporary path: a TMPDIR longer fails mkdtemp() */
#define FIXTURE_PATH_MAX  512


/*
 * A test's own mkdtemp()/mkstemp() template, "loyalty-NAME-XXXXXX" in
 * $TMPDIR (/tmp without it), written into path (FIXTURE_PATH_MAX bytes)
 */
static inline char *
fixture_tmp(char *path, const char *name)
{
    const char  *dir;

    dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }

    /* the six X are the template's placeholder that mkdtemp() replaces */
    snprintf(path, FIXTURE_PATH_MAX, "%s/loyalty-%s-XXXXXX", dir, name);

    return path;
}


/*
 * Makes a directory of its own for the test NAME in tmp (FIXTURE_PATH_MAX,
 * fixture_tmp()) and creates a store in it: 0, or -1 with err.
 */
static inline int
fixture_store_open(char *tmp, const char *name, loyalty_store_t *st,
    char *err, size_t errlen)
{
    if (mkdtemp(fixture_tmp(tmp, name)) == NULL) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }

    return loyalty_store_open(st, tmp, LOYALTY_STORE_CREATE, err, errlen);
}


/* writes a tier of the rank, without a label: 0 or LMDB's error code */
static inline int
fixture_put_tier(loyalty_store_t *st, const char *name, int32_t rank)
{
    int             rc;
    uint8_t         buf[LOYALTY_TIER_REC_MAX];
    MDB_txn        *txn;
    MDB_val         key, val;
    loyalty_tier_t  t;

    memset(&t, 0, sizeof(t));
    t.rank = rank;
    t.label = "";

    key.mv_data = (void *) name;
    key.mv_size = strlen(name);
    val.mv_data = buf;
    val.mv_size = loyalty_tier_encode(&t, buf);

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_put(txn, st->dbi[LOYALTY_DB_TIERS], &key, &val, 0);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    return mdb_txn_commit(txn);
}


/*
 * An admin put of one record, the JSON text body, in a transaction of its
 * own at 1800000000 (2027-01-15), codes' targets allowed on the hosts:
 * loyalty_admin_put()'s code with err, or -100 when body does not parse.
 */
static inline int
fixture_admin_put(loyalty_store_t *st, const char *kind, const char *key,
    const char *body, const char *const *hosts, const size_t *lens,
    size_t nhosts, char *err, size_t errlen)
{
    int           rc;
    json_t       *obj;
    MDB_txn      *txn;
    json_error_t  jerr;

    obj = json_loads(body, 0, &jerr);
    if (obj == NULL) {
        snprintf(err, errlen, "%s: %s", body, jerr.text);
        return -100;
    }

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }

    rc = loyalty_admin_put(st, txn, kind, key, key ? strlen(key) : 0, obj,
                           hosts, lens, nhosts, 1800000000, err, errlen);
    if (rc == 0) {
        mdb_txn_commit(txn);

    } else {
        mdb_txn_abort(txn);
    }

    json_decref(obj);

    return rc;
}


/* removes path and, for a directory, everything in it */
static inline void
fixture_rm_tree(const char *path)
{
    DIR            *dir;
    char            sub[PATH_MAX];
    struct stat     sb;
    struct dirent  *de;

    if (lstat(path, &sb) == -1) {
        return;
    }

    if (S_ISDIR(sb.st_mode) && (dir = opendir(path)) != NULL) {
        while ((de = readdir(dir)) != NULL) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")
                && (size_t) snprintf(sub, sizeof(sub), "%s/%s", path,
                                     de->d_name)
                   < sizeof(sub))
            {
                fixture_rm_tree(sub);
            }
        }

        closedir(dir);
        rmdir(path);
        return;
    }

    unlink(path);
}


/* closes the store of fixture_store_open() and removes its directory */
static inline void
fixture_store_remove(char *tmp, loyalty_store_t *st)
{
    loyalty_store_close(st);
    fixture_rm_tree(tmp);
}


#endif /* _STORE_FIXTURE_H_INCLUDED_ */
