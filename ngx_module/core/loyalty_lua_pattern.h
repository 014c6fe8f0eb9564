/*
 * nginx-loyalty core: Lua 5.1 patterns (string.find, match, gmatch and
 * gsub) for the sandbox, whose every step is charged to a meter.
 */

#ifndef _LOYALTY_LUA_PATTERN_H_INCLUDED_
#define _LOYALTY_LUA_PATTERN_H_INCLUDED_


#include <stddef.h>
#include <lua.h>


/* the steps a matcher takes between two charges */
#define LOYALTY_LUA_PATTERN_TICK  1024


/*
 * What a call of the pattern functions charges its work to: charge(L,
 * data, steps) is called every LOYALTY_LUA_PATTERN_TICK steps and once
 * more as the call ends; it stops the call by raising a Lua error.  The
 * meter lives as long as the functions.
 */
typedef struct {
    void                  (*charge)(lua_State *L, void *data, size_t steps);
    void                   *data;
} loyalty_lua_meter_t;


/*
 * find, match, gmatch and gsub, with the stock functions' arguments,
 * answers and errors, set in the table at index idx.
 */
void loyalty_lua_pattern_open(lua_State *L, int idx,
    loyalty_lua_meter_t *meter);


#endif /* _LOYALTY_LUA_PATTERN_H_INCLUDED_ */
