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


/* an id as erase and export name it: LOYALTY_ID_MAX characters at most */
static size_t
loyaltyctl_id_len(const char *id)
{
    size_t  len;

    len = strlen(id);

    return len > LOYALTY_ID_MAX ? LOYALTY_ID_MAX : len;
}


/* a change of a member: its id, the fields, and the member after it */
typedef struct {
    const char  *id;
    size_t       len;
    json_t      *patch;
    json_t      *member;
    char         pseudonym[LOYALTY_PSEUDONYM_LEN + 1];
} loyaltyctl_member_t;


static int
loyaltyctl_delete_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    const char  *id;

    id = w->data;

    return loyalty_admin_delete_member(&w->st, txn, id, strlen(id));
}


int
loyaltyctl_delete(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int  rc;

    if (strcmp(argv[1], "member") != 0) {
        return loyaltyctl_usage(o->usage);
    }

    rc = loyaltyctl_write_record(o, "delete", "member", argv[2],
                                 strlen(argv[2]), LOYALTYCTL_ROOM,
                                 loyaltyctl_delete_step, argv[2]);
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
loyaltyctl_set_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                   rc;
    loyaltyctl_member_t  *m;

    m = w->data;

    rc = loyalty_member_patch(&w->st, txn, m->id, m->len, m->patch,
                              (int64_t) time(NULL), w->err, sizeof(w->err));

    if (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) {
        fprintf(stderr, "loyaltyctl: set member %s: %s; nothing changed\n",
                m->id, w->err);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    if (rc != 0) {
        return rc;
    }

    json_decref(m->member);
    m->member = loyalty_admin_get_member(&w->st, txn, m->id, m->len);

    return 0;
}


int
loyaltyctl_set(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc, i;
    loyaltyctl_member_t  m;

    if (strcmp(argv[1], "member") != 0) {
        return loyaltyctl_usage(o->usage);
    }

    memset(&m, 0, sizeof(loyaltyctl_member_t));
    m.id = argv[2];
    m.len = strlen(m.id);

    if (!loyalty_valid_id(m.id, m.len)) {
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
        rc = loyaltyctl_write_record(o, "set member", "member", m.id, m.len,
                                     LOYALTYCTL_ROOM,
                                     loyaltyctl_set_step, &m);
    }

    json_decref(m.patch);

    if (rc != LOYALTYCTL_OK) {
        json_decref(m.member);
        return rc;
    }

    return loyaltyctl_print_json(m.member);
}


static int
loyaltyctl_erase_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    loyaltyctl_member_t  *m;

    m = w->data;

    return loyalty_member_erase(&w->st, txn, m->id, m->len, m->pseudonym);
}


int
loyaltyctl_erase(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    loyaltyctl_member_t  m;

    memset(&m, 0, sizeof(loyaltyctl_member_t));
    m.id = argv[1];
    m.len = strlen(m.id);

    /* events and codes are rewritten: room for a good part of them */
    rc = loyaltyctl_write_record(o, "erase", "member", m.id,
                                 loyaltyctl_id_len(m.id), 4 * LOYALTYCTL_ROOM,
                                 loyaltyctl_erase_step, &m);
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

    rc = loyaltyctl_read_begin(o, "export", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    doc = loyalty_member_export(&st, txn, argv[1], strlen(argv[1]), &rc);
    loyaltyctl_read_end(&st, txn);

    if (doc == NULL && rc == MDB_NOTFOUND) {
        return loyaltyctl_absent("member", argv[1],
                                 loyaltyctl_id_len(argv[1]));
    }

    if (doc == NULL) {
        return loyaltyctl_store_failed("export", rc);
    }

    return loyaltyctl_print_json(doc);
}
