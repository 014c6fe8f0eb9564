/*
 * loyaltyctl: NATS JetStream for a cluster of edges (README, "Several
 * edges"): the connection and its options, the stream, publishing, and
 * import --nats.
 *
 * The stream holds every write of the cluster, on the subjects
 * "loyalty.STREAM.KIND".  Each message carries a Nats-Msg-Id, so that
 * JetStream's duplicate window drops a publish made twice.  A stream that
 * does not exist is made by the first loyaltyctl that connects, with
 * --replicas replicas; nginx never makes it.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "loyaltyctl_nats.h"


static const char  loyaltyctl_usage_import_nats[] =
    "usage: loyaltyctl [-s DIR] import KIND FILE --nats URL[,URL...]\n"
    "           [--creds FILE | --user U [--password P]] [--stream NAME]\n"
    "           [--edge ID] [--replicas N] [--hosts HOST[,HOST...]]\n"
    "Publishes the import to the cluster's stream, as one message that\n"
    "every edge's follower applies with the checks of a local import.\n"
    "With -s DIR, the file is first checked against that store (nothing\n"
    "is written to it); a bad file is refused before it is published.\n"
    "The password may come from $LOYALTY_NATS_PASSWORD instead.\n";


/* a stream name or an edge id: [A-Za-z0-9_-], as NATS names allow */
static int
loyaltyctl_nats_name(const char *s, size_t max)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z')
            && !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' && s[i] != '-')
        {
            return LOYALTYCTL_OPTION_USAGE;
        }
    }

    if (i == 0 || i > max) {
        return LOYALTYCTL_OPTION_USAGE;
    }

    return 0;
}


/* --stream, --edge and --replicas; a bad value is a usage error */

static int
loyaltyctl_nats_set_stream(const char *arg, void *dest)
{
    *(const char **) dest = arg;
    return loyaltyctl_nats_name(arg, LOYALTY_REPL_STREAM_MAX);
}


static int
loyaltyctl_nats_set_edge(const char *arg, void *dest)
{
    *(const char **) dest = arg;
    return loyaltyctl_nats_name(arg, LOYALTY_REPL_EDGE_MAX);
}


static int
loyaltyctl_nats_set_replicas(const char *arg, void *dest)
{
    return loyaltyctl_parse_int(arg, 5, dest) == 0
           ? 0 : LOYALTYCTL_OPTION_USAGE;
}


int
loyaltyctl_nats_args(const loyaltyctl_opts_t *o, int argc, char **argv,
    const loyaltyctl_option_t *opts, loyaltyctl_nats_t *n, int min,
    int max, int *given)
{
    int                  i, k, rc;
    loyaltyctl_option_t  all[LOYALTYCTL_OPTIONS_MAX + 1];

    loyaltyctl_option_t  nats[] = {
        { "nats", 0, 1, loyaltyctl_set_string, &n->urls, NULL },
        { "creds", 0, 1, loyaltyctl_set_string, &n->creds, NULL },
        { "user", 0, 1, loyaltyctl_set_string, &n->user, NULL },
        { "password", 0, 1, loyaltyctl_set_string, &n->password, NULL },
        { "stream", 0, 1, loyaltyctl_nats_set_stream, &n->stream, NULL },
        { "edge", 0, 1, loyaltyctl_nats_set_edge, &n->edge, NULL },
        { "replicas", 0, 1, loyaltyctl_nats_set_replicas, &n->replicas, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    memset(n, 0, sizeof(loyaltyctl_nats_t));
    k = 0;

    /* the NATS options first, as getopt_long() found them before */
    for (i = 0; nats[i].name; i++) {
        all[k++] = nats[i];
    }

    for (i = 0; opts && opts[i].name && k < LOYALTYCTL_OPTIONS_MAX; i++) {
        all[k++] = opts[i];
    }

    memset(&all[k], 0, sizeof(loyaltyctl_option_t));

    rc = loyaltyctl_options(o, argc, argv, all, min, max);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (given) {
        *given = n->urls || n->creds || n->user || n->password || n->stream
                 || n->edge || n->replicas;
    }

    n->stream = n->stream ? n->stream : LOYALTYCTL_NATS_STREAM;
    n->replicas = n->replicas ? n->replicas : 1;

    if (n->password == NULL) {
        n->password = getenv("LOYALTY_NATS_PASSWORD");
    }

    if (gethostname(n->host, sizeof(n->host) - 1) != 0 || n->host[0] == '\0')
    {
        strcpy(n->host, "localhost");
    }

    n->edge = n->edge ? n->edge : n->host;

    return LOYALTYCTL_OK;
}


int
loyaltyctl_nats_wanted(int argc, char **argv)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nats") == 0
            || strncmp(argv[i], "--nats=", 7) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static int
loyaltyctl_nats_failed(const char *what, natsStatus s)
{
    const char  *last;

    last = nats_GetLastError(NULL);

    fprintf(stderr, "loyaltyctl: NATS: %s: %s\n", what,
            last && last[0] ? last : natsStatus_GetText(s));

    return LOYALTYCTL_STORE;
}


/* libnats's thread: nothing to do, the connection's status says it */
static void
loyaltyctl_nats_connected(natsConnection *nc, void *closure)
{
}


static natsStatus
loyaltyctl_nats_options(loyaltyctl_nats_t *n, natsOptions *opts,
    int forever)
{
    int          count;
    char        *urls, *p, *servers[LOYALTYCTL_NATS_SERVERS_MAX];
    natsStatus   s;

    urls = strdup(n->urls);
    if (urls == NULL) {
        return NATS_NO_MEMORY;
    }

    count = 0;

    for (p = strtok(urls, ","); p && count < LOYALTYCTL_NATS_SERVERS_MAX;
         p = strtok(NULL, ","))
    {
        servers[count++] = p;
    }

    s = natsOptions_SetServers(opts, (const char **) servers, count);
    free(urls);

    if (s == NATS_OK) {
        s = natsOptions_SetName(opts, n->edge);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(opts, 2000);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetReconnectWait(opts, 250);
    }

    if (s == NATS_OK && forever) {
        s = natsOptions_SetMaxReconnect(opts, -1);
    }

    /* with a callback the first connection is made in the background */
    if (s == NATS_OK && forever) {
        s = natsOptions_SetRetryOnFailedConnect(opts, true,
                                                loyaltyctl_nats_connected,
                                                NULL);
    }

    if (s == NATS_OK && n->creds) {
        s = natsOptions_SetUserCredentialsFromFiles(opts, n->creds, NULL);
    }

    if (s == NATS_OK && n->user) {
        s = natsOptions_SetUserInfo(opts, n->user,
                                    n->password ? n->password : "");
    }

    return s;
}


/* the stream, made when it is not there */
static int
loyaltyctl_nats_stream(loyaltyctl_nats_t *n)
{
    char             subject[LOYALTYCTL_NATS_SUBJECT_MAX];
    const char      *subjects[1];
    jsErrCode        jerr;
    natsStatus       s;
    jsStreamInfo    *si;
    jsStreamConfig   cfg;

    si = NULL;
    s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr);

    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return LOYALTYCTL_OK;
    }

    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
        return loyaltyctl_nats_failed("stream info", s);
    }

    loyaltyctl_nats_subject(n, ">", subject);
    subjects[0] = subject;

    jsStreamConfig_Init(&cfg);
    cfg.Name = n->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = n->replicas;
    /* JetStream's duplicate window: two minutes */
    cfg.Duplicates = (int64_t) 120 * 1000000000;

    s = js_AddStream(&si, n->js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        return loyaltyctl_nats_failed("cannot make the stream", s);
    }

    jsStreamInfo_Destroy(si);
    fprintf(stderr, "loyaltyctl: made the stream %s (%d replicas)\n",
            n->stream, n->replicas);

    return LOYALTYCTL_OK;
}


int
loyaltyctl_nats_connect(loyaltyctl_nats_t *n, int forever)
{
    natsStatus    s;
    natsOptions  *opts;

    if (n->urls == NULL) {
        fprintf(stderr, "loyaltyctl: --nats URL[,URL...] is needed\n");
        return LOYALTYCTL_USAGE;
    }

    s = nats_Open(-1);
    if (s != NATS_OK) {
        return loyaltyctl_nats_failed("cannot start the client", s);
    }

    opts = NULL;
    s = natsOptions_Create(&opts);

    if (s == NATS_OK) {
        s = loyaltyctl_nats_options(n, opts, forever);
    }

    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        return loyaltyctl_nats_failed("options", s);
    }

    s = natsConnection_Connect(&n->nc, opts);
    natsOptions_Destroy(opts);

    if (s != NATS_OK && !(forever && s == NATS_NOT_YET_CONNECTED)) {
        n->nc = NULL;
        return loyaltyctl_nats_failed(n->urls, s);
    }

    s = natsConnection_JetStream(&n->js, n->nc, NULL);
    if (s != NATS_OK) {
        return loyaltyctl_nats_failed("JetStream", s);
    }

    /* a daemon that started before NATS makes the stream when it is up */
    for ( ;; ) {
        if (natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED) {
            return loyaltyctl_nats_stream(n);
        }

        if (!forever) {
            return loyaltyctl_nats_failed(n->urls, NATS_NO_SERVER);
        }

        if (n->stop && *n->stop) {
            return LOYALTYCTL_STORE;
        }

        nats_Sleep(250);
    }
}


void
loyaltyctl_nats_close(loyaltyctl_nats_t *n)
{
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    n->js = NULL;
    n->nc = NULL;
    nats_Close();
}


void
loyaltyctl_nats_subject(loyaltyctl_nats_t *n, const char *kind,
    char *subject)
{
    snprintf(subject, LOYALTYCTL_NATS_SUBJECT_MAX, "loyalty.%s.%s",
             n->stream, kind);
}


int
loyaltyctl_nats_publish(loyaltyctl_nats_t *n, json_t *msg,
    const char *msgid, uint64_t *seq)
{
    char          subject[LOYALTYCTL_NATS_SUBJECT_MAX], *text;
    natsMsg      *m;
    jsErrCode     jerr;
    jsPubAck     *ack;
    natsStatus    s;
    jsPubOptions  po;

    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    loyaltyctl_nats_subject(n, json_string_value(json_object_get(msg,
                                                                 "kind")),
                            subject);

    m = NULL;
    s = natsMsg_Create(&m, subject, NULL, text, (int) strlen(text));
    free(text);

    if (s != NATS_OK) {
        return loyaltyctl_nats_failed("message", s);
    }

    jsPubOptions_Init(&po);
    po.MsgId = msgid;
    po.MaxWait = LOYALTYCTL_NATS_WAIT;
    po.ExpectStream = n->stream;

    ack = NULL;
    s = js_PublishMsg(&ack, n->js, m, &po, &jerr);
    natsMsg_Destroy(m);

    if (s != NATS_OK) {
        return loyaltyctl_nats_failed("publish", s);
    }

    *seq = ack->Sequence;
    if (ack->Duplicate) {
        fprintf(stderr, "loyaltyctl: a duplicate of message %llu, dropped "
                "by the stream\n", (unsigned long long) ack->Sequence);
    }

    jsPubAck_Destroy(ack);

    return LOYALTYCTL_OK;
}


int
loyaltyctl_replica_refuse(loyalty_store_t *st, const char *what)
{
    int       rc;
    char      stream[LOYALTY_REPL_STREAM_MAX + 1];
    MDB_txn  *txn;

    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return 0;
    }

    rc = loyalty_repl_stream(st, txn, stream);
    mdb_txn_abort(txn);

    if (rc != 0) {
        return 0;
    }

    fprintf(stderr, "loyaltyctl: this store is a replica of the stream %s, "
            "written by its follower only: %s through the stream (import "
            "and prune with --nats; the other writes through an edge's "
            "admin API)\n", stream, what);

    return 1;
}


/* with -s DIR: the file checked against that store, nothing written */
static int
loyaltyctl_import_check(const loyaltyctl_opts_t *o, const char *kind,
    const char *buf, size_t len, json_t *hosts, int64_t now)
{
    int              rc;
    char             err[2 * LOYALTY_ERRLEN];
    MDB_txn         *txn;
    loyalty_store_t  st;

    rc = loyaltyctl_open(o, &st, 0);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    rc = mdb_txn_begin(st.env, NULL, 0, &txn);

    if (rc == 0) {
        rc = loyaltyctl_import_replicated(&st, txn, kind, buf, len,
                                          hosts, now, err, sizeof(err));
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc == -1) {
        fprintf(stderr, "loyaltyctl: %s; nothing published\n", err);
        return LOYALTYCTL_DATA;
    }

    if (rc != 0 && rc != MDB_MAP_FULL) {
        fprintf(stderr, "loyaltyctl: import %s: %s\n", kind,
                mdb_strerror(rc));
        return LOYALTYCTL_STORE;
    }

    return LOYALTYCTL_OK;
}


/* an id for JetStream's duplicate window: edge, then 16 random bytes */
int
loyaltyctl_nats_msgid(loyaltyctl_nats_t *n, char *id, size_t size)
{
    size_t         i, len;
    unsigned char  rnd[16];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return -1;
    }

    len = (size_t) snprintf(id, size, "%s:", n->edge);

    for (i = 0; i < sizeof(rnd) && len + 2 < size; i++) {
        len += (size_t) snprintf(id + len, size - len, "%02x", rnd[i]);
    }

    return 0;
}


int
loyaltyctl_nats_send(loyaltyctl_nats_t *n, json_t *msg, const char *what,
    const char *why, int fail)
{
    int       rc;
    char      id[LOYALTY_REPL_EDGE_MAX + 40];
    uint64_t  seq;

    if (msg == NULL || loyaltyctl_nats_msgid(n, id, sizeof(id)) != 0) {
        json_decref(msg);
        fprintf(stderr, "loyaltyctl: %s\n", why);
        return fail;
    }

    rc = loyaltyctl_nats_connect(n, 0);

    if (rc == LOYALTYCTL_OK) {
        rc = loyaltyctl_nats_publish(n, msg, id, &seq);
    }

    json_decref(msg);

    if (rc == LOYALTYCTL_OK) {
        printf("published %s to %s, sequence %llu\n", what, n->stream,
               (unsigned long long) seq);
    }

    return rc;
}


static int
loyaltyctl_import_publish(loyaltyctl_nats_t *n, const char *kind,
    char *buf, size_t len, json_t *hosts, int64_t now)
{
    json_t  *msg;

    msg = loyalty_repl_message("import", n->edge, now);

    if (msg
        && (json_object_set_new(msg, "what", json_string(kind)) != 0
            || json_object_set_new(msg, "body", json_stringn(buf, len)) != 0
            || json_object_get(msg, "body") == NULL
            || (json_array_size(hosts)
                && json_object_set(msg, "hosts", hosts) != 0)))
    {
        json_decref(msg);
        msg = NULL;
    }

    return loyaltyctl_nats_send(n, msg, kind, "import: the file is not "
                                "UTF-8 text, or out of memory",
                                LOYALTYCTL_DATA);
}


/* --hosts of import --nats, as given: the follower checks them */
static int
loyaltyctl_nats_set_hosts(const char *arg, void *hosts)
{
    json_array_append_new(hosts, json_string(arg));
    return 0;
}


int
loyaltyctl_import_nats(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    char                *buf;
    size_t               len;
    json_t              *hosts;
    int64_t              now;
    const char          *kind, *file;
    loyaltyctl_opts_t    io;
    loyaltyctl_nats_t    n;

    loyaltyctl_option_t  opts[] = {
        { "hosts", 0, 1, loyaltyctl_nats_set_hosts, NULL, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    hosts = json_array();
    opts[0].dest = hosts;
    io = *o;
    io.usage = loyaltyctl_usage_import_nats;

    rc = loyaltyctl_nats_args(&io, argc, argv, opts, &n, 2, 2, NULL);

    if (rc == LOYALTYCTL_OK
        && (loyaltyctl_import_db(argv[optind]) < 0
            || (json_array_size(hosts)
                && strcmp(argv[optind], "codes") != 0)))
    {
        rc = loyaltyctl_usage(io.usage);
    }

    if (rc != LOYALTYCTL_OK) {
        json_decref(hosts);
        return rc;
    }

    kind = argv[optind];
    file = argv[optind + 1];
    now = (int64_t) time(NULL);

    buf = loyaltyctl_read_all(file, &len);
    if (buf == NULL) {
        json_decref(hosts);
        return LOYALTYCTL_DATA;
    }

    rc = LOYALTYCTL_OK;

    if (o->store) {
        rc = loyaltyctl_import_check(o, kind, buf, len, hosts, now);
    }

    if (rc == LOYALTYCTL_OK) {
        rc = loyaltyctl_import_publish(&n, kind, buf, len, hosts, now);
        loyaltyctl_nats_close(&n);
    }

    free(buf);
    json_decref(hosts);

    return rc;
}
