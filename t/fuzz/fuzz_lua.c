/*
 * nginx-loyalty: libFuzzer harness for Lua declarations: the input is a
 * script, loaded by loyalty_lua_script() in a fresh sandbox with a small
 * budget (FUZZ_BUDGET instructions, FUZZ_MEMORY bytes), and its
 * "cadences" list read by loyalty_lua_cadences().  require finds the
 * project's library (loyalty.cadence, ...) and nothing beside the script.
 * The invariants:
 *
 *   - loading succeeds (0) or fails with a message; so does reading the
 *     cadences;
 *   - every cadence read passes loyalty_cadence_check(), and there are
 *     at most LOYALTY_CADENCES_MAX of them;
 *   - the sandbox's memory stays within its cap.
 */

#include <string.h>

#include "loyalty_lua_cadence.h"
#include "fuzz.h"


#define FUZZ_BUDGET  100000
#define FUZZ_MEMORY  (8 * 1024 * 1024)


static int
fuzz_source(loyalty_lua_t *vm, const char *name, const char *path,
    char **source, size_t *len, char *err, size_t errlen)
{
    snprintf(err, errlen, "no module \"%s\" beside the script", name);
    return -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    char                *src;
    size_t               i;
    loyalty_lua_t        vm;
    loyalty_cadences_t  *cads;
    char                 err[LOYALTY_ERRLEN];

    /* exactly the input's size, so that a read past it is seen */
    src = malloc(size ? size : 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, data, size);

    memset(&vm, 0, sizeof(loyalty_lua_t));
    vm.file = "fuzz.lua";
    vm.budget = FUZZ_BUDGET;
    vm.limit = FUZZ_MEMORY;
    vm.source = fuzz_source;

    FUZZ_CHECK(loyalty_lua_open(&vm, err, sizeof(err)) == 0);

    err[0] = '\0';
    rc = loyalty_lua_script(&vm, src, size, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));

    if (rc == 0) {
        cads = calloc(1, sizeof(loyalty_cadences_t));
        FUZZ_CHECK(cads != NULL);

        err[0] = '\0';
        rc = loyalty_lua_cadences(&vm, cads, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));

        if (rc == 0) {
            FUZZ_CHECK(cads->n <= LOYALTY_CADENCES_MAX);

            for (i = 0; i < cads->n; i++) {
                FUZZ_CHECK(loyalty_cadence_check(&cads->cadence[i], err,
                                                 sizeof(err))
                           == 0);
            }
        }

        free(cads);
    }

    FUZZ_CHECK(vm.used <= FUZZ_MEMORY);

    loyalty_lua_close(&vm);
    free(src);

    return 0;
}
