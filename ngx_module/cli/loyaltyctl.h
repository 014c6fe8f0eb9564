/*
 * loyaltyctl: the command-line tool for nginx-loyalty stores.
 */

#ifndef _LOYALTYCTL_H_INCLUDED_
#define _LOYALTYCTL_H_INCLUDED_


#include <jansson.h>

#include "loyalty_cadence.h"
#include "loyalty_lua.h"
#include "loyalty_store.h"
#include "loyalty_util.h"


/* exit codes, documented in the README and in --help */
#define LOYALTYCTL_OK           0
#define LOYALTYCTL_DATA         1   /* rejected input, absent record,
                                       problems found by verify */
#define LOYALTYCTL_USAGE        2
#define LOYALTYCTL_STORE        3   /* the store cannot be opened or
                                       written */


#define LOYALTYCTL_HOSTS_MAX    64
/* "YYYY-MM-DD" */
#define LOYALTYCTL_DAY_LEN      10

/* as nginx's loyalty_lua_budget, loyalty_lua_time and loyalty_lua_memory:
 * the core's (loyalty_lua.h) */
#define LOYALTYCTL_LUA_BUDGET        LOYALTY_LUA_BUDGET_DEFAULT
#define LOYALTYCTL_LUA_BUDGET_MIN    LOYALTY_LUA_BUDGET_MIN
#define LOYALTYCTL_LUA_BUDGET_MAX    LOYALTY_LUA_BUDGET_MAX
#define LOYALTYCTL_LUA_TIME          LOYALTY_LUA_MSEC
#define LOYALTYCTL_LUA_TIME_MAX      LOYALTY_LUA_TIME_MAX
#define LOYALTYCTL_LUA_MEMORY        LOYALTY_LUA_MEMORY_DEFAULT
#define LOYALTYCTL_LUA_MEMORY_MIN    LOYALTY_LUA_MEMORY_MIN
#define LOYALTYCTL_LUA_ERRLEN        2048


typedef struct {
    const char  *store;
    const char  *lua;         /* --lua FILE, or NULL */
    unsigned     lua_budget;
    unsigned     lua_time;    /* ms */
    size_t       lua_memory;
    const char  *tz;          /* --tz NAME, or NULL: UTC */
    const char  *usage;       /* the command's, for its usage errors */
} loyaltyctl_opts_t;


/* the host names given with --hosts; they point into the arguments */
typedef struct {
    const char  *name[LOYALTYCTL_HOSTS_MAX];
    size_t       len[LOYALTYCTL_HOSTS_MAX];
    size_t       n;
} loyaltyctl_hosts_t;


/*
 * A command: its name, what runs it (argv[0] is the name; it returns an
 * exit code), its lines in loyaltyctl --help, and
 * its usage, which COMMAND --help (or -h) anywhere after it prints and
 * its usage errors print on stderr (NULL: the command does both itself).
 * It takes from min to max arguments after its name (max -1: no more
 * is checked; a command with options counts them after its options).
 */
typedef int loyaltyctl_handler_pt(const loyaltyctl_opts_t *o, int argc,
    char **argv);

typedef struct {
    const char             *name;
    loyaltyctl_handler_pt  *handler;
    const char             *help;
    const char             *usage;
    int                     min;
    int                     max;
} loyaltyctl_command_t;


/*
 * An option of a command: --name, and -letter when letter is not 0.
 * With a value, set parses it into dest (0, or -1: "loyaltyctl: invalid
 * --name \"VALUE\"" then hint, exit 2, or LOYALTYCTL_OPTION_USAGE: the
 * command's usage on stderr, exit 2); without, set is called with NULL.
 */
typedef struct {
    const char  *name;
    int          letter;
    int          value;
    int        (*set)(const char *arg, void *dest);
    void        *dest;
    const char  *hint;
} loyaltyctl_option_t;

#define LOYALTYCTL_OPTIONS_MAX  16
#define LOYALTYCTL_OPTION_USAGE (-2)


/*
 * A write of a command: loyaltyctl_write() runs step in a write
 * transaction of its store (w->st) and commits it.  step returns 0 (done),
 * LOYALTYCTL_WRITE_MORE (commit, and run it again: a long job in bounded
 * transactions), LOYALTYCTL_WRITE_REFUSED (nothing written, exit 1: the
 * step said why), LOYALTYCTL_WRITE_FAILED (nothing written, exit 3: the
 * step said why), or an LMDB error.  After MDB_MAP_FULL the map grows
 * and the step runs again, the state (if any: the part of data the
 * steps advance) first put back as that step found it.  MDB_NOTFOUND
 * from a step is the record it needs absent: with absent set, "no
 * ABSENT \"KEY\"" and exit 1.  With input, the file ("-" for stdin) is
 * read into buf once the store is open (a store that cannot be opened is
 * said before a missing file), and room is per_byte bytes for each of
 * its bytes.
 *
 * This is the one place where loyaltyctl writes: to make its writes go
 * elsewhere (published to a stream, say), change loyaltyctl_write().
 */
/* room made before a write of one record: it and the pages it may split */
#define LOYALTYCTL_ROOM            ((size_t) 1 << 20)

#define LOYALTYCTL_WRITE_MORE      (-1000)
#define LOYALTYCTL_WRITE_REFUSED   (-1001)
#define LOYALTYCTL_WRITE_FAILED    (-1002)

typedef struct loyaltyctl_write_s  loyaltyctl_write_t;

struct loyaltyctl_write_s {
    const char       *what;       /* names failures: "mint-code" */
    const char       *undone;     /* appended to them, or NULL */
    const char       *absent;     /* the step's record: "member" */
    const char       *key;        /* its key, of key_len */
    size_t            key_len;
    size_t            room;       /* bytes free before the first step */
    size_t            regrow;     /* growth after MDB_MAP_FULL, doubled
                                     each time (default: 2 * room, or
                                     1 MiB) */
    const char       *input;      /* a file the steps write from */
    unsigned          per_byte;
    int             (*step)(loyaltyctl_write_t *w, MDB_txn *txn);
    void             *data;
    void             *state;      /* saved before each step, or NULL */
    size_t            state_size;

    /* set by loyaltyctl_write() and the step */
    loyalty_store_t   st;
    char             *buf;        /* the input, for the steps */
    size_t            len;
    char              err[LOYALTY_ERRLEN];  /* a step's own reason */
};


/* the store opened, its map grown, the steps run: an exit code */
int loyaltyctl_write(const loyaltyctl_opts_t *o, loyaltyctl_write_t *w);
/*
 * loyaltyctl_write() of one record: the step (with data) writes the
 * record key of len bytes (an absent one: "no ABSENT \"KEY\"", exit 1),
 * after making room bytes free; what names failures.  An exit code.
 */
int loyaltyctl_write_record(const loyaltyctl_opts_t *o, const char *what,
    const char *absent, const char *key, size_t len, size_t room,
    int (*step)(loyaltyctl_write_t *w, MDB_txn *txn),
    void *data);
/* the store opened read-only, a read transaction begun: an exit code */
int loyaltyctl_read_begin(const loyaltyctl_opts_t *o, const char *what,
    loyalty_store_t *st, MDB_txn **txn);
void loyaltyctl_read_end(loyalty_store_t *st, MDB_txn *txn);
/*
 * The store opened read-only, read (with data) run in a read transaction,
 * both closed: LOYALTYCTL_OK, or an exit code after saying why (an LMDB
 * error from read: "loyaltyctl: WHAT: LMDB's message", exit 3).  The one
 * way of the commands whose reads fail only as the store does.
 */
int loyaltyctl_read(const loyaltyctl_opts_t *o, const char *what,
    int (*read)(loyalty_store_t *st, MDB_txn *txn, void *data), void *data);
/* "loyaltyctl: no WHAT \"KEY\""; LOYALTYCTL_DATA */
int loyaltyctl_absent(const char *what, const char *key, size_t len);
/* "loyaltyctl: WHAT: LMDB's message"; LOYALTYCTL_STORE */
int loyaltyctl_store_failed(const char *what, int rc);
int loyaltyctl_open(const loyaltyctl_opts_t *o, loyalty_store_t *st,
    unsigned flags);

int loyaltyctl_wants_help(int argc, char **argv, const char *usage);
int loyaltyctl_usage(const char *usage);
/*
 * A command's options, in the table ending with a NULL name, each set as
 * it comes; then from min to max other arguments (max -1: any), from
 * argv[optind]; a time option (loyaltyctl_time(): --now, --until) is now
 * unless given.  LOYALTYCTL_OK, the command goes on; or LOYALTYCTL_USAGE
 * after saying why (an unknown option or a wrong count: o->usage on
 * stderr).  COMMAND --help is main's.
 */
int loyaltyctl_options(const loyaltyctl_opts_t *o, int argc, char **argv,
    const loyaltyctl_option_t *opts, int min, int max);
/* opt->set(arg): LOYALTYCTL_OK, LOYALTYCTL_USAGE after saying so, or
 * LOYALTYCTL_OPTION_USAGE (the caller prints the usage) */
int loyaltyctl_option_set(const loyaltyctl_option_t *opt, const char *arg);
/* setters of options: the value (const char *), a flag (int 1), host
 * names (loyaltyctl_hosts_t); and loyaltyctl_time(), loyaltyctl_parse_day() */
int loyaltyctl_set_string(const char *arg, void *dest);
int loyaltyctl_set_flag(const char *arg, void *dest);
int loyaltyctl_set_hosts(const char *arg, void *dest);
/* "loyaltyctl: invalid OPTION \"VALUE\""; LOYALTYCTL_USAGE */
int loyaltyctl_invalid(const char *option, const char *value);
/* prints obj as one line and releases it; NULL is out of memory */
int loyaltyctl_print_json(json_t *obj);
/* one line of verify's report: "db/key: what" */
void loyaltyctl_problem(size_t *n, const char *db, MDB_val *key,
    const char *what);
/* a reference that its lookup (rc) did not find: the problem "db/key:
 * unknown FIELD \"REF\"" and 0; rc, another error or 0, as it is */
int loyaltyctl_problem_absent(int rc, const char *field, const char *ref,
    size_t len, size_t *n, const char *db, MDB_val *key);
/* adds the comma-separated host names of one --hosts; -1 if malformed */
int loyaltyctl_hosts_add(loyaltyctl_hosts_t *h, const char *arg);
/* "YYYY-MM-DD" to days since 1970-01-01 (int64_t): 0, or -1 if
 * malformed; the setter of --since options */
int loyaltyctl_parse_day(const char *s, void *day);
/* a count of 1 or more in decimal digits: 0, or -1 */
int loyaltyctl_parse_count(const char *s, int64_t *out);
/* a number from 1 to max (<= INT_MAX), as strtol() reads it: 0, or -1 */
int loyaltyctl_parse_int(const char *s, long max, int *out);
/* RFC 3339 (int64_t): 0, or -1 if malformed; the setter of --now and
 * --until */
int loyaltyctl_time(const char *arg, void *t);
/* the whole file, "-" for stdin; NULL after saying why on stderr */
char *loyaltyctl_read_all(const char *path, size_t *len);

/* --lua-budget (unsigned), --lua-time (unsigned ms) and --lua-memory
 * (size_t), setters of loyaltyctl_option_t: 0, or -1 if out of range or
 * malformed */
int loyaltyctl_lua_budget(const char *arg, void *budget);
int loyaltyctl_lua_time(const char *arg, void *msec);
int loyaltyctl_lua_memory(const char *arg, void *memory);
/* the --tz zone in *tz, loaded once (NULL: UTC): an exit code */
int loyaltyctl_tz(const loyaltyctl_opts_t *o, const loyalty_tz_t **tz);

/* the --lua script loaded, its table at the top of the stack; exit code */
int loyaltyctl_lua_open(const loyaltyctl_opts_t *o, loyalty_lua_t *vm);

/*
 * The --lua script's cadences, in *cads from malloc(), and its VM in vm;
 * none without --lua.  An exit code; on success the caller ends with
 * loyaltyctl_cadences_free().
 */
int loyaltyctl_cadences(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t **cads);
void loyaltyctl_cadences_free(const loyaltyctl_opts_t *o, loyalty_lua_t *vm,
    loyalty_cadences_t *cads);
/* verify's checks of the codes and clicks databases */
int loyaltyctl_verify_codes(loyalty_store_t *st, MDB_txn *txn,
    size_t *problems);

/*
 * The commands of the table in loyaltyctl.c, each in the file named for
 * it: loyaltyctl_store.c (init, stat), _get.c (get
 * member|tier|price|code|rules|ledger|referrals), _members.c (set member
 * ID FIELD=VALUE..., delete member ID, erase ID, export ID), _codes.c
 * (mint-code, revoke-code, clicks), _sign.c (sign-member), _lua.c
 * (lua-check), _dryrun.c (price, click and event, by argv[0]: dry runs of
 * the --lua script's hooks), _cadence.c (sweep, due, ack, cadence-stats),
 * _stats.c (stats --by ...: the conversion counters, JSON or CSV),
 * _nats.c (import --nats), _follow.c (follow, checksum, bootstrap).
 */
loyaltyctl_handler_pt  loyaltyctl_init, loyaltyctl_stat;
loyaltyctl_handler_pt  loyaltyctl_verify, loyaltyctl_get;
loyaltyctl_handler_pt  loyaltyctl_import, loyaltyctl_apply;
loyaltyctl_handler_pt  loyaltyctl_set, loyaltyctl_delete, loyaltyctl_erase,
    loyaltyctl_export;
loyaltyctl_handler_pt  loyaltyctl_prune;
loyaltyctl_handler_pt  loyaltyctl_mint_code, loyaltyctl_revoke_code,
    loyaltyctl_clicks;
loyaltyctl_handler_pt  loyaltyctl_sign_member, loyaltyctl_lua_check;
loyaltyctl_handler_pt  loyaltyctl_dry;
loyaltyctl_handler_pt  loyaltyctl_sweep, loyaltyctl_due, loyaltyctl_ack,
    loyaltyctl_cadence_stats;
loyaltyctl_handler_pt  loyaltyctl_stats;
loyaltyctl_handler_pt  loyaltyctl_import_nats;
loyaltyctl_handler_pt  loyaltyctl_follow, loyaltyctl_checksum,
    loyaltyctl_bootstrap;

/* verify's checks of the stats and attributions databases */
int loyaltyctl_verify_stats(loyalty_store_t *st, MDB_txn *txn,
    size_t *problems);

/* loyaltyctl_import.c: an import kind's database (-1 unknown); an
 * "import" message of the cluster's stream, applied by the follower */
int loyaltyctl_import_db(const char *kind);
int loyaltyctl_import_replicated(loyalty_store_t *st, MDB_txn *txn,
    const char *what, const char *buf, size_t len, json_t *hosts,
    int64_t now, char *err, size_t errlen);
/* loyaltyctl_nats.c: NATS JetStream, the stream of a cluster of edges */
int loyaltyctl_nats_wanted(int argc, char **argv);
/* says so and returns 1 when the store is a replica that follows a stream */
int loyaltyctl_replica_refuse(loyalty_store_t *st, const char *what);


#endif /* _LOYALTYCTL_H_INCLUDED_ */
