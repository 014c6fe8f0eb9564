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
/* "YYYY-MM-DD" */
#define LOYALTYCTL_DAY_LEN      10
/* "CODE/YYYY-MM-DD", or a key that is none in hex, cut to 40 bytes */
#define LOYALTYCTL_LABEL_LEN    96


static const char  loyaltyctl_usage_mint[] =
    "usage: loyaltyctl -s DIR mint-code MEMBER [--campaign C] [--target T]\n"
    "           [--expires DURATION] [--max-clicks N]\n"
    "           [--hosts HOST[,HOST...]]\n"
    "Mints a share code for a member already in the store and prints it:\n"
    "10 characters of " LOYALTY_CODE_ALPHABET ", never a code\n"
    "in use.  --campaign names a campaign (1-64 characters of\n"
    "[A-Za-z0-9_.-]).  --target is where the code's short link goes: a path\n"
    "on this site (\"/...\"), or an http or https URL whose host is one of\n"
    "--hosts; without it, the configured fallback.  --expires ends the code\n"
    "after DURATION (nginx's units: 12h, 30d), --max-clicks after N clicks.\n"
    "Exit 1 if the member is absent or the target's host is not in --hosts.\n";

static const char  loyaltyctl_usage_revoke[] =
    "usage: loyaltyctl -s DIR revoke-code CODE\n"
    "Marks a share code, given in any case, revoked: the module counts its\n"
    "clicks as rejected from then on.  Revoking a revoked code changes\n"
    "nothing.  Exit 1 if there is no such code.\n";

static const char  loyaltyctl_usage_clicks[] =
    "usage: loyaltyctl -s DIR clicks [CODE] [--since YYYY-MM-DD]\n"
    "Prints the click counts nginx keeps per code and day (UTC), one line\n"
    "of JSON each, ordered by code, then day: total, unique, bot, self,\n"
    "rejected and attributed.  With CODE (any case), that code's only;\n"
    "with --since, that day's and later ones only.  Prints nothing when\n"
    "there are none.  Exit 1 if an entry does not decode (verify names\n"
    "it); the others are printed.\n";


/* one clicks entry, decoded */
typedef struct {
    const char  *code;
    size_t       code_len;
    int64_t      day;
    uint64_t     counts[LOYALTY_CLICK_COUNTERS];
    char         label[LOYALTYCTL_LABEL_LEN];
} loyaltyctl_clicks_t;


static int
loyaltyctl_invalid(const char *option, const char *value)
{
    fprintf(stderr, "loyaltyctl: invalid %s \"%s\"\n", option, value);
    return LOYALTYCTL_USAGE;
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
static int
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
loyaltyctl_parse_day(const char *s, int64_t *day)
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

    *day = loyalty_day(t);
    return 0;
}


int
loyaltyctl_mint_code(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                 c, rc, tries;
    char                code[LOYALTY_CODE_MINT_LEN + 1];
    size_t              len, host_len;
    int64_t             now, ttl;
    uint8_t             buf[LOYALTY_CODE_REC_MAX];
    MDB_txn            *txn;
    MDB_val             key, val;
    const char         *member, *host;
    loyalty_code_t      rec;
    loyalty_store_t     st;
    loyalty_target_e    target;
    loyaltyctl_hosts_t  hosts;

    static const struct option  longopts[] = {
        { "campaign",   required_argument, NULL, 'c' },
        { "target",     required_argument, NULL, 't' },
        { "expires",    required_argument, NULL, 'e' },
        { "max-clicks", required_argument, NULL, 'm' },
        { "hosts",      required_argument, NULL, 'H' },
        { NULL, 0, NULL, 0 }
    };

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_mint)) {
        return LOYALTYCTL_OK;
    }

    memset(&rec, 0, sizeof(loyalty_code_t));
    hosts.n = 0;
    now = (int64_t) time(NULL);

    /* 0 restarts glibc's getopt, which then lets options follow MEMBER */
    optind = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            len = strlen(optarg);
            if (!loyalty_valid_campaign(optarg, len)) {
                return loyaltyctl_invalid("--campaign", optarg);
            }
            rec.campaign = optarg;
            rec.campaign_len = (uint8_t) len;
            break;

        case 't':
            /* checked once every --hosts is known */
            rec.target = optarg;
            break;

        case 'e':
            ttl = loyalty_parse_duration(optarg, strlen(optarg));
            if (ttl <= 0 || ttl > LOYALTY_TIME_LAST - now) {
                return loyaltyctl_invalid("--expires", optarg);
            }
            rec.flags |= LOYALTY_CODE_EXPIRES;
            rec.expires_at = now + ttl;
            break;

        case 'm':
            if (loyaltyctl_parse_count(optarg, &rec.max_clicks) != 0) {
                return loyaltyctl_invalid("--max-clicks", optarg);
            }
            rec.flags |= LOYALTY_CODE_MAX_CLICKS;
            break;

        case 'H':
            if (loyaltyctl_hosts_add(&hosts, optarg) != 0) {
                return loyaltyctl_invalid("--hosts", optarg);
            }
            break;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_mint);
        }
    }

    if (optind + 1 != argc) {
        return loyaltyctl_usage(loyaltyctl_usage_mint);
    }

    member = argv[optind];
    len = strlen(member);

    if (!loyalty_valid_id(member, len)) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid member id\n",
                member);
        return LOYALTYCTL_DATA;
    }

    rec.member = member;
    rec.member_len = (uint8_t) len;
    rec.created_at = now;

    if (rec.target) {
        len = strlen(rec.target);
        target = loyalty_target_check(rec.target, len, &host, &host_len);

        if (target == LOYALTY_TARGET_INVALID) {
            return loyaltyctl_invalid("--target", rec.target);
        }

        /* a share link must not become an open redirect */
        if (target == LOYALTY_TARGET_URL
            && !loyalty_host_allowed(host, host_len, hosts.name, hosts.len,
                                     hosts.n))
        {
            fprintf(stderr, "loyaltyctl: target host \"%.*s\" is not in "
                    "--hosts\n", (int) host_len, host);
            return LOYALTYCTL_DATA;
        }

        rec.target_len = (uint16_t) len;
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    /* room for the record and the pages its insertion may split */
    rc = loyalty_store_grow(&st, (size_t) 1 << 20);
    if (rc == 0) {
        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        loyalty_store_close(&st);
        return LOYALTYCTL_STORE;
    }

    rc = loyalty_member_find(txn, &st, member, rec.member_len, &val);
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no member \"%s\"\n", member);
        mdb_txn_abort(txn);
        loyalty_store_close(&st);
        return LOYALTYCTL_DATA;
    }

    if (rc == 0) {
        val.mv_data = buf;
        val.mv_size = loyalty_code_encode(&rec, buf);
        code[LOYALTY_CODE_MINT_LEN] = '\0';
        tries = 0;

        do {
            if (loyalty_code_mint(code) != 0) {
                fprintf(stderr, "loyaltyctl: no random bytes to mint a "
                        "code\n");
                mdb_txn_abort(txn);
                loyalty_store_close(&st);
                return LOYALTYCTL_STORE;
            }

            key.mv_data = code;
            key.mv_size = LOYALTY_CODE_MINT_LEN;

            rc = mdb_put(txn, st.dbi[LOYALTY_DB_CODES], &key, &val,
                         MDB_NOOVERWRITE);

        } while (rc == MDB_KEYEXIST && ++tries < LOYALTYCTL_MINT_TRIES);
    }

    if (rc == 0) {
        rc = mdb_txn_commit(txn);

    } else {
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc == MDB_KEYEXIST) {
        fprintf(stderr, "loyaltyctl: %d codes minted in a row were in use\n",
                LOYALTYCTL_MINT_TRIES);
        return LOYALTYCTL_STORE;
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: mint-code: %s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    printf("%s\n", code);
    return LOYALTYCTL_OK;
}


int
loyaltyctl_revoke_code(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int              rc;
    char             code[LOYALTY_CODE_MAX];
    long             n;
    uint8_t          buf[LOYALTY_CODE_REC_MAX];
    MDB_txn         *txn;
    MDB_val          key, val;
    loyalty_code_t   rec;
    loyalty_store_t  st;

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_revoke)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 2) {
        return loyaltyctl_usage(loyaltyctl_usage_revoke);
    }

    n = loyalty_code_normalize(argv[1], strlen(argv[1]), code);
    if (n < 0) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid code\n", argv[1]);
        return LOYALTYCTL_DATA;
    }

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = loyalty_store_grow(&st, (size_t) 1 << 20);
    if (rc == 0) {
        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        loyalty_store_close(&st);
        return LOYALTYCTL_STORE;
    }

    key.mv_data = code;
    key.mv_size = (size_t) n;

    rc = mdb_get(txn, st.dbi[LOYALTY_DB_CODES], &key, &val);

    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "loyaltyctl: no code \"%s\"\n", argv[1]);
        rc = LOYALTYCTL_DATA;

    } else if (rc != 0) {
        fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));
        rc = LOYALTYCTL_STORE;

    } else if (loyalty_code_decode(val.mv_data, val.mv_size, &rec) != 0) {
        fprintf(stderr, "loyaltyctl: code \"%s\" does not decode\n",
                argv[1]);
        rc = LOYALTYCTL_DATA;

    } else if (rec.flags & LOYALTY_CODE_REVOKED) {
        rc = LOYALTYCTL_OK;

    } else {
        /* rec points into the map: encode it before the page changes */
        rec.flags |= LOYALTY_CODE_REVOKED;
        val.mv_size = loyalty_code_encode(&rec, buf);
        val.mv_data = buf;

        rc = mdb_put(txn, st.dbi[LOYALTY_DB_CODES], &key, &val, 0);
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
        }

        if (rc != 0) {
            fprintf(stderr, "loyaltyctl: revoke-code: %s\n",
                    mdb_strerror(rc));
            rc = LOYALTYCTL_STORE;
        }
    }

    if (txn) {
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    return rc;
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

        for (i = 0; i < (int) n; i++) {
            snprintf(e->label + 2 * i, 3, "%02x",
                     ((const uint8_t *) key->mv_data)[i]);
        }
        e->label[2 * n] = '\0';

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


int
loyaltyctl_clicks(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                   c, rc, bad;
    char                  code[LOYALTY_CODE_MAX];
    long                  n;
    uint8_t               start[LOYALTY_CLICKS_KEY_MAX];
    int64_t               since;
    MDB_txn              *txn;
    MDB_val               key, val;
    MDB_cursor           *cur;
    MDB_cursor_op         op;
    const char           *what;
    loyalty_store_t       st;
    loyaltyctl_clicks_t   e;

    static const struct option  longopts[] = {
        { "since", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 }
    };

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_clicks)) {
        return LOYALTYCTL_OK;
    }

    /* days in keys count from 1970-01-01 */
    since = 0;
    optind = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c != 's') {
            return loyaltyctl_usage(loyaltyctl_usage_clicks);
        }

        if (loyaltyctl_parse_day(optarg, &since) != 0) {
            return loyaltyctl_invalid("--since", optarg);
        }

        if (since < 0) {
            since = 0;
        }
    }

    if (optind + 1 < argc) {
        return loyaltyctl_usage(loyaltyctl_usage_clicks);
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

    rc = loyaltyctl_open(o, &st, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    txn = NULL;
    cur = NULL;

    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = mdb_cursor_open(txn, st.dbi[LOYALTY_DB_CLICKS], &cur);
    }

    if (rc != 0) {
        goto failed;
    }

    /* a code's days are together and in order: start at the first wanted */
    op = MDB_FIRST;

    if (n >= 0) {
        key.mv_data = start;
        key.mv_size = loyalty_clicks_key(code, (size_t) n, since, start);
        op = MDB_SET_RANGE;
    }

    bad = 0;

    while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
        op = MDB_NEXT;

        if (n >= 0
            && (key.mv_size <= (size_t) n
                || memcmp(key.mv_data, code, (size_t) n) != 0
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
            mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            loyalty_store_close(&st);
            return LOYALTYCTL_STORE;
        }
    }

    if (rc != MDB_NOTFOUND && rc != 0) {
        goto failed;
    }

    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    loyalty_store_close(&st);

    return bad ? LOYALTYCTL_DATA : LOYALTYCTL_OK;

failed:

    fprintf(stderr, "loyaltyctl: %s\n", mdb_strerror(rc));

    if (cur) {
        mdb_cursor_close(cur);
    }

    if (txn) {
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    return LOYALTYCTL_STORE;
}


static int
loyaltyctl_verify_code_records(loyalty_store_t *st, MDB_txn *txn,
    size_t *problems)
{
    int              rc;
    char             norm[LOYALTY_CODE_MAX], what[LOYALTY_ERRLEN];
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
        if (rc == MDB_NOTFOUND) {
            snprintf(what, sizeof(what), "unknown member \"%.*s\"",
                     (int) c.member_len, c.member);
            loyaltyctl_problem(problems, "codes", &key, what);

        } else if (rc != 0) {
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
