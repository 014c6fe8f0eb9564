/*
 * nginx-loyalty: a minimal TAP producer for the C unit tests, so that
 * prove runs them beside the Perl tests.
 *
 *     plan(n);
 *     ok(cond, "printf-style %s", "description");
 *     is_int(got, expected, ...);  is_str(...);  is_mem(...);
 *     has_str(haystack, needle, ...);
 *     return done();
 *
 * Failure diagnostics go to stderr, as Test::More's do, so that prove
 * shows them without -v.
 */

#ifndef _TAP_H_INCLUDED_
#define _TAP_H_INCLUDED_


#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))


static uint64_t  tap_rng_state = UINT64_C(0x2545f4914f6cdd1d);


/* xorshift64: a fixed sequence, so that a failure reproduces */
static inline uint8_t
rng_byte(void)
{
    tap_rng_state ^= tap_rng_state << 13;
    tap_rng_state ^= tap_rng_state >> 7;
    tap_rng_state ^= tap_rng_state << 17;

    return (uint8_t) (tap_rng_state >> 32);
}

#define TAP_PRINTF(f, a)  __attribute__((format(printf, f, a)))


static int  tap_planned = -1;
static int  tap_run;
static int  tap_failed;


static inline void TAP_PRINTF(1, 2)
diag(const char *fmt, ...)
{
    va_list  ap;

    fflush(stdout);

    fputs("# ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


static inline void
plan(int n)
{
    /* a crash must not lose the lines printed before it */
    setvbuf(stdout, NULL, _IOLBF, 0);

    tap_planned = n;
    printf("1..%d\n", n);
}


/* a description must stay on one line and must not start a directive */
static inline void
tap_describe(const char *fmt, va_list ap)
{
    char         buf[512];
    const char  *p;

    vsnprintf(buf, sizeof(buf), fmt, ap);

    for (p = buf; *p; p++) {
        if (*p == '#') {
            putchar('\\');
        }
        putchar(*p == '\n' ? ' ' : *p);
    }

    putchar('\n');
}


static inline int
tap_vok(const char *file, int line, int cond, const char *fmt, va_list ap)
{
    tap_run++;

    printf("%sok %d - ", cond ? "" : "not ", tap_run);
    tap_describe(fmt, ap);

    if (!cond) {
        tap_failed++;
        diag("  Failed test at %s line %d.", file, line);
    }

    return cond;
}


static inline int TAP_PRINTF(4, 5)
tap_ok(const char *file, int line, int cond, const char *fmt, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, fmt);
    rc = tap_vok(file, line, cond, fmt, ap);
    va_end(ap);

    return rc;
}


static inline int TAP_PRINTF(5, 6)
tap_is_int(const char *file, int line, intmax_t got, intmax_t expected,
    const char *fmt, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, fmt);
    rc = tap_vok(file, line, got == expected, fmt, ap);
    va_end(ap);

    if (!rc) {
        diag("         got: %jd", got);
        diag("    expected: %jd", expected);
    }

    return rc;
}


static inline int TAP_PRINTF(5, 6)
tap_is_str(const char *file, int line, const char *got,
    const char *expected, const char *fmt, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, fmt);
    rc = tap_vok(file, line,
                 got == expected
                 || (got && expected && strcmp(got, expected) == 0),
                 fmt, ap);
    va_end(ap);

    if (!rc) {
        diag("         got: %s%s%s", got ? "\"" : "", got ? got : "NULL",
             got ? "\"" : "");
        diag("    expected: %s%s%s", expected ? "\"" : "",
             expected ? expected : "NULL", expected ? "\"" : "");
    }

    return rc;
}


static inline int TAP_PRINTF(6, 7)
tap_is_mem(const char *file, int line, const void *got, const void *expected,
    size_t len, const char *fmt, ...)
{
    int             rc;
    size_t          i;
    va_list         ap;
    const uint8_t  *g, *e;

    g = got;
    e = expected;

    for (i = 0; i < len && g[i] == e[i]; i++) {
        /* void */
    }

    va_start(ap, fmt);
    rc = tap_vok(file, line, i == len, fmt, ap);
    va_end(ap);

    if (!rc) {
        diag("    first difference at byte %zu of %zu:", i, len);
        diag("         got: 0x%02x", g[i]);
        diag("    expected: 0x%02x", e[i]);
    }

    return rc;
}


static inline int TAP_PRINTF(5, 6)
tap_has_str(const char *file, int line, const char *got, const char *needle,
    const char *fmt, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, fmt);
    rc = tap_vok(file, line, got && strstr(got, needle), fmt, ap);
    va_end(ap);

    if (!rc) {
        diag("    \"%s\"", got ? got : "NULL");
        diag("    does not contain \"%s\"", needle);
    }

    return rc;
}


#define ok(cond, ...)                                                        \
    tap_ok(__FILE__, __LINE__, (cond) != 0, __VA_ARGS__)

#define is_int(got, expected, ...)                                           \
    tap_is_int(__FILE__, __LINE__, (intmax_t) (got), (intmax_t) (expected), \
               __VA_ARGS__)

#define is_str(got, expected, ...)                                           \
    tap_is_str(__FILE__, __LINE__, got, expected, __VA_ARGS__)

#define is_mem(got, expected, len, ...)                                      \
    tap_is_mem(__FILE__, __LINE__, got, expected, len, __VA_ARGS__)

#define has_str(got, needle, ...)                                            \
    tap_has_str(__FILE__, __LINE__, got, needle, __VA_ARGS__)


/* the exit status: 0 only when every planned test ran and passed */
static inline int
done(void)
{
    if (tap_run != tap_planned) {
        diag("Looks like you planned %d tests but ran %d.", tap_planned,
             tap_run);
        return 255;
    }

    if (tap_failed) {
        diag("Looks like you failed %d test%s of %d.", tap_failed,
             tap_failed == 1 ? "" : "s", tap_run);
    }

    return tap_failed > 254 ? 254 : tap_failed;
}


#endif /* _TAP_H_INCLUDED_ */
