/*
 * lmdb-shrink SRC DST PAGES: a compacted copy of the store SRC in DST
 * whose map holds its data and PAGES pages more (LMDB keeps a map size
 * only ever growing, but a compacting copy records the size its source
 * was opened with)
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    int          rc;
    size_t       size;
    MDB_env     *env;
    MDB_stat     st;
    MDB_envinfo  info;

    if (argc != 4) {
        return 2;
    }

    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 64))
        || (rc = mdb_env_open(env, argv[1], MDB_NOTLS|MDB_RDONLY, 0644))
        || (rc = mdb_env_info(env, &info)) || (rc = mdb_env_stat(env, &st)))
    {
        goto failed;
    }

    size = (info.me_last_pgno + 1 + strtoul(argv[3], NULL, 10))
           * st.ms_psize;
    mdb_env_close(env);

    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 64))
        || (rc = mdb_env_set_mapsize(env, size))
        || (rc = mdb_env_open(env, argv[1], MDB_NOTLS|MDB_RDONLY, 0644))
        || (rc = mdb_env_copy2(env, argv[2], MDB_CP_COMPACT)))
    {
        goto failed;
    }

    mdb_env_close(env);
    printf("%zu\n", size);

    return 0;

failed:

    fprintf(stderr, "lmdb-shrink: %s\n", mdb_strerror(rc));
    return 1;
}
