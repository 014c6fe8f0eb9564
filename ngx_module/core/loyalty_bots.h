/*
 * nginx-loyalty: telling bots and link-preview fetchers by User-Agent.
 *
 * A bots list is text: one pattern per line, blank lines and "#" comments
 * ignored; a User-Agent that contains a pattern, compared without regard
 * to case, is a bot; a pattern that starts with "^" only at the start of
 * the User-Agent.  The project's list is ngx_module/bots.txt.
 *
 * Matching reads the User-Agent once: a bitmap of the patterns' first two
 * bytes picks the few places where a pattern may start.
 */

#ifndef _LOYALTY_BOTS_H_INCLUDED_
#define _LOYALTY_BOTS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define LOYALTY_BOT_PATTERN_MIN     3
#define LOYALTY_BOT_PATTERN_MAX     128
#define LOYALTY_BOTS_MAX            1024


typedef struct loyalty_bots_s  loyalty_bots_t;


loyalty_bots_t *loyalty_bots_new(void);
void loyalty_bots_free(loyalty_bots_t *b);

/*
 * Adds the patterns of a list's text; on failure err names the line and
 * the reason (a pattern shorter than 3 or longer than 128 bytes, a
 * control character, more than LOYALTY_BOTS_MAX patterns in all).
 */
int loyalty_bots_add_list(loyalty_bots_t *b, const char *text, size_t len,
    char *err, size_t errlen);
/* reads and adds a list file; err names the file and line */
int loyalty_bots_load(loyalty_bots_t *b, const char *path, char *err,
    size_t errlen);

size_t loyalty_bots_count(const loyalty_bots_t *b);

/* the index of a pattern the User-Agent contains, or -1 */
long loyalty_bots_match(const loyalty_bots_t *b, const char *ua, size_t len);
/*
 * Whether a User-Agent names nothing at all: empty or spaces, or only a
 * "Mozilla/VERSION" token ("Mozilla/5.0"), which scripts send to pass for
 * a browser.  No substring pattern can say so.
 */
int loyalty_bots_bare(const char *ua, size_t len);

/* the pattern of an index returned by loyalty_bots_match() */
const char *loyalty_bots_pattern(const loyalty_bots_t *b, size_t i,
    size_t *len);
/* whether that pattern was written "^...": it matches at the start only */
int loyalty_bots_anchored(const loyalty_bots_t *b, size_t i);


#endif /* _LOYALTY_BOTS_H_INCLUDED_ */
