/*
 * nginx-loyalty: signing keys and signed cookie values.
 *
 * Keys file: lines "KID SECRET_HEX" (32 to 128 bytes of secret), blank
 * lines and "#" comments.  The first key signs; every key verifies, so a
 * new key can be put first while cookies signed with the old one live on.
 *
 * Member cookie: ID "~" EXP "~" KID "~" MAC, where MAC is the base64url
 * (no padding) HMAC-SHA256 of "member~ID~EXP~KID" and EXP is unix seconds.
 *
 * Attribution cookie: CODE "~" AT "~" KID "~" MAC, MAC over
 * "ref2~CODE~AT~KID~REFERRER", AT the click's unix time.  The referrer is
 * not in the cookie (member ids are phone numbers and e-mail addresses):
 * it is the code's owner, read from the store when the cookie comes back,
 * and the MAC holds only for the owner the code had when it was signed.
 * The old form, CODE "~" REFERRER "~" AT "~" KID "~" MAC with its MAC over
 * "ref~CODE~REFERRER~AT~KID", still verifies, so that it can be replaced.
 * The window is the configuration's, so that shortening it applies to
 * cookies already out.  Times are 1-12 digits without a leading zero: one
 * encoding.
 */

#ifndef _LOYALTY_SIGN_H_INCLUDED_
#define _LOYALTY_SIGN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "loyalty_util.h"


#define LOYALTY_MAC_LEN             32
#define LOYALTY_MAC_B64_LEN         43
#define LOYALTY_SECRET_MIN          32
#define LOYALTY_SECRET_MAX          128
#define LOYALTY_KEYS_MAX            16
#define LOYALTY_COOKIE_MAX          (LOYALTY_ID_MAX + 20 + LOYALTY_KID_MAX \
                                     + LOYALTY_MAC_B64_LEN + 3)

/* the longest share code a cookie carries (loyalty_code.h's maximum) */
#define LOYALTY_REF_CODE_MAX        32
#define LOYALTY_REF_COOKIE_MAX      (LOYALTY_REF_CODE_MAX + LOYALTY_ID_MAX \
                                     + 12 + LOYALTY_KID_MAX \
                                     + LOYALTY_MAC_B64_LEN + 4)

#define LOYALTY_DOMAIN_MEMBER       "member"
#define LOYALTY_DOMAIN_REF          "ref"
#define LOYALTY_DOMAIN_REF2         "ref2"

/* the most fields a signed value has before its KID and MAC */
#define LOYALTY_FIELDS_MAX          3

/* the largest expiry a cookie carries: 12 digits, the year 33658 */
#define LOYALTY_EXPIRES_MAX         999999999999LL

/* an attribution cookie whose click lies ahead of now by more is refused */
#define LOYALTY_REF_CLOCK_SKEW      300


typedef enum {
    LOYALTY_COOKIE_VALID = 0,
    LOYALTY_COOKIE_INVALID,
    LOYALTY_COOKIE_EXPIRED,

    /* why a cookie is invalid: see loyalty_member_cookie_why() */
    LOYALTY_COOKIE_MALFORMED,
    LOYALTY_COOKIE_UNKNOWN_KEY,
    LOYALTY_COOKIE_BAD_MAC
} loyalty_cookie_status_e;


typedef struct {
    const char     *code;
    size_t          code_len;
    const char     *referrer;       /* parsed: only in an old-form cookie */
    size_t          referrer_len;
    int64_t         at;
    unsigned        legacy:1;       /* the old form, with the referrer */
} loyalty_ref_cookie_t;


typedef struct {
    char            kid[LOYALTY_KID_MAX];
    size_t          kid_len;
    /* hash states after the key's inner and outer pads were absorbed */
    EVP_MD_CTX     *inner;
    EVP_MD_CTX     *outer;
} loyalty_key_t;


typedef struct {
    loyalty_key_t   keys[LOYALTY_KEYS_MAX];
    size_t          nkeys;
    EVP_MD_CTX     *work;
} loyalty_keyring_t;


/* parses a keys file's contents; err names the line on failure */
loyalty_keyring_t *loyalty_keyring_parse(const char *buf, size_t len,
    char *err, size_t errlen);
loyalty_keyring_t *loyalty_keyring_load(const char *path, char *err,
    size_t errlen);
/* a ring of one key of raw secret bytes, no kid; NULL on failure */
loyalty_keyring_t *loyalty_keyring_secret(const uint8_t *secret, size_t len);
void loyalty_keyring_free(loyalty_keyring_t *kr);

/* HMAC-SHA256 over domain "~" msg */
int loyalty_keyring_mac(loyalty_keyring_t *kr, const loyalty_key_t *key,
    const char *domain, const char *msg, size_t len,
    uint8_t mac[LOYALTY_MAC_LEN]);
/* the same, then "~" bound unless bound is NULL */
int loyalty_keyring_mac_bound(loyalty_keyring_t *kr,
    const loyalty_key_t *key, const char *domain, const char *msg,
    size_t len, const char *bound, size_t bound_len,
    uint8_t mac[LOYALTY_MAC_LEN]);

/* writes a cookie value of at most LOYALTY_COOKIE_MAX bytes; -1 on error */
long loyalty_member_cookie_sign(loyalty_keyring_t *kr, const char *id,
    size_t id_len, int64_t expires, char *out);

/*
 * On LOYALTY_COOKIE_VALID or _EXPIRED, *id points into value and
 * *expires is the cookie's expiry.
 */
loyalty_cookie_status_e loyalty_member_cookie_verify(loyalty_keyring_t *kr,
    const char *value, size_t len, int64_t now, const char **id,
    size_t *id_len, int64_t *expires);

/* why a cookie verify refused: "bad MAC", "unknown key id", "malformed"... */
const char *loyalty_member_cookie_why(loyalty_keyring_t *kr,
    const char *value, size_t len, int64_t now);


/*
 * Writes an attribution cookie value of at most LOYALTY_REF_COOKIE_MAX
 * bytes, bound to the referrer but without it; -1 on a code that is not
 * 3-32 characters of [A-Za-z0-9_-], an invalid referrer id or a time out
 * of range.
 */
long loyalty_ref_cookie_sign(loyalty_keyring_t *kr, const char *code,
    size_t code_len, const char *referrer, size_t referrer_len, int64_t at,
    char *out);
/*
 * Splits either form without checking its MAC: the code to find the
 * referrer by (3-32 characters of [A-Za-z0-9_-], as written), the time,
 * and for the old form the referrer it names.
 * 0, or -1 on a value that has neither form.
 */
int loyalty_ref_cookie_parse(const char *value, size_t len,
    loyalty_ref_cookie_t *ref);
/*
 * 0 when value is genuine and was signed for referrer (the owner of its
 * code now): ref's code points into value, its referrer is referrer.
 * -1 on anything else.
 */
int loyalty_ref_cookie_verify(loyalty_keyring_t *kr, const char *value,
    size_t len, const char *referrer, size_t referrer_len,
    loyalty_ref_cookie_t *ref);
/*
 * loyalty_ref_cookie_verify() of a value that loyalty_ref_cookie_parse()
 * has split into ref already: the MAC and the referrer only.
 */
int loyalty_ref_cookie_check(loyalty_keyring_t *kr, const char *value,
    size_t len, const char *referrer, size_t referrer_len,
    loyalty_ref_cookie_t *ref);
/*
 * A click at "at" seen at "now" under a window of "window" seconds:
 * LOYALTY_COOKIE_VALID while now - at < window, _EXPIRED from then on,
 * _INVALID when the click lies more than LOYALTY_REF_CLOCK_SKEW ahead.
 */
loyalty_cookie_status_e loyalty_ref_cookie_window(int64_t at, int64_t now,
    int64_t window);


#endif /* _LOYALTY_SIGN_H_INCLUDED_ */
