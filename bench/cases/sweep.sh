# HTTP case "sweep": the reads of "ours" while nginx's own cadence sweep
# (loyalty_cadence_sweep 1s, lua/examples/cadences.lua) walks all the
# members over and over: a sweep of 1,000 members a transaction in the
# worker's thread pool, a second's pause, the next.  Every round starts
# from a copy of a store swept once beforehand by loyaltyctl, so each
# sweep is the steady state of a shop's store (nothing new to schedule,
# every member looked at).  Compared with "ours", the reads alone.
#
# The thread pool inherits the worker's core (worker_cpu_affinity), so the
# sweep's CPU time is in the worker's: its verdict is on requests/s, what
# a shop sees, and the sweep thread's own share of the core is reported.
. "$ROOT/bench/cases/ours.sh"

CASE_TITLE="ngx_http_loyalty_module, reads while the cadence sweep runs"
SWEEP_LUA=$ROOT/lua/examples/cadences.lua

case_prepare() {
    local p="$CASE_DIR/store.pristine"
    rm -rf "$p" "$CASE_DIR/store"
    "$LOYALTYCTL" -s "$p" init
    "$LOYALTYCTL" -s "$p" import tiers "$DATA_DIR/tiers.jsonl"
    "$LOYALTYCTL" -s "$p" import members "$DATA_DIR/members.jsonl"
    # the first sweep schedules what is due (about half a million
    # touches); the ones nginx runs then find their work done
    "$LOYALTYCTL" -s "$p" --lua "$SWEEP_LUA" sweep > /dev/null
    rm -f "$BENCH_DIR/logs/sweeps-$CASE.txt"
}

case_before() {
    rm -rf "$CASE_DIR/store"
    cp -a "$CASE_DIR/store.pristine" "$CASE_DIR/store"
    chown -R www-data "$CASE_DIR/store"
}

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
    echo "loyalty_lua_file $SWEEP_LUA;"
    echo "loyalty_cadence_sweep 1s;"
}

# the reads as in "ours", and the share of the core the sweep's thread
# took meanwhile
case_load() {
    wrk_run_pool "$1" "$2" "$ROOT/bench/wrk/cookies.lua" \
        "$DATA_DIR/cookies.tsv" "$COOKIE_NAME"
    echo "$POOL_PCT" >> "$BENCH_DIR/logs/sweeps-$CASE.txt"
    log "$CASE: the sweep's thread used $POOL_PCT% of the worker's core"
    # paced, a sweep may take well under 1% of the core: any time at all
    # says it ran
    [ "$POOL_NS" -gt 0 ] \
        || die "$CASE: the sweep did not run (see $CASE_DIR/logs/error.log)"
}

case_summary() {
    result_set "sweep_pool_cpu_pct_$CASE" \
        "$(median < "$BENCH_DIR/logs/sweeps-$CASE.txt")"
}
