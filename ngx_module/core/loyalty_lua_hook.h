/*
 * nginx-loyalty core: the hooks' questions and answers (lua/README.md),
 * the same for the module and for loyaltyctl's dry runs.
 */

#ifndef _LOYALTY_LUA_HOOK_H_INCLUDED_
#define _LOYALTY_LUA_HOOK_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#include "loyalty_apply.h"
#include "loyalty_lua.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"


/* bytes of a price hook's label, cut at a whole UTF-8 character */
#define LOYALTY_LUA_LABEL_MAX     64
#define LOYALTY_LUA_CAMPAIGN_MAX  64


/* a price hook's question and answer */
typedef struct {
    const char               *sku;
    size_t                    sku_len;
    int64_t                   qty;
    int64_t                   retail;        /* a unit's */
    int64_t                   price;         /* a unit's, for the tier */
    const char               *currency;
    size_t                    currency_len;
    const char               *tier;          /* "public": none */
    size_t                    tier_len;
    int32_t                   rank;
    unsigned                  has_rank:1;
    const char               *member;        /* NULL: none */
    size_t                    member_len;
    const char               *member_tier;
    size_t                    member_tier_len;
    int32_t                   member_rank;
    int64_t                   member_points;
    unsigned                  member_stage;

    int64_t                   total;         /* the line, qty units */
    char                      label[LOYALTY_LUA_LABEL_MAX];
    size_t                    label_len;     /* 0: none */
} loyalty_lua_price_t;


/* a click hook's question and answer */
typedef struct {
    const char               *code;
    size_t                    code_len;
    const char               *referrer;
    size_t                    referrer_len;
    const char               *referrer2;     /* NULL: none */
    size_t                    referrer2_len;
    const char               *status;        /* "new", "replaced" */
    const char               *user_agent;    /* NULL: none */
    size_t                    user_agent_len;
    const char               *host;          /* NULL: none */
    size_t                    host_len;
    const char               *uri;
    size_t                    uri_len;
    const char               *member;        /* NULL: none */
    size_t                    member_len;
    const loyalty_member_t   *m;
    int32_t                   member_rank;
    unsigned                  has_member_rank:1;

    unsigned                  refuse:1;
    char                      campaign[LOYALTY_LUA_CAMPAIGN_MAX];
    size_t                    campaign_len;  /* 0: none */
} loyalty_lua_click_t;


/*
 * A hook call: the VM, the time the hook sees as ctx.now, and one of the
 * questions.  answered is 1 if the hook gave an answer, 0 if it gave nil
 * (the defaults hold).
 */
typedef struct {
    loyalty_lua_t                  *vm;
    int64_t                         now;
    loyalty_lua_price_t            *price;
    loyalty_lua_click_t            *click;
    const loyalty_event_hook_in_t  *in;
    loyalty_event_hook_out_t       *out;
    int                             answered;
} loyalty_lua_ask_t;


/*
 * The protected functions that build a hook's context, call it and check
 * its answer, by hook, for loyalty_lua_call(vm, f, ask): an answer the
 * hook may not give fails the call with "FILE:LINE (field F): the HOOK
 * hook returned ...", naming the line of the hook and the field.
 */
extern const lua_CFunction  loyalty_lua_asks[LOYALTY_LUA_HOOKS];


/* loyalty_lua_call() of the hook's ask: 0, or -1 after vm->report */
int loyalty_lua_ask(loyalty_lua_t *vm, loyalty_lua_hook_e hook,
    loyalty_lua_ask_t *ask);


#endif /* _LOYALTY_LUA_HOOK_H_INCLUDED_ */
