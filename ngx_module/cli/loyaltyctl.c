/*
 * loyaltyctl: the command-line tool for nginx-loyalty stores.
 *
 * main() reads the options every command shares and runs the command
 * named next from the table below, which also gives each command's lines
 * of --help (man/mkman makes loyaltyctl(1) from them).  Each command
 * lives in the file named for it; what they share is in loyaltyctl_util.c
 * and is declared in loyaltyctl.h.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyaltyctl.h"

/* LOYALTY_VERSION, from debian/changelog */
#include "loyalty_version.h"


static void loyaltyctl_main_help(FILE *out);


/* in the order of loyaltyctl --help */
static const loyaltyctl_command_t  loyaltyctl_commands[] = {

    { "init", loyaltyctl_init,
      "  init                      create the store (idempotent)\n" },

    { "import", loyaltyctl_import,
      "  import members|tiers|prices|codes FILE [--hosts HOST[,HOST...]]\n"
      "                            import JSON Lines (\"-\" for stdin)\n"
      "  import rules FILE         import the rules document\n" },

    { "apply", loyaltyctl_apply,
      "  apply FILE                apply events (a JSON array or JSON "
      "Lines);\n"
      "                            with --lua, schedule their cadences\n" },

    { "get", loyaltyctl_get,
      "  get member ID             print a member as JSON\n"
      "  get tier NAME             print a tier as JSON\n"
      "  get price SKU [--tier T]  print a price, or a tier's price, as "
      "JSON\n"
      "  get code CODE             print a share code as JSON\n"
      "  get rules                 print the rules document\n"
      "  get ledger ID [--limit N] print a member's points ledger as JSON\n"
      "  get referrals ID          print a member's downline as JSON\n" },

    { "mint-code", loyaltyctl_mint_code,
      "  mint-code MEMBER [--campaign C] [--target T] [--expires DURATION]\n"
      "            [--max-clicks N] [--hosts HOST[,HOST...]]\n"
      "                            mint a member's share code and print it\n"
    },

    { "revoke-code", loyaltyctl_revoke_code,
      "  revoke-code CODE          revoke a share code\n" },

    { "set", loyaltyctl_set,
      "  set member ID FIELD=VALUE...\n"
      "                            change only the fields named of a "
      "member\n" },

    { "delete", loyaltyctl_delete,
      "  delete member ID          delete a member, their ledger, codes,\n"
      "                            clicks and touches\n" },

    { "erase", loyaltyctl_erase,
      "  erase MEMBER              erase what identifies a member, keep the\n"
      "                            accounting under a pseudonym\n" },

    { "export", loyaltyctl_export,
      "  export MEMBER             print everything the store holds about a\n"
      "                            member as JSON\n" },

    { "prune", loyaltyctl_prune,
      "  prune [--older-than DAYS] [--now TIME]\n"
      "                            delete events and acknowledged touches\n"
      "                            past retention\n" },

    { "clicks", loyaltyctl_clicks,
      "  clicks [CODE] [--since YYYY-MM-DD]\n"
      "                            print click counts per code and day as "
      "JSON\n" },

    { "stat", loyaltyctl_stat,
      "  stat                      entries per database, schema, map use\n" },

    { "verify", loyaltyctl_verify,
      "  verify                    check every record and reference\n" },

    { "sign-member", loyaltyctl_sign_member,
      "  sign-member ID --keys FILE [--ttl DURATION]\n"
      "                            print a signed member cookie value\n" },

    { "lua-check", loyaltyctl_lua_check,
      "  lua-check                 load the --lua script, print its hooks\n"
    },

    { "price", loyaltyctl_dry_price,
      "  price SKU[:QTY]... [--member ID | --tier NAME] [--now TIME]\n"
      "                            dry run of the --lua script's price hook\n"
    },

    { "click", loyaltyctl_dry_click,
      "  click CODE [--member ID] [--ua UA] [--now TIME]\n"
      "                            dry run of its click hook\n" },

    { "event", loyaltyctl_dry_event,
      "  event JSON [--now TIME]   dry run of its event hook (nothing is\n"
      "                            written)\n" },

    { "sweep", loyaltyctl_sweep,
      "  sweep [--now TIME]        run the --lua script's time-triggered\n"
      "                            cadences; credit rewards that fell due\n" },

    { "due", loyaltyctl_due,
      "  due [--until TIME] [--limit N]\n"
      "                            list touches due, as JSON Lines\n" },

    { "ack", loyaltyctl_ack,
      "  ack ID done|skipped|failed [--by STAFF]\n"
      "                            acknowledge a touch\n" },

    { "cadence-stats", loyaltyctl_cadence_stats,
      "  cadence-stats [--since YYYY-MM-DD]\n"
      "                            count touches per cadence and staff\n" },

    { "stats", loyaltyctl_stats,
      "  stats --by code|campaign|referrer|day [--from DAY] [--to DAY]\n"
      "        [--top N] [--csv]   conversions per code, campaign, referrer\n"
      "                            or day; --by funnel|cadence\n" },

    /* a cluster of edges: loyaltyctl_follow.c */
    { "follow", loyaltyctl_follow,
      "  follow --nats URL[,URL...] [--once]\n"
      "                            apply the cluster's stream to the store\n"
    },

    { "checksum", loyaltyctl_checksum,
      "  checksum                  the replicated content's digest and the\n"
      "                            stream sequence\n" },

    { "bootstrap", loyaltyctl_bootstrap,
      "  bootstrap --from PEER     copy a replica to start a new edge\n" },

    { NULL, NULL, NULL }
};


static const char  loyaltyctl_usage_head[] =
    "usage: loyaltyctl [-s DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n";

static const char  loyaltyctl_usage_options[] =
    "\n"
    "options:\n"
    "  -s, --store DIR           the store directory (default: "
    "$LOYALTY_STORE)\n"
    "      --lua FILE            the operator's Lua script, as nginx's\n"
    "                            loyalty_lua_file\n"
    "      --lua-budget N        VM instructions per call (default 100000)\n"
    "      --lua-time TIME       wall time per call, ms or s for units\n"
    "                            (default 50ms)\n"
    "      --lua-memory SIZE     bytes per VM, k or m for units (default "
    "16m)\n"
    "      --tz NAME             the shop's time zone, an IANA name such as\n"
    "                            Asia/Shanghai, as nginx's loyalty_timezone\n"
    "                            (default UTC)\n"
    "  -h, --help                this help; COMMAND --help for a command's\n"
    "      --version             print the name and version\n"
    "\n"
    "exit status: 0 success, 1 rejected input, absent record or problems\n"
    "found, 2 usage error, 3 the store cannot be opened or written.\n";


int
main(int argc, char **argv)
{
    int                  c;
    const char          *cmd;
    loyaltyctl_opts_t    o;
    const loyalty_tz_t  *tz;

    enum {
        LOYALTYCTL_OPT_LUA = 256,
        LOYALTYCTL_OPT_LUA_BUDGET,
        LOYALTYCTL_OPT_LUA_TIME,
        LOYALTYCTL_OPT_LUA_MEMORY,
        LOYALTYCTL_OPT_TZ,
        LOYALTYCTL_OPT_VERSION
    };

    static const struct option  longopts[] = {
        { "store",      required_argument, NULL, 's' },
        { "lua",        required_argument, NULL, LOYALTYCTL_OPT_LUA },
        { "lua-budget", required_argument, NULL, LOYALTYCTL_OPT_LUA_BUDGET },
        { "lua-time",   required_argument, NULL, LOYALTYCTL_OPT_LUA_TIME },
        { "lua-memory", required_argument, NULL, LOYALTYCTL_OPT_LUA_MEMORY },
        { "tz",         required_argument, NULL, LOYALTYCTL_OPT_TZ },
        { "help",       no_argument,       NULL, 'h' },
        { "version",    no_argument,       NULL, LOYALTYCTL_OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };

    o.store = getenv("LOYALTY_STORE");
    o.lua = NULL;
    o.lua_budget = LOYALTYCTL_LUA_BUDGET;
    o.lua_time = LOYALTYCTL_LUA_TIME;
    o.lua_memory = LOYALTYCTL_LUA_MEMORY;
    o.tz = NULL;

    /* "+": options after the command belong to the command */
    while ((c = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.store = optarg;
            break;

        case LOYALTYCTL_OPT_LUA:
            o.lua = optarg;
            break;

        case LOYALTYCTL_OPT_LUA_BUDGET:
            if (loyaltyctl_lua_budget(optarg, &o.lua_budget) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-budget \"%s\": "
                        "1000 to 100000000 instructions\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_LUA_TIME:
            if (loyaltyctl_lua_time(optarg, &o.lua_time) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-time \"%s\": "
                        "1ms to 60s\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_LUA_MEMORY:
            if (loyaltyctl_lua_memory(optarg, &o.lua_memory) != 0) {
                fprintf(stderr, "loyaltyctl: invalid --lua-memory \"%s\": "
                        "at least 1m\n", optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_TZ:
            o.tz = optarg;
            if (loyaltyctl_tz(&o, &tz) != LOYALTYCTL_OK) {
                return LOYALTYCTL_USAGE;
            }
            break;

        case 'h':
            loyaltyctl_main_help(stdout);
            return LOYALTYCTL_OK;

        case LOYALTYCTL_OPT_VERSION:
            puts("loyaltyctl (nginx-loyalty) " LOYALTY_VERSION);
            return LOYALTYCTL_OK;

        default:
            loyaltyctl_main_help(stderr);
            return LOYALTYCTL_USAGE;
        }
    }

    if (optind == argc) {
        loyaltyctl_main_help(stderr);
        return LOYALTYCTL_USAGE;
    }

    cmd = argv[optind];
    argc -= optind;
    argv += optind;

    for (c = 0; loyaltyctl_commands[c].name; c++) {
        if (strcmp(cmd, loyaltyctl_commands[c].name) == 0) {
            return loyaltyctl_commands[c].handler(&o, argc, argv);
        }
    }

    fprintf(stderr, "loyaltyctl: unknown command \"%s\"\n", cmd);
    loyaltyctl_main_help(stderr);

    return LOYALTYCTL_USAGE;
}


/* loyaltyctl --help: the commands from the table */
static void
loyaltyctl_main_help(FILE *out)
{
    size_t  i;

    fputs(loyaltyctl_usage_head, out);

    for (i = 0; loyaltyctl_commands[i].name; i++) {
        fputs(loyaltyctl_commands[i].help, out);
    }

    fputs(loyaltyctl_usage_options, out);
}
