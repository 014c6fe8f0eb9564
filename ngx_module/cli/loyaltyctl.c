/*
 * loyaltyctl: the command-line tool for nginx-loyalty stores.
 *
 * main() reads the options every command shares and runs the command
 * named next from the table below, which also gives each command's lines
 * of --help, its usage (COMMAND --help, and what a usage error prints)
 * and how many arguments it takes: main answers --help and a wrong count
 * for every command (man/mkman makes loyaltyctl(1) from these texts).
 * Each command lives in the file named for it; what they share is in
 * loyaltyctl_util.c and is declared in loyaltyctl.h.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_code.h"
#include "loyaltyctl.h"

/* LOYALTY_VERSION, from debian/changelog */
#include "loyalty_version.h"


static int loyaltyctl_run(loyaltyctl_opts_t *o,
    const loyaltyctl_command_t *cmd, int argc, char **argv);
static void loyaltyctl_main_help(FILE *out);


/* COMMAND --help, in the order of the table */

static const char  loyaltyctl_usage_init[] =
    "usage: loyaltyctl -s DIR init\n"
    "Creates the store directory and its databases.  On an existing store,\n"
    "adds any database it lacks and leaves the rest as it is.  Exit 3 if\n"
    "it cannot be created or has another schema.\n";

static const char  loyaltyctl_usage_import[] =
    "usage: loyaltyctl -s DIR import members|tiers|prices|codes|rules FILE\n"
    "       loyaltyctl -s DIR import codes FILE [--hosts HOST[,HOST...]]\n"
    "Imports JSON Lines (\"-\" reads stdin) in one transaction.  A repeated\n"
    "id replaces the earlier record.  Any bad line rejects the whole file,\n"
    "naming the line and the reason, and leaves the store unchanged\n"
    "(exit 1).  Members and price overrides must name tiers already in\n"
    "the store.  Prices, and tiers that change prices, must keep the\n"
    "privilege guard: no tier above retail or above a lower-ranked tier.\n"
    "Codes must name members already in the store, and a target URL must\n"
    "name one of the --hosts; codes are kept in upper case (\"ab1\" then\n"
    "\"AB1\" is a repeated code), and created_at defaults to now.  A new\n"
    "code needs 6 characters, 4 different, and 2^28 possible codes of its\n"
    "kind, unless it says \"vanity\": true (kept with a warning).  A\n"
    "member's points are its balance: the difference from its ledger is\n"
    "written there as an \"adjust\" entry.\n"
    "Rules are one JSON document (schema/rules.schema.json) that replaces\n"
    "the store's rules; every tier it names must be in the store.\n";

static const char  loyaltyctl_usage_apply[] =
    "usage: loyaltyctl -s DIR apply FILE\n"
    "Applies events (schema/event.schema.json) from FILE (\"-\" reads\n"
    "stdin): a JSON array, or JSON Lines, as the admin API takes them, in\n"
    "one transaction.  Prints {\"events\":N,\"applied\":N,\"duplicates\":N};\n"
    "an event whose id was applied before is a duplicate and changes\n"
    "nothing.  If any event is invalid (bad JSON, a wrong field, an\n"
    "unknown member or order, a refund of more than is left to refund),\n"
    "nothing is applied: prints {\"events\":N,\"errors\":[{\"index\":I,\n"
    "\"error\":\"...\"}]}, I counting events from 0, and exits 1.  An\n"
    "order_id, refund_id or action id applied before with another member,\n"
    "amount, order or kind is such an error, with \"conflict\":{\"field\",\n"
    "\"stored\",\"given\"}; an exact replay is a duplicate.\n"
    "Without rules in the store, orders count orders and spend and make\n"
    "customers, but give no points, stages beyond customer or tiers.\n"
    "With --lua FILE, the script's cadences that orders trigger are\n"
    "scheduled in the same transaction, as nginx does; its event hook is\n"
    "not run.\n";

static const char  loyaltyctl_usage_get[] =
    "usage: loyaltyctl -s DIR get member ID\n"
    "       loyaltyctl -s DIR get tier NAME\n"
    "       loyaltyctl -s DIR get price SKU [--tier TIER]\n"
    "       loyaltyctl -s DIR get code CODE\n"
    "       loyaltyctl -s DIR get rules\n"
    "       loyaltyctl -s DIR get ledger ID [--limit N]\n"
    "       loyaltyctl -s DIR get referrals ID\n"
    "Prints the record as one line of JSON.  Exit 1 if it is absent.\n"
    "With --tier, prints the price that tier pays, after the privilege\n"
    "guard; the tier \"public\" pays retail.  Codes are looked up without\n"
    "regard to case and printed in upper case.  A ledger is the member's\n"
    "balance and points entries, oldest first (with --limit, the last N);\n"
    "referrals are the members the member referred (level1) and those\n"
    "they referred (level2, with the level-1 member they came via).\n";

static const char  loyaltyctl_usage_mint[] =
    "usage: loyaltyctl -s DIR mint-code MEMBER [--campaign C] [--target T]\n"
    "           [--expires DURATION] [--max-clicks N]\n"
    "           [--hosts HOST[,HOST...]]\n"
    "Mints a share code for a member already in the store and prints it:\n"
    "10 characters of " LOYALTY_CODE_ALPHABET ", never a code\n"
    "in use.  --campaign names a campaign (1-64 characters of\n"
    "[A-Za-z0-9_.-]).  --target is where the code's short link goes: a path\n"
    "on this site (\"/...\"), or an http or https URL whose host is one of\n"
    "--hosts; without it, the configured fallback.  --expires ends the code\n"
    "after DURATION (nginx's units: 12h, 30d), --max-clicks after N clicks.\n"
    "Exit 1 if the member is absent or the target's host is not in --hosts.\n";

static const char  loyaltyctl_usage_revoke[] =
    "usage: loyaltyctl -s DIR revoke-code CODE\n"
    "Marks a share code, given in any case, revoked: the module counts its\n"
    "clicks as rejected from then on.  Revoking a revoked code changes\n"
    "nothing.  Exit 1 if there is no such code.\n";

static const char  loyaltyctl_usage_set[] =
    "usage: loyaltyctl -s DIR set member ID FIELD=VALUE...\n"
    "Changes the fields named, and only those, of a member in the store,\n"
    "as PATCH .../members/ID does, and prints the member as JSON.  FIELD is\n"
    "one of tier, stage, referrer, joined_at, first_order_at,\n"
    "last_order_at, orders, spend, points, birthday, blocked\n"
    "(schema/member.schema.json); orders, spend and points take integers,\n"
    "blocked true or false, the others strings; an empty VALUE removes\n"
    "referrer, a time or birthday.  The member must then pass every check\n"
    "of an import (its tier in the store, no referrer loop); a change of\n"
    "points is written to the ledger as an \"adjust\" entry.  Exit 1 for\n"
    "an unknown member, field or a bad value, with nothing changed.\n";

static const char  loyaltyctl_usage_delete[] =
    "usage: loyaltyctl -s DIR delete member ID\n"
    "Deletes a member as DELETE .../members/ID does: with them go their\n"
    "ledger, share codes and their click counts, touches and due entries,\n"
    "and the referrals index on both sides; the members they referred no\n"
    "longer have a referrer.  A member made again under the id inherits\n"
    "nothing.  Exit 1 if there is no such member.\n";

static const char  loyaltyctl_usage_erase[] =
    "usage: loyaltyctl -s DIR erase MEMBER\n"
    "Erases a member, as POST .../members/ID/erase does, for a request\n"
    "under PIPL or GDPR: what identifies them goes, the shop's accounting\n"
    "stays under a pseudonym (\"erased-\" and 24 hex digits, a keyed hash\n"
    "of the id).  The record moves to the pseudonym, blocked, without\n"
    "birthday, joined_at or referrer, with its tier, stage, orders, spend\n"
    "and points; the ledger moves with it; events name the pseudonym;\n"
    "share codes are revoked and name it, their click counts kept; touches\n"
    "go; the members they referred no longer have a referrer.  A member\n"
    "cookie of the id finds no member from then on.  Prints\n"
    "{\"erased\":ID,\"pseudonym\":P}.  Exit 1 if there is no such member.\n";

static const char  loyaltyctl_usage_export[] =
    "usage: loyaltyctl -s DIR export MEMBER\n"
    "Prints everything the store holds about a member, for a subject\n"
    "access request, as one line of JSON (schema/member-export.schema.json):\n"
    "the record, the ledger, the downline, the share codes with their click\n"
    "counts per day, the events that name the member (as buyer, or as a\n"
    "referrer credited) and the touches scheduled for them.  Exit 1 if\n"
    "there is no such member.\n";

static const char  loyaltyctl_usage_prune[] =
    "usage: loyaltyctl -s DIR prune [--older-than DAYS] [--now TIME]\n"
    "       loyaltyctl prune [--older-than DAYS] [--now TIME] --nats URL\n"
    "           [--creds FILE | --user U [--password P]] [--stream NAME]\n"
    "           [--edge ID] [--replicas N]\n"
    "Deletes the events that happened, and the acknowledged touches that\n"
    "were due, more than DAYS days (default 400, 1 to 36500) before TIME\n"
    "(RFC 3339, default: now), looking at 1000 records in each write\n"
    "transaction so that nginx's writers go on between.  Pending touches\n"
    "stay.  An event deleted no longer makes its replay a duplicate, and a\n"
    "refund of its order is refused; choose DAYS beyond your refund window.\n"
    "Prints {\"events\":N,\"touches\":N,\"before\":TIME}.  With --nats,\n"
    "publishes the prune to the cluster's stream instead, as one message\n"
    "that every edge's follower applies (a replica's store refuses a\n"
    "local prune).\n";

static const char  loyaltyctl_usage_clicks[] =
    "usage: loyaltyctl -s DIR clicks [CODE] [--since YYYY-MM-DD]\n"
    "Prints the click counts nginx keeps per code and day (UTC), one line\n"
    "of JSON each, ordered by code, then day: total, unique, bot, self,\n"
    "rejected and attributed.  With CODE (any case), that code's only;\n"
    "with --since, that day's and later ones only.  Prints nothing when\n"
    "there are none.  Exit 1 if an entry does not decode (verify names\n"
    "it); the others are printed.\n";

static const char  loyaltyctl_usage_stat[] =
    "usage: loyaltyctl -s DIR stat\n"
    "Prints the schema version, creation time, map size and use, and the\n"
    "entries in each database (codes: one per share code; clicks: one per\n"
    "code and day with clicks).\n";

static const char  loyaltyctl_usage_verify[] =
    "usage: loyaltyctl -s DIR verify\n"
    "Decodes every record and resolves every reference (a member's tier\n"
    "and referrer, a price's tiers, a code's member), and checks that\n"
    "every price keeps the privilege guard and every member's points are\n"
    "the sum of their ledger.  Lists each problem on stdout; exit 1 if\n"
    "any.\n";

static const char  loyaltyctl_usage_sign[] =
    "usage: loyaltyctl sign-member ID --keys FILE [--ttl DURATION]\n"
    "Prints a member cookie value signed with the first key in FILE.\n"
    "DURATION uses nginx's units (30m, 12h, 30d); the default is 30d.\n";

static const char  loyaltyctl_usage_lua_check[] =
    "usage: loyaltyctl --lua FILE lua-check\n"
    "Loads the script as nginx loads loyalty_lua_file: in the same\n"
    "sandbox, within --lua-budget, --lua-time and --lua-memory.  Prints\n"
    "the file and the hooks it returns as one line of JSON.  Exit 1, with\n"
    "the reason (FILE:LINE: for an error in the script), if it does not\n"
    "load.\n";

static const char  loyaltyctl_usage_price[] =
    "usage: loyaltyctl -s DIR --lua FILE price SKU[:QTY]... "
    "[--member ID | --tier NAME]\n"
    "                  [--currency CODE] [--now TIME]\n"
    "Runs the script's price hook as the price API would at TIME (RFC\n"
    "3339, default now) for a member, or for a visitor of a tier (default:\n"
    "public), with the store's tiers and prices and the privilege guard.\n"
    "Prints {\"tier\",\"now\",\"items\":[{\"sku\",\"qty\",\"retail\",\"price\",\n"
    "\"saved\",\"promo\"}]} as one line of JSON.  A hook that fails is told\n"
    "on stderr (FILE:LINE) and the item priced without it; exit 1 then.\n";

static const char  loyaltyctl_usage_click[] =
    "usage: loyaltyctl -s DIR --lua FILE click CODE [--member ID] "
    "[--ua UA]\n"
    "                  [--host HOST] [--uri URI] [--replaced] "
    "[--now TIME]\n"
    "Runs the script's click hook as nginx would for a visitor following\n"
    "the share code CODE at TIME (RFC 3339, default now); --replaced: the\n"
    "visitor had another referrer's attribution.  Prints {\"code\",\n"
    "\"referrer\",\"refuse\",\"campaign\"} as one line of JSON.  Exit 1 for\n"
    "an unknown code or a hook that fails (told on stderr).\n";

static const char  loyaltyctl_usage_event[] =
    "usage: loyaltyctl -s DIR --lua FILE event JSON [--now TIME]\n"
    "Applies one event (schema/event.schema.json) with the store's rules\n"
    "as nginx would at TIME (RFC 3339, default now), its hook asked, in a\n"
    "transaction that is aborted: nothing is written.  Prints {\"hook\":\n"
    "{\"called\",\"defaults\",\"answer\"},\"member\":{...after}} as one line\n"
    "of JSON.  Exit 1 for a bad event or a hook that fails.\n";

static const char  loyaltyctl_usage_sweep[] =
    "usage: loyaltyctl -s DIR --lua FILE sweep [--now TIME]\n"
    "Runs the cadences that time triggers (birthday, inactive, calendar,\n"
    "yearly_top) of the script over every member, as loyalty_cadence_sweep\n"
    "does in nginx, and credits the rewards of touches that fell due.\n"
    "TIME is RFC 3339 (default: now).  Never schedules a touch twice.\n"
    "Prints {\"members\":N,\"scheduled\":N,\"declined\":N,\"failed\":N,\n"
    "\"rewards\":N,\"seconds\":S}; a condition that fails is reported on\n"
    "stderr and skipped.  Without --lua, only credits the rewards.\n";

static const char  loyaltyctl_usage_due[] =
    "usage: loyaltyctl -s DIR due [--until TIME] [--limit N]\n"
    "Lists the touches not yet acknowledged that are due by TIME (default:\n"
    "now), oldest first, as JSON Lines, leased or not, without claiming\n"
    "them.  --limit defaults to 1000.\n";

static const char  loyaltyctl_usage_ack[] =
    "usage: loyaltyctl -s DIR ack ID done|skipped|failed [--by STAFF]\n"
    "Acknowledges a touch as the admin API's POST .../due/ack does.\n"
    "Prints {\"id\":ID,\"status\":\"acked\"} (\"already\" when it was\n"
    "acknowledged so before).  Exit 1 for an unknown touch or one\n"
    "acknowledged with another outcome.\n";

static const char  loyaltyctl_usage_stats[] =
    "usage: loyaltyctl -s DIR cadence-stats [--since YYYY-MM-DD]\n"
    "Counts the touches due since the day (default: all) per cadence\n"
    "(scheduled, pending, done, skipped, failed, points rewarded) and per\n"
    "member of staff who acknowledged them (done, skipped, failed).\n";

static const char  loyaltyctl_usage_follow[] =
    "usage: loyaltyctl -s DIR [--lua FILE] follow --nats URL[,URL...]\n"
    "           [--creds FILE | --user U [--password P]] [--stream NAME]\n"
    "           [--edge ID] [--replicas N] [--batch N] [--once]\n"
    "Applies the cluster's stream (default LOYALTY) to the store, in\n"
    "stream order, up to --batch messages (default 512) per transaction\n"
    "with the last sequence applied, acknowledged once committed: killed\n"
    "at any moment, it starts again where the store stands.  The store\n"
    "becomes a replica of the stream: local imports and applies are\n"
    "refused from then on.  A message the store refuses is logged with its\n"
    "sequence and skipped.  Logs its lag every 10 s on stderr, and\n"
    "reconnects by itself.  --lua FILE: the script's cadences, for orders\n"
    "and sweeps.  --once applies what the stream holds and exits.  The\n"
    "stream is made (--replicas, default 1) if it does not exist.\n";

static const char  loyaltyctl_usage_checksum[] =
    "usage: loyaltyctl -s DIR checksum\n"
    "Prints {\"stream\",\"seq\",\"checksum\"}: the stream the store follows\n"
    "(null for none), the last sequence applied, and the SHA-256 of the\n"
    "replicated content (every database but the store's own bookkeeping).\n"
    "Two replicas at the same sequence have the same checksum.\n";

static const char  loyaltyctl_usage_bootstrap[] =
    "usage: loyaltyctl -s DIR bootstrap --from PEER\n"
    "Makes DIR (absent or empty) a copy of the replica PEER, consistent\n"
    "at PEER's sequence, which may be serving and following meanwhile;\n"
    "then `follow` takes the stream up from that sequence.\n";


/* in the order of loyaltyctl --help */
static const loyaltyctl_command_t  loyaltyctl_commands[] = {

    { "init", loyaltyctl_init,
      "  init                      create the store (idempotent)\n",
      loyaltyctl_usage_init, 0, 0 },

    { "import", loyaltyctl_import,
      "  import members|tiers|prices|codes FILE [--hosts HOST[,HOST...]]\n"
      "                            import JSON Lines (\"-\" for stdin)\n"
      "  import rules FILE         import the rules document\n",
      loyaltyctl_usage_import, 0, -1 },

    { "apply", loyaltyctl_apply,
      "  apply FILE                apply events (a JSON array or JSON "
      "Lines);\n"
      "                            with --lua, schedule their cadences\n",
      loyaltyctl_usage_apply, 1, 1 },

    { "get", loyaltyctl_get,
      "  get member ID             print a member as JSON\n"
      "  get tier NAME             print a tier as JSON\n"
      "  get price SKU [--tier T]  print a price, or a tier's price, as "
      "JSON\n"
      "  get code CODE             print a share code as JSON\n"
      "  get rules                 print the rules document\n"
      "  get ledger ID [--limit N] print a member's points ledger as JSON\n"
      "  get referrals ID          print a member's downline as JSON\n",
      loyaltyctl_usage_get, 0, -1 },

    { "mint-code", loyaltyctl_mint_code,
      "  mint-code MEMBER [--campaign C] [--target T] [--expires DURATION]\n"
      "            [--max-clicks N] [--hosts HOST[,HOST...]]\n"
      "                            mint a member's share code and print it\n",
      loyaltyctl_usage_mint, 0, -1 },

    { "revoke-code", loyaltyctl_revoke_code,
      "  revoke-code CODE          revoke a share code\n",
      loyaltyctl_usage_revoke, 1, 1 },

    { "set", loyaltyctl_set,
      "  set member ID FIELD=VALUE...\n"
      "                            change only the fields named of a "
      "member\n",
      loyaltyctl_usage_set, 3, -1 },

    { "delete", loyaltyctl_delete,
      "  delete member ID          delete a member, their ledger, codes,\n"
      "                            clicks and touches\n",
      loyaltyctl_usage_delete, 2, 2 },

    { "erase", loyaltyctl_erase,
      "  erase MEMBER              erase what identifies a member, keep the\n"
      "                            accounting under a pseudonym\n",
      loyaltyctl_usage_erase, 1, 1 },

    { "export", loyaltyctl_export,
      "  export MEMBER             print everything the store holds about a\n"
      "                            member as JSON\n",
      loyaltyctl_usage_export, 1, 1 },

    { "prune", loyaltyctl_prune,
      "  prune [--older-than DAYS] [--now TIME]\n"
      "                            delete events and acknowledged touches\n"
      "                            past retention\n",
      loyaltyctl_usage_prune, 0, -1 },

    { "clicks", loyaltyctl_clicks,
      "  clicks [CODE] [--since YYYY-MM-DD]\n"
      "                            print click counts per code and day as "
      "JSON\n",
      loyaltyctl_usage_clicks, 0, -1 },

    { "stat", loyaltyctl_stat,
      "  stat                      entries per database, schema, map use\n",
      loyaltyctl_usage_stat, 0, 0 },

    { "verify", loyaltyctl_verify,
      "  verify                    check every record and reference\n",
      loyaltyctl_usage_verify, 0, 0 },

    { "sign-member", loyaltyctl_sign_member,
      "  sign-member ID --keys FILE [--ttl DURATION]\n"
      "                            print a signed member cookie value\n",
      loyaltyctl_usage_sign, 0, -1 },

    { "lua-check", loyaltyctl_lua_check,
      "  lua-check                 load the --lua script, print its hooks\n",
      loyaltyctl_usage_lua_check, 0, 0 },

    { "price", loyaltyctl_dry,
      "  price SKU[:QTY]... [--member ID | --tier NAME] [--now TIME]\n"
      "                            dry run of the --lua script's price hook\n",
      loyaltyctl_usage_price, 0, -1 },

    { "click", loyaltyctl_dry,
      "  click CODE [--member ID] [--ua UA] [--now TIME]\n"
      "                            dry run of its click hook\n",
      loyaltyctl_usage_click, 0, -1 },

    { "event", loyaltyctl_dry,
      "  event JSON [--now TIME]   dry run of its event hook (nothing is\n"
      "                            written)\n",
      loyaltyctl_usage_event, 0, -1 },

    { "sweep", loyaltyctl_sweep,
      "  sweep [--now TIME]        run the --lua script's time-triggered\n"
      "                            cadences; credit rewards that fell due\n",
      loyaltyctl_usage_sweep, 0, -1 },

    { "due", loyaltyctl_due,
      "  due [--until TIME] [--limit N]\n"
      "                            list touches due, as JSON Lines\n",
      loyaltyctl_usage_due, 0, -1 },

    { "ack", loyaltyctl_ack,
      "  ack ID done|skipped|failed [--by STAFF]\n"
      "                            acknowledge a touch\n",
      loyaltyctl_usage_ack, 0, -1 },

    { "cadence-stats", loyaltyctl_cadence_stats,
      "  cadence-stats [--since YYYY-MM-DD]\n"
      "                            count touches per cadence and staff\n",
      loyaltyctl_usage_stats, 0, -1 },

    { "stats", loyaltyctl_stats,
      "  stats --by code|campaign|referrer|day [--from DAY] [--to DAY]\n"
      "        [--top N] [--csv]   conversions per code, campaign, referrer\n"
      "                            or day; --by funnel|cadence\n",
      NULL, 0, 0 },

    /* a cluster of edges: loyaltyctl_follow.c */
    { "follow", loyaltyctl_follow,
      "  follow --nats URL[,URL...] [--once]\n"
      "                            apply the cluster's stream to the store\n",
      loyaltyctl_usage_follow, 0, -1 },

    { "checksum", loyaltyctl_checksum,
      "  checksum                  the replicated content's digest and the\n"
      "                            stream sequence\n",
      loyaltyctl_usage_checksum, 0, 0 },

    { "bootstrap", loyaltyctl_bootstrap,
      "  bootstrap --from PEER     copy a replica to start a new edge\n",
      loyaltyctl_usage_bootstrap, 2, 2 },

    { NULL, NULL, NULL, NULL, 0, 0 }
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


/*
 * The options before the command into o: -1 to run the command, or the
 * exit code (--help, --version, a usage error).
 */
static int
loyaltyctl_main_options(int argc, char **argv, loyaltyctl_opts_t *o)
{
    int                   c;
    const loyalty_tz_t   *tz;

    /* in the order of LOYALTYCTL_OPT_LUA_BUDGET, _TIME, _MEMORY */
    loyaltyctl_option_t   lua[] = {
        { "lua-budget", 0, 1, loyaltyctl_lua_budget, &o->lua_budget,
          ": 1000 to 100000000 instructions" },
        { "lua-time", 0, 1, loyaltyctl_lua_time, &o->lua_time,
          ": 1ms to 60s" },
        { "lua-memory", 0, 1, loyaltyctl_lua_memory, &o->lua_memory,
          ": at least 1m" }
    };

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

    /* no --lua, --tz (UTC) or usage yet */
    memset(o, 0, sizeof(loyaltyctl_opts_t));

    o->store = getenv("LOYALTY_STORE");
    o->lua_budget = LOYALTYCTL_LUA_BUDGET;
    o->lua_time = LOYALTYCTL_LUA_TIME;
    o->lua_memory = LOYALTYCTL_LUA_MEMORY;

    /* "+": options after the command belong to the command */
    while ((c = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->store = optarg;
            break;

        case LOYALTYCTL_OPT_LUA:
            o->lua = optarg;
            break;

        case LOYALTYCTL_OPT_LUA_BUDGET:
        case LOYALTYCTL_OPT_LUA_TIME:
        case LOYALTYCTL_OPT_LUA_MEMORY:
            if (loyaltyctl_option_set(&lua[c - LOYALTYCTL_OPT_LUA_BUDGET],
                                      optarg)
                != LOYALTYCTL_OK)
            {
                return LOYALTYCTL_USAGE;
            }
            break;

        case LOYALTYCTL_OPT_TZ:
            o->tz = optarg;
            if (loyaltyctl_tz(o, &tz) != LOYALTYCTL_OK) {
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

    return -1;
}


int
main(int argc, char **argv)
{
    int                 c;
    const char         *cmd;
    loyaltyctl_opts_t   o;

    c = loyaltyctl_main_options(argc, argv, &o);
    if (c != -1) {
        return c;
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
            return loyaltyctl_run(&o, &loyaltyctl_commands[c], argc, argv);
        }
    }

    fprintf(stderr, "loyaltyctl: unknown command \"%s\"\n", cmd);
    loyaltyctl_main_help(stderr);

    return LOYALTYCTL_USAGE;
}


/* COMMAND --help, and a wrong count of arguments, for every command */
static int
loyaltyctl_run(loyaltyctl_opts_t *o, const loyaltyctl_command_t *cmd,
    int argc, char **argv)
{
    o->usage = cmd->usage;

    if (cmd->usage == NULL) {
        return cmd->handler(o, argc, argv);
    }

    if (loyaltyctl_wants_help(argc, argv, cmd->usage)) {
        return LOYALTYCTL_OK;
    }

    if (argc - 1 < cmd->min || (cmd->max >= 0 && argc - 1 > cmd->max)) {
        return loyaltyctl_usage(cmd->usage);
    }

    return cmd->handler(o, argc, argv);
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
