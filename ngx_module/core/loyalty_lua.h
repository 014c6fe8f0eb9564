/*
 * nginx-loyalty core: the LuaJIT sandbox that runs the operator's script,
 * shared by the module and loyaltyctl.
 */

#ifndef _LOYALTY_LUA_H_INCLUDED_
#define _LOYALTY_LUA_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include <lua.h>

#include "loyalty_lua_pattern.h"
#include "loyalty_record.h"
#include "loyalty_store.h"
#include "loyalty_tz.h"
#include "loyalty_util.h"


#define LOYALTY_LUA_SOURCE_MAX  (1024 * 1024)

/* unknown keys of a script's table told, the longest that is compared */
#define LOYALTY_LUA_UNKNOWN_MAX  32
#define LOYALTY_LUA_KEY_LEN      32
#define LOYALTY_LUA_WARN_LEN     256

/* a call's wall time, ms, if the caller says none */
#define LOYALTY_LUA_MSEC        50

/*
 * What an operator may set, in nginx (loyalty_lua_budget, loyalty_lua_time,
 * loyalty_lua_memory) and in loyaltyctl (--lua-budget, --lua-time,
 * --lua-memory): the defaults and the bounds
 */
#define LOYALTY_LUA_BUDGET_DEFAULT  100000
#define LOYALTY_LUA_BUDGET_MIN      1000
#define LOYALTY_LUA_BUDGET_MAX      100000000
#define LOYALTY_LUA_TIME_MAX        60000           /* ms */
#define LOYALTY_LUA_MEMORY_DEFAULT  (16 * 1024 * 1024)
#define LOYALTY_LUA_MEMORY_MIN      (1024 * 1024)

/* why a call failed, beyond an error the script raised */
#define LOYALTY_LUA_BUDGET      1    /* instructions or time */
#define LOYALTY_LUA_MEMORY      2


/* the functions the script's table may hold (lua/README.md) */
typedef enum {
    LOYALTY_LUA_HOOK_PRICE = 0,
    LOYALTY_LUA_HOOK_CLICK,
    LOYALTY_LUA_HOOK_EVENT,
    LOYALTY_LUA_HOOKS
} loyalty_lua_hook_e;


/*
 * The keys of the tables the VM hands to scripts, made once per VM and
 * kept in a table in the registry (vm->keys): setting a field by a C
 * string would hash and intern the key on every call.  The stage names
 * follow the keys; a caller's setup may add its own keys from
 * LOYALTY_LUA_KEY_MORE on.
 */
typedef enum {
    LOYALTY_LUA_KEY_ID = 1,
    LOYALTY_LUA_KEY_TIER,
    LOYALTY_LUA_KEY_RANK,
    LOYALTY_LUA_KEY_STAGE,
    LOYALTY_LUA_KEY_POINTS,
    LOYALTY_LUA_KEY_ORDERS,
    LOYALTY_LUA_KEY_SPEND,
    LOYALTY_LUA_KEY_BLOCKED,
    LOYALTY_LUA_KEY_BIRTHDAY,
    LOYALTY_LUA_KEY_JOINED_AT,
    LOYALTY_LUA_KEY_FIRST_ORDER_AT,
    LOYALTY_LUA_KEY_LAST_ORDER_AT,
    LOYALTY_LUA_KEY_REFERRER,
    LOYALTY_LUA_KEY_RETAIL,
    LOYALTY_LUA_KEY_PRICE,
    LOYALTY_LUA_KEY_MEMBER,
    LOYALTY_LUA_KEY_NOW,
    /* the hooks' contexts' (loyalty_lua_hook.c) */
    LOYALTY_LUA_KEY_SKU,
    LOYALTY_LUA_KEY_QTY,
    LOYALTY_LUA_KEY_CURRENCY,
    LOYALTY_LUA_KEY_CODE,
    LOYALTY_LUA_KEY_REFERRER2,
    LOYALTY_LUA_KEY_STATUS,
    LOYALTY_LUA_KEY_USER_AGENT,
    LOYALTY_LUA_KEY_HOST,
    LOYALTY_LUA_KEY_URI,
    LOYALTY_LUA_KEY_TYPE,
    LOYALTY_LUA_KEY_KIND,
    LOYALTY_LUA_KEY_AT,
    LOYALTY_LUA_KEY_FIRST,
    LOYALTY_LUA_KEY_AMOUNT,
    LOYALTY_LUA_KEY_ITEMS,
    LOYALTY_LUA_KEY_STAGES,
    LOYALTY_LUA_KEY_MORE = LOYALTY_LUA_KEY_STAGES + LOYALTY_STAGE_COUNT
} loyalty_lua_key_e;


/*
 * t[key] = v, for the table t below the value v at the top of the stack,
 * with the keys' table at stack index 1.
 */
#define loyalty_lua_set(L, key)                                               \
    lua_rawgeti(L, 1, key);                                                   \
    lua_insert(L, -2);                                                        \
    lua_rawset(L, -3)

/* the key first, then the value: no lua_insert() */
#define loyalty_lua_set_str(L, key, s, n)                                     \
    lua_rawgeti(L, 1, key);                                                   \
    lua_pushlstring(L, (const char *) (s), n);                                \
    lua_rawset(L, -3)

#define loyalty_lua_set_num(L, key, v)                                        \
    lua_rawgeti(L, 1, key);                                                   \
    lua_pushnumber(L, (lua_Number) (v));                                      \
    lua_rawset(L, -3)


typedef struct loyalty_lua_s  loyalty_lua_t;


/*
 * A short string the hooks' contexts carry again and again (a tier's
 * name, a currency), kept in the registry: pushed without interning.
 */
#define LOYALTY_LUA_NAMES       64
#define LOYALTY_LUA_NAME_LEN    32
/* the places that push them, each with the slot it used last */
#define LOYALTY_LUA_NAME_SITES  4

typedef struct {
    int                     ref;      /* LUA_NOREF: none yet */
    size_t                  len;      /* 0: none */
    char                    s[LOYALTY_LUA_NAME_LEN];
} loyalty_lua_name_t;

/*
 * The source of the module at path, which require asked for by name:
 * 0 with *source from malloc(), which the VM frees, or -1 with err.
 */
typedef int (*loyalty_lua_source_pt)(loyalty_lua_t *vm, const char *name,
    const char *path, char **source, size_t *len, char *err, size_t errlen);

/* more of the VM's setup, run protected as the sandbox is made */
typedef void (*loyalty_lua_setup_pt)(loyalty_lua_t *vm);

/*
 * The snapshot a call reads the store from, begun by the caller when the
 * hook first reads the store (loyalty_lua_store_lazy): NULL if it cannot.
 */
typedef MDB_txn *(*loyalty_lua_begin_pt)(void *data);

/* a failed call, with its message; vm->failed says if it ran out */
typedef void (*loyalty_lua_report_pt)(loyalty_lua_t *vm, const char *msg,
    size_t len);


struct loyalty_lua_s {
    /* the caller's, set before loyalty_lua_open() */
    const char             *file;     /* the script; lives as long */
    unsigned                budget;   /* VM instructions per call */
    unsigned                msec;     /* wall time per call; 0: default */
    size_t                  limit;    /* bytes per VM */
    loyalty_lua_source_pt   source;   /* NULL: read from the disk */
    loyalty_lua_setup_pt    setup;    /* NULL: none */
    loyalty_lua_report_pt   report;   /* NULL: none */
    void                   *data;     /* the callbacks' */
    const loyalty_tz_t     *tz;       /* the shop's zone; NULL: UTC */

    lua_State              *L;
    size_t                  used;
    lua_Alloc               alloc;    /* LuaJIT's own */
    void                   *alloc_ud;
    size_t                  dir_len;  /* of file, with its slash */
    int                     failed;   /* LOYALTY_LUA_BUDGET, _MEMORY */
    int                     running;  /* a call is */
    int                     timed_out;
    int                     slice;    /* the count hook's interval now */
    size_t                  spent;    /* this call's count */
    size_t                  credit;   /* of it, the VM's own, not charged */
    uint64_t                deadline; /* loyalty_lua_now()'s */
    loyalty_lua_meter_t     meter;    /* of the pattern functions */
    int                     hooks[LOYALTY_LUA_HOOKS];
    int                     env;
    int                     loaded;
    int                     keys;
    int                     lazy;     /* a partial member's metatable */
    int                     call;     /* loyalty_lua_call()'s function */
    lua_CFunction           call_f;   /* and what it calls, with */
    void                   *call_ud;
    /*
     * A price hook's context and member, made once and refilled every
     * call (loyalty_lua_hook.c), with the context's metatable; made
     * anew when renew says a script may have put keys of its own in
     * them, which the next call must not see.
     */
    int                     ctx;
    int                     member;
    int                     ctx_mt;
    int                     fill[2][2];   /* what fills them, by raw, member */
    int                     renew;
    unsigned                nil_rank:1;   /* as the last call left them */
    unsigned                nil_member:1;
    unsigned                armed:1;      /* the fillers have them, the hook */
    /* the member's id, which member.id reads when asked */
    size_t                  member_id_len;
    char                    member_id[LOYALTY_ID_MAX];
    loyalty_lua_name_t      names[LOYALTY_LUA_NAMES];
    uint8_t                 name_sites[LOYALTY_LUA_NAME_SITES];

    /* what loyalty.store reads during a call, or what begins it */
    loyalty_store_t        *st;
    MDB_txn                *txn;
    loyalty_lua_begin_pt    begin;
    void                   *begin_data;
};


extern const char  *loyalty_lua_hook_names[LOYALTY_LUA_HOOKS];


/* a warning about the script, with the caller's data */
typedef void (*loyalty_lua_warn_pt)(void *data, const char *msg);

/* vm's caller's fields set, the rest zero: 0, or -1 with err */
int loyalty_lua_open(loyalty_lua_t *vm, char *err, size_t errlen);
void loyalty_lua_close(loyalty_lua_t *vm);

/*
 * Loads and runs the script, source or else vm->file read from the disk,
 * within the budget; it must return a table, whose hooks are taken into
 * vm->hooks.  0 with the table at the top of the stack, or -1 with err.
 */
int loyalty_lua_script(loyalty_lua_t *vm, const char *source, size_t len,
    char *err, size_t errlen);

/*
 * The keys of the script's table, at the top of the stack, that are
 * neither hooks nor cadences, each told to warn() with a "did you mean"
 * if one is near: their number.
 */
int loyalty_lua_unknown_keys(loyalty_lua_t *vm, loyalty_lua_warn_pt warn,
    void *data);

/*
 * Runs f protected, within the budget and the memory cap: 0, or -1 after
 * vm->report.  f begins with an empty stack and takes ud with
 * loyalty_lua_ud() (a light userdata would cost more than the rest of a
 * small call's C).  The stack is left empty; vm->txn is cleared, as the
 * snapshot is the caller's.
 */
int loyalty_lua_call(loyalty_lua_t *vm, lua_CFunction f, void *ud);

/* in loyalty_lua_call()'s f: its ud */
static inline void *
loyalty_lua_ud(lua_State *L)
{
    void  *vm;

    /* the allocator's data is the VM (loyalty_lua_open()) */
    (void) lua_getallocf(L, &vm);

    return ((loyalty_lua_t *) vm)->call_ud;
}

/*
 * The store that loyalty.store and a partial member read during a call:
 * from txn, or from the snapshot begin(data) gives when the call first
 * reads it (most price hooks never do)
 */
void loyalty_lua_store(loyalty_lua_t *vm, loyalty_store_t *st,
    MDB_txn *txn);
void loyalty_lua_store_lazy(loyalty_lua_t *vm, loyalty_store_t *st,
    loyalty_lua_begin_pt begin, void *data);

/* a member's table pushed, or its fields set in the table at the top */
void loyalty_lua_push_member(lua_State *L, const char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, int has_rank);
void loyalty_lua_fill_member(lua_State *L, const char *id, size_t len,
    const loyalty_member_t *m, int32_t rank, int has_rank);

/* CLOCK_MONOTONIC, ns */
uint64_t loyalty_lua_now(void);

/* a whole file, up to LOYALTY_LUA_SOURCE_MAX, from malloc(): 0, or -1 */
int loyalty_lua_read_file(const char *path, char **data, size_t *len,
    char *err, size_t errlen);


/* between the sandbox's own files, not for callers */

/* the environment, run protected as the VM is made (loyalty_lua_sandbox.c) */
int loyalty_lua_sandbox(lua_State *L);
/* a chunk loaded in the sandbox: 0 with it on the stack, or an error */
int loyalty_lua_chunk(lua_State *L, loyalty_lua_t *vm, const char *source,
    size_t len, const char *chunkname);
/* calls loyalty_lua_call()'s f, as vm->call (loyalty_lua.c) */
int loyalty_lua_protected(lua_State *L);
/* a partial member's __index, loyalty.store (loyalty_lua_member.c) */
int loyalty_lua_member_index(lua_State *L);
/*
 * The call's snapshot, begun if it is not yet (loyalty_lua.c): the error
 * "the WHAT is only read during a hook" outside a call
 */
MDB_txn *loyalty_lua_txn(lua_State *L, loyalty_lua_t *vm, const char *what);
/*
 * The tables the VM refills from call to call, a price hook's context and
 * member (loyalty_lua_hook.c): their filler made and they, as the VM is
 * (the stack as it was)
 */
void loyalty_lua_price_setup(lua_State *L, loyalty_lua_t *vm);
/*
 * Their __newindex (upvalue: the VM), and for a function that writes into
 * its first argument past __newindex or hands out its metatable: renew
 * set if that is one of them (loyalty_lua_sandbox.c)
 */
int loyalty_lua_reused_newindex(lua_State *L);
void loyalty_lua_reused_touch(lua_State *L, loyalty_lua_t *vm);
void loyalty_lua_store_lib(lua_State *L, loyalty_lua_t *vm);


#endif /* _LOYALTY_LUA_H_INCLUDED_ */
