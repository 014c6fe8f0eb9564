/*
 * Unit tests of core/loyalty_repl: replicated writes applied to two stores
 * in the same order give the same checksum; the sequence is kept with the
 * writes; malformed, foreign and refused messages leave nothing behind;
 * clicks from several edges add up; node-local meta is not in the
 * checksum; a PATCH and an erasure made on edges reach every replica
 * alike, under the edge's pseudonym and the first erase key; so does a
 * prune published by loyaltyctl prune --nats.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "loyalty_admin.h"
#include "loyalty_member_data.h"
#include "loyalty_repl.h"
#include "store_fixture.h"


static char  tmp_a[FIXTURE_PATH_MAX];
static char  tmp_b[FIXTURE_PATH_MAX];

static loyalty_store_t  st_a, st_b;
static loyalty_repl_ctx_t  ctx;


/* one message in its own transaction, with the sequence: apply's rc */
static int
apply(loyalty_store_t *st, const char *msg, uint64_t seq, char *err)
{
    int       rc, arc;
    MDB_txn  *txn;

    if (mdb_txn_begin(st->env, NULL, 0, &txn) != 0) {
        return -100;
    }

    arc = loyalty_repl_apply(st, txn, &ctx, msg, strlen(msg), err,
                             LOYALTY_ERRLEN);

    if (arc != 0 && arc != LOYALTY_REPL_REFUSED) {
        mdb_txn_abort(txn);
        return arc;
    }

    rc = loyalty_repl_set_seq(st, txn, seq);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);

    return rc ? rc : arc;
}


static void
checksum(loyalty_store_t *st, uint8_t *digest, uint64_t *seq)
{
    MDB_txn  *txn;

    memset(digest, 0, LOYALTY_REPL_DIGEST_LEN);
    *seq = (uint64_t) -1;

    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return;
    }

    (void) loyalty_repl_checksum(st, txn, digest);
    (void) loyalty_repl_seq(st, txn, seq);
    mdb_txn_abort(txn);
}


static int
same(const char *what)
{
    uint8_t   a[LOYALTY_REPL_DIGEST_LEN], b[LOYALTY_REPL_DIGEST_LEN];
    uint64_t  sa, sb;

    checksum(&st_a, a, &sa);
    checksum(&st_b, b, &sb);

    return ok(memcmp(a, b, sizeof(a)) == 0 && sa == sb,
              "%s: one checksum, sequence %llu", what,
              (unsigned long long) sa);
}


static const char  *writes[] = {
    "{\"v\":1,\"kind\":\"import\",\"edge\":\"ops\",\"at\":1764979200,"
    "\"what\":\"tiers\",\"body\":\"basic 0\\ngold 1\\n\"}",
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"e1\",\"at\":1764979201,"
    "\"what\":\"member\",\"key\":\"ann\",\"record\":{\"tier\":\"basic\","
    "\"stage\":\"fan\"}}",
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"e2\",\"at\":1764979202,"
    "\"what\":\"member\",\"key\":\"bob\",\"record\":{\"tier\":\"gold\","
    "\"stage\":\"member\",\"referrer\":\"ann\"}}",
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"e2\",\"at\":1764979203,"
    "\"what\":\"code\",\"key\":\"ANN-CODE-1\",\"record\":{\"member\":\"ann\","
    "\"target\":\"/p\"}}",
    "{\"v\":1,\"kind\":\"events\",\"edge\":\"e1\",\"at\":1764979204,"
    "\"body\":\"[{\\\"type\\\":\\\"order\\\",\\\"member\\\":\\\"bob\\\","
    "\\\"order_id\\\":\\\"O1\\\",\\\"amount\\\":5000,"
    "\\\"at\\\":\\\"2025-12-06T00:00:00Z\\\","
    "\\\"items\\\":[{\\\"sku\\\":\\\"x\\\"}]}]\"}",
    "{\"v\":1,\"kind\":\"clicks\",\"edge\":\"e1\",\"at\":1764979205,"
    "\"day\":20428,\"counts\":{\"ANN-CODE-1\":[3,2,1,0,0,1]}}",
    "{\"v\":1,\"kind\":\"clicks\",\"edge\":\"e2\",\"at\":1764979206,"
    "\"day\":20428,\"counts\":{\"ann-code-1\":[4,1,0,0,0,0]}}",
    "{\"v\":1,\"kind\":\"claim\",\"edge\":\"e3\",\"at\":1764979207,"
    "\"until\":1764979207,\"lease\":60,\"limit\":10,\"touches\":31}",
    "{\"v\":1,\"kind\":\"sweep\",\"edge\":\"e3\",\"at\":1764979208}",
    /* a PATCH on one edge, an erasure on another (the key it made) */
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"e1\",\"at\":1764979209,"
    "\"what\":\"member\",\"key\":\"cy\",\"record\":{\"tier\":\"basic\","
    "\"stage\":\"fan\",\"referrer\":\"ann\",\"birthday\":\"04-01\"}}",
    "{\"v\":1,\"kind\":\"patch\",\"edge\":\"e2\",\"at\":1764979210,"
    "\"key\":\"cy\",\"fields\":{\"tier\":\"gold\",\"points\":70,"
    "\"birthday\":null}}",
    "{\"v\":1,\"kind\":\"events\",\"edge\":\"e1\",\"at\":1764979211,"
    "\"body\":\"[{\\\"type\\\":\\\"order\\\",\\\"member\\\":\\\"cy\\\","
    "\\\"order_id\\\":\\\"O3\\\",\\\"amount\\\":900,"
    "\\\"at\\\":\\\"2025-12-06T00:00:00Z\\\","
    "\\\"items\\\":[{\\\"sku\\\":\\\"x\\\"}]}]\"}",
    "{\"v\":1,\"kind\":\"erase\",\"edge\":\"e3\",\"at\":1764979212,"
    "\"key\":\"cy\",\"pseudonym\":\"erased-0123456789abcdef01234567\","
    "\"erase_key\":"
    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
    /* made again and erased again on an edge with a key of its own: the
     * first key stays on every replica */
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"e1\",\"at\":1764979213,"
    "\"what\":\"member\",\"key\":\"cy\",\"record\":{\"tier\":\"basic\","
    "\"stage\":\"fan\"}}",
    "{\"v\":1,\"kind\":\"erase\",\"edge\":\"e2\",\"at\":1764979214,"
    "\"key\":\"cy\",\"pseudonym\":\"erased-0123456789abcdef01234567\","
    "\"erase_key\":"
    "\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"}",
    /* loyaltyctl prune --nats: the events of before that time, on all */
    "{\"v\":1,\"kind\":\"prune\",\"edge\":\"ops\",\"at\":1764979215,"
    "\"before\":1764979201}",
};


static const char  *refused[] = {
    "not JSON at all",
    "[1,2,3]",
    "{\"v\":2,\"kind\":\"events\",\"edge\":\"x\",\"at\":1764979200}",
    "{\"v\":1,\"kind\":\"teleport\",\"edge\":\"x\",\"at\":1764979200}",
    "{\"v\":1,\"kind\":\"events\",\"edge\":\"x\",\"at\":\"yesterday\"}",
    "{\"v\":1,\"kind\":\"events\",\"edge\":\"x\",\"at\":1764979200}",
    "{\"v\":1,\"kind\":\"events\",\"edge\":\"x\",\"at\":1764979200,"
    "\"body\":\"[{\\\"type\\\":\\\"order\\\",\\\"member\\\":\\\"nobody\\\","
    "\\\"order_id\\\":\\\"O2\\\",\\\"amount\\\":1,"
    "\\\"items\\\":[{\\\"sku\\\":\\\"x\\\"}]}]\"}",
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"x\",\"at\":1764979200,"
    "\"what\":\"member\",\"key\":\"cy\",\"record\":{\"tier\":\"none\","
    "\"stage\":\"fan\"}}",
    "{\"v\":1,\"kind\":\"put\",\"edge\":\"x\",\"at\":1764979200,"
    "\"what\":\"planet\",\"key\":\"cy\",\"record\":{}}",
    "{\"v\":1,\"kind\":\"delete\",\"edge\":\"x\",\"at\":1764979200,"
    "\"what\":\"member\",\"key\":\"nobody\"}",
    "{\"v\":1,\"kind\":\"clicks\",\"edge\":\"x\",\"at\":1764979200,"
    "\"day\":20428,\"counts\":{\"ANN-CODE-1\":[1,2]}}",
    "{\"v\":1,\"kind\":\"clicks\",\"edge\":\"x\",\"at\":1764979200,"
    "\"day\":20428,\"counts\":{\"a b\":[1,0,0,0,0,0]}}",
    "{\"v\":1,\"kind\":\"claim\",\"edge\":\"x\",\"at\":1764979200,"
    "\"until\":1,\"lease\":0,\"limit\":10,\"touches\":1}",
    "{\"v\":1,\"kind\":\"import\",\"edge\":\"x\",\"at\":1764979200,"
    "\"what\":\"members\",\"body\":\"\"}",
    "{\"v\":1,\"kind\":\"patch\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"ann\",\"fields\":{\"colour\":\"red\"}}",
    "{\"v\":1,\"kind\":\"patch\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"nobody\",\"fields\":{\"points\":1}}",
    "{\"v\":1,\"kind\":\"patch\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"ann\",\"fields\":[]}",
    "{\"v\":1,\"kind\":\"erase\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"nobody\",\"pseudonym\":\"erased-0123456789abcdef01234567\"}",
    "{\"v\":1,\"kind\":\"erase\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"ann\",\"pseudonym\":\"ann-in-disguise\"}",
    "{\"v\":1,\"kind\":\"erase\",\"edge\":\"x\",\"at\":1764979200,"
    "\"key\":\"ann\",\"pseudonym\":\"erased-0123456789abcdef01234567\","
    "\"erase_key\":\"abc\"}",
    "{\"v\":1,\"kind\":\"prune\",\"edge\":\"x\",\"at\":1764979200,"
    "\"before\":\"last year\"}",
};


/* a store of its own in tmp, for the test NAME */
static int
open_store(char *tmp, const char *name, loyalty_store_t *st)
{
    char  err[LOYALTY_ERRLEN];

    if (fixture_store_open(tmp, name, st, err, sizeof(err)) != 0) {
        diag("%s", err);
        return -1;
    }

    return 0;
}


/*
 * loyaltyctl's import is the CLI's: here a stand-in that takes tiers
 * only, "NAME RANK" lines, encoded as import encodes them
 */
static int
import_tiers(loyalty_store_t *st, MDB_txn *txn, const char *what,
    const char *buf, size_t len, json_t *hosts, int64_t now, char *err,
    size_t errlen)
{
    int             rank, n;
    char            name[LOYALTY_TIER_MAX + 1];
    uint8_t         rec[LOYALTY_TIER_REC_MAX];
    MDB_val         key, val;
    const char     *p;
    loyalty_tier_t  t;

    if (strcmp(what, "tiers") != 0 || len == 0) {
        snprintf(err, errlen, "only tiers here");
        return -1;
    }

    for (p = buf; sscanf(p, "%32s %d%n", name, &rank, &n) == 2; p += n) {
        memset(&t, 0, sizeof(t));
        t.rank = rank;
        t.label = "";

        key.mv_data = name;
        key.mv_size = strlen(name);
        val.mv_data = rec;
        val.mv_size = loyalty_tier_encode(&t, rec);

        if (mdb_put(txn, st->dbi[LOYALTY_DB_TIERS], &key, &val, 0) != 0) {
            return -1;
        }
    }

    return 0;
}


int
main(void)
{
    int          rc;
    char         err[LOYALTY_ERRLEN], name[LOYALTY_REPL_STREAM_MAX + 1];
    size_t       i;
    uint8_t      a[LOYALTY_REPL_DIGEST_LEN], b[LOYALTY_REPL_DIGEST_LEN];
    uint8_t      kbuf[LOYALTY_CLICKS_KEY_MAX];
    uint64_t     seq, sa, counts[LOYALTY_CLICK_COUNTERS];
    MDB_txn     *txn;
    MDB_val      key, val;

    plan(13 + 2 * nelts(writes) + 2 * nelts(refused));

    if (open_store(tmp_a, "repl-a", &st_a) != 0
        || open_store(tmp_b, "repl-b", &st_b) != 0) {
        return 1;
    }

    ctx.import = import_tiers;

    same("two new stores, made at other times");

    /* every kind, on two stores, in one order */
    for (seq = 1, i = 0; i < nelts(writes); i++, seq++) {
        rc = apply(&st_a, writes[i], seq, err);
        is_int(rc, 0, "write %zu on a store (%s)", i, err);
        rc = apply(&st_b, writes[i], seq, err);
        is_int(rc, 0, "write %zu on the other", i);
    }

    same("the same writes in the same order");

    /* refused: nothing of them written, the sequence still kept */
    for (i = 0; i < nelts(refused); i++, seq++) {
        checksum(&st_a, a, &sa);
        rc = apply(&st_a, refused[i], seq, err);
        is_int(rc, LOYALTY_REPL_REFUSED, "message %zu refused: %s", i, err);
        checksum(&st_a, b, &sa);
        ok(memcmp(a, b, sizeof(a)) == 0 && sa == seq,
           "message %zu: nothing written, the sequence kept", i);
        (void) apply(&st_b, refused[i], seq, err);
    }

    same("after the refused messages");

    /* clicks of two edges add up in the code's day */
    rc = mdb_txn_begin(st_b.env, NULL, MDB_RDONLY, &txn);
    key.mv_data = kbuf;
    key.mv_size = loyalty_clicks_key("ANN-CODE-1", 10, 20428, kbuf);
    rc = rc ? rc : mdb_get(txn, st_b.dbi[LOYALTY_DB_CLICKS], &key, &val);
    ok(rc == 0 && loyalty_clicks_decode(val.mv_data, val.mv_size, counts) == 0
       && counts[LOYALTY_CLICK_TOTAL] == 7
       && counts[LOYALTY_CLICK_UNIQUE] == 3
       && counts[LOYALTY_CLICK_ATTRIBUTED] == 1,
       "clicks of two edges: the sum of their deltas");
    is_int(loyalty_repl_stream(&st_b, txn, name), MDB_NOTFOUND,
           "a store that follows no stream");
    mdb_txn_abort(txn);

    /* the erasure: the edge's pseudonym, the first key, on both */
    for (i = 0; i < 2; i++) {
        loyalty_store_t  *st = i ? &st_b : &st_a;
        json_t           *m;
        uint8_t           k[LOYALTY_ERASE_KEY_LEN];

        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
        m = rc ? NULL : loyalty_admin_get_member(st, txn,
                                    "erased-0123456789abcdef01234567", 31);

        if (i == 0) {
            /* two erasures of cy: 70 points and the order's, once each */
            ok(m && loyalty_admin_get_member(st, txn, "cy", 2) == NULL
               && json_integer_value(json_object_get(m, "orders")) == 1
               && json_is_true(json_object_get(m, "blocked"))
               && json_object_get(m, "birthday") == NULL
               && json_integer_value(json_object_get(m, "spend")) == 900
               && json_integer_value(json_object_get(m, "points")) == 70,
               "patched, then erased twice: the record under the edge's "
               "pseudonym, blocked, the order and the patched points");

        } else {
            ok(rc == 0 && loyalty_member_erase_key(st, txn, k, 0) == 0
               && k[0] == 0x00 && k[1] == 0x11 && k[31] == 0xff,
               "the replica keeps the first erase key it was given");
        }

        json_decref(m);
        mdb_txn_abort(txn);
    }

    {
        MDB_stat  ms;

        rc = mdb_txn_begin(st_b.env, NULL, MDB_RDONLY, &txn);
        rc = rc ? rc : mdb_stat(txn, st_b.dbi[LOYALTY_DB_EVENTS], &ms);
        ok(rc == 0 && ms.ms_entries == 0,
           "pruned through the stream: no event of before the cutoff");
        mdb_txn_abort(txn);
    }

    /* node-local meta is not in the checksum; content is */
    checksum(&st_a, a, &sa);

    rc = mdb_txn_begin(st_a.env, NULL, 0, &txn);
    rc = rc ? rc : loyalty_repl_set_stream(&st_a, txn, "LOYALTY");
    rc = rc ? rc : loyalty_repl_set_seq(&st_a, txn, 999);
    rc = rc ? rc : mdb_txn_commit(txn);

    checksum(&st_a, b, &sa);
    ok(rc == 0 && memcmp(a, b, sizeof(a)) == 0 && sa == 999,
       "the stream's name and the sequence are not in the checksum");

    rc = apply(&st_a, "{\"v\":1,\"kind\":\"delete\",\"edge\":\"e9\","
                      "\"at\":1764979300,\"what\":\"member\","
                      "\"key\":\"bob\"}", 1000, err);
    checksum(&st_a, b, &sa);
    ok(rc == 0 && memcmp(a, b, sizeof(a)) != 0 && sa == 1000,
       "a member deleted: another checksum (%s)", err);

    /* the edge's event hook decided: its decision, not the defaults */
    rc = apply(&st_a, "{\"v\":1,\"kind\":\"events\",\"edge\":\"e1\","
                      "\"at\":1764979400,\"body\":\"[{\\\"type\\\":"
                      "\\\"order\\\",\\\"member\\\":\\\"ann\\\","
                      "\\\"order_id\\\":\\\"O7\\\",\\\"amount\\\":1,"
                      "\\\"at\\\":\\\"2025-12-06T00:00:00Z\\\","
                      "\\\"items\\\":[{\\\"sku\\\":\\\"x\\\"}]}]\","
                      "\"hook\":{\"order:O7\":{\"points\":555,"
                      "\"stage\":3}}}", 1001, err);
    is_int(rc, 0, "events with the hook's decisions (%s)", err);

    rc = mdb_txn_begin(st_a.env, NULL, MDB_RDONLY, &txn);
    {
        json_t  *m;

        m = rc ? NULL : loyalty_admin_get_member(&st_a, txn, "ann", 3);
        ok(m && json_integer_value(json_object_get(m, "points")) == 555
           && strcmp(json_string_value(json_object_get(m, "stage")),
                     "member") == 0,
           "the hook's 555 points and stage, not the defaults");
        json_decref(m);
    }
    mdb_txn_abort(txn);

    rc = mdb_txn_begin(st_a.env, NULL, MDB_RDONLY, &txn);
    ok(rc == 0 && loyalty_repl_stream(&st_a, txn, name) == 0
       && strcmp(name, "LOYALTY") == 0, "a replica knows its stream");
    mdb_txn_abort(txn);

    fixture_store_remove(tmp_a, &st_a);
    fixture_store_remove(tmp_b, &st_b);

    return done();
}
