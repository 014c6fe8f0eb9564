/*
 * loyaltyctl: the operator's Lua script (--lua FILE), loaded in the core's
 * sandbox as nginx loads loyalty_lua_file, for the commands that run it
 * (and its cadences, for apply and sweep); and lua-check, which only
 * loads it.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <lauxlib.h>

#include "loyalty_lua.h"
#include "loyalty_lua_cadence.h"
#include "loyaltyctl.h"


static void loyaltyctl_lua_report(loyalty_lua_t *vm, const char *msg,
    size_t len);
static void loyaltyctl_lua_warn(void *data, const char *msg);
static void loyaltyctl_lua_scan(const char *file, json_t *doc);
static char *loyaltyctl_lua_code(const char *src, size_t len);
static char *loyaltyctl_lua_factor(char *p);


/* --lua-budget N: VM instructions per call, as loyalty_lua_budget */
int
loyaltyctl_lua_budget(const char *arg, void *budget)
{
    char  *end;
    long   n;

    errno = 0;
    n = strtol(arg, &end, 10);

    if (errno || end == arg || *end != '\0'
        || n < LOYALTYCTL_LUA_BUDGET_MIN || n > LOYALTYCTL_LUA_BUDGET_MAX)
    {
        return -1;
    }

    *(unsigned *) budget = (unsigned) n;

    return 0;
}


/* --lua-time TIME: ms, or with "ms" or "s", as loyalty_lua_time */
int
loyaltyctl_lua_time(const char *arg, void *msec)
{
    char           *end;
    unsigned long   n, unit;

    if (arg[0] < '0' || arg[0] > '9') {
        return -1;
    }

    errno = 0;
    n = strtoul(arg, &end, 10);

    if (strcmp(end, "s") == 0) {
        unit = 1000;

    } else if (*end == '\0' || strcmp(end, "ms") == 0) {
        unit = 1;

    } else {
        return -1;
    }

    if (errno || n == 0 || n > LOYALTYCTL_LUA_TIME_MAX / unit) {
        return -1;
    }

    *(unsigned *) msec = (unsigned) (n * unit);

    return 0;
}


/* --lua-memory SIZE: bytes, or k or m as nginx writes sizes */
int
loyaltyctl_lua_memory(const char *arg, void *memory)
{
    char                *end;
    unsigned long long   n, unit;

    if (arg[0] < '0' || arg[0] > '9') {
        return -1;
    }

    errno = 0;
    n = strtoull(arg, &end, 10);

    switch (*end) {
    case 'k':
    case 'K':
        unit = 1024;
        end++;
        break;

    case 'm':
    case 'M':
        unit = 1024 * 1024;
        end++;
        break;

    default:
        unit = 1;
    }

    if (errno || *end != '\0' || n > (unsigned long long) SIZE_MAX / unit
        || n * unit < LOYALTYCTL_LUA_MEMORY_MIN)
    {
        return -1;
    }

    *(size_t *) memory = (size_t) (n * unit);

    return 0;
}


/* --tz NAME: the zone, read once from the system's tzdata */
int
loyaltyctl_tz(const loyaltyctl_opts_t *o, const loyalty_tz_t **tz)
{
    char                 err[LOYALTYCTL_LUA_ERRLEN];
    static int           loaded;
    static loyalty_tz_t  zone;

    *tz = NULL;

    if (o->tz == NULL) {
        return LOYALTYCTL_OK;
    }

    if (!loaded) {
        if (loyalty_tz_load(&zone, NULL, o->tz, err, sizeof(err)) != 0) {
            fprintf(stderr, "loyaltyctl: invalid --tz \"%s\": %s\n", o->tz,
                    err);
            return LOYALTYCTL_USAGE;
        }

        loaded = 1;
    }

    *tz = &zone;

    return LOYALTYCTL_OK;
}


/*
 * A VM of the --lua script, with the table it returned at the top of its
 * stack: LOYALTYCTL_OK, or an exit code after saying why on stderr.
 */
int
loyaltyctl_lua_open(const loyaltyctl_opts_t *o, loyalty_lua_t *vm)
{
    char  err[LOYALTYCTL_LUA_ERRLEN];

    if (o->lua == NULL) {
        fprintf(stderr, "loyaltyctl: no script: use --lua FILE\n");
        return LOYALTYCTL_USAGE;
    }

    memset(vm, 0, sizeof(loyalty_lua_t));

    vm->file = o->lua;
    vm->budget = o->lua_budget;
    vm->msec = o->lua_time;
    vm->limit = o->lua_memory;
    vm->report = loyaltyctl_lua_report;
    (void) loyaltyctl_tz(o, &vm->tz);

    if (loyalty_lua_open(vm, err, sizeof(err)) != 0) {
        fprintf(stderr, "loyaltyctl: --lua \"%s\": %s\n", o->lua, err);
        return LOYALTYCTL_DATA;
    }

    if (loyalty_lua_script(vm, NULL, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "loyaltyctl: --lua \"%s\": %s\n", o->lua, err);
        loyalty_lua_close(vm);
        return LOYALTYCTL_DATA;
    }

    return LOYALTYCTL_OK;
}


/* a warning about the script: on stderr, and in lua-check's answer */
static void
loyaltyctl_lua_warn(void *data, const char *msg)
{
    json_t  *doc = data;

    fprintf(stderr, "loyaltyctl: --lua \"%s\": warning: %s\n",
            json_string_value(json_object_get(doc, "file")), msg);
    json_array_append_new(json_object_get(doc, "warnings"),
                          json_string(msg));
}


/* a call that failed, on stderr */
static void
loyaltyctl_lua_report(loyalty_lua_t *vm, const char *msg, size_t len)
{
    fprintf(stderr, "loyaltyctl: --lua \"%s\": %.*s\n", vm->file, (int) len,
            msg);
}


int
loyaltyctl_lua_check(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int             i, rc;
    json_t         *doc, *hooks;
    loyalty_lua_t   vm;

    rc = loyaltyctl_lua_open(o, &vm);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    doc = json_object();
    hooks = json_array();

    if (doc == NULL || hooks == NULL) {
        json_decref(doc);
        json_decref(hooks);
        loyalty_lua_close(&vm);
        return loyaltyctl_print_json(NULL);
    }

    json_object_set_new(doc, "file", json_string(o->lua));
    json_object_set_new(doc, "hooks", hooks);
    json_object_set_new(doc, "warnings", json_array());

    /* warnings, on stderr and in the answer; the script still loads */
    (void) loyalty_lua_unknown_keys(&vm, loyaltyctl_lua_warn, doc);
    loyaltyctl_lua_scan(o->lua, doc);

    for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
        if (vm.hooks[i] != LUA_NOREF) {
            json_array_append_new(hooks,
                                  json_string(loyalty_lua_hook_names[i]));
        }
    }

    loyalty_lua_close(&vm);

    return loyaltyctl_print_json(doc);
}


/*
 * A literal fractional factor in the script's code, "* 0.333" or
 * "0.9 *", outside comments and strings, and not on a line that rounds
 * (floor, ceil, loyalty.money): the price hook must answer whole minor
 * units, and such a product seldom is one.  A heuristic, told as a
 * warning with its line; what it misses is refused at run time with the
 * hook's line and the field.
 */
static void
loyaltyctl_lua_scan(const char *file, json_t *doc)
{
    char    *src, *code, *p, *q, err[LOYALTYCTL_LUA_ERRLEN];
    char     msg[LOYALTY_LUA_WARN_LEN];
    size_t   len, i, line, start;

    if (loyalty_lua_read_file(file, &src, &len, err, sizeof(err)) != 0) {
        return;
    }

    code = loyaltyctl_lua_code(src, len);
    if (code == NULL) {
        free(src);
        return;
    }

    line = 1;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && code[i] != '\n') {
            continue;
        }

        code[i < len ? i : len] = '\0';
        p = code + start;

        if (strstr(p, "floor") == NULL && strstr(p, "ceil") == NULL
            && strstr(p, "money.") == NULL
            && (q = loyaltyctl_lua_factor(p)) != NULL)
        {
            snprintf(msg, sizeof(msg), "%s:%zu: a price multiplied by a "
                     "fraction (\"%.24s\") is seldom a whole amount: round "
                     "it with loyalty.money (percent_off, round)", file,
                     line, q);
            loyaltyctl_lua_warn(doc, msg);
        }

        line++;
        start = i + 1;
    }

    free(code);
    free(src);
}


/* the code of a Lua source alone: comments and strings blanked, lines kept */
static char *
loyaltyctl_lua_code(const char *src, size_t len)
{
    int      quote, comment, longb;
    char    *code;
    size_t   i;

    code = malloc(len + 1);
    if (code == NULL) {
        return NULL;
    }

    memcpy(code, src, len + 1);

    quote = 0;
    comment = 0;
    longb = 0;

    for (i = 0; i < len; i++) {
        if (longb) {
            if (src[i] == ']' && i + 1 < len && src[i + 1] == ']') {
                code[i] = code[i + 1] = ' ';
                i++;
                longb = 0;

            } else if (src[i] != '\n') {
                code[i] = ' ';
            }

        } else if (comment) {
            if (src[i] == '\n') {
                comment = 0;
            } else {
                code[i] = ' ';
            }

        } else if (quote) {
            if (src[i] == '\\' && i + 1 < len) {
                code[i] = ' ';
                i++;
                code[i] = src[i] == '\n' ? '\n' : ' ';

            } else if (src[i] == quote || src[i] == '\n') {
                quote = 0;
                code[i] = src[i] == '\n' ? '\n' : ' ';

            } else {
                code[i] = ' ';
            }

        } else if (src[i] == '-' && i + 1 < len && src[i + 1] == '-') {
            code[i] = code[i + 1] = ' ';
            i++;

            if (i + 2 < len && src[i + 1] == '[' && src[i + 2] == '[') {
                longb = 1;
            } else {
                comment = 1;
            }

        } else if (src[i] == '[' && i + 1 < len && src[i + 1] == '[') {
            code[i] = code[i + 1] = ' ';
            i++;
            longb = 1;

        } else if (src[i] == '"' || src[i] == '\'') {
            quote = src[i];
            code[i] = ' ';
        }
    }

    return code;
}


/* "* 0.333" or "0.9 *" in a line of code: where, or NULL */
static char *
loyaltyctl_lua_factor(char *p)
{
    char  *s, *d, *e, *b;

    for (s = p; *s; s++) {
        if (*s != '.' || !isdigit((unsigned char) s[1])) {
            continue;
        }

        /* the number around the point: digits before, digits after */
        for (d = s; d > p && isdigit((unsigned char) d[-1]); d--) {
            /* void */
        }

        if (d > p && (isalnum((unsigned char) d[-1]) || d[-1] == '_'
                      || d[-1] == '.'))
        {
            continue;
        }

        for (e = s + 1; isdigit((unsigned char) *e); e++) {
            /* void */
        }

        /* a whole number written 2.0 multiplies to a whole one */
        if (strspn(s + 1, "0") >= (size_t) (e - s - 1)) {
            continue;
        }

        for (b = d; b > p && b[-1] == ' '; b--) {
            /* void */
        }

        if (b > p && b[-1] == '*') {
            return b - 1;
        }

        while (*e == ' ') {
            e++;
        }

        if (*e == '*') {
            return d;
        }
    }

    return NULL;
}


int
loyaltyctl_cadences(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t **cads)
{
    int   rc;
    char  err[LOYALTY_ERRLEN];

    *cads = calloc(1, sizeof(loyalty_cadences_t));
    if (*cads == NULL) {
        fprintf(stderr, "loyaltyctl: out of memory\n");
        return LOYALTYCTL_STORE;
    }

    if (o->lua == NULL) {
        return LOYALTYCTL_OK;
    }

    rc = loyaltyctl_lua_open(o, vm);

    if (rc == LOYALTYCTL_OK
        && loyalty_lua_cadences(vm, *cads, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "loyaltyctl: --lua \"%s\": %s\n", o->lua, err);
        loyalty_lua_close(vm);
        rc = LOYALTYCTL_DATA;
    }

    if (rc != LOYALTYCTL_OK) {
        free(*cads);

    } else {
        /* the shop's days, as nginx's loyalty_timezone */
        (void) loyaltyctl_tz(o, &(*cads)->tz);
    }

    return rc;
}


void
loyaltyctl_cadences_free(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t *cads)
{
    if (o->lua) {
        loyalty_lua_close(vm);
    }

    free(cads);
}
