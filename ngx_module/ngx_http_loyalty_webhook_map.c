/*
 * nginx-loyalty: the order webhooks' mapping script.
 *
 * Each worker has a VM per webhook location with the operator's script
 * loaded and its map function referenced.  A delivery's payload is
 * pushed as Lua tables (to a bounded depth), map(payload, headers) runs
 * in the sandbox with the budget of loyalty_lua_budget, and its answer is
 * taken back as the project's events, or as a refusal with its reason.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_webhook.h"


static void ngx_http_loyalty_webhook_vm_fail(loyalty_lua_t *vm,
    const char *msg, size_t len);
static int ngx_http_loyalty_webhook_call(lua_State *L);
static void ngx_http_loyalty_webhook_push(lua_State *L, json_t *v,
    ngx_uint_t depth);
static json_t *ngx_http_loyalty_webhook_events(lua_State *L, int idx,
    ngx_uint_t depth, char *why, size_t len);


/* a VM with the script loaded and its map function referenced */
loyalty_lua_t *
ngx_http_loyalty_webhook_vm(ngx_http_loyalty_webhook_t *wh, ngx_log_t *log,
    char *err, size_t errlen)
{
    lua_State      *L;
    loyalty_lua_t  *vm;

    vm = ngx_calloc(sizeof(loyalty_lua_t), log);
    if (vm == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NULL;
    }

    vm->file = (char *) wh->map_file.data;
    vm->budget = (unsigned) wh->budget;
    vm->msec = (unsigned) wh->msec;
    vm->limit = wh->memory;
    vm->report = ngx_http_loyalty_webhook_vm_fail;
    vm->data = wh;

    if (loyalty_lua_open(vm, err, errlen) != 0) {
        ngx_free(vm);
        return NULL;
    }

    if (loyalty_lua_script(vm, (char *) wh->map_source.data,
                           wh->map_source.len, err, errlen)
        != 0)
    {
        goto failed;
    }

    L = vm->L;

    lua_getfield(L, -1, "map");

    if (!lua_isfunction(L, -1)) {
        (void) ngx_snprintf((u_char *) err, errlen,
                            "the script must return a table with a "
                            "\"map\" function, not %s%Z",
                            luaL_typename(L, -1));
        goto failed;
    }

    wh->map = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);

    return vm;

failed:

    loyalty_lua_close(vm);
    ngx_free(vm);
    return NULL;
}


ngx_int_t
ngx_http_loyalty_webhook_init_worker(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    char                         err[NGX_MAX_ERROR_STR];
    ngx_uint_t                   i;
    ngx_http_loyalty_webhook_t  **wh;

    if (lmcf->webhooks == NULL) {
        return NGX_OK;
    }

    wh = lmcf->webhooks->elts;

    for (i = 0; i < lmcf->webhooks->nelts; i++) {
        wh[i]->vm = ngx_http_loyalty_webhook_vm(wh[i], cycle->log, err,
                                                sizeof(err));
        if (wh[i]->vm == NULL) {
            /* it loaded at configuration: deliveries get a 500 */
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "loyalty_webhook_map \"%V\": %s",
                          &wh[i]->map_file, err);
        }
    }

    return NGX_OK;
}


void
ngx_http_loyalty_webhook_exit_worker(ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_uint_t                   i;
    ngx_http_loyalty_webhook_t  **wh;

    if (lmcf->webhooks == NULL) {
        return;
    }

    wh = lmcf->webhooks->elts;

    for (i = 0; i < lmcf->webhooks->nelts; i++) {
        if (wh[i]->vm) {
            loyalty_lua_close(wh[i]->vm);
            ngx_free(wh[i]->vm);
            wh[i]->vm = NULL;
        }
    }
}


/* a failed mapping call: logged with the script's own message */
static void
ngx_http_loyalty_webhook_vm_fail(loyalty_lua_t *vm, const char *msg,
    size_t len)
{
    ngx_http_loyalty_webhook_t  *wh = vm->data;

    ngx_log_error(NGX_LOG_ERR, wh->call_log ? wh->call_log : ngx_cycle->log,
                  0, "loyalty_webhook_map \"%V\": the mapping failed%s: %*s",
                  &wh->map_file,
                  vm->failed == LOYALTY_LUA_BUDGET ? " (budget)"
                  : vm->failed == LOYALTY_LUA_MEMORY ? " (memory)" : "",
                  len, msg);
}


/* how deep the payload nests, up to the limit and one */
static ngx_uint_t
ngx_http_loyalty_webhook_depth(json_t *v, ngx_uint_t depth)
{
    size_t       i;
    json_t      *x;
    ngx_uint_t   d, max;
    const char  *key;

    if (depth > NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
        return depth;
    }

    max = depth;

    if (json_is_object(v)) {
        json_object_foreach(v, key, x) {
            d = ngx_http_loyalty_webhook_depth(x, depth + 1);
            max = ngx_max(max, d);
        }

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            d = ngx_http_loyalty_webhook_depth(x, depth + 1);
            max = ngx_max(max, d);
        }
    }

    return max;
}


/*
 * The operator's map(payload, headers), in this worker's VM, within the
 * budget: 0 with call->events, else the answer's status, with
 * call->error.  A script that fails is the shop's to fix, and a 500 has
 * the platform retry until it is; a payload the script refuses will not
 * get better: 422.
 */
ngx_uint_t
ngx_http_loyalty_webhook_map(ngx_http_request_t *r,
    ngx_http_loyalty_webhook_t *wh, ngx_http_loyalty_map_call_t *call)
{
    int  rc;

    if (ngx_http_loyalty_webhook_depth(call->payload, 0)
        > NGX_HTTP_LOYALTY_WEBHOOK_DEPTH)
    {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        call->error = "the payload nests too deep";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (wh->vm == NULL) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FAILED);
        call->error = "the mapping script is not loaded";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wh->call_log = r->connection->log;
    rc = loyalty_lua_call(wh->vm, ngx_http_loyalty_webhook_call, call);
    wh->call_log = NULL;

    if (rc != 0) {
        json_decref(call->events);
        call->events = NULL;
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_FAILED);
        call->error = "the mapping script failed";
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (call->refused) {
        ngx_http_loyalty_webhook_count(wh, NGX_HTTP_LOYALTY_HOOK_REFUSED);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: %V webhook refused by the mapping: %s",
                      &ngx_http_loyalty_platforms[wh->platform].name,
                      call->why);
        call->error = call->why;
        return NGX_HTTP_LOYALTY_UNPROCESSABLE;
    }

    return 0;
}


/* in the protected call: map(payload, headers) and its answer */
static int
ngx_http_loyalty_webhook_call(lua_State *L)
{
    json_t                       *events;
    const char                   *why;
    ngx_str_t                    *name;
    ngx_http_loyalty_map_call_t  *call;

    call = loyalty_lua_ud(L);
    name = &ngx_http_loyalty_platforms[call->wh->platform].name;

    lua_rawgeti(L, LUA_REGISTRYINDEX, call->wh->map);
    ngx_http_loyalty_webhook_push(L, call->payload, 0);

    lua_createtable(L, 0, 3);
    lua_pushlstring(L, (char *) name->data, name->len);
    lua_setfield(L, -2, "platform");

    if (call->topic.len) {
        lua_pushlstring(L, (char *) call->topic.data, call->topic.len);
        lua_setfield(L, -2, "topic");
    }

    if (call->delivery.len) {
        lua_pushlstring(L, (char *) call->delivery.data, call->delivery.len);
        lua_setfield(L, -2, "delivery");
    }

    lua_call(L, 2, 2);

    if (lua_isnil(L, -2)) {
        why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                            : "the mapping refused the payload";
        (void) ngx_cpystrn((u_char *) call->why, (u_char *) why,
                           sizeof(call->why));
        call->refused = 1;
        return 0;
    }

    events = ngx_http_loyalty_webhook_events(L, lua_gettop(L) - 1, 0,
                                             call->why, sizeof(call->why));

    if (events == NULL || !json_is_array(events)) {
        json_decref(events);
        return luaL_error(L, "map must return a list of events, or nil "
                          "and a reason: %s",
                          events ? "not a list" : call->why);
    }

    call->events = events;

    return 0;
}


/*
 * The payload as Lua tables; null is nil.  Integers beyond 2^53, which
 * a double cannot hold (Shopify's ids), are given as decimal strings.
 */
static void
ngx_http_loyalty_webhook_push(lua_State *L, json_t *v, ngx_uint_t depth)
{
    size_t       i;
    json_t      *x;
    json_int_t   n;
    const char  *key;
    u_char       buf[NGX_INT64_LEN + 1];

    luaL_checkstack(L, 4, "the payload nests too deep");

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        lua_createtable(L, 0, (int) json_object_size(v));

        if (depth >= NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
            break;
        }

        json_object_foreach(v, key, x) {
            if (json_is_null(x)) {
                continue;
            }

            lua_pushstring(L, key);
            ngx_http_loyalty_webhook_push(L, x, depth + 1);
            lua_rawset(L, -3);
        }

        break;

    case JSON_ARRAY:
        lua_createtable(L, (int) json_array_size(v), 0);

        if (depth >= NGX_HTTP_LOYALTY_WEBHOOK_DEPTH) {
            break;
        }

        json_array_foreach(v, i, x) {
            ngx_http_loyalty_webhook_push(L, x, depth + 1);
            lua_rawseti(L, -2, (int) i + 1);
        }

        break;

    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;

    case JSON_INTEGER:
        n = json_integer_value(v);

        if (n > (1LL << 53) || n < -(1LL << 53)) {
            lua_pushlstring(L, (char *) buf,
                            ngx_sprintf(buf, "%L", (int64_t) n) - buf);
        } else {
            lua_pushnumber(L, (lua_Number) n);
        }

        break;

    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;

    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;

    default:
        lua_pushnil(L);
    }
}


/*
 * The value at idx as JSON, or NULL with why: tables with a length are
 * arrays (an empty one too), other tables objects with string keys.
 * Raises no Lua error, so that nothing it made is lost.
 */
static json_t *
ngx_http_loyalty_webhook_events(lua_State *L, int idx, ngx_uint_t depth,
    char *why, size_t len)
{
    size_t       n, i, slen;
    json_t      *doc, *x;
    lua_Number   d;
    const char  *s;

    if (depth > 8) {
        (void) ngx_snprintf((u_char *) why, len, "nested too deep%Z");
        return NULL;
    }

    if (!lua_checkstack(L, 4)) {
        (void) ngx_snprintf((u_char *) why, len, "out of stack%Z");
        return NULL;
    }

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &slen);
        doc = json_stringn(s, slen);
        if (doc == NULL) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a string that is not UTF-8%Z");
        }

        return doc;

    case LUA_TNUMBER:
        d = lua_tonumber(L, idx);

        /* in range first: a cast of a double out of range is undefined */
        if (d < 9007199254740992.0 && d > -9007199254740992.0
            && d == (lua_Number) (int64_t) d)
        {
            return json_integer((json_int_t) d);
        }

        doc = json_real(d);
        if (doc == NULL) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a number that is not finite%Z");
        }

        return doc;

    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));

    case LUA_TTABLE:
        break;

    default:
        (void) ngx_snprintf((u_char *) why, len, "a %s value%Z",
                            luaL_typename(L, idx));
        return NULL;
    }

    n = lua_objlen(L, idx);

    if (n > 0 || (lua_pushnil(L), lua_next(L, idx) == 0)) {
        doc = json_array();

        for (i = 1; doc && i <= n; i++) {
            lua_rawgeti(L, idx, (int) i);
            x = ngx_http_loyalty_webhook_events(L, lua_gettop(L), depth + 1,
                                                why, len);
            lua_pop(L, 1);

            if (x == NULL || json_array_append_new(doc, x) != 0) {
                json_decref(doc);
                return NULL;
            }
        }

        return doc;
    }

    /* lua_next left the first key and value on the stack */
    doc = json_object();

    do {
        if (lua_type(L, -2) != LUA_TSTRING) {
            (void) ngx_snprintf((u_char *) why, len,
                                "a table with a key that is not a "
                                "string%Z");
            lua_pop(L, 2);
            json_decref(doc);
            return NULL;
        }

        x = ngx_http_loyalty_webhook_events(L, lua_gettop(L), depth + 1,
                                            why, len);
        lua_pop(L, 1);

        if (x == NULL || doc == NULL
            || json_object_set_new(doc, lua_tostring(L, -1), x) != 0)
        {
            lua_pop(L, 1);
            json_decref(doc);
            return NULL;
        }

    } while (lua_next(L, idx) != 0);

    return doc;
}
