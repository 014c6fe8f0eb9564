# HTTP case "ours_w": the reads of "ours" (member cookie, three headers
# from $loyalty_* variables) while a second wrk posts BENCH_WRITE_RATE
# events per second (default 1,000: 10 batches of 100 a second) to the
# admin API of the same nginx.  Compared with "ours", the reads alone.
#
# The writer (bench/wrk/events.lua, paced) shares core 1 with the reading
# wrk; the worker's thread pool, where each batch is one LMDB write
# transaction committed and synced, inherits worker_cpu_affinity, so the
# writes' CPU is taken from the reading worker's core 0 and is in its CPU
# figures.  Every batch is also a new store snapshot: the worker reads
# which members it wrote and retires only their entries of its member
# cache (a bucket of member ids each, see ngx_http_loyalty_cache.c), so
# the reads pay for looking at each snapshot and for reading those members
# again (no HMAC).  The worker's main thread alone is reported beside the
# verdict (cpu_main_us_per_req_*): the reads and the admin API's HTTP side,
# without the pool.
. "$ROOT/bench/cases/ours.sh"
. "$ROOT/bench/cases/events.inc"

WRITE_RATE=${BENCH_WRITE_RATE:-1000}
# two connections, so that one slow answer does not hold the next batch
WRITER_CONNECTIONS=2
CASE_TITLE="ngx_http_loyalty_module, reads while $WRITE_RATE events/s are written"

case_prepare() {
    events_prepare
    rm -f "$BENCH_DIR/logs/writes-$CASE.txt"
}

case_check() {
    ours_check "$1"
    events_check "$1"
}

# case_load LOG URL: the writer starts a second before the reads' warm-up
# and stops after their measured run; its figures go to
# logs/writes-ours_w.txt.  This runs in a subshell: the trap stops the
# writer if the reads fail.
case_load() {
    local log=$1 url=$2 wlog="${1%.txt}-writer.txt" wpid n secs eps p99
    local pool us
    taskset -c 1 wrk -t1 -c"$WRITER_CONNECTIONS" \
        -d"$((BENCH_WARMUP + BENCH_SECONDS + 120))s" --latency \
        -s "$ROOT/bench/wrk/events.lua" "${url%"$CASE_PATH"}/admin/events" \
        -- "$(events_members)" "$EVENTS_TOKEN" "$EVENTS_BATCH" \
        "$(awk -v r="$WRITE_RATE" -v b="$EVENTS_BATCH" 'BEGIN { print r / b }')" \
        "$BENCH_SEED" > "$wlog" 2>&1 &
    wpid=$!
    trap "kill -INT $wpid 2>/dev/null" EXIT
    sleep 1
    kill -0 "$wpid" 2>/dev/null || die "$CASE: the writer failed: $(cat "$wlog")"

    # the thread pool's share of core 0 while the reads run
    wrk_run_pool "$log" "$url" "$ROOT/bench/wrk/cookies.lua" \
        "$DATA_DIR/cookies.tsv" "$COOKIE_NAME"
    pool=$POOL_PCT

    kill -INT "$wpid"
    wait "$wpid" || die "$CASE: the writer failed: $(cat "$wlog")"
    trap - EXIT
    events_answers "$wlog" > /dev/null || exit 1
    read -r n secs < <(awk '/ requests in / { sub(/s,$/, "", $4); print $1, $4 }' "$wlog")
    [ -n "$secs" ] || die "$CASE: no request count in $wlog"
    eps=$(awk -v n="$n" -v s="$secs" -v b="$EVENTS_BATCH" \
              'BEGIN { printf "%.0f", n * b / s }')
    p99=$(wrk_p99 "$wlog")
    # the pool's CPU an event, whatever the reads a second
    us=$(awk -v p="$pool" -v e="$eps" \
             'BEGIN { printf "%.1f", (e > 0 ? p * 10000 / e : 0) }')
    echo "$eps $p99 $pool $us" >> "$BENCH_DIR/logs/writes-$CASE.txt"
    log "$CASE: the writer posted $eps events/s (batch p99 $p99 ms);" \
        "the worker's thread pool used $pool% of a core, $us us an event"
    awk -v e="$eps" -v r="$WRITE_RATE" 'BEGIN { exit !(e < 0.95 * r) }' \
        && warn "$CASE: the writer fell behind: $eps events/s of" \
                "$WRITE_RATE; the reads were not measured under the" \
                "intended load"
    return 0
}

case_after() {
    local applied
    applied=$(events_answers "${1%.txt}-writer.txt")
    events_store "$applied" $((WRITER_CONNECTIONS * EVENTS_BATCH))
}

case_summary() {
    local f="$BENCH_DIR/logs/writes-$CASE.txt"
    result_set "write_rate_$CASE" "$WRITE_RATE"
    result_set "writes_per_s_$CASE" "$(cut -d' ' -f1 "$f" | median)"
    result_set "writes_p99_ms_$CASE" "$(cut -d' ' -f2 "$f" | median)"
    result_set "writes_rounds_$CASE" "$(cut -d' ' -f1 "$f" | paste -sd,)"
    result_set "writes_pool_cpu_pct_$CASE" "$(cut -d' ' -f3 "$f" | median)"
    result_set "writes_pool_us_per_event_$CASE" \
        "$(cut -d' ' -f4 "$f" | median)"
    ours_w_main_ratio
}

# ours_w_main_ratio: the worker's main thread alone per read, against
# "ours" round by round (when "ours" ran too): the reads' own CPU, without
# the thread pool's writes (the admin API's HTTP side stays in).  Only a
# figure beside the verdict, which is on all of the worker's threads.
ours_w_main_ratio() {
    case " $BENCH_CASES " in *" ours "*) ;; *) return 0 ;; esac
    set -- $(round_ratios \
        "$(cut -d' ' -f6 "$BENCH_DIR/logs/rounds-ours.txt" | paste -sd,)" \
        "$(cut -d' ' -f6 "$BENCH_DIR/logs/rounds-$CASE.txt" | paste -sd,)")
    [ $# -eq 3 ] || return 0
    result_set "cpu_main_ratio_${CASE}_ours" "$1"
    result_set "cpu_main_ratio_rounds_${CASE}_ours" "$2-$3"
}
