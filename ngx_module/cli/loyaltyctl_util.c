/*
 * loyaltyctl: what every command shares.  Arguments (the one option
 * parser, loyaltyctl_options(), over a table of each command's options;
 * usage, host lists, days, counts, whole files), output (one line of
 * JSON, verify's problems, an absent record), and the store: one way to
 * read it and one way to write it.
 *
 * Every write of every command goes through loyaltyctl_write(): it opens
 * the store, makes room, runs the command's step in a write transaction,
 * commits, grows the map and runs the step again when it is full, and
 * says what went wrong with LMDB's own message.  A command only says what
 * one transaction does.  That is the one place where CLI writes could go
 * elsewhere (a stream instead of the local store) without touching the
 * commands.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_code.h"
#include "loyaltyctl.h"


/* a step that fills the map runs again this many times, each with more */
#define LOYALTYCTL_GROW_TRIES   8
/* getopt_long()'s value for the option i of a table: past any letter */
#define LOYALTYCTL_OPTION_ID    256
/* the first growth of a write that asked for none */
#define LOYALTYCTL_REGROW       ((size_t) 1 << 20)


int
loyaltyctl_usage(const char *usage)
{
    fputs(usage, stderr);
    return LOYALTYCTL_USAGE;
}


int
loyaltyctl_wants_help(int argc, char **argv, const char *usage)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
    }

    return 0;
}


int
loyaltyctl_invalid(const char *option, const char *value)
{
    fprintf(stderr, "loyaltyctl: invalid %s \"%s\"\n", option, value);
    return LOYALTYCTL_USAGE;
}


/* the option of the table that getopt_long() returned c for, or NULL */
static const loyaltyctl_option_t *
loyaltyctl_option_find(const loyaltyctl_option_t *opts, int c)
{
    int  i;

    for (i = 0; opts[i].name; i++) {
        if (c == LOYALTYCTL_OPTION_ID + i
            || (opts[i].letter != 0 && c == opts[i].letter))
        {
            return &opts[i];
        }
    }

    return NULL;
}


int
loyaltyctl_options(const loyaltyctl_opts_t *o, int argc, char **argv,
    const loyaltyctl_option_t *opts, int min, int max)
{
    int                         c, i, n, rc;
    char                        letters[2 * LOYALTYCTL_OPTIONS_MAX + 1];
    struct option               longopts[LOYALTYCTL_OPTIONS_MAX + 1];
    const loyaltyctl_option_t  *opt;

    n = 0;

    for (i = 0; opts[i].name && i < LOYALTYCTL_OPTIONS_MAX; i++) {
        longopts[i].name = opts[i].name;
        longopts[i].has_arg = opts[i].value ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = LOYALTYCTL_OPTION_ID + i;

        /* a time (--now, --until) is now unless given */
        if (opts[i].set == loyaltyctl_time) {
            *(int64_t *) opts[i].dest = (int64_t) time(NULL);
        }

        if (opts[i].letter != 0) {
            letters[n++] = (char) opts[i].letter;
            if (opts[i].value) {
                letters[n++] = ':';
            }
        }
    }

    memset(&longopts[i], 0, sizeof(struct option));
    letters[n] = '\0';

    /* 0 restarts glibc's getopt, which then lets options follow the
     * arguments */
    optind = 0;

    while ((c = getopt_long(argc, argv, letters, longopts, NULL)) != -1) {
        opt = loyaltyctl_option_find(opts, c);
        if (opt == NULL) {
            return loyaltyctl_usage(o->usage);
        }

        rc = loyaltyctl_option_set(opt, optarg);

        if (rc == LOYALTYCTL_OPTION_USAGE) {
            return loyaltyctl_usage(o->usage);
        }

        if (rc != LOYALTYCTL_OK) {
            return rc;
        }
    }

    n = argc - optind;

    if (n < min || (max >= 0 && n > max)) {
        return loyaltyctl_usage(o->usage);
    }

    return LOYALTYCTL_OK;
}


int
loyaltyctl_option_set(const loyaltyctl_option_t *opt, const char *arg)
{
    int  rc;

    rc = opt->set(arg, opt->dest);

    if (rc == LOYALTYCTL_OPTION_USAGE) {
        return rc;
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: invalid --%s \"%s\"%s\n", opt->name, arg,
                opt->hint ? opt->hint : "");
        return LOYALTYCTL_USAGE;
    }

    return LOYALTYCTL_OK;
}


int
loyaltyctl_set_string(const char *arg, void *dest)
{
    *(const char **) dest = arg;
    return 0;
}


int
loyaltyctl_set_flag(const char *arg, void *dest)
{
    *(int *) dest = 1;
    return 0;
}


int
loyaltyctl_set_hosts(const char *arg, void *dest)
{
    return loyaltyctl_hosts_add(dest, arg);
}


int
loyaltyctl_print_json(json_t *obj)
{
    int  rc;

    if (obj == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    rc = json_dumpf(obj, stdout, JSON_COMPACT);
    json_decref(obj);
    fputc('\n', stdout);

    return rc == 0 ? LOYALTYCTL_OK : LOYALTYCTL_STORE;
}


void
loyaltyctl_problem(size_t *n, const char *db, MDB_val *key, const char *what)
{
    (*n)++;
    printf("%s/%.*s: %s\n", db, (int) (key->mv_size > 80 ? 80 : key->mv_size),
           (const char *) key->mv_data, what);
}


int
loyaltyctl_problem_absent(int rc, const char *field, const char *ref,
    size_t len, size_t *n, const char *db, MDB_val *key)
{
    char  what[LOYALTY_ERRLEN];

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    snprintf(what, sizeof(what), "unknown %s \"%.*s\"", field, (int) len,
             ref);
    loyaltyctl_problem(n, db, key, what);

    return 0;
}


int
loyaltyctl_hosts_add(loyaltyctl_hosts_t *h, const char *arg)
{
    size_t       len;
    const char  *p, *end;

    p = arg;

    for ( ;; ) {
        end = strchr(p, ',');
        len = end ? (size_t) (end - p) : strlen(p);

        if (!loyalty_valid_host(p, len) || h->n == LOYALTYCTL_HOSTS_MAX) {
            return -1;
        }

        h->name[h->n] = p;
        h->len[h->n] = len;
        h->n++;

        if (end == NULL) {
            return 0;
        }

        p = end + 1;
    }
}


/* a count of 1 or more, in decimal digits only */
int
loyaltyctl_parse_count(const char *s, int64_t *out)
{
    int64_t  n;

    if (*s == '\0') {
        return -1;
    }

    for (n = 0; *s; s++) {
        if (*s < '0' || *s > '9' || n > (INT64_MAX - (*s - '0')) / 10) {
            return -1;
        }
        n = n * 10 + (*s - '0');
    }

    *out = n;
    return n >= 1 ? 0 : -1;
}


int
loyaltyctl_parse_day(const char *s, void *day)
{
    char     buf[LOYALTY_RFC3339_LEN + 1];
    int64_t  t;

    if (strlen(s) != LOYALTYCTL_DAY_LEN) {
        return -1;
    }

    snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);

    if (loyalty_parse_rfc3339(buf, LOYALTY_RFC3339_LEN, &t) != 0) {
        return -1;
    }

    *(int64_t *) day = loyalty_day(t);
    return 0;
}


int
loyaltyctl_parse_int(const char *s, long max, int *out)
{
    char  *end;
    long   n;

    errno = 0;
    n = strtol(s, &end, 10);

    if (errno || end == s || *end || n < 1 || n > max) {
        return -1;
    }

    *out = (int) n;
    return 0;
}


/* --now, --until: RFC 3339; -1 when malformed */
int
loyaltyctl_time(const char *arg, void *t)
{
    return loyalty_parse_rfc3339(arg, strlen(arg), t);
}


char *
loyaltyctl_read_all(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf, *p;
    size_t   size, n;

    f = (strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "loyaltyctl: cannot open \"%s\": %s\n", path,
                strerror(errno));
        return NULL;
    }

    size = 1 << 20;
    *len = 0;
    buf = malloc(size);

    while (buf) {
        n = fread(buf + *len, 1, size - *len, f);
        *len += n;

        if (*len < size) {
            break;
        }

        size *= 2;
        p = realloc(buf, size);
        if (p == NULL) {
            free(buf);
        }
        buf = p;
    }

    if (buf == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory reading \"%s\"\n", path);

    } else if (ferror(f)) {
        fprintf(stderr, "loyaltyctl: cannot read \"%s\": %s\n", path,
                strerror(errno));
        free(buf);
        buf = NULL;
    }

    if (f != stdin) {
        fclose(f);
    }

    return buf;
}


int
loyaltyctl_open(const loyaltyctl_opts_t *o, loyalty_store_t *st,
    unsigned flags)
{
    int   rc;
    char  err[LOYALTY_ERRLEN];

    if (o->store == NULL) {
        fprintf(stderr, "loyaltyctl: no store: use -s DIR or set "
                "LOYALTY_STORE\n");
        return LOYALTYCTL_USAGE;
    }

    if (loyalty_store_open(st, o->store, flags, err, sizeof(err)) != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", err);
        return LOYALTYCTL_STORE;
    }

    /* the shop's days (--tz) for the counters */
    rc = loyaltyctl_tz(o, &st->tz);
    if (rc != LOYALTYCTL_OK) {
        loyalty_store_close(st);
    }

    return rc;
}


int
loyaltyctl_absent(const char *what, const char *key, size_t len)
{
    fprintf(stderr, "loyaltyctl: no %s \"%.*s\"\n", what, (int) len, key);
    return LOYALTYCTL_DATA;
}


int
loyaltyctl_store_failed(const char *what, int rc)
{
    fprintf(stderr, "loyaltyctl: %s: %s\n", what, mdb_strerror(rc));
    return LOYALTYCTL_STORE;
}


int
loyaltyctl_read_begin(const loyaltyctl_opts_t *o, const char *what,
    loyalty_store_t *st, MDB_txn **txn)
{
    int  rc;

    rc = loyaltyctl_open(o, st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    if (rc != 0) {
        loyalty_store_close(st);
        return loyaltyctl_store_failed(what, rc);
    }

    return LOYALTYCTL_OK;
}


void
loyaltyctl_read_end(loyalty_store_t *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    loyalty_store_close(st);
}


int
loyaltyctl_read(const loyaltyctl_opts_t *o, const char *what,
    int (*read)(loyalty_store_t *st, MDB_txn *txn, void *data), void *data)
{
    int               rc;
    MDB_txn          *txn;
    loyalty_store_t   st;

    rc = loyaltyctl_read_begin(o, what, &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = read(&st, txn, data);
    loyaltyctl_read_end(&st, txn);

    return (rc == 0) ? LOYALTYCTL_OK : loyaltyctl_store_failed(what, rc);
}


/*
 * One transaction: the step's writes committed, or none.  Returns 0,
 * LOYALTYCTL_WRITE_MORE (committed, and the step has more to do),
 * LOYALTYCTL_WRITE_REFUSED, LOYALTYCTL_WRITE_FAILED, or an LMDB error.
 */
static int
loyaltyctl_write_once(loyaltyctl_write_t *w, void *saved)
{
    int       rc, more;
    MDB_txn  *txn;

    rc = mdb_txn_begin(w->st.env, NULL, 0, &txn);
    if (rc != 0) {
        return rc;
    }

    if (w->state) {
        memcpy(saved, w->state, w->state_size);
    }

    rc = w->step(w, txn);
    more = (rc == LOYALTYCTL_WRITE_MORE);

    if (rc != 0 && !more) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return rc;
    }

    return more ? LOYALTYCTL_WRITE_MORE : 0;
}


int
loyaltyctl_write(const loyaltyctl_opts_t *o, loyaltyctl_write_t *w)
{
    int       rc;
    void     *saved;
    size_t    regrow;
    unsigned  tries;

    saved = w->state ? malloc(w->state_size) : NULL;

    if (w->state && saved == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    rc = loyaltyctl_open(o, &w->st, 0);
    if (rc != LOYALTYCTL_OK) {
        free(saved);
        return rc;
    }

    /* a cluster's replica is written by its follower only */
    if (loyaltyctl_replica_refuse(&w->st, w->what)) {
        loyalty_store_close(&w->st);
        free(saved);
        return LOYALTYCTL_DATA;
    }

    w->err[0] = '\0';

    if (w->input) {
        w->buf = loyaltyctl_read_all(w->input, &w->len);
        if (w->buf == NULL) {
            loyalty_store_close(&w->st);
            free(saved);
            return LOYALTYCTL_DATA;
        }

        w->room = w->len * w->per_byte;
    }

    regrow = w->regrow ? w->regrow
             : w->room ? 2 * w->room : LOYALTYCTL_REGROW;

    rc = w->room ? loyalty_store_grow(&w->st, w->room) : 0;
    tries = 0;

    /* a step done, or refused, or failed, ends the loop */
    while (rc == 0) {
        rc = loyaltyctl_write_once(w, saved);

        if (rc == LOYALTYCTL_WRITE_MORE) {
            tries = 0;
            rc = 0;
            continue;
        }

        if (rc != MDB_MAP_FULL || ++tries == LOYALTYCTL_GROW_TRIES) {
            break;
        }

        /* the step runs again from where it started, with more room */
        if (w->state) {
            memcpy(w->state, saved, w->state_size);
        }

        rc = loyalty_store_grow(&w->st, regrow << (tries - 1));
    }

    loyalty_store_close(&w->st);
    free(w->buf);
    w->buf = NULL;
    free(saved);

    if (rc == 0) {
        return LOYALTYCTL_OK;
    }

    if (rc == LOYALTYCTL_WRITE_REFUSED) {
        return LOYALTYCTL_DATA;
    }

    if (rc == LOYALTYCTL_WRITE_FAILED) {
        return LOYALTYCTL_STORE;
    }

    if (rc == MDB_NOTFOUND && w->absent) {
        return loyaltyctl_absent(w->absent, w->key, w->key_len);
    }

    fprintf(stderr, "loyaltyctl: %s: %s%s\n", w->what,
            rc == MDB_MAP_FULL || w->err[0] == '\0' ? mdb_strerror(rc)
                                                    : w->err,
            w->undone ? w->undone : "");

    return LOYALTYCTL_STORE;
}


int
loyaltyctl_write_record(const loyaltyctl_opts_t *o, const char *what,
    const char *absent, const char *key, size_t len, size_t room,
    int (*step)(loyaltyctl_write_t *w, MDB_txn *txn),
    void *data)
{
    loyaltyctl_write_t  w = {
        .what = what, .absent = absent, .key = key, .key_len = len,
        .room = room, .step = step, .data = data
    };

    return loyaltyctl_write(o, &w);
}
