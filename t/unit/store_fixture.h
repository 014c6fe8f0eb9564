/*
 * nginx-loyalty unit tests: a store of their own in a temporary
 * directory, and its removal.  Every function is static inline: each
 * test uses what it needs.
 */

#ifndef _STORE_FIXTURE_H_INCLUDED_
#define _STORE_FIXTURE_H_INCLUDED_


#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loyalty_store.h"


/*
 * Makes the directory of tmp, a mkdtemp() template ("/tmp/NAME-XXXXXX"),
 * and creates a store in it: 0, or -1 with err.
 */
static inline int
fixture_store_open(char *tmp, loyalty_store_t *st, char *err, size_t errlen)
{
    if (mkdtemp(tmp) == NULL) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }

    return loyalty_store_open(st, tmp, LOYALTY_STORE_CREATE, err, errlen);
}


/* removes path and, for a directory, everything in it */
static inline void
fixture_rm_tree(const char *path)
{
    DIR            *dir;
    char            sub[PATH_MAX];
    struct stat     sb;
    struct dirent  *de;

    if (lstat(path, &sb) == -1) {
        return;
    }

    if (S_ISDIR(sb.st_mode) && (dir = opendir(path)) != NULL) {
        while ((de = readdir(dir)) != NULL) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")
                && (size_t) snprintf(sub, sizeof(sub), "%s/%s", path,
                                     de->d_name)
                   < sizeof(sub))
            {
                fixture_rm_tree(sub);
            }
        }

        closedir(dir);
        rmdir(path);
        return;
    }

    unlink(path);
}


/* closes the store of fixture_store_open() and removes its directory */
static inline void
fixture_store_remove(char *tmp, loyalty_store_t *st)
{
    loyalty_store_close(st);
    fixture_rm_tree(tmp);
}


#endif /* _STORE_FIXTURE_H_INCLUDED_ */
