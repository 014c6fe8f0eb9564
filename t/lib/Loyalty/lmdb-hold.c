/* lmdb-hold DIR: holds the store's writer lock until stdin closes */
#include <lmdb.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    int       rc;
    char      c;
    MDB_env  *env;
    MDB_txn  *txn;

    if (argc != 2) {
        return 2;
    }

    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 64))
        || (rc = mdb_env_open(env, argv[1], MDB_NOTLS, 0644))
        || (rc = mdb_txn_begin(env, NULL, 0, &txn)))
    {
        fprintf(stderr, "lmdb-hold: %s\n", mdb_strerror(rc));
        return 1;
    }

    printf("locked\n");
    fflush(stdout);

    while (read(0, &c, 1) > 0) {
        /* void */
    }

    mdb_txn_abort(txn);
    mdb_env_close(env);

    return 0;
}
