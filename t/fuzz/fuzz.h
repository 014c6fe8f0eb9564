/*
 * nginx-loyalty: helpers shared by the libFuzzer harnesses in t/fuzz.
 */

#ifndef _LOYALTY_FUZZ_H_INCLUDED_
#define _LOYALTY_FUZZ_H_INCLUDED_


#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>


/*
 * An invariant that does not hold is a finding: abort() so that libFuzzer
 * saves the input, after saying which invariant it was.  Unlike assert(),
 * this cannot be compiled out by -DNDEBUG.
 */
#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#endif /* _LOYALTY_FUZZ_H_INCLUDED_ */
