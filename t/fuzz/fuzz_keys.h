/*
 * nginx-loyalty fuzzing: the keys the cookie harnesses sign and verify
 * with.  t/fuzz/keys.txt has the same keys: the seed cookies were signed
 * with it.  The first secret is longer than a SHA-256 block, so that both
 * ways of turning a secret into an HMAC key are covered.
 */

#ifndef _FUZZ_KEYS_H_INCLUDED_
#define _FUZZ_KEYS_H_INCLUDED_


#include "loyalty_sign.h"
#include "fuzz.h"


static const char  fuzz_keys[] =
    "# fuzz keys: the first signs, both verify\n"
    "fz-new  94a2b9c021d7ae0cb51d67aa2dd2adb40ada67bf88d0f041c7ac4fc607721f31"
    "ff985addafac91a8e930738409d4ba7f915558dde92fc5938720f475625dedb2b8fea9"
    "8a4ae79ebaab3520c269405d25\n"
    "\n"
    "fz_old\tf1bdb4210c293b6d35faa641b7fe87ed27fc2c5aab02637dd90e088b5bc22367"
    "\r\n";


/* the key ring of fuzz_keys, or the harness stops: it cannot run without */
static loyalty_keyring_t *
fuzz_keyring(const char *harness)
{
    char                err[LOYALTY_ERRLEN];
    loyalty_keyring_t  *kr;

    kr = loyalty_keyring_parse(fuzz_keys, sizeof(fuzz_keys) - 1, err,
                               sizeof(err));
    if (kr == NULL || kr->nkeys != 2) {
        fprintf(stderr, "%s: bad built-in keys: %s\n", harness,
                kr ? "not two keys" : err);
        abort();
    }

    return kr;
}


#endif /* _FUZZ_KEYS_H_INCLUDED_ */
