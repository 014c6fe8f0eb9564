/*
 * nginx-loyalty core: Lua 5.1 patterns for the sandbox, whose every step is
 * charged to a meter: the matcher (loyalty_lua_pattern.c) and the string
 * functions on it (loyalty_lua_string.c).
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


/* the matcher, for the string functions */

#define LOYALTY_PAT_ESC         '%'
#define LOYALTY_PAT_SPECIALS    "^$*+?.([%-"
#define LOYALTY_PAT_CAPTURES    32

#define LOYALTY_PAT_UNFINISHED  (-1)
#define LOYALTY_PAT_POSITION    (-2)


typedef struct {
    const char             *init;
    ptrdiff_t               len;
} loyalty_pat_capture_t;


typedef struct {
    const char             *src_init;
    const char             *src_end;
    lua_State              *L;
    loyalty_lua_meter_t    *meter;
    size_t                  steps;   /* not charged yet */
    int                     depth;
    int                     level;
    loyalty_pat_capture_t   capture[LOYALTY_PAT_CAPTURES];
} loyalty_pat_t;


#define loyalty_pat_add(ms, n)                                                \
    if (((ms)->steps += (n)) >= LOYALTY_LUA_PATTERN_TICK) {                   \
        loyalty_pat_charge(ms);                                               \
    }


/* a match of s, its meter the function's upvalue at index meter */
void loyalty_pat_init(loyalty_pat_t *ms, lua_State *L, const char *s,
    size_t len, int meter);
/* the steps not charged yet, charged */
void loyalty_pat_charge(loyalty_pat_t *ms);
/* the end of a match of p at s, or NULL */
const char *loyalty_pat_match(loyalty_pat_t *ms, const char *s,
    const char *p);
/* the captures, or the whole match from s to e if there are none and s */
int loyalty_pat_push(loyalty_pat_t *ms, const char *s, const char *e);
/* capture i pushed (the whole match from s to e if there are none) */
void loyalty_pat_push_one(loyalty_pat_t *ms, int i, const char *s,
    const char *e);
int loyalty_pat_has_specials(const char *p, size_t len);
/* p in s, plain */
const char *loyalty_pat_plain(loyalty_pat_t *ms, const char *s, size_t ls,
    const char *p, size_t lp);


#endif /* _LOYALTY_LUA_PATTERN_H_INCLUDED_ */
