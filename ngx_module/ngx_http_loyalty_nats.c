/*
 * nginx-loyalty: the edge's side of a cluster (README, "Several edges").
 *
 * With loyalty_nats, a write is not committed to the local store: the
 * writer checks it against the store in a write transaction that it then
 * aborts, publishes it to the cluster's JetStream stream, and answers once
 * JetStream acknowledged it (stored on a quorum of the stream's replicas).
 * The edge's follower (loyaltyctl follow) applies the stream to the store,
 * as every other edge's does.  Reads never come here.
 *
 * Each worker keeps one connection, made in the background at its start
 * (a NATS that is down does not hold the worker up) and kept up by
 * libnats's own threads.  Publishing blocks until the acknowledgement, so
 * it is done from nginx's thread pool only, never on the event loop; a
 * connection that is down fails at once, so an admin request answers 503
 * without waiting.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nats/nats.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_repl.h"


#define NGX_HTTP_LOYALTY_NATS_SERVERS_MAX  16
#define NGX_HTTP_LOYALTY_NATS_SUBJECT_MAX  128
/* disconnected longer than this: NATS is down, writes fail at once */
#define NGX_HTTP_LOYALTY_NATS_DOWN         2000


struct ngx_http_loyalty_nats_s {
    /* the directives given: ngx_http_loyalty_conf_set_part() */
    ngx_uint_t                    given;
    ngx_array_t                  *urls;     /* ngx_str_t, NUL-terminated */
    ngx_str_t                     creds;
    ngx_str_t                     stream;
    ngx_str_t                     edge;
    ngx_msec_t                    timeout;

    /* the worker's */
    natsConnection               *nc;
    jsCtx                        *js;
    time_t                        started;
    ngx_atomic_t                  next;     /* message ids */
    ngx_atomic_t                  down;     /* since when (monotonic ms,
                                               libnats's threads), 0: up */
};


static ngx_http_loyalty_nats_t  *ngx_http_loyalty_nats_worker;


/* loyalty_nats URL ...; nats://[user:password@]host:port or tls:// */
static char *
ngx_http_loyalty_nats_urls(ngx_conf_t *cf, ngx_command_t *cmd, void *part,
    ngx_str_t *first)
{
    ngx_http_loyalty_nats_t  *n = part;

    u_char      *p, *last, *comma;
    ngx_str_t   *value, *url;
    ngx_uint_t   i;

    value = cf->args->elts;

    n->urls = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (n->urls == NULL) {
        return NGX_CONF_ERROR;
    }

    /* "URL URL" or, as loyaltyctl takes them, "URL,URL" */
    for (i = 1; i < cf->args->nelts; i++) {
        p = value[i].data;
        last = p + value[i].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');
            if (comma == NULL) {
                comma = last;
            }

            url = ngx_array_push(n->urls);
            if (url == NULL) {
                return NGX_CONF_ERROR;
            }

            url->len = comma - p;
            url->data = ngx_pnalloc(cf->pool, url->len + 1);
            if (url->data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(url->data, p, url->len);
            url->data[url->len] = '\0';

            if (n->urls->nelts > NGX_HTTP_LOYALTY_NATS_SERVERS_MAX
                || !((url->len > 7
                      && ngx_strncmp(url->data, "nats://", 7) == 0)
                     || (url->len > 6
                         && ngx_strncmp(url->data, "tls://", 6) == 0)))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"loyalty_nats\": \"%V\" is not a "
                                   "nats:// or tls:// URL, or one more than "
                                   "%d", url,
                                   NGX_HTTP_LOYALTY_NATS_SERVERS_MAX);
                return NGX_CONF_ERROR;
            }

            p = comma + 1;
        }
    }

    return NGX_CONF_OK;
}


/* loyalty_nats_creds, loyalty_stream, loyalty_edge, loyalty_nats_timeout */
static char *
ngx_http_loyalty_nats_option(ngx_conf_t *cf, ngx_command_t *cmd,
    void *part, ngx_str_t *value)
{
    ngx_http_loyalty_nats_t  *n = part;

    ngx_str_t  *field;

    switch (cmd->offset) {

    case NGX_HTTP_LOYALTY_NATS_TIMEOUT:
        n->timeout = ngx_parse_time(value, 0);

        if (n->timeout == (ngx_msec_t) NGX_ERROR || n->timeout < 100
            || n->timeout > 60000)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"loyalty_nats_timeout\" must be 100ms "
                               "to 60s");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;

    case NGX_HTTP_LOYALTY_NATS_CREDS:
        n->creds = *value;

        if (ngx_conf_full_name(cf->cycle, &n->creds, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;

    default:
        field = (cmd->offset == NGX_HTTP_LOYALTY_NATS_STREAM) ? &n->stream
                                                              : &n->edge;
    }

    *field = *value;

    /* a stream name or an edge id: [A-Za-z0-9_-], as NATS names allow */
    if (!loyalty_valid_chars((char *) field->data, field->len,
                             field == &n->stream ? LOYALTY_REPL_STREAM_MAX
                                                 : LOYALTY_REPL_EDGE_MAX, 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be 1-64 characters of "
                           "[A-Za-z0-9_-], not \"%V\"", &cmd->name,
                           value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a new cluster configuration, made by the first of its directives */
static ngx_int_t
ngx_http_loyalty_nats_init(ngx_conf_t *cf, void *part)
{
    ngx_http_loyalty_nats_t  *n = part;

    n->timeout = NGX_CONF_UNSET_MSEC;

    return NGX_OK;
}


/* a directive's own step, by ngx_http_loyalty_nats_directive_e */
static ngx_http_loyalty_part_set_pt  ngx_http_loyalty_nats_sets[] = {
    ngx_http_loyalty_nats_urls,
    ngx_http_loyalty_nats_option,
    ngx_http_loyalty_nats_option,
    ngx_http_loyalty_nats_option,
    ngx_http_loyalty_nats_option
};


ngx_http_loyalty_part_t  ngx_http_loyalty_nats_part = {
    offsetof(ngx_http_loyalty_main_conf_t, nats),
    sizeof(ngx_http_loyalty_nats_t),
    offsetof(ngx_http_loyalty_nats_t, given),
    ngx_http_loyalty_nats_init,
    ngx_http_loyalty_nats_sets
};


/* at init_main_conf: the defaults, and what needs loyalty_nats */
char *
ngx_http_loyalty_nats_init_conf(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    u_char                   *p;
    ngx_http_loyalty_nats_t  *n;

    n = lmcf->nats;

    if (n == NULL) {
        return NGX_CONF_OK;
    }

    if (n->urls == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_nats_creds\", \"loyalty_stream\", "
                           "\"loyalty_edge\" and \"loyalty_nats_timeout\" "
                           "require \"loyalty_nats\"");
        return NGX_CONF_ERROR;
    }

    if (lmcf->store == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_nats\" requires \"loyalty_store\": "
                           "the edge's replica");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(n->timeout, 10000);

    if (n->stream.data == NULL) {
        ngx_str_set(&n->stream, "LOYALTY");
    }

    if (n->edge.data == NULL) {
        /* the host name, as a NATS name */
        n->edge.len = ngx_min(cf->cycle->hostname.len, LOYALTY_REPL_EDGE_MAX);
        n->edge.data = ngx_pnalloc(cf->pool, n->edge.len + 1);
        if (n->edge.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(n->edge.data, cf->cycle->hostname.data, n->edge.len);
        *p = '\0';

        for (p = n->edge.data; p < n->edge.data + n->edge.len; p++) {
            if (!loyalty_valid_chars((char *) p, 1, 1, 0)) {
                *p = '-';
            }
        }
    }

    return NGX_CONF_OK;
}


static int64_t ngx_http_loyalty_nats_msec(void);


/* in libnats's threads: when the connection went, and came back */
static void
ngx_http_loyalty_nats_connected_cb(natsConnection *nc, void *closure)
{
    ngx_http_loyalty_nats_t *n = closure;

    n->down = 0;
}


static void
ngx_http_loyalty_nats_disconnected_cb(natsConnection *nc, void *closure)
{
    ngx_http_loyalty_nats_t *n = closure;

    n->down = (ngx_atomic_uint_t) ngx_http_loyalty_nats_msec();
}


static natsStatus
ngx_http_loyalty_nats_options(ngx_http_loyalty_nats_t *n, natsOptions *opts)
{
    ngx_str_t    *urls;
    ngx_uint_t    i;
    natsStatus    s;
    const char   *servers[NGX_HTTP_LOYALTY_NATS_SERVERS_MAX];

    urls = n->urls->elts;

    for (i = 0; i < n->urls->nelts; i++) {
        servers[i] = (const char *) urls[i].data;
    }

    s = natsOptions_SetServers(opts, servers, (int) n->urls->nelts);

    if (s == NATS_OK) {
        s = natsOptions_SetName(opts, (const char *) n->edge.data);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(opts, (int64_t) n->timeout);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(opts, -1);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetReconnectWait(opts, 250);
    }

    /*
     * The worker starts whether or not NATS is there: with a callback,
     * the first connection is made in the background
     */
    if (s == NATS_OK) {
        s = natsOptions_SetRetryOnFailedConnect(opts, true,
                                        ngx_http_loyalty_nats_connected_cb,
                                        n);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetDisconnectedCB(opts,
                                      ngx_http_loyalty_nats_disconnected_cb,
                                      n);
    }

    if (s == NATS_OK) {
        s = natsOptions_SetReconnectedCB(opts,
                                         ngx_http_loyalty_nats_connected_cb,
                                         n);
    }

    if (s == NATS_OK && n->creds.len) {
        s = natsOptions_SetUserCredentialsFromFiles(opts,
                                                (const char *) n->creds.data,
                                                NULL);
    }

    return s;
}


ngx_int_t
ngx_http_loyalty_nats_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    sigset_t                  set, old;
    natsStatus                s;
    jsOptions                 jo;
    natsOptions              *opts;
    ngx_http_loyalty_nats_t  *n;

    ngx_http_loyalty_nats_worker = NULL;

    n = lmcf->nats;
    if (n == NULL || ngx_process != NGX_PROCESS_WORKER) {
        return NGX_OK;
    }

    /* libnats's threads take no signal of the worker's */
    sigfillset(&set);
    (void) pthread_sigmask(SIG_BLOCK, &set, &old);

    opts = NULL;
    s = nats_Open(-1);

    if (s == NATS_OK) {
        s = natsOptions_Create(&opts);
    }

    if (s == NATS_OK) {
        s = ngx_http_loyalty_nats_options(n, opts);
    }

    if (s == NATS_OK) {
        s = natsConnection_Connect(&n->nc, opts);

        if (s == NATS_NOT_YET_CONNECTED) {
            s = NATS_OK;
        }
    }

    natsOptions_Destroy(opts);

    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.Wait = (int64_t) n->timeout;
        s = natsConnection_JetStream(&n->js, n->nc, &jo);
    }

    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (s != NATS_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "loyalty_nats: cannot start the client: %s",
                      nats_GetLastError(NULL));
        return NGX_ERROR;
    }

    n->started = ngx_time();
    ngx_http_loyalty_nats_worker = n;

    return NGX_OK;
}


void
ngx_http_loyalty_nats_exit_worker(void)
{
    ngx_http_loyalty_nats_t  *n;

    n = ngx_http_loyalty_nats_worker;
    if (n == NULL) {
        return;
    }

    ngx_http_loyalty_nats_worker = NULL;

    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    n->js = NULL;
    n->nc = NULL;

    (void) nats_CloseAndWait(1000);
}


ngx_http_loyalty_nats_t *
ngx_http_loyalty_nats_get(void)
{
    return ngx_http_loyalty_nats_worker;
}


json_t *
ngx_http_loyalty_nats_message(ngx_http_loyalty_nats_t *n, const char *kind,
    int64_t at)
{
    return loyalty_repl_message(kind, (const char *) n->edge.data, at);
}


/* a monotonic clock for the threads, where ngx_current_msec is not kept */
static int64_t
ngx_http_loyalty_nats_msec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/*
 * While libnats reconnects (a NATS node went away), a publish waits for
 * it, up to the timeout; a connection closed for good, or away for more
 * than NGX_HTTP_LOYALTY_NATS_DOWN (every node is), fails at once.
 */
static ngx_int_t
ngx_http_loyalty_nats_connected(ngx_http_loyalty_nats_t *n, int64_t deadline)
{
    int64_t           down;
    natsConnStatus    st;

    while (ngx_http_loyalty_nats_msec() < deadline) {
        st = natsConnection_Status(n->nc);

        if (st == NATS_CONN_STATUS_CONNECTED) {
            return NGX_OK;
        }

        down = (int64_t) n->down;

        if (st == NATS_CONN_STATUS_CLOSED
            || (down && ngx_http_loyalty_nats_msec() - down
                        > NGX_HTTP_LOYALTY_NATS_DOWN))
        {
            break;
        }

        nats_Sleep(20);
    }

    return NGX_ERROR;
}


/*
 * Publishes text on subject, waits for the acknowledgement: NGX_OK;
 * NGX_DECLINED when "once" and the subject already has a message;
 * NGX_ERROR with err.
 */
static ngx_int_t
ngx_http_loyalty_nats_send(ngx_http_loyalty_nats_t *n, const char *subject,
    json_t *msg, const char *id, ngx_uint_t once, char *err, size_t errlen)
{
    char          *text;
    int64_t        deadline, left;
    natsMsg       *m;
    jsPubAck      *ack;
    jsErrCode      jerr;
    natsStatus     s;
    jsPubOptions   po;

    deadline = ngx_http_loyalty_nats_msec() + n->timeout;

    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_ERROR;
    }

    m = NULL;
    s = natsMsg_Create(&m, subject, NULL, text, (int) ngx_strlen(text));
    free(text);

    jerr = 0;

    /*
     * While the stream elects a leader (a node went away) there are no
     * responders, or no answer, and while libnats reconnects to another
     * node the connection is away: the same message again, under the same
     * id, which JetStream's duplicate window keeps from being stored twice
     */
    while (s == NATS_OK) {
        if (ngx_http_loyalty_nats_connected(n, deadline) != NGX_OK) {
            natsMsg_Destroy(m);
            ngx_cpystrn((u_char *) err, (u_char *) "NATS is unreachable",
                        errlen);
            return NGX_ERROR;
        }

        left = deadline - ngx_http_loyalty_nats_msec();

        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = (int64_t) ngx_min(left, 1000);
        po.ExpectStream = (const char *) n->stream.data;
        po.ExpectNoMessage = once ? true : false;

        ack = NULL;
        s = js_PublishMsg(&ack, n->js, m, &po, &jerr);
        jsPubAck_Destroy(ack);

        if ((s != NATS_NO_RESPONDERS && s != NATS_TIMEOUT
             && s != NATS_CONNECTION_DISCONNECTED && s != NATS_IO_ERROR
             && s != NATS_STALE_CONNECTION)
            || ngx_http_loyalty_nats_msec() + 50 >= deadline)
        {
            break;
        }

        nats_Sleep(50);
        s = NATS_OK;
    }

    natsMsg_Destroy(m);

    if (s == NATS_OK) {
        return NGX_OK;
    }

    if (once && jerr == JSStreamWrongLastSequenceErr) {
        return NGX_DECLINED;
    }

    (void) ngx_snprintf((u_char *) err, errlen - 1,
                        "NATS did not acknowledge the write: %s%Z",
                        natsStatus_GetText(s));
    return NGX_ERROR;
}


/*
 * In the thread pool: publishes msg and waits for JetStream's
 * acknowledgement.  id, when not NULL, is the message's Nats-Msg-Id;
 * otherwise one is made of the edge, the worker's start, pid and a
 * count.  NGX_OK, or NGX_ERROR with err saying why.
 */
ngx_int_t
ngx_http_loyalty_nats_publish(ngx_http_loyalty_nats_t *n, json_t *msg,
    const char *id, char *err, size_t errlen)
{
    char  subject[NGX_HTTP_LOYALTY_NATS_SUBJECT_MAX];
    char  msgid[LOYALTY_REPL_EDGE_MAX + 64];

    if (id == NULL) {
        (void) ngx_snprintf((u_char *) msgid, sizeof(msgid) - 1,
                            "%V:%T:%P:%uA%Z", &n->edge, n->started, ngx_pid,
                            ngx_atomic_fetch_add(&n->next, 1));
        id = msgid;
    }

    (void) ngx_snprintf((u_char *) subject, sizeof(subject) - 1,
                        "loyalty.%V.%s%Z", &n->stream,
                        json_string_value(json_object_get(msg, "kind")));

    return ngx_http_loyalty_nats_send(n, subject, msg, id, 0, err, errlen);
}


/*
 * In the thread pool: publishes msg once per cluster for tag, on the
 * subject loyalty.STREAM.KIND.TAG, which must hold no message yet (the
 * stream checks it, whichever edge comes first): NGX_OK published,
 * NGX_DECLINED another edge did, NGX_ERROR with err.
 */
ngx_int_t
ngx_http_loyalty_nats_publish_once(ngx_http_loyalty_nats_t *n, json_t *msg,
    ngx_uint_t tag, char *err, size_t errlen)
{
    char  subject[NGX_HTTP_LOYALTY_NATS_SUBJECT_MAX];

    (void) ngx_snprintf((u_char *) subject, sizeof(subject) - 1,
                        "loyalty.%V.%s.%ui%Z", &n->stream,
                        json_string_value(json_object_get(msg, "kind")),
                        tag);

    return ngx_http_loyalty_nats_send(n, subject, msg, subject, 1, err,
                                      errlen);
}
