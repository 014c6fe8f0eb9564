/*
 * nginx-loyalty: the cadences a Lua script declares (lua/README.md), and
 * their conditions, run in the script's VM.
 */

#ifndef _LOYALTY_LUA_CADENCE_H_INCLUDED_
#define _LOYALTY_LUA_CADENCE_H_INCLUDED_


#include "loyalty_cadence.h"
#include "loyalty_lua.h"


/*
 * Reads the "cadences" list of the script's table, at the top of vm's
 * stack, into cads; its conditions stay in the VM, which cads->cond
 * runs.  0 (no list: no cadences), or -1 with err naming the cadence.
 */
int loyalty_lua_cadences(loyalty_lua_t *vm, loyalty_cadences_t *cads,
    char *err, size_t errlen);

/* a condition, data the VM: what loyalty_lua_cadences() sets cads->cond */
int loyalty_lua_cadence_cond(void *data, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_cadence_ask_t *ask);


#endif /* _LOYALTY_LUA_CADENCE_H_INCLUDED_ */
