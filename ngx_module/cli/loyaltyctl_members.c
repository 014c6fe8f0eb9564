/*
 * loyaltyctl: members as people: delete member.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyaltyctl.h"


static const char  loyaltyctl_usage_delete[] =
    "usage: loyaltyctl -s DIR delete member ID\n"
    "Deletes a member as DELETE .../members/ID does: with them go their\n"
    "ledger, share codes and their click counts, touches and due entries,\n"
    "and the referrals index on both sides; the members they referred no\n"
    "longer have a referrer.  A member made again under the id inherits\n"
    "nothing.  Exit 1 if there is no such member.\n";


static int
loyaltyctl_delete_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    int          rc;
    const char  *id;

    id = w->data;

    rc = loyalty_admin_delete_member(st, txn, id, strlen(id));
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%s\"\n", id);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    return rc;
}


int
loyaltyctl_delete(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                 rc;
    loyaltyctl_write_t  w;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_delete)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 3 || strcmp(argv[1], "member") != 0) {
        return loyaltyctl_usage(loyaltyctl_usage_delete);
    }

    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "delete";
    w.room = (size_t) 1 << 20;
    w.step = loyaltyctl_delete_step;
    w.data = argv[2];

    rc = loyaltyctl_write(o, &w);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    printf("deleted member %s\n", argv[2]);

    return LOYALTYCTL_OK;
}
