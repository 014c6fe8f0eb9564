/*
 * loyaltyctl: the operator's Lua script (--lua FILE), loaded in the core's
 * sandbox as nginx loads loyalty_lua_file, for the commands that run it
 * (and its cadences, for apply and sweep); and lua-check, which only
 * loads it.
 */

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


static const char  loyaltyctl_usage_lua_check[] =
    "usage: loyaltyctl --lua FILE lua-check\n"
    "Loads the script as nginx loads loyalty_lua_file: in the same\n"
    "sandbox, within --lua-budget, --lua-time and --lua-memory.  Prints\n"
    "the file and the hooks it returns as one line of JSON.  Exit 1, with\n"
    "the reason (FILE:LINE: for an error in the script), if it does not\n"
    "load.\n";


/* --lua-budget N: VM instructions per call, as loyalty_lua_budget */
int
loyaltyctl_lua_budget(const char *arg, unsigned *budget)
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

    *budget = (unsigned) n;

    return 0;
}


/* --lua-time TIME: ms, or with "ms" or "s", as loyalty_lua_time */
int
loyaltyctl_lua_time(const char *arg, unsigned *msec)
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

    *msec = (unsigned) (n * unit);

    return 0;
}


/* --lua-memory SIZE: bytes, or k or m as nginx writes sizes */
int
loyaltyctl_lua_memory(const char *arg, size_t *memory)
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

    *memory = (size_t) (n * unit);

    return 0;
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

    if (loyaltyctl_wants_help(argc, argv, loyaltyctl_usage_lua_check)) {
        return LOYALTYCTL_OK;
    }

    if (argc != 1) {
        return loyaltyctl_usage(loyaltyctl_usage_lua_check);
    }

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

    for (i = 0; i < LOYALTY_LUA_HOOKS; i++) {
        if (vm.hooks[i] != LUA_NOREF) {
            json_array_append_new(hooks,
                                  json_string(loyalty_lua_hook_names[i]));
        }
    }

    loyalty_lua_close(&vm);

    return loyaltyctl_print_json(doc);
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
