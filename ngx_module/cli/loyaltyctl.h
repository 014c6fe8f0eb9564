/*
 * loyaltyctl: the command-line tool for nginx-loyalty stores.
 */

#ifndef _LOYALTYCTL_H_INCLUDED_
#define _LOYALTYCTL_H_INCLUDED_


#include "loyalty_store.h"
#include "loyalty_util.h"


/* exit codes, documented in the README and in --help */
#define LOYALTYCTL_OK           0
#define LOYALTYCTL_DATA         1   /* rejected input, absent record,
                                       problems found by verify */
#define LOYALTYCTL_USAGE        2
#define LOYALTYCTL_STORE        3   /* the store cannot be opened or
                                       written */


typedef struct {
    const char  *store;
} loyaltyctl_opts_t;


int loyaltyctl_open(const loyaltyctl_opts_t *o, loyalty_store_t *st,
    unsigned flags);
int loyaltyctl_wants_help(int argc, char **argv, const char *usage);
int loyaltyctl_usage(const char *usage);

int loyaltyctl_import(const loyaltyctl_opts_t *o, int argc, char **argv);


#endif /* _LOYALTYCTL_H_INCLUDED_ */
