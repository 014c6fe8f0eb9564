/*
 * loyaltyctl: share codes (mint-code, revoke-code), the click counts nginx
 * keeps for them (clicks), and verify's checks of both databases.
 */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loyalty_code.h"
#include "loyalty_json.h"
#include "loyalty_member.h"
#include "loyaltyctl.h"


/* a minted code is 49.5 random bits: even one retry is rare */
#define LOYALTYCTL_MINT_TRIES   8
/* "CODE/YYYY-MM-DD", or a key that is none in hex, cut to 40 bytes */
#define LOYALTYCTL_LABEL_LEN    96


/* one clicks entry, decoded */
typedef struct {
    const char  *code;
    size_t       code_len;
    int64_t      day;
    uint64_t     counts[LOYALTY_CLICK_COUNTERS];
    char         label[LOYALTYCTL_LABEL_LEN];
} loyaltyctl_clicks_t;


/* a code to mint: its record, and the hosts its target may name */
typedef struct {
    loyalty_code_t      rec;
    loyaltyctl_hosts_t  hosts;
    int64_t             now;
    char                code[LOYALTY_CODE_MINT_LEN + 1];
} loyaltyctl_mint_t;


/* mint-code's options, into m->rec */

static int
loyaltyctl_mint_campaign(const char *arg, void *dest)
{
    size_t              len;
    loyaltyctl_mint_t  *m;

    m = dest;
    len = strlen(arg);

    if (!loyalty_valid_campaign(arg, len)) {
        return -1;
    }

    m->rec.campaign = arg;
    m->rec.campaign_len = (uint8_t) len;

    return 0;
}


static int
loyaltyctl_mint_expires(const char *arg, void *dest)
{
    int64_t             ttl;
    loyaltyctl_mint_t  *m;

    m = dest;
    ttl = loyalty_parse_duration(arg, strlen(arg));

    if (ttl <= 0 || ttl > LOYALTY_TIME_LAST - m->now) {
        return -1;
    }

    m->rec.flags |= LOYALTY_CODE_EXPIRES;
    m->rec.expires_at = m->now + ttl;

    return 0;
}


static int
loyaltyctl_mint_max_clicks(const char *arg, void *dest)
{
    loyaltyctl_mint_t  *m;

    m = dest;

    if (loyaltyctl_parse_count(arg, &m->rec.max_clicks) != 0) {
        return -1;
    }

    m->rec.flags |= LOYALTY_CODE_MAX_CLICKS;

    return 0;
}


/* the member and the target checked: an exit code, or -1 to go on */
static int
loyaltyctl_mint_check(loyaltyctl_mint_t *m, const char *member)
{
    size_t            len, host_len;
    const char       *host;
    loyalty_target_e  target;

    len = strlen(member);

    if (!loyalty_valid_id(member, len)) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid member id\n",
                member);
        return LOYALTYCTL_DATA;
    }

    m->rec.member = member;
    m->rec.member_len = (uint8_t) len;
    m->rec.created_at = m->now;

    if (m->rec.target == NULL) {
        return -1;
    }

    len = strlen(m->rec.target);
    target = loyalty_target_check(m->rec.target, len, &host, &host_len);

    if (target == LOYALTY_TARGET_INVALID) {
        return loyaltyctl_invalid("--target", m->rec.target);
    }

    /* a share link must not become an open redirect */
    if (target == LOYALTY_TARGET_URL
        && !loyalty_host_allowed(host, host_len, m->hosts.name,
                                 m->hosts.len, m->hosts.n))
    {
        fprintf(stderr, "loyaltyctl: target host \"%.*s\" is not in "
                "--hosts\n", (int) host_len, host);
        return LOYALTYCTL_DATA;
    }

    m->rec.target_len = (uint16_t) len;

    return -1;
}


/* the member looked up, a code not in use drawn and written */
static int
loyaltyctl_mint_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                 rc, tries;
    uint8_t             buf[LOYALTY_CODE_REC_MAX];
    MDB_val             key, val;
    loyaltyctl_mint_t  *m;

    m = w->data;

    rc = loyalty_member_find(txn, &w->st, m->rec.member, m->rec.member_len,
                             &val);
    if (rc != 0) {
        return rc;
    }

    val.mv_data = buf;
    val.mv_size = loyalty_code_encode(&m->rec, buf);
    m->code[LOYALTY_CODE_MINT_LEN] = '\0';
    tries = 0;

    do {
        if (loyalty_code_mint(m->code) != 0) {
            fprintf(stderr, "loyaltyctl: no random bytes to mint a code\n");
            return LOYALTYCTL_WRITE_FAILED;
        }

        key.mv_data = m->code;
        key.mv_size = LOYALTY_CODE_MINT_LEN;

        rc = mdb_put(txn, w->st.dbi[LOYALTY_DB_CODES], &key, &val,
                     MDB_NOOVERWRITE);

    } while (rc == MDB_KEYEXIST && ++tries < LOYALTYCTL_MINT_TRIES);

    if (rc == MDB_KEYEXIST) {
        fprintf(stderr, "loyaltyctl: %d codes minted in a row were in use\n",
                LOYALTYCTL_MINT_TRIES);
        return LOYALTYCTL_WRITE_FAILED;
    }

    return rc;
}


int
loyaltyctl_mint_code(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    loyaltyctl_mint_t    m;

    /* the --target is checked once every --hosts is known */
    loyaltyctl_option_t  opts[] = {
        { "campaign", 0, 1, loyaltyctl_mint_campaign, &m, NULL },
        { "target", 0, 1, loyaltyctl_set_string, &m.rec.target, NULL },
        { "expires", 0, 1, loyaltyctl_mint_expires, &m, NULL },
        { "max-clicks", 0, 1, loyaltyctl_mint_max_clicks, &m, NULL },
        { "hosts", 0, 1, loyaltyctl_set_hosts, &m.hosts, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    memset(&m, 0, sizeof(loyaltyctl_mint_t));
    m.now = (int64_t) time(NULL);

    rc = loyaltyctl_options(o, argc, argv, opts, 1, 1);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyaltyctl_mint_check(&m, argv[optind]);
    if (rc != -1) {
        return rc;
    }

    /* room for the record and the pages its insertion may split */
    rc = loyaltyctl_write_record(o, "mint-code", "member", m.rec.member,
                                 m.rec.member_len, LOYALTYCTL_ROOM,
                                 loyaltyctl_mint_step, &m);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    printf("%s\n", m.code);
    return LOYALTYCTL_OK;
}


/* the code to revoke, as the store keys it and as it was given */
typedef struct {
    MDB_val      key;
    const char  *arg;
} loyaltyctl_revoke_t;


static int
loyaltyctl_revoke_step(loyaltyctl_write_t *w, MDB_txn *txn)
{
    int                   rc;
    uint8_t               buf[LOYALTY_CODE_REC_MAX];
    MDB_val               key, val;
    const char           *arg;
    loyalty_code_t        rec;
    loyaltyctl_revoke_t  *r;

    r = w->data;
    key = r->key;
    arg = r->arg;

    rc = mdb_get(txn, w->st.dbi[LOYALTY_DB_CODES], &key, &val);
    if (rc != 0) {
        return rc;
    }

    if (loyalty_code_decode(val.mv_data, val.mv_size, &rec) != 0) {
        fprintf(stderr, "loyaltyctl: code \"%s\" does not decode\n", arg);
        return LOYALTYCTL_WRITE_REFUSED;
    }

    if (rec.flags & LOYALTY_CODE_REVOKED) {
        return 0;
    }

    /* rec points into the map: encode it before the page changes */
    rec.flags |= LOYALTY_CODE_REVOKED;
    val.mv_size = loyalty_code_encode(&rec, buf);
    val.mv_data = buf;

    return mdb_put(txn, w->st.dbi[LOYALTY_DB_CODES], &key, &val, 0);
}


int
loyaltyctl_revoke_code(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    long                 n;
    char                 code[LOYALTY_CODE_MAX];
    loyaltyctl_revoke_t  r;

    n = loyalty_code_normalize(argv[1], strlen(argv[1]), code);
    if (n < 0) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid code\n", argv[1]);
        return LOYALTYCTL_DATA;
    }

    r.key.mv_data = code;
    r.key.mv_size = (size_t) n;
    r.arg = argv[1];

    return loyaltyctl_write_record(o, "revoke-code", "code", argv[1],
                                   strlen(argv[1]), LOYALTYCTL_ROOM,
                                   loyaltyctl_revoke_step, &r);
}


/* returns NULL, or what is wrong with the entry; e->label names it */
static const char *
loyaltyctl_clicks_entry(MDB_val *key, MDB_val *val, loyaltyctl_clicks_t *e)
{
    int     i;
    char    day[LOYALTY_RFC3339_LEN + 1];
    size_t  n;

    if (loyalty_clicks_key_parse(key->mv_data, key->mv_size, &e->code,
                                 &e->code_len, &e->day)
        != 0)
    {
        n = key->mv_size < 40 ? key->mv_size : 40;

        loyalty_hex_encode(key->mv_data, n, e->label);

        return "invalid key";
    }

    loyalty_format_rfc3339(e->day * LOYALTY_DAY, day);
    snprintf(e->label, sizeof(e->label), "%.*s/%.*s", (int) e->code_len,
             e->code, LOYALTYCTL_DAY_LEN, day);

    if (loyalty_clicks_decode(val->mv_data, val->mv_size, e->counts) != 0) {
        return "record does not decode";
    }

    /* JSON readers stop at 2^63-1; counting never gets there */
    for (i = 0; i < LOYALTY_CLICK_COUNTERS; i++) {
        if (e->counts[i] > INT64_MAX) {
            return "a counter above 2^63-1";
        }
    }

    return NULL;
}


/*
 * The entries of one code (or every code, code NULL) since the day, a
 * line each: LOYALTYCTL_OK, LOYALTYCTL_DATA if one did not decode (it is
 * said, the others printed), -1 if output failed, or an LMDB error.
 */
static int
loyaltyctl_clicks_print(MDB_txn *txn, MDB_dbi dbi, const char *code,
    size_t n, int64_t since)
{
    int                   rc, bad;
    uint8_t               start[LOYALTY_CLICKS_KEY_MAX];
    MDB_val               key, val;
    MDB_cursor           *cur;
    MDB_cursor_op         op;
    const char           *what;
    loyaltyctl_clicks_t   e;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    /* a code's days are together and in order: start at the first wanted */
    op = MDB_FIRST;

    if (code) {
        key.mv_data = start;
        key.mv_size = loyalty_clicks_key(code, n, since, start);
        op = MDB_SET_RANGE;
    }

    bad = 0;

    while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
        op = MDB_NEXT;

        if (code
            && (key.mv_size <= n || memcmp(key.mv_data, code, n) != 0
                || ((uint8_t *) key.mv_data)[n] != 0))
        {
            break;
        }

        what = loyaltyctl_clicks_entry(&key, &val, &e);

        if (what) {
            fprintf(stderr, "loyaltyctl: clicks/%s: %s\n", e.label, what);
            bad = 1;
            continue;
        }

        if (e.day < since) {
            continue;
        }

        if (loyaltyctl_print_json(loyalty_clicks_to_json(e.code, e.code_len,
                                                         e.day, e.counts))
            != LOYALTYCTL_OK)
        {
            rc = -1;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    return bad ? LOYALTYCTL_DATA : LOYALTYCTL_OK;
}


int
loyaltyctl_clicks(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    char                 code[LOYALTY_CODE_MAX];
    long                 n;
    int64_t              since;
    MDB_txn             *txn;
    loyalty_store_t      st;

    loyaltyctl_option_t  opts[] = {
        { "since", 0, 1, loyaltyctl_parse_day, &since, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    /* days in keys count from 1970-01-01 */
    since = 0;

    rc = loyaltyctl_options(o, argc, argv, opts, 0, 1);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (since < 0) {
        since = 0;
    }

    n = -1;

    if (optind < argc) {
        n = loyalty_code_normalize(argv[optind], strlen(argv[optind]), code);
        if (n < 0) {
            fprintf(stderr, "loyaltyctl: \"%s\" is not a valid code\n",
                    argv[optind]);
            return LOYALTYCTL_DATA;
        }
    }

    rc = loyaltyctl_read_begin(o, "clicks", &st, &txn);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyaltyctl_clicks_print(txn, st.dbi[LOYALTY_DB_CLICKS],
                                 n >= 0 ? code : NULL, (size_t) n, since);
    loyaltyctl_read_end(&st, txn);

    if (rc == LOYALTYCTL_OK || rc == LOYALTYCTL_DATA || rc == -1) {
        return rc == -1 ? LOYALTYCTL_STORE : rc;
    }

    return loyaltyctl_store_failed("clicks", rc);
}


static int
loyaltyctl_verify_code_records(loyalty_store_t *st, MDB_txn *txn,
    size_t *problems)
{
    int              rc;
    char             norm[LOYALTY_CODE_MAX];
    long             n;
    MDB_val          key, val, tmp;
    MDB_cursor      *cur;
    loyalty_code_t   c;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CODES], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {

        /* a key not in upper case could never be looked up */
        n = loyalty_code_normalize(key.mv_data, key.mv_size, norm);
        if (n < 0 || memcmp(norm, key.mv_data, key.mv_size) != 0) {
            loyaltyctl_problem(problems, "codes", &key, "invalid code");
            continue;
        }

        if (loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0) {
            loyaltyctl_problem(problems, "codes", &key,
                               "record does not decode");
            continue;
        }

        rc = loyalty_member_find(txn, st, c.member, c.member_len, &tmp);
        rc = loyaltyctl_problem_absent(rc, "member", c.member, c.member_len,
                                       problems, "codes", &key);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyaltyctl_verify_codes(loyalty_store_t *st, MDB_txn *txn, size_t *problems)
{
    int                   rc;
    MDB_val               key, val, label;
    MDB_cursor           *cur;
    const char           *what;
    loyaltyctl_clicks_t   e;

    rc = loyaltyctl_verify_code_records(st, txn, problems);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CLICKS], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        what = loyaltyctl_clicks_entry(&key, &val, &e);

        if (what) {
            label.mv_data = e.label;
            label.mv_size = strlen(e.label);
            loyaltyctl_problem(problems, "clicks", &label, what);
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}
