/*
 * loyaltyctl: the store as a whole: init creates it, stat describes it.
 */

#include <stdio.h>

#include "loyaltyctl.h"


int
loyaltyctl_init(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc;
    loyalty_store_t  st;

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_CREATE);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_store_close(&st);
    return LOYALTYCTL_OK;
}


/* stat's lines, in a read transaction; data is the store's directory */
static int
loyaltyctl_stat_read(loyalty_store_t *st, MDB_txn *txn, void *data)
{
    int              rc, i;
    char             created_at[LOYALTY_RFC3339_LEN + 1];
    size_t           size, used;
    int64_t          created;
    uint32_t         version;
    MDB_stat         ms;
    MDB_envinfo      info;

    rc = loyalty_store_meta(st, txn, &version, &created);
    if (rc == 0) {
        rc = loyalty_store_usage(st, &size, &used);
    }
    if (rc == 0) {
        rc = mdb_env_info(st->env, &info);
    }

    if (rc != 0) {
        return rc;
    }

    loyalty_format_rfc3339(created, created_at);

    printf("store           %s\n", (const char *) data);
    printf("schema_version  %u\n", version);
    printf("created_at      %s\n", created_at);
    printf("map_size        %zu\n", size);
    printf("map_used        %zu (%.1f%%)\n", used,
           100.0 * (double) used / (double) size);
    printf("readers         %u of %u\n", info.me_numreaders,
           info.me_maxreaders);

    for (i = 0; i < LOYALTY_DB_COUNT; i++) {
        if (st->dbi[i] == 0) {
            continue;       /* optional, absent from an older store */
        }

        rc = mdb_stat(txn, st->dbi[i], &ms);
        if (rc != 0) {
            return rc;
        }

        printf("db %-12s %zu\n", loyalty_store_dbs[i], ms.ms_entries);
    }

    return 0;
}


int
loyaltyctl_stat(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    return loyaltyctl_read(o, "stat", loyaltyctl_stat_read,
                           (void *) o->store);
}
