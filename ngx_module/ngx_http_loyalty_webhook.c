/*
 * nginx-loyalty: order webhooks from the shop's platform, straight in.
 *
 *   location = /hooks/shopify {
 *       loyalty_webhook         shopify;
 *       loyalty_webhook_secret  /etc/nginx/loyalty/shopify.secret;
 *       loyalty_webhook_map     /usr/share/nginx-loyalty/adapters/shopify.lua;
 *   }
 *
 * A delivery goes through these steps, each refusing what it cannot
 * take before the next one looks: the method and content type; the
 * signature, an HMAC-SHA256 of the raw body with the shop's secret in
 * the platform's header, compared in constant time before anything
 * parses the body (401); the delivery id, refused as a replay if it was
 * taken within the window (200 "duplicate": a platform retries anything
 * but a 2xx); the body as JSON (400); the operator's mapping script,
 * in a sandbox with the budget of loyalty_lua_budget, which turns the
 * payload into the project's events (422 if it refuses the payload,
 * 500 if it fails); and the events, applied as one batch of
 * POST .../events, all or nothing, in the thread pool.
 *
 * The configuration is in ngx_http_loyalty_webhook_conf.c, the mapping
 * script's sandbox in ngx_http_loyalty_webhook_map.c.
 *
 * Seen delivery ids and the counts live in the "loyalty_webhook" zone,
 * shared by the workers.  The table is small and forgets the oldest ids
 * first: the events' own ids (an order's order_id) keep a replay that it
 * forgot from counting twice, so it only saves work and tells replays
 * apart in the counts.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_loyalty_webhook.h"


static const char  *ngx_http_loyalty_hook_count_names[] = {
    "mapped", "replayed", "ignored", "forged", "refused", "failed"
};


static void ngx_http_loyalty_webhook_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_webhook_deliver(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_int_t ngx_http_loyalty_webhook_json_type(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_webhook_ping(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_table_elt_t *ngx_http_loyalty_webhook_header(
    ngx_http_request_t *r, ngx_str_t *name);
static ngx_int_t ngx_http_loyalty_webhook_verify(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len);
static ngx_uint_t ngx_http_loyalty_webhook_seen(
    ngx_http_loyalty_webhook_t *wh, u_char *key, ngx_uint_t add);
static ngx_int_t ngx_http_loyalty_webhook_replayed(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, ngx_str_t *id);
static ngx_int_t ngx_http_loyalty_webhook_apply(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, json_t *events);
static ngx_int_t ngx_http_loyalty_webhook_applied(ngx_http_request_t *r,
    void *data, ngx_uint_t status, json_t *doc);
static ngx_int_t ngx_http_loyalty_webhook_answer(ngx_http_request_t *r,
    ngx_uint_t status, const char *key, const char *value);


/* for the admin API's GET .../webhooks: the counts per platform */
json_t *
ngx_http_loyalty_webhook_report(ngx_shm_zone_t *zone)
{
    json_t                          *doc, *p;
    ngx_uint_t                       i, j;
    ngx_http_loyalty_webhook_shm_t  *shm;

    doc = json_object();
    if (doc == NULL || zone == NULL || zone->data == NULL) {
        return doc;
    }

    shm = zone->data;

    for (i = 0; i < NGX_HTTP_LOYALTY_PLATFORMS; i++) {
        p = json_object();
        if (p == NULL) {
            json_decref(doc);
            return NULL;
        }

        for (j = 0; j < NGX_HTTP_LOYALTY_HOOK_COUNTS; j++) {
            json_object_set_new(p, ngx_http_loyalty_hook_count_names[j],
                                json_integer(shm->counts[i][j]));
        }

        json_object_set_new(doc,
                            (char *) ngx_http_loyalty_platforms[i].name.data,
                            p);
    }

    return doc;
}


ngx_int_t
ngx_http_loyalty_webhook_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        (void) ngx_http_discard_request_body(r);

        if (ngx_http_loyalty_add_header(r, "Allow", (u_char *) "POST", 4)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_NOT_ALLOWED,
                                               "error", "POST only");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_webhook_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* the body is in: the delivery's steps */
static void
ngx_http_loyalty_webhook_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_read_body(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_loyalty_webhook_deliver(r, llcf->webhook, body, len);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_loyalty_webhook_deliver(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    json_t                       *payload;
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    json_error_t                  jerr;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_platform_t  *pf;
    ngx_http_loyalty_delivery_t  *d;
    ngx_http_loyalty_map_call_t   call;

    pf = &ngx_http_loyalty_platforms[wh->platform];

    rc = ngx_http_loyalty_webhook_ping(r, wh, body, len);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_loyalty_webhook_json_type(r) != NGX_OK) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_webhook_answer(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "error",
                   "the body must be application/json");
    }

    /* 1. the signature, over the raw body, before anything reads it */
    if (ngx_http_loyalty_webhook_verify(r, wh, body, len) != NGX_OK) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FORGED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_UNAUTHORIZED,
                                               "error",
                                               "invalid signature");
    }

    /* 2. the delivery id: one taken within the window is a replay */
    d = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_delivery_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->wh = wh;
    ngx_memzero(&call, sizeof(call));

    rc = ngx_http_loyalty_webhook_replayed(r, d, &call.delivery);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REPLAYED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status",
                                               "duplicate");
    }

    /* 3. the body, JSON */
    payload = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (payload == NULL || !json_is_object(payload)) {
        json_decref(payload);
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_BAD_REQUEST,
                   "error", payload ? "the body must be a JSON object"
                                    : jerr.text);
    }

    /* 4. the operator's mapping, in the sandbox */
    h = ngx_http_loyalty_webhook_header(r, &pf->topic);
    if (h) {
        call.topic = h->value;
    }

    call.wh = wh;
    call.payload = payload;

    status = ngx_http_loyalty_webhook_map(r, wh, &call);
    json_decref(payload);

    if (status) {
        return ngx_http_loyalty_webhook_answer(r, status, "error",
                                               call.error);
    }

    /* 5. the events, one batch, all or nothing */
    return ngx_http_loyalty_webhook_apply(r, d, call.events);
}


/*
 * The delivery's id, as d->key, a digest with the shop's secret so that
 * two shops' ids never meet: NGX_DECLINED if it was taken within the
 * window, NGX_OK if not (or the delivery has none), NGX_ERROR.
 */
static ngx_int_t
ngx_http_loyalty_webhook_replayed(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, ngx_str_t *id)
{
    u_char                        mac[EVP_MAX_MD_SIZE];
    unsigned int                  n;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_webhook_t   *wh;
    ngx_http_loyalty_platform_t  *pf;

    wh = d->wh;
    pf = &ngx_http_loyalty_platforms[wh->platform];

    h = ngx_http_loyalty_webhook_header(r, &pf->delivery);

    if (h == NULL && pf->delivery_old.len) {
        h = ngx_http_loyalty_webhook_header(r, &pf->delivery_old);
    }

    if (h == NULL || h->value.len == 0
        || h->value.len > NGX_HTTP_LOYALTY_WEBHOOK_ID_MAX)
    {
        return NGX_OK;
    }

    if (HMAC(EVP_sha256(), wh->secret.data, (int) wh->secret.len,
             h->value.data, h->value.len, mac, &n)
        == NULL)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(d->key, mac, sizeof(d->key));
    d->has_key = 1;
    *id = h->value;

    if (!ngx_http_loyalty_webhook_seen(wh, d->key, 0)) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: %V webhook delivery \"%V\" replayed: not "
                  "applied again", &pf->name, &h->value);

    return NGX_DECLINED;
}


/* posts the batch: NGX_DONE, or the answer's status */
static ngx_int_t
ngx_http_loyalty_webhook_apply(ngx_http_request_t *r,
    ngx_http_loyalty_delivery_t *d, json_t *events)
{
    u_char  *p;
    size_t   len;

    if (json_array_size(events) == 0) {
        json_decref(events);

        /* a topic or an order the mapping leaves alone: taken */
        if (d->has_key) {
            (void) ngx_http_loyalty_webhook_seen(d->wh, d->key, 1);
        }

        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_IGNORED);
        return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status",
                                               "ignored");
    }

    p = ngx_http_loyalty_admin_dump(r->pool, events, &len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p[len] = '\0';

    return ngx_http_loyalty_admin_apply(r, p, len,
                                        ngx_http_loyalty_webhook_applied, d);
}


/* "application/json", with or without parameters */
static ngx_int_t
ngx_http_loyalty_webhook_json_type(ngx_http_request_t *r)
{
    ngx_str_t  *v;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    v = &r->headers_in.content_type->value;

    if (v->len < sizeof("application/json") - 1
        || ngx_strncasecmp(v->data, (u_char *) "application/json",
                           sizeof("application/json") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    if (v->len > sizeof("application/json") - 1
        && v->data[sizeof("application/json") - 1] != ';'
        && v->data[sizeof("application/json") - 1] != ' ')
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * WooCommerce pings a webhook's URL as it is saved, with the unsigned
 * form body "webhook_id=N", and keeps it only if the answer is a 2xx:
 * answered 200, nothing read or applied.  NGX_DECLINED for anything else.
 */
static ngx_int_t
ngx_http_loyalty_webhook_ping(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    size_t      i;
    ngx_str_t  *name;

    name = &ngx_http_loyalty_platforms[wh->platform].name;

    if (name->len != sizeof("woocommerce") - 1
        || ngx_strncmp(name->data, "woocommerce", name->len) != 0
        || len <= sizeof("webhook_id=") - 1 || len > 32
        || ngx_strncmp(body, "webhook_id=", sizeof("webhook_id=") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    for (i = sizeof("webhook_id=") - 1; i < len; i++) {
        if (body[i] < '0' || body[i] > '9') {
            return NGX_DECLINED;
        }
    }

    return ngx_http_loyalty_webhook_answer(r, NGX_HTTP_OK, "status", "ping");
}


/* the request's header of that name, the first one */
static ngx_table_elt_t *
ngx_http_loyalty_webhook_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * The platform's signature header against HMAC-SHA256(secret, body),
 * decoded first and compared in constant time; what differs in length
 * or encoding is refused without comparing.
 */
static ngx_int_t
ngx_http_loyalty_webhook_verify(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, u_char *body, size_t len)
{
    u_char                        mac[EVP_MAX_MD_SIZE], got[64], *p;
    ngx_int_t                     hi, lo;
    ngx_str_t                     src, dst;
    ngx_uint_t                    i;
    unsigned int                  n;
    ngx_table_elt_t              *h;
    ngx_http_loyalty_platform_t  *pf;

    pf = &ngx_http_loyalty_platforms[wh->platform];

    h = ngx_http_loyalty_webhook_header(r, &pf->signature);

    if (h == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: %V webhook without \"%V\": refused",
                      &pf->name, &pf->signature);
        return NGX_DECLINED;
    }

    if (HMAC(EVP_sha256(), wh->secret.data, (int) wh->secret.len, body, len,
             mac, &n)
        == NULL || n != 32)
    {
        return NGX_ERROR;
    }

    src = h->value;

    switch (pf->mac) {

    case NGX_HTTP_LOYALTY_MAC_BASE64:
        if (src.len != ngx_base64_encoded_length(32)) {
            goto forged;
        }

        dst.data = got;
        if (ngx_decode_base64(&dst, &src) != NGX_OK || dst.len != 32) {
            goto forged;
        }

        break;

    default: /* NGX_HTTP_LOYALTY_MAC_HEX_SHA256 */
        if (src.len != sizeof("sha256=") - 1 + 64
            || ngx_strncmp(src.data, "sha256=", sizeof("sha256=") - 1) != 0)
        {
            goto forged;
        }

        p = src.data + sizeof("sha256=") - 1;

        for (i = 0; i < 32; i++) {
            hi = ngx_hextoi(&p[2 * i], 1);
            lo = ngx_hextoi(&p[2 * i + 1], 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                goto forged;
            }

            got[i] = (u_char) (hi << 4 | lo);
        }
    }

    if (CRYPTO_memcmp(got, mac, 32) == 0) {
        return NGX_OK;
    }

forged:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "loyalty: %V webhook with an invalid \"%V\": refused",
                  &pf->name, &pf->signature);

    return NGX_DECLINED;
}


#define ngx_http_loyalty_seen_stale(e, now, window)                           \
    ((e)->at == 0 || (now) - (e)->at >= (window))


/*
 * Whether the delivery was taken within the window; with add, it is
 * taken now.  Each id has a few slots to be in; a new one replaces an
 * empty or expired slot, else the oldest of them.
 */
static ngx_uint_t
ngx_http_loyalty_webhook_seen(ngx_http_loyalty_webhook_t *wh, u_char *key,
    ngx_uint_t add)
{
    int64_t                          now;
    uint32_t                         start;
    ngx_uint_t                       i, found;
    ngx_slab_pool_t                 *shpool;
    ngx_http_loyalty_seen_t         *e, *victim;
    ngx_http_loyalty_webhook_shm_t  *shm;

    shm = wh->zone->data;
    if (shm == NULL) {
        return 0;
    }

    shpool = (ngx_slab_pool_t *) wh->zone->shm.addr;
    now = ngx_time();
    ngx_memcpy(&start, key, sizeof(uint32_t));

    found = 0;
    victim = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_LOYALTY_WEBHOOK_PROBE; i++) {
        e = &shm->seen[(start + i) % NGX_HTTP_LOYALTY_WEBHOOK_SEEN];

        if (e->at != 0 && now - e->at < wh->replay
            && ngx_memcmp(e->key, key, sizeof(e->key)) == 0)
        {
            found = 1;
            break;
        }

        if (ngx_http_loyalty_seen_stale(e, now, wh->replay)) {
            if (victim == NULL
                || !ngx_http_loyalty_seen_stale(victim, now, wh->replay))
            {
                victim = e;
            }

        } else if (victim == NULL
                   || (!ngx_http_loyalty_seen_stale(victim, now, wh->replay)
                       && e->at < victim->at))
        {
            victim = e;
        }
    }

    if (add && !found) {
        ngx_memcpy(victim->key, key, sizeof(victim->key));
        victim->at = now;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return found;
}


/*
 * The batch's answer, back in the event loop: a batch of duplicates
 * only is a replay the delivery ids did not catch; either way the
 * delivery is taken.
 */
static ngx_int_t
ngx_http_loyalty_webhook_applied(ngx_http_request_t *r, void *data,
    ngx_uint_t status, json_t *doc)
{
    ngx_http_loyalty_delivery_t *d = data;

    json_int_t   events, applied, duplicates;
    const char  *what;

    if (status != NGX_HTTP_OK) {
        ngx_http_loyalty_webhook_count(d->wh,
                                       status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                                       ? NGX_HTTP_LOYALTY_HOOK_FAILED
                                       : NGX_HTTP_LOYALTY_HOOK_REFUSED);
        return ngx_http_loyalty_admin_json(r, status, doc);
    }

    events = json_integer_value(json_object_get(doc, "events"));
    applied = json_integer_value(json_object_get(doc, "applied"));
    duplicates = json_integer_value(json_object_get(doc, "duplicates"));

    if (d->has_key) {
        (void) ngx_http_loyalty_webhook_seen(d->wh, d->key, 1);
    }

    if (applied == 0 && duplicates == events) {
        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_REPLAYED);
        what = "duplicate";

    } else {
        ngx_http_loyalty_webhook_count(d->wh, NGX_HTTP_LOYALTY_HOOK_MAPPED);
        what = "applied";
    }

    json_object_set_new(doc, "status", json_string(what));

    return ngx_http_loyalty_admin_json(r, status, doc);
}


void
ngx_http_loyalty_webhook_count(ngx_http_loyalty_webhook_t *wh,
    ngx_http_loyalty_hook_count_e count)
{
    ngx_http_loyalty_webhook_shm_t  *shm;

    shm = wh->zone->data;

    if (shm) {
        (void) ngx_atomic_fetch_add(&shm->counts[wh->platform][count], 1);
    }
}


/* {"key": "value"}, sent */
static ngx_int_t
ngx_http_loyalty_webhook_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *key, const char *value)
{
    json_t  *doc;

    doc = json_pack("{s:s}", key, value);
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_loyalty_admin_json(r, status, doc);
}
