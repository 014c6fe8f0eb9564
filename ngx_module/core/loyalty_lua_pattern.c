/*
 * nginx-loyalty core: the Lua 5.1 pattern matcher of the sandbox's string
 * functions (loyalty_lua_string.c).
 *
 * The stock string.find, match, gmatch and gsub run a whole match in one
 * C call, where no count hook fires: ("a"):rep(800):find(".-.-.-b")
 * outlasts anyone's patience.  This is a matcher written from the Lua 5.1
 * manual's rules for patterns: a backtracking one, as the stock one, so
 * that every pattern means what it meant and fails as it failed, down to
 * the messages.  The difference is the meter: every step (a pattern item
 * tried at a position, a character a repetition takes, a character %b
 * scans, a candidate of a plain search, a piece of a long set or
 * back-reference) is counted, and the count is charged to the meter every
 * LOYALTY_LUA_PATTERN_TICK steps and as the call ends.  The meter raises
 * the error that stops a call over its budget.
 *
 * Recursion is bounded as LuaJIT bounds it ("pattern too complex"), so a
 * pattern cannot exhaust the C stack.  Classes are ASCII, as LuaJIT's.
 */

#include <string.h>

#include <lauxlib.h>

#include "loyalty_lua_pattern.h"


#define LOYALTY_PAT_DEPTH       200


static int loyalty_pat_class(int c, int cl);
static int loyalty_pat_set(loyalty_pat_t *ms, int c, const char *p,
    const char *ec);
static int loyalty_pat_single(loyalty_pat_t *ms, const char *s,
    const char *p, const char *ep);
static const char *loyalty_pat_class_end(loyalty_pat_t *ms, const char *p);
static const char *loyalty_pat_do_match(loyalty_pat_t *ms, const char *s,
    const char *p);
static const char *loyalty_pat_repeat(loyalty_pat_t *ms, const char *s,
    const char *p, const char *ep);
static const char *loyalty_pat_max_expand(loyalty_pat_t *ms, const char *s,
    const char *p, const char *ep);
static const char *loyalty_pat_min_expand(loyalty_pat_t *ms, const char *s,
    const char *p, const char *ep);
static const char *loyalty_pat_start_capture(loyalty_pat_t *ms,
    const char *s, const char *p, ptrdiff_t what);
static const char *loyalty_pat_end_capture(loyalty_pat_t *ms, const char *s,
    const char *p);
static const char *loyalty_pat_balance(loyalty_pat_t *ms, const char *s,
    const char *p);
static const char *loyalty_pat_frontier(loyalty_pat_t *ms, const char *s,
    const char **pp);
static const char *loyalty_pat_backref(loyalty_pat_t *ms, const char *s,
    int l);


/* the meter is the upvalue at index meter */
void
loyalty_pat_init(loyalty_pat_t *ms, lua_State *L, const char *s, size_t len,
    int meter)
{
    ms->src_init = s;
    ms->src_end = s + len;
    ms->L = L;
    ms->meter = lua_touserdata(L, lua_upvalueindex(meter));
    ms->steps = 0;
    ms->depth = 0;
    ms->level = 0;
}


void
loyalty_pat_charge(loyalty_pat_t *ms)
{
    size_t  n;

    n = ms->steps;
    ms->steps = 0;

    if (n) {
        ms->meter->charge(ms->L, ms->meter->data, n);
    }
}


/* c in the class %cl (ASCII, as LuaJIT's); any other cl is itself */
static int
loyalty_pat_class(int c, int cl)
{
    int  res, lower, upper, alpha, digit;

    lower = (c >= 'a' && c <= 'z');
    upper = (c >= 'A' && c <= 'Z');
    alpha = lower || upper;
    digit = (c >= '0' && c <= '9');

    switch (cl | 0x20) {
    case 'a': res = alpha; break;
    case 'c': res = (c < 32 || c == 127); break;
    case 'd': res = digit; break;
    case 'l': res = lower; break;
    case 'p': res = (c > 32 && c < 127 && !alpha && !digit); break;
    case 's': res = (c == ' ' || (c >= '\t' && c <= '\r')); break;
    case 'u': res = upper; break;
    case 'w': res = alpha || digit; break;
    case 'x': res = digit || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
              break;
    case 'z': res = (c == 0); break;
    default: return cl == c;
    }

    /* a letter other than the classes' is itself, above */
    if (cl >= 'A' && cl <= 'Z') {
        return !res;
    }

    return (cl >= 'a' && cl <= 'z') ? res : cl == c;
}


/* c in the set [...] from p (its "[") to ec (its "]") */
static int
loyalty_pat_set(loyalty_pat_t *ms, int c, const char *p, const char *ec)
{
    int  yes;

    loyalty_pat_add(ms, (size_t) (ec - p) / 16);

    yes = 1;

    if (p[1] == '^') {
        yes = 0;
        p++;
    }

    while (++p < ec) {
        if (*p == LOYALTY_PAT_ESC) {
            p++;
            if (loyalty_pat_class(c, (unsigned char) *p)) {
                return yes;
            }

        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char) p[-2] <= c && c <= (unsigned char) *p) {
                return yes;
            }

        } else if ((unsigned char) *p == c) {
            return yes;
        }
    }

    return !yes;
}


/* the character at s matches the single item from p to ep */
static int
loyalty_pat_single(loyalty_pat_t *ms, const char *s, const char *p,
    const char *ep)
{
    int  c;

    if (s >= ms->src_end) {
        return 0;
    }

    c = (unsigned char) *s;

    switch (*p) {
    case '.':
        return 1;
    case LOYALTY_PAT_ESC:
        return loyalty_pat_class(c, (unsigned char) p[1]);
    case '[':
        return loyalty_pat_set(ms, c, p, ep - 1);
    default:
        return (unsigned char) *p == c;
    }
}


/* the end of the single item at p */
static const char *
loyalty_pat_class_end(loyalty_pat_t *ms, const char *p)
{
    switch (*p++) {

    case LOYALTY_PAT_ESC:
        if (*p == '\0') {
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        }

        return p + 1;

    case '[':
        if (*p == '^') {
            p++;
        }

        /* the first character is in the set even if it is "]" */
        do {
            if (*p == '\0') {
                luaL_error(ms->L, "malformed pattern (missing ']')");
            }

            if (*p++ == LOYALTY_PAT_ESC && *p != '\0') {
                p++;
            }

        } while (*p != ']');

        return p + 1;

    default:
        return p;
    }
}


/* the match of p at s: its end, or NULL; every call is a step */
const char *
loyalty_pat_match(loyalty_pat_t *ms, const char *s, const char *p)
{
    const char  *e;

    if (++ms->depth > LOYALTY_PAT_DEPTH) {
        luaL_error(ms->L, "pattern too complex");
    }

    loyalty_pat_add(ms, 1);

    e = loyalty_pat_do_match(ms, s, p);

    ms->depth--;

    return e;
}


/* items that need no new level of recursion follow on in the loop */
static const char *
loyalty_pat_do_match(loyalty_pat_t *ms, const char *s, const char *p)
{
    const char  *ep, *res;

    for ( ;; ) {

        switch (*p) {

        case '\0':
            return s;

        case '(':
            if (p[1] == ')') {
                return loyalty_pat_start_capture(ms, s, p + 2,
                                                 LOYALTY_PAT_POSITION);
            }

            return loyalty_pat_start_capture(ms, s, p + 1,
                                             LOYALTY_PAT_UNFINISHED);

        case ')':
            return loyalty_pat_end_capture(ms, s, p + 1);

        case '$':
            if (p[1] == '\0') {
                return (s == ms->src_end) ? s : NULL;
            }

            break;

        case LOYALTY_PAT_ESC:
            if (p[1] == 'b') {
                s = loyalty_pat_balance(ms, s, p + 2);
                p += 4;

            } else if (p[1] == 'f') {
                s = loyalty_pat_frontier(ms, s, &p);

            } else if (p[1] >= '0' && p[1] <= '9') {
                s = loyalty_pat_backref(ms, s, (unsigned char) p[1]);
                p += 2;

            } else {
                break;
            }

            if (s == NULL) {
                return NULL;
            }

            loyalty_pat_add(ms, 1);
            continue;
        }

        /* a single item, perhaps repeated */

        ep = loyalty_pat_class_end(ms, p);

        switch (*ep) {

        case '?':
            /* taken if it can be, else skipped: no new level for that */
            if (loyalty_pat_single(ms, s, p, ep)) {
                res = loyalty_pat_match(ms, s + 1, ep + 1);
                if (res) {
                    return res;
                }
            }

            p = ep + 1;
            break;

        case '*':
        case '+':
        case '-':
            return loyalty_pat_repeat(ms, s, p, ep);

        default:
            if (!loyalty_pat_single(ms, s, p, ep)) {
                return NULL;
            }

            s++;
            p = ep;
        }

        loyalty_pat_add(ms, 1);
    }
}


/* a single item followed by *, + or - */
static const char *
loyalty_pat_repeat(loyalty_pat_t *ms, const char *s, const char *p,
    const char *ep)
{
    switch (*ep) {

    case '*':
        return loyalty_pat_max_expand(ms, s, p, ep);

    case '+':
        return loyalty_pat_single(ms, s, p, ep)
               ? loyalty_pat_max_expand(ms, s + 1, p, ep) : NULL;

    default: /* '-' */
        return loyalty_pat_min_expand(ms, s, p, ep);
    }
}


static const char *
loyalty_pat_max_expand(loyalty_pat_t *ms, const char *s, const char *p,
    const char *ep)
{
    ptrdiff_t    i;
    const char  *res;

    i = 0;

    while (loyalty_pat_single(ms, s + i, p, ep)) {
        i++;
        loyalty_pat_add(ms, 1);
    }

    /* as many as it can take, then one fewer at a time */
    while (i >= 0) {
        res = loyalty_pat_match(ms, s + i, ep + 1);
        if (res) {
            return res;
        }

        i--;
    }

    return NULL;
}


static const char *
loyalty_pat_min_expand(loyalty_pat_t *ms, const char *s, const char *p,
    const char *ep)
{
    const char  *res;

    for ( ;; ) {
        res = loyalty_pat_match(ms, s, ep + 1);
        if (res) {
            return res;
        }

        if (!loyalty_pat_single(ms, s, p, ep)) {
            return NULL;
        }

        s++;
    }
}


static const char *
loyalty_pat_start_capture(loyalty_pat_t *ms, const char *s, const char *p,
    ptrdiff_t what)
{
    int          level;
    const char  *res;

    level = ms->level;

    if (level >= LOYALTY_PAT_CAPTURES) {
        luaL_error(ms->L, "too many captures");
    }

    ms->capture[level].init = s;
    ms->capture[level].len = what;
    ms->level = level + 1;

    res = loyalty_pat_match(ms, s, p);
    if (res == NULL) {
        ms->level--;
    }

    return res;
}


static const char *
loyalty_pat_end_capture(loyalty_pat_t *ms, const char *s, const char *p)
{
    int          l;
    const char  *res;

    /* the innermost capture still open */
    for (l = ms->level - 1; l >= 0; l--) {
        if (ms->capture[l].len == LOYALTY_PAT_UNFINISHED) {
            break;
        }
    }

    if (l < 0) {
        luaL_error(ms->L, "invalid pattern capture");
    }

    ms->capture[l].len = s - ms->capture[l].init;

    res = loyalty_pat_match(ms, s, p);
    if (res == NULL) {
        ms->capture[l].len = LOYALTY_PAT_UNFINISHED;
    }

    return res;
}


/* %bxy at s, p at x: the end of the balanced run, or NULL */
static const char *
loyalty_pat_balance(loyalty_pat_t *ms, const char *s, const char *p)
{
    int  open, close, depth;

    if (p[0] == '\0' || p[1] == '\0') {
        luaL_error(ms->L, "unbalanced pattern");
    }

    if (s >= ms->src_end || *s != p[0]) {
        return NULL;
    }

    open = p[0];
    close = p[1];
    depth = 1;

    while (++s < ms->src_end) {
        loyalty_pat_add(ms, 1);

        if (*s == close) {
            if (--depth == 0) {
                return s + 1;
            }

        } else if (*s == open) {
            depth++;
        }
    }

    return NULL;
}


/* %f[set] at s, *pp at "%f": s, or NULL; *pp past the set */
static const char *
loyalty_pat_frontier(loyalty_pat_t *ms, const char *s, const char **pp)
{
    int          prev, cur;
    const char  *p, *ep;

    p = *pp + 2;

    if (*p != '[') {
        luaL_error(ms->L, "missing '[' after '%%f' in pattern");
    }

    ep = loyalty_pat_class_end(ms, p);
    *pp = ep;

    prev = (s == ms->src_init) ? '\0' : (unsigned char) s[-1];
    cur = (s < ms->src_end) ? (unsigned char) *s : '\0';

    if (loyalty_pat_set(ms, prev, p, ep - 1)
        || !loyalty_pat_set(ms, cur, p, ep - 1))
    {
        return NULL;
    }

    return s;
}


/* %1 to %9 at s: what capture l ('1'..) took, again */
static const char *
loyalty_pat_backref(loyalty_pat_t *ms, const char *s, int l)
{
    size_t  len;

    l -= '1';

    if (l < 0 || l >= ms->level
        || ms->capture[l].len == LOYALTY_PAT_UNFINISHED)
    {
        luaL_error(ms->L, "invalid capture index");
    }

    /* a position capture's length is no length: it never matches */
    len = (size_t) ms->capture[l].len;

    if ((size_t) (ms->src_end - s) < len) {
        return NULL;
    }

    loyalty_pat_add(ms, len / 16);

    return memcmp(ms->capture[l].init, s, len) == 0 ? s + len : NULL;
}


void
loyalty_pat_push_one(loyalty_pat_t *ms, int i, const char *s, const char *e)
{
    ptrdiff_t  len;

    if (i >= ms->level) {
        if (i != 0) {
            luaL_error(ms->L, "invalid capture index");
        }

        /* no captures: the whole match */
        lua_pushlstring(ms->L, s, (size_t) (e - s));
        return;
    }

    len = ms->capture[i].len;

    if (len == LOYALTY_PAT_UNFINISHED) {
        luaL_error(ms->L, "unfinished capture");
    }

    if (len == LOYALTY_PAT_POSITION) {
        lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);

    } else {
        lua_pushlstring(ms->L, ms->capture[i].init, (size_t) len);
    }
}


/* the captures, or the whole match from s to e if there are none and s */
int
loyalty_pat_push(loyalty_pat_t *ms, const char *s, const char *e)
{
    int  i, n;

    n = (ms->level == 0 && s) ? 1 : ms->level;

    luaL_checkstack(ms->L, n, "too many captures");

    for (i = 0; i < n; i++) {
        loyalty_pat_push_one(ms, i, s, e);
    }

    return n;
}


int
loyalty_pat_has_specials(const char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] != '\0' && strchr(LOYALTY_PAT_SPECIALS, p[i]) != NULL) {
            return 1;
        }
    }

    return 0;
}


/* p in s, plain: memchr for its first byte, then the rest compared */
const char *
loyalty_pat_plain(loyalty_pat_t *ms, const char *s, size_t ls,
    const char *p, size_t lp)
{
    const char  *q, *last;

    if (lp == 0) {
        return s;
    }

    if (lp > ls) {
        return NULL;
    }

    last = s + (ls - lp);

    while (s <= last) {
        q = memchr(s, p[0], (size_t) (last - s) + 1);

        loyalty_pat_add(ms, 1 + (size_t) ((q ? q : last) - s) / 64
                            + lp / 64);

        if (q == NULL) {
            return NULL;
        }

        if (memcmp(q + 1, p + 1, lp - 1) == 0) {
            return q;
        }

        s = q + 1;
    }

    return NULL;
}
