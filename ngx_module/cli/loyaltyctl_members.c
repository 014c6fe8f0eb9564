/*
 * loyaltyctl: members as people, and their data under their control:
 * set member (a partial update), delete member, erase, export.  The
 * rules are the core's (loyalty_member_data.c), as the admin API's.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_admin.h"
#include "loyalty_member_data.h"
#include "loyaltyctl.h"


/* a change of a member: its id, the fields, and the member after it */
typedef struct {
    const char  *id;
    json_t      *patch;
    json_t      *member;
    char         pseudonym[LOYALTY_PSEUDONYM_LEN + 1];
} loyaltyctl_member_t;


static const char  loyaltyctl_usage_set[] =
    "usage: loyaltyctl -s DIR set member ID FIELD=VALUE...\n"
    "Changes the fields named, and only those, of a member in the store,\n"
    "as PATCH .../members/ID does, and prints the member as JSON.  FIELD is\n"
    "one of tier, stage, referrer, joined_at, first_order_at,\n"
    "last_order_at, orders, spend, points, birthday, blocked\n"
    "(schema/member.schema.json); orders, spend and points take integers,\n"
    "blocked true or false, the others strings; an empty VALUE removes\n"
    "referrer, a time or birthday.  The member must then pass every check\n"
    "of an import (its tier in the store, no referrer loop); a change of\n"
    "points is written to the ledger as an \"adjust\" entry.  Exit 1 for\n"
    "an unknown member, field or a bad value, with nothing changed.\n";

static const char  loyaltyctl_usage_erase[] =
    "usage: loyaltyctl -s DIR erase MEMBER\n"
    "Erases a member, as POST .../members/ID/erase does, for a request\n"
    "under PIPL or GDPR: what identifies them goes, the shop's accounting\n"
    "stays under a pseudonym (\"erased-\" and 24 hex digits, a keyed hash\n"
    "of the id).  The record moves to the pseudonym, blocked, without\n"
    "birthday, joined_at or referrer, with its tier, stage, orders, spend\n"
    "and points; the ledger moves with it; events name the pseudonym;\n"
    "share codes are revoked and name it, their click counts kept; touches\n"
    "go; the members they referred no longer have a referrer.  A member\n"
    "cookie of the id finds no member from then on.  Prints\n"
    "{\"erased\":ID,\"pseudonym\":P}.  Exit 1 if there is no such member.\n";

static const char  loyaltyctl_usage_export[] =
    "usage: loyaltyctl -s DIR export MEMBER\n"
    "Prints everything the store holds about a member, for a subject\n"
    "access request, as one line of JSON (schema/member-export.schema.json):\n"
    "the record, the ledger, the downline, the share codes with their click\n"
    "counts per day, the events that name the member (as buyer, or as a\n"
    "referrer credited) and the touches scheduled for them.  Exit 1 if\n"
    "there is no such member.\n";


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


/* FIELD=VALUE into patch, the value of the field's type: an exit code */
static int
loyaltyctl_set_field(json_t *patch, const char *arg)
{
    int          type, clearable;
    char        *end, name[32];
    json_t      *v;
    long long    n;
    const char  *eq;

    eq = strchr(arg, '=');

    if (eq == NULL || eq == arg || (size_t) (eq - arg) >= sizeof(name)) {
        fprintf(stderr, "loyaltyctl: \"%.64s\" is not FIELD=VALUE\n", arg);
        return LOYALTYCTL_USAGE;
    }

    memcpy(name, arg, eq - arg);
    name[eq - arg] = '\0';
    eq++;

    if (json_object_get(patch, name)) {
        fprintf(stderr, "loyaltyctl: \"%s\" given twice\n", name);
        return LOYALTYCTL_USAGE;
    }

    /* the core says what is wrong with a name or value it refuses */
    type = loyalty_member_field(name, &clearable);
    errno = 0;
    n = strtoll(eq, &end, 10);

    if (*eq == '\0' && clearable) {
        v = json_null();

    } else if (type == JSON_INTEGER && *eq && *end == '\0' && errno == 0) {
        v = json_integer(n);

    } else if (type == JSON_TRUE
               && (strcmp(eq, "true") == 0 || strcmp(eq, "false") == 0))
    {
        v = json_boolean(eq[0] == 't');

    } else {
        v = json_string(eq);
    }

    if (v == NULL) {
        fprintf(stderr, "loyaltyctl: the value of \"%s\" is not UTF-8\n",
                name);
        return LOYALTYCTL_DATA;
    }

    json_object_set_new(patch, name, v);

    return LOYALTYCTL_OK;
}


static int
loyaltyctl_set_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    int                   rc;
    size_t                len;
    loyaltyctl_member_t  *m;

    m = w->data;
    len = strlen(m->id);

    rc = loyalty_member_patch(st, txn, m->id, len, m->patch,
                              (int64_t) time(NULL), w->err, sizeof(w->err));

    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%s\"\n", m->id);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        fprintf(stderr, "loyaltyctl: set member %s: %s; nothing changed\n",
                m->id, w->err);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    if (rc != 0) {
        return rc;
    }

    json_decref(m->member);
    m->member = loyalty_admin_get_member(st, txn, m->id, len);

    return 0;
}


int
loyaltyctl_set(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc, i;
    loyaltyctl_write_t   w;
    loyaltyctl_member_t  m;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_set)) {
        return LOYALTYCTL_OK;
    }

    if (argc < 4 || strcmp(argv[1], "member") != 0) {
        return loyaltyctl_usage(loyaltyctl_usage_set);
    }

    memset(&m, 0, sizeof(loyaltyctl_member_t));
    m.id = argv[2];

    if (!loyalty_valid_id(m.id, strlen(m.id))) {
        fprintf(stderr, "loyaltyctl: \"%.64s\" is not a valid member id\n",
                m.id);
        return LOYALTYCTL_DATA;
    }

    m.patch = json_object();
    rc = m.patch ? LOYALTYCTL_OK : LOYALTYCTL_STORE;

    for (i = 3; i < argc && rc == LOYALTYCTL_OK; i++) {
        rc = loyaltyctl_set_field(m.patch, argv[i]);
    }

    if (rc == LOYALTYCTL_OK) {
        memset(&w, 0, sizeof(loyaltyctl_write_t));
        w.what = "set member";
        w.room = (size_t) 1 << 20;
        w.step = loyaltyctl_set_step;
        w.data = &m;

        rc = loyaltyctl_write(o, &w);
    }

    json_decref(m.patch);

    if (rc != LOYALTYCTL_OK) {
        json_decref(m.member);
        return rc;
    }

    return loyaltyctl_print_json(m.member);
}


static int
loyaltyctl_erase_step(loyaltyctl_write_t *w, loyalty_store_t *st,
    MDB_txn *txn)
{
    int                   rc;
    loyaltyctl_member_t  *m;

    m = w->data;

    rc = loyalty_member_erase(st, txn, m->id, strlen(m->id), m->pseudonym);
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%.64s\"\n", m->id);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    return rc;
}


int
loyaltyctl_erase(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    loyaltyctl_write_t   w;
    loyaltyctl_member_t  m;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_erase)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 2) {
        return loyaltyctl_usage(loyaltyctl_usage_erase);
    }

    memset(&m, 0, sizeof(loyaltyctl_member_t));
    m.id = argv[1];

    /* events and codes are rewritten: room for a good part of them */
    memset(&w, 0, sizeof(loyaltyctl_write_t));
    w.what = "erase";
    w.room = (size_t) 4 << 20;
    w.step = loyaltyctl_erase_step;
    w.data = &m;

    rc = loyaltyctl_write(o, &w);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    return loyaltyctl_print_json(json_pack("{s:s,s:s}", "erased", m.id,
                                           "pseudonym", m.pseudonym));
}


int
loyaltyctl_export(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int               rc;
    json_t           *doc;
    MDB_txn          *txn;
    loyalty_store_t   st;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_export)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 2) {
        return loyaltyctl_usage(loyaltyctl_usage_export);
    }

    rc = loyaltyctl_read_begin(o, "export", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    doc = loyalty_member_export(&st, txn, argv[1], strlen(argv[1]), &rc);
    loyaltyctl_read_end(&st, txn);

    if (doc == NULL && rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%.64s\"\n", argv[1]);
        return LOYALTYCTL_DATA;
    }

    if (doc == NULL) {
        return loyaltyctl_store_failed("export", rc);
    }

    return loyaltyctl_print_json(doc);
}
