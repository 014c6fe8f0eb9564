/*
 * loyaltyctl follow, checksum, bootstrap: an edge's replica of the
 * cluster's stream.
 *
 * follow applies the stream to the store in stream order, a batch of up
 * to --batch messages per write transaction, which also records the last
 * sequence applied; the batch is acknowledged to JetStream only once
 * committed.  It reads through a durable pull consumer, "follow-EDGE",
 * made again from the store's own sequence whenever the two disagree
 * (at start, or when the consumer hands over a message beyond the next
 * one), so the store, not the consumer, says where the follower is: a
 * kill -9 at any moment neither loses nor repeats a message.  A message
 * that the store refuses or cannot read is logged with its sequence and
 * skipped.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loyaltyctl_nats.h"


#define LOYALTYCTL_FOLLOW_BATCH     512
#define LOYALTYCTL_FOLLOW_WAIT      1000    /* ms, a fetch's wait */
#define LOYALTYCTL_FOLLOW_LOG       10      /* s between lag lines */
#define LOYALTYCTL_FOLLOW_ONCE_WAIT 30      /* s, --once waits no longer */
/* empty fetches in a row after which the stream is asked whether it is
 * ahead: a pull consumer that outlived every server may wait for ever */
#define LOYALTYCTL_FOLLOW_IDLE      3
#define LOYALTYCTL_FOLLOW_GROW      8


typedef struct {
    loyaltyctl_nats_t     nats;
    loyalty_store_t       st;
    loyalty_repl_ctx_t    ctx;
    natsSubscription     *sub;
    char                  durable[LOYALTY_REPL_EDGE_MAX + 8];
    char                  subject[LOYALTYCTL_NATS_SUBJECT_MAX];
    uint64_t              seq;          /* the last one applied */
    int                   batch;
    unsigned              once:1;

    /* the lag, logged */
    time_t                logged;
    uint64_t              applied;      /* since logged */
    uint64_t              skipped;
    uint64_t              pending;
    int64_t               last_ns;      /* the last message's time */
} loyaltyctl_follow_t;


static volatile sig_atomic_t  loyaltyctl_follow_stop;


static int loyaltyctl_follow_last(loyaltyctl_follow_t *f, uint64_t *last,
    uint64_t *first);


static void
loyaltyctl_follow_signal(int signo)
{
    loyaltyctl_follow_stop = 1;
}


/* the consumer, made again to start after the store's sequence */
static int
loyaltyctl_follow_consumer(loyaltyctl_follow_t *f)
{
    jsErrCode     jerr;
    natsStatus    s;
    jsSubOptions  so;

    if (f->sub) {
        natsSubscription_Destroy(f->sub);
        f->sub = NULL;
    }

    s = js_DeleteConsumer(f->nats.js, f->nats.stream, f->durable, NULL,
                          &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr)
    {
        fprintf(stderr, "loyaltyctl: follow: cannot drop the consumer %s: "
                "%s\n", f->durable, natsStatus_GetText(s));
        return -1;
    }

    jsSubOptions_Init(&so);
    so.Stream = f->nats.stream;
    so.Config.Durable = f->durable;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = f->seq + 1;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t) 60 * 1000000000;
    so.Config.MaxAckPending = 4 * LOYALTYCTL_FOLLOW_BATCH;

    s = js_PullSubscribe(&f->sub, f->nats.js, f->subject, f->durable, NULL,
                         &so, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "loyaltyctl: follow: cannot make the consumer %s: "
                "%s (%d)\n", f->durable, natsStatus_GetText(s), (int) jerr);
        f->sub = NULL;
        return -1;
    }

    return 0;
}


static uint64_t
loyaltyctl_follow_msg_seq(natsMsg *m, loyaltyctl_follow_t *f)
{
    uint64_t        seq;
    jsMsgMetaData  *meta;

    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        return 0;
    }

    seq = meta->Sequence.Stream;
    f->pending = meta->NumPending;
    f->last_ns = meta->Timestamp;
    jsMsgMetaData_Destroy(meta);

    return seq;
}


/*
 * One write transaction: the messages after the store's sequence, in
 * order, and the sequence.  *next is how many were looked at; a message
 * beyond the next one stops the batch (*gap).  0 or an LMDB error.
 */
static int
loyaltyctl_follow_txn(loyaltyctl_follow_t *f, natsMsgList *list,
    int *next, int *gap)
{
    int        rc, i;
    char       err[2 * LOYALTY_ERRLEN];
    MDB_txn   *txn;
    uint64_t   seq, at, applied, skipped;

    rc = mdb_txn_begin(f->st.env, NULL, 0, &txn);
    if (rc != 0) {
        return rc;
    }

    rc = loyalty_repl_seq(&f->st, txn, &at);
    applied = 0;
    skipped = 0;

    for (i = 0; rc == 0 && i < list->Count; i++) {
        seq = loyaltyctl_follow_msg_seq(list->Msgs[i], f);

        if (seq <= at) {
            continue;   /* applied before the follower was killed */
        }

        if (seq != at + 1) {
            *gap = 1;
            break;
        }

        rc = loyalty_repl_apply(&f->st, txn, &f->ctx,
                                natsMsg_GetData(list->Msgs[i]),
                                (size_t) natsMsg_GetDataLength(
                                             list->Msgs[i]),
                                err, sizeof(err));

        if (rc == LOYALTY_REPL_REFUSED) {
            fprintf(stderr, "loyaltyctl: follow: %s sequence %llu (%s) "
                    "skipped: %s\n", f->nats.stream, (unsigned long long) seq,
                    natsMsg_GetSubject(list->Msgs[i]), err);
            skipped++;
            rc = 0;

        } else if (rc == 0) {
            applied++;
        }

        at = seq;
    }

    if (rc == 0) {
        rc = loyalty_repl_set_seq(&f->st, txn, at);
    }

    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);

    if (rc == 0) {
        f->seq = at;
        f->applied += applied;
        f->skipped += skipped;
        *next = i;
    }

    return rc;
}


/*
 * The consumer handed over a message beyond the next one: it was made for
 * another store (a copy, a restore), and is made again from this store's
 * sequence; unless the stream no longer holds that sequence, when the
 * store must be bootstrapped from a replica.
 */
static int
loyaltyctl_follow_gap(loyaltyctl_follow_t *f)
{
    uint64_t  last, first;

    if (loyaltyctl_follow_last(f, &last, &first) == 0
        && first > f->seq + 1)
    {
        fprintf(stderr, "loyaltyctl: follow: the stream starts at %llu, "
                "after this store's %llu: bootstrap it from a replica\n",
                (unsigned long long) first, (unsigned long long) f->seq);
        return LOYALTYCTL_STORE;
    }

    return loyaltyctl_follow_consumer(f) == 0 ? LOYALTYCTL_OK
                                              : LOYALTYCTL_STORE;
}


/* a fetched batch: applied, grown if need be, then acknowledged */
static int
loyaltyctl_follow_batch(loyaltyctl_follow_t *f, natsMsgList *list)
{
    int     rc, i, next, gap, tries;
    size_t  bytes;

    bytes = 0;

    for (i = 0; i < list->Count; i++) {
        bytes += (size_t) natsMsg_GetDataLength(list->Msgs[i]);
    }

    rc = loyalty_store_grow(&f->st, bytes * 8);

    for (tries = 0; rc == 0; tries++) {
        next = 0;
        gap = 0;
        rc = loyaltyctl_follow_txn(f, list, &next, &gap);

        if (rc != MDB_MAP_FULL || tries == LOYALTYCTL_FOLLOW_GROW) {
            break;
        }

        rc = loyalty_store_grow(&f->st, bytes * 16 << tries);
    }

    if (rc != 0) {
        fprintf(stderr, "loyaltyctl: follow: the store cannot be written: "
                "%s\n", mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    /* committed: now the stream may forget them */
    for (i = 0; i < next; i++) {
        (void) natsMsg_Ack(list->Msgs[i], NULL);
    }

    if (gap) {
        return loyaltyctl_follow_gap(f);
    }

    return LOYALTYCTL_OK;
}


static void
loyaltyctl_follow_log(loyaltyctl_follow_t *f, int force)
{
    time_t   now;
    int64_t  lag;

    now = time(NULL);

    if (!force && now - f->logged < LOYALTYCTL_FOLLOW_LOG) {
        return;
    }

    lag = 0;

    if (f->last_ns && f->pending) {
        lag = (int64_t) now * 1000 - f->last_ns / 1000000;
    }

    fprintf(stderr, "loyaltyctl: follow: %s at %llu, %llu applied, %llu "
            "skipped, %llu pending, lag %lld ms\n", f->nats.stream,
            (unsigned long long) f->seq, (unsigned long long) f->applied,
            (unsigned long long) f->skipped,
            (unsigned long long) f->pending, (long long) lag);

    f->logged = now;
    f->applied = 0;
    f->skipped = 0;
}


/* the stream's last sequence, for --once */
static int
loyaltyctl_follow_last(loyaltyctl_follow_t *f, uint64_t *last,
    uint64_t *first)
{
    jsErrCode      jerr;
    natsStatus     s;
    jsStreamInfo  *si;

    s = js_GetStreamInfo(&si, f->nats.js, f->nats.stream, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "loyaltyctl: follow: stream %s: %s\n",
                f->nats.stream, natsStatus_GetText(s));
        return -1;
    }

    *last = si->State.LastSeq;
    *first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);

    return 0;
}


static int
loyaltyctl_follow_loop(loyaltyctl_follow_t *f)
{
    int          rc;
    time_t       until;
    uint64_t     last, first, ahead, from;
    jsErrCode    jerr;
    natsStatus   s;
    natsMsgList  list;
    unsigned     idle;

    last = 0;
    idle = 0;
    until = time(NULL) + LOYALTYCTL_FOLLOW_ONCE_WAIT;

    if (f->once && loyaltyctl_follow_last(f, &last, &first) != 0) {
        return LOYALTYCTL_STORE;
    }

    if (f->once && first > f->seq + 1 && last >= first) {
        fprintf(stderr, "loyaltyctl: follow: the stream starts at %llu, "
                "after this store's %llu: bootstrap it from a replica\n",
                (unsigned long long) first, (unsigned long long) f->seq);
        return LOYALTYCTL_STORE;
    }

    while (!loyaltyctl_follow_stop) {
        if (f->once && (f->seq >= last || time(NULL) > until)) {
            break;
        }

        if (f->sub == NULL && loyaltyctl_follow_consumer(f) != 0) {
            nats_Sleep(LOYALTYCTL_FOLLOW_WAIT);
            continue;
        }

        memset(&list, 0, sizeof(list));
        s = natsSubscription_Fetch(&list, f->sub, f->batch,
                                   LOYALTYCTL_FOLLOW_WAIT, &jerr);

        if (s == NATS_OK) {
            idle = 0;
            rc = loyaltyctl_follow_batch(f, &list);
            natsMsgList_Destroy(&list);

            if (rc != LOYALTYCTL_OK) {
                return rc;
            }

        } else if (s != NATS_TIMEOUT) {
            /* NATS is away: libnats reconnects; the consumer is made again */
            fprintf(stderr, "loyaltyctl: follow: fetch: %s; retrying\n",
                    natsStatus_GetText(s));
            natsSubscription_Destroy(f->sub);
            f->sub = NULL;
            nats_Sleep(LOYALTYCTL_FOLLOW_WAIT);

        } else if (++idle >= LOYALTYCTL_FOLLOW_IDLE) {
            /* nothing for a while: the consumer is made again from the
             * store's sequence if the stream holds more than it gave */
            idle = 0;
            f->pending = 0;

            if (loyaltyctl_follow_last(f, &ahead, &from) == 0
                && ahead > f->seq)
            {
                fprintf(stderr, "loyaltyctl: follow: the stream is at "
                        "%llu, this store at %llu, and nothing came: "
                        "subscribing again\n", (unsigned long long) ahead,
                        (unsigned long long) f->seq);
                natsSubscription_Destroy(f->sub);
                f->sub = NULL;
            }

        } else {
            f->pending = 0;
        }

        loyaltyctl_follow_log(f, 0);
    }

    loyaltyctl_follow_log(f, 1);

    return (f->once && f->seq < last) ? LOYALTYCTL_STORE : LOYALTYCTL_OK;
}


/* the store's sequence, and its mark as a replica of the stream */
static int
loyaltyctl_follow_mark(loyaltyctl_follow_t *f)
{
    int       rc;
    char      stream[LOYALTY_REPL_STREAM_MAX + 1];
    MDB_txn  *txn;

    rc = mdb_txn_begin(f->st.env, NULL, 0, &txn);
    if (rc != 0) {
        return rc;
    }

    rc = loyalty_repl_stream(&f->st, txn, stream);

    if (rc == 0 && strcmp(stream, f->nats.stream) != 0) {
        fprintf(stderr, "loyaltyctl: follow: this store is a replica of "
                "%s, not of %s\n", stream, f->nats.stream);
        mdb_txn_abort(txn);
        return -1;
    }

    if (rc == MDB_NOTFOUND) {
        rc = loyalty_repl_set_stream(&f->st, txn, f->nats.stream);
    }

    if (rc == 0) {
        rc = loyalty_repl_seq(&f->st, txn, &f->seq);
    }

    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    return mdb_txn_commit(txn);
}


/* --batch N: 1 to 10000 messages; a bad one is a usage error */
static int
loyaltyctl_follow_batch_size(const char *arg, void *batch)
{
    return loyaltyctl_parse_int(arg, 10000, batch) == 0
           ? 0 : LOYALTYCTL_OPTION_USAGE;
}


static int
loyaltyctl_follow_args(const loyaltyctl_opts_t *o, loyaltyctl_follow_t *f,
    int argc, char **argv)
{
    int                  rc, once;

    loyaltyctl_option_t  opts[] = {
        { "batch", 0, 1, loyaltyctl_follow_batch_size, &f->batch, NULL },
        { "once", 0, 0, loyaltyctl_set_flag, &once, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    once = 0;

    rc = loyaltyctl_nats_args(o, argc, argv, opts, &f->nats, 0, 0, NULL);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    f->once = once;

    return f->nats.urls ? LOYALTYCTL_OK : loyaltyctl_usage(o->usage);
}


int
loyaltyctl_follow(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                   rc;
    loyalty_lua_t         vm;
    loyalty_cadences_t   *cads;
    loyalty_event_hook_t  hook;
    loyaltyctl_follow_t   f;

    memset(&f, 0, sizeof(f));
    f.batch = LOYALTYCTL_FOLLOW_BATCH;

    rc = loyaltyctl_follow_args(o, &f, argc, argv);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    snprintf(f.durable, sizeof(f.durable), "follow-%s", f.nats.edge);
    loyaltyctl_nats_subject(&f.nats, ">", f.subject);

    rc = loyaltyctl_cadences(o, &vm, &cads);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    hook.handler = NULL;
    hook.data = NULL;
    hook.cadences = cads->n ? cads : NULL;
    f.ctx.hook = &hook;
    f.ctx.cadences = cads;
    f.ctx.import = loyaltyctl_import_replicated;

    rc = loyaltyctl_open(o, &f.st, 0);
    if (rc != LOYALTYCTL_OK) {
        goto done;
    }

    signal(SIGTERM, loyaltyctl_follow_signal);
    signal(SIGINT, loyaltyctl_follow_signal);
    signal(SIGPIPE, SIG_IGN);

    f.nats.stop = &loyaltyctl_follow_stop;
    rc = loyaltyctl_nats_connect(&f.nats, !f.once);

    if (loyaltyctl_follow_stop) {
        /* stopped while it waited for NATS */
        rc = LOYALTYCTL_OK;
        goto disconnect;
    }

    /* the store becomes a replica once the stream is there */
    if (rc == LOYALTYCTL_OK) {
        rc = loyaltyctl_follow_mark(&f);

        if (rc != 0 && rc != -1) {
            fprintf(stderr, "loyaltyctl: follow: %s\n", mdb_strerror(rc));
        }

        rc = (rc == 0) ? LOYALTYCTL_OK : LOYALTYCTL_STORE;
    }

    if (rc == LOYALTYCTL_OK) {
        fprintf(stderr, "loyaltyctl: follow: %s from %llu as %s\n",
                f.nats.stream, (unsigned long long) f.seq + 1, f.durable);
        rc = loyaltyctl_follow_loop(&f);
    }

disconnect:

    if (f.sub) {
        natsSubscription_Destroy(f.sub);
    }

    loyaltyctl_nats_close(&f.nats);

    loyalty_store_close(&f.st);

done:

    loyaltyctl_cadences_free(o, &vm, cads);

    return rc;
}


/* what checksum prints: the replicated content where the store stands */
typedef struct {
    uint64_t  seq;
    uint8_t   digest[LOYALTY_REPL_DIGEST_LEN];
    char      stream[LOYALTY_REPL_STREAM_MAX + 1];
} loyaltyctl_checksum_t;


static int
loyaltyctl_checksum_read(loyalty_store_t *st, MDB_txn *txn, void *data)
{
    int                     rc;
    loyaltyctl_checksum_t  *c = data;

    rc = loyalty_repl_seq(st, txn, &c->seq);

    if (rc == 0) {
        rc = loyalty_repl_checksum(st, txn, c->digest);
    }

    if (rc == 0) {
        rc = loyalty_repl_stream(st, txn, c->stream);

        if (rc == MDB_NOTFOUND) {
            c->stream[0] = '\0';
            rc = 0;
        }
    }

    return rc;
}


int
loyaltyctl_checksum(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                    rc;
    char                   hex[2 * LOYALTY_REPL_DIGEST_LEN + 1];
    loyaltyctl_checksum_t  c;

    rc = loyaltyctl_read(o, "checksum", loyaltyctl_checksum_read, &c);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    loyalty_hex_encode(c.digest, LOYALTY_REPL_DIGEST_LEN, hex);

    return loyaltyctl_print_json(json_pack("{s:s?,s:I,s:s}", "stream",
                                           c.stream[0] ? c.stream : NULL,
                                           "seq", (json_int_t) c.seq,
                                           "checksum", hex));
}


int
loyaltyctl_bootstrap(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                rc;
    char               err[LOYALTY_ERRLEN];
    loyalty_store_t    peer;
    loyaltyctl_opts_t  po;

    if (strcmp(argv[1], "--from") != 0 || o->store == NULL) {
        return loyaltyctl_usage(o->usage);
    }

    po = *o;
    po.store = argv[2];

    rc = loyaltyctl_open(&po, &peer, LOYALTY_STORE_RDONLY);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (mkdir(o->store, 0770) != 0 && errno != EEXIST) {
        fprintf(stderr, "loyaltyctl: bootstrap: cannot make \"%s\": %s\n",
                o->store, strerror(errno));
        loyalty_store_close(&peer);
        return LOYALTYCTL_STORE;
    }

    /* a read transaction's view: consistent at the peer's sequence */
    rc = mdb_env_copy2(peer.env, o->store, MDB_CP_COMPACT);
    loyalty_store_close(&peer);

    if (rc != 0) {
        snprintf(err, sizeof(err), "%s", mdb_strerror(rc));
        fprintf(stderr, "loyaltyctl: bootstrap from \"%s\": %s (the "
                "directory must be empty)\n", argv[2], err);
        return LOYALTYCTL_STORE;
    }

    return loyaltyctl_checksum(o, 1, argv);
}
