/*
 * nginx-loyalty: the cadences a Lua script declares, and their
 * conditions.
 *
 * The declarations are plain tables (lua/loyalty/cadence.lua makes them
 * readable); they are read with raw access only, so reading them runs
 * none of the script's code.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua_cadence.h"


typedef struct {
    loyalty_cadences_t  *cads;
    char                *err;
    size_t               errlen;
} loyalty_lua_reading_t;


typedef struct {
    loyalty_lua_t                *vm;
    const loyalty_cadence_ask_t  *ask;
    int                           yes;
} loyalty_lua_asking_t;


static const char  *loyalty_lua_cadence_fields[] = {
    "name", "trigger", "touch", "note", "reward", "days", "hour", "grace",
    "over", "threshold", "top", "dates", "who", "when", NULL
};


/* the field's value pushed; nil when absent */
static int
loyalty_lua_field(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, t);

    return lua_type(L, -1);
}


/* an integer field in [min, max]; absent leaves *v: 0, or -1 with err */
static int
loyalty_lua_int_field(lua_State *L, int t, const char *name, int64_t min,
    int64_t max, int64_t *v, loyalty_lua_reading_t *rd)
{
    lua_Number  n;

    switch (loyalty_lua_field(L, t, name)) {

    case LUA_TNIL:
        lua_pop(L, 1);
        return 0;

    case LUA_TNUMBER:
        n = lua_tonumber(L, -1);
        lua_pop(L, 1);

        if (n == floor(n) && n >= (lua_Number) min && n <= (lua_Number) max)
        {
            *v = (int64_t) n;
            return 0;
        }

        break;

    default:
        lua_pop(L, 1);
        break;
    }

    snprintf(rd->err, rd->errlen, "\"%s\" must be a whole number from "
             "%lld to %lld", name, (long long) min, (long long) max);
    return -1;
}


/* a string field; absent: NULL.  -1 with err when not a string */
static int
loyalty_lua_str_field(lua_State *L, int t, const char *name,
    const char **s, size_t *len, loyalty_lua_reading_t *rd)
{
    int  type;

    type = loyalty_lua_field(L, t, name);
    *s = NULL;
    *len = 0;

    if (type == LUA_TSTRING) {
        /* the declaration keeps the string alive while it is read */
        *s = lua_tolstring(L, -1, len);
    }

    lua_pop(L, 1);

    if (type != LUA_TNIL && type != LUA_TSTRING) {
        snprintf(rd->err, rd->errlen, "\"%s\" must be a string", name);
        return -1;
    }

    return 0;
}


/* a field naming one of names[n]: its index, or -1 with err */
static int
loyalty_lua_name_field(lua_State *L, int t, const char *name,
    const char *const *names, size_t n, loyalty_lua_reading_t *rd)
{
    size_t       len;
    const char  *s;

    if (loyalty_lua_str_field(L, t, name, &s, &len, rd) != 0) {
        return -1;
    }

    return loyalty_name_pick(names, n, s, len, name, rd->err, rd->errlen);
}


static int
loyalty_lua_cadence_dates(lua_State *L, int t, loyalty_cadence_t *c,
    loyalty_lua_reading_t *rd)
{
    size_t       len;
    const char  *s;

    if (loyalty_lua_field(L, t, "dates") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }

    if (!lua_istable(L, -1)) {
        snprintf(rd->err, rd->errlen, "\"dates\" must be a list of "
                 "\"MM-DD\" or \"YYYY-MM-DD\"");
        return -1;
    }

    for (c->ndates = 0; ; c->ndates++) {
        lua_rawgeti(L, -1, (int) c->ndates + 1);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 2);
            return 0;
        }

        len = 0;
        s = (lua_type(L, -1) == LUA_TSTRING) ? lua_tolstring(L, -1, &len)
                                              : NULL;

        if (c->ndates == LOYALTY_CADENCE_DATES_MAX || s == NULL
            || loyalty_cadence_date_parse(s, len, &c->dates[c->ndates]) != 0)
        {
            snprintf(rd->err, rd->errlen, "\"dates\" must be a list of up "
                     "to %d dates, \"MM-DD\" or \"YYYY-MM-DD\" from 1970",
                     LOYALTY_CADENCE_DATES_MAX);
            return -1;
        }

        lua_pop(L, 1);
    }
}


/* "name", and no field the declarations do not have */
static int
loyalty_lua_cadence_name(lua_State *L, int t, loyalty_cadence_t *c,
    loyalty_lua_reading_t *rd)
{
    int          k;
    size_t       len;
    const char  *s, *key;

    if (loyalty_lua_str_field(L, t, "name", &s, &len, rd) != 0) {
        return -1;
    }

    if (s == NULL || len > LOYALTY_CADENCE_NAME_MAX
        || !loyalty_valid_id(s, len))
    {
        snprintf(rd->err, rd->errlen, "\"name\" must be 1-%d characters of "
                 "A-Z, a-z, 0-9, \"_\", \".\" and \"-\"",
                 LOYALTY_CADENCE_NAME_MAX);
        return -1;
    }

    memcpy(c->name, s, len);
    c->name_len = len;

    lua_pushnil(L);

    while (lua_next(L, t)) {
        lua_pop(L, 1);
        key = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;

        for (k = 0; key && loyalty_lua_cadence_fields[k]; k++) {
            if (strcmp(key, loyalty_lua_cadence_fields[k]) == 0) {
                break;
            }
        }

        if (key == NULL || loyalty_lua_cadence_fields[k] == NULL) {
            snprintf(rd->err, rd->errlen, "unknown field \"%.32s\"",
                     key ? key : "(not a string)");
            return -1;
        }
    }

    return 0;
}


/* "trigger", "touch", "note" and "who": what the cadence does, for whom */
static int
loyalty_lua_cadence_kind(lua_State *L, int t, loyalty_cadence_t *c,
    loyalty_lua_reading_t *rd)
{
    int          k;
    size_t       len;
    const char  *s;

    k = loyalty_lua_name_field(L, t, "trigger", loyalty_trigger_names,
                               LOYALTY_TRIGGERS, rd);
    if (k < 0) {
        return -1;
    }

    c->trigger = (loyalty_trigger_e) k;

    k = loyalty_lua_name_field(L, t, "touch", loyalty_touch_names,
                               LOYALTY_TOUCH_KINDS, rd);
    if (k < 0) {
        return -1;
    }

    c->touch = (loyalty_touch_e) k;

    if (loyalty_lua_str_field(L, t, "note", &s, &len, rd) != 0) {
        return -1;
    }

    if (s && (len > LOYALTY_NOTE_MAX || loyalty_utf8_chars(s, len) < 0)) {
        snprintf(rd->err, rd->errlen, "\"note\" must be UTF-8 text of at "
                 "most %d bytes", LOYALTY_NOTE_MAX);
        return -1;
    }

    if (s) {
        memcpy(c->note, s, len);
        c->note_len = len;
    }

    if (loyalty_lua_str_field(L, t, "who", &s, &len, rd) != 0) {
        return -1;
    }

    if (s && (c->trigger != LOYALTY_TRIGGER_REFERRAL_CONVERTED
              || !((len == 8 && memcmp(s, "referrer", 8) == 0)
                   || (len == 6 && memcmp(s, "member", 6) == 0))))
    {
        snprintf(rd->err, rd->errlen, "\"who\" is \"referrer\" or "
                 "\"member\", for a referral_converted cadence only");
        return -1;
    }

    c->for_member = (s && len == 6);

    return 0;
}


/* "hour", "grace", "days", "reward", "over", "threshold" and "top" */
static int
loyalty_lua_cadence_numbers(lua_State *L, int t, loyalty_cadence_t *c,
    loyalty_lua_reading_t *rd)
{
    int64_t  v;

    c->hour = -1;
    c->grace = LOYALTY_CADENCE_GRACE;
    v = c->hour;

    if (loyalty_lua_int_field(L, t, "hour", 0, 23, &v, rd) != 0) {
        return -1;
    }

    c->hour = (int32_t) v;
    v = c->grace;

    if (loyalty_lua_int_field(L, t, "grace", 0, 366, &v, rd) != 0) {
        return -1;
    }

    c->grace = (int32_t) v;
    v = 0;

    if (loyalty_lua_int_field(L, t, "days", -LOYALTY_CADENCE_DAYS_MAX,
                              LOYALTY_CADENCE_DAYS_MAX, &v, rd)
        != 0)
    {
        return -1;
    }

    c->days = (int32_t) v;

    if (loyalty_lua_int_field(L, t, "reward", 0, 1000000000, &c->reward, rd)
        != 0
        || loyalty_lua_int_field(L, t, "over", 0, LOYALTY_PRICE_MAX,
                                 &c->over, rd)
           != 0
        || loyalty_lua_int_field(L, t, "threshold", 1, LOYALTY_PRICE_MAX,
                                 &c->threshold, rd)
           != 0)
    {
        return -1;
    }

    v = 0;
    if (loyalty_lua_int_field(L, t, "top", 1, LOYALTY_CADENCE_TOP_MAX, &v,
                              rd)
        != 0)
    {
        return -1;
    }

    c->top = (uint32_t) v;

    return 0;
}


/*
 * The declaration as a whole: each field for its trigger, the cadence's
 * own checks, and a name not declared before.
 */
static int
loyalty_lua_cadence_fits(loyalty_cadence_t *c, loyalty_lua_reading_t *rd)
{
    size_t  i;

    /* a field of another trigger is a mistake worth hearing about */
    if ((c->over && c->trigger != LOYALTY_TRIGGER_ORDER)
        || (c->threshold && c->trigger != LOYALTY_TRIGGER_SPEND_CROSSED)
        || (c->top && c->trigger != LOYALTY_TRIGGER_YEARLY_TOP)
        || (c->ndates && c->trigger != LOYALTY_TRIGGER_CALENDAR))
    {
        snprintf(rd->err, rd->errlen, "\"over\" is for order, \"threshold\" "
                 "for spend_crossed, \"top\" for yearly_top and \"dates\" "
                 "for calendar cadences");
        return -1;
    }

    if (loyalty_cadence_check(c, rd->err, rd->errlen) != 0) {
        return -1;
    }

    for (i = 0; i < rd->cads->n; i++) {
        if (rd->cads->cadence[i].name_len == c->name_len
            && memcmp(rd->cads->cadence[i].name, c->name, c->name_len) == 0)
        {
            snprintf(rd->err, rd->errlen, "a cadence of this name is "
                     "declared before");
            return -1;
        }
    }

    return 0;
}


/* one declaration, the table at t */
static int
loyalty_lua_cadence_read(lua_State *L, int t, loyalty_cadence_t *c,
    loyalty_lua_reading_t *rd)
{
    if (loyalty_lua_cadence_name(L, t, c, rd) != 0
        || loyalty_lua_cadence_kind(L, t, c, rd) != 0
        || loyalty_lua_cadence_numbers(L, t, c, rd) != 0
        || loyalty_lua_cadence_dates(L, t, c, rd) != 0
        || loyalty_lua_cadence_fits(c, rd) != 0)
    {
        return -1;
    }

    switch (loyalty_lua_field(L, t, "when")) {

    case LUA_TNIL:
        lua_pop(L, 1);
        break;

    case LUA_TFUNCTION:
        c->cond = luaL_ref(L, LUA_REGISTRYINDEX);
        break;

    default:
        snprintf(rd->err, rd->errlen, "\"when\" must be a function");
        return -1;
    }

    return 0;
}


/* reads the list (argument 1) protected: a string key may not fit */
static int
loyalty_lua_cadences_read(lua_State *L)
{
    int                     i;
    char                    where[LOYALTY_ERRLEN];
    loyalty_cadence_t      *c;
    loyalty_lua_reading_t  *rd;

    rd = lua_touserdata(L, 2);

    for (i = 1; ; i++) {
        lua_settop(L, 2);
        lua_rawgeti(L, 1, i);

        if (lua_isnil(L, -1)) {
            return 0;
        }

        if (rd->cads->n == LOYALTY_CADENCES_MAX) {
            snprintf(rd->err, rd->errlen, "more than %d cadences",
                     LOYALTY_CADENCES_MAX);
            return 0;
        }

        if (!lua_istable(L, -1)) {
            snprintf(rd->err, rd->errlen, "cadence %d is not a table", i);
            return 0;
        }

        c = &rd->cads->cadence[rd->cads->n];
        memset(c, 0, sizeof(loyalty_cadence_t));

        if (loyalty_lua_cadence_read(L, 3, c, rd) != 0) {
            snprintf(where, sizeof(where), "%s", rd->err);
            snprintf(rd->err, rd->errlen, "cadence %d (%.*s): %s", i,
                     (int) c->name_len, c->name_len ? c->name : "unnamed",
                     where);
            return 0;
        }

        rd->cads->n++;
    }
}


int
loyalty_lua_cadences(loyalty_lua_t *vm, loyalty_cadences_t *cads,
    char *err, size_t errlen)
{
    lua_State              *L;
    loyalty_lua_reading_t   rd;

    L = vm->L;

    memset(cads, 0, sizeof(loyalty_cadences_t));
    err[0] = '\0';

    lua_pushliteral(L, "cadences");
    lua_rawget(L, -2);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }

    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "\"cadences\" must be a list of cadences, "
                 "not %s", luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }

    rd.cads = cads;
    rd.err = err;
    rd.errlen = errlen;

    lua_pushcfunction(L, loyalty_lua_cadences_read);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &rd);

    if (lua_pcall(L, 2, 0, 0) != 0) {
        snprintf(err, errlen, "reading the cadences: %s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "an error");
        lua_pop(L, 1);
        return -1;
    }

    if (err[0]) {
        return -1;
    }

    cads->cond = loyalty_lua_cadence_cond;
    cads->data = vm;

    return 0;
}


/*
 * when(member, ctx): member as the hooks see one; ctx says which touch is
 * asked about (lua/README.md).
 */
static int
loyalty_lua_cadence_ask(lua_State *L)
{
    char                          when[LOYALTY_RFC3339_LEN + 1];
    loyalty_lua_asking_t         *a;
    const loyalty_cadence_t      *c;
    const loyalty_cadence_ask_t  *ask;

    a = loyalty_lua_ud(L);
    ask = a->ask;
    c = ask->cadence;

    /* the keys' table at index 1, as the member's table wants it */
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->vm->keys);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->cond);

    loyalty_lua_push_member(L, ask->member, ask->member_len, ask->m, 0, 0);

    lua_createtable(L, 0, 12);
    lua_pushlstring(L, c->name, c->name_len);
    lua_setfield(L, -2, "cadence");
    lua_pushstring(L, loyalty_trigger_names[c->trigger]);
    lua_setfield(L, -2, "trigger");
    lua_pushstring(L, loyalty_touch_names[c->touch]);
    lua_setfield(L, -2, "touch");
    lua_pushlstring(L, ask->period, ask->period_len);
    lua_setfield(L, -2, "period");
    lua_pushnumber(L, (lua_Number) ask->due_at);
    lua_setfield(L, -2, "due_at");
    loyalty_format_rfc3339(ask->due_at, when);
    lua_pushstring(L, when);
    lua_setfield(L, -2, "due");
    lua_pushnumber(L, (lua_Number) ask->now);
    lua_setfield(L, -2, "now");

    if (ask->ev) {
        lua_createtable(L, 0, 3);
        lua_pushlstring(L, ask->ev->id, ask->ev->id_len);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, (lua_Number) ask->ev->amount);
        lua_setfield(L, -2, "amount");
        lua_pushnumber(L, (lua_Number) ask->ev->at);
        lua_setfield(L, -2, "at");
        lua_setfield(L, -2, "order");
    }

    if (ask->other_len) {
        lua_pushlstring(L, ask->other, ask->other_len);
        lua_setfield(L, -2, "other");
    }

    if (ask->rank) {
        lua_pushnumber(L, (lua_Number) ask->spend);
        lua_setfield(L, -2, "spend");
        lua_pushnumber(L, (lua_Number) ask->rank);
        lua_setfield(L, -2, "rank");
    }

    lua_call(L, 2, 1);

    a->yes = lua_toboolean(L, -1);

    return 0;
}


int
loyalty_lua_cadence_cond(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_cadence_ask_t *ask)
{
    loyalty_lua_t         *vm = data;
    loyalty_lua_asking_t   a;

    a.vm = vm;
    a.ask = ask;
    a.yes = 0;

    loyalty_lua_store(vm, st, txn);

    if (loyalty_lua_call(vm, loyalty_lua_cadence_ask, &a) != 0) {
        return -1;
    }

    return a.yes;
}
