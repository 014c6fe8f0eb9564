#!/usr/bin/env bash
# The conversion counters' benchmark (`make bench-stats`), apart from
# `make bench` because building its store takes minutes.  See
# bench/README.md, "Conversion statistics".
#
#   1. a store of BENCH_MEMBERS members (1,000,000) and BENCH_CODES codes
#      (100,000), with BENCH_DAYS days (60) of counters written through
#      the real paths (build/bench/stats_bench build)
#   2. each question over the last 30 days, BENCH_RUNS times (200):
#      p50, p99, max
#   3. events/s of `loyaltyctl apply` (the admin API's batch code) with
#      the counters, against the same loyaltyctl built without them
#      (build/bench/loyaltyctl-nocounters: LOYALTY_STATS_BENCH_OFF), in
#      turn in the same run, on copies of that store: batches of 100
#      events (signups by a code, orders), one commit each, and one
#      transaction of all of them
#   BENCH_BASE=DIR (optional): another build's stats_bench and loyaltyctl
#      (copied from its build/ and build/bench/), measured in the same run:
#      its questions on a store it builds (the same counts, in its layout:
#      a build before blocks writes day records), this build's questions
#      on that store too (the day records a store made before blocks
#      keeps), its events/s in turn with the others
#
# It reports; it does not gate.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/bench/work}
WORK=$BENCH_DIR/stats
BENCH=$ROOT/build/bench/stats_bench
CTL=$ROOT/build/loyaltyctl
OFF=$ROOT/build/bench/loyaltyctl-nocounters
EVENTS=${BENCH_EVENTS:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
BASE=${BENCH_BASE:-}

export BENCH_MEMBERS=${BENCH_MEMBERS:-1000000}
export BENCH_CODES=${BENCH_CODES:-100000}
export BENCH_DAYS=${BENCH_DAYS:-60}
export BENCH_ACTIVE=${BENCH_ACTIVE:-20000}
export BENCH_SIGNUPS=${BENCH_SIGNUPS:-2000}
export BENCH_RUNS=${BENCH_RUNS:-200}

die() { echo "bench/stats.sh: $*" >&2; exit 1; }

[ -x "$BENCH" ] && [ -x "$CTL" ] && [ -x "$OFF" ] \
    || die "make all build/bench/stats_bench build/bench/loyaltyctl-nocounters"
command -v mdb_copy >/dev/null || die "mdb_copy not found (lmdb-utils)"
[ -z "$BASE" ] || { [ -x "$BASE/stats_bench" ] && [ -x "$BASE/loyaltyctl" ]; } \
    || die "BENCH_BASE=$BASE has no stats_bench and loyaltyctl"

mkdir -p "$WORK"
RESULTS=$WORK/results.txt
: > "$RESULTS"
say() { echo "$*" | tee -a "$RESULTS"; }

# 1. the store

rm -rf "$WORK/store"
say "== store: $BENCH_MEMBERS members, $BENCH_CODES codes, $BENCH_DAYS days" \
    "of $BENCH_ACTIVE codes clicked and $BENCH_SIGNUPS signups a day"
"$BENCH" build "$WORK/store" | tee -a "$RESULTS"
say "$(du -sh "$WORK/store/data.mdb" | cut -f1) data.mdb"

# 2. the questions

say "== questions over the last 30 days"
"$BENCH" query "$WORK/store" | tee -a "$RESULTS"
if [ -n "$BASE" ]; then
    rm -rf "$WORK/store-base"
    say "== BENCH_BASE's build: the same counts in the store it builds"
    "$BASE/stats_bench" build "$WORK/store-base" | sed 's/^/base: /' \
        | tee -a "$RESULTS"
    say "$(du -sh "$WORK/store-base/data.mdb" | cut -f1) data.mdb"
    "$BASE/stats_bench" query "$WORK/store-base" | sed 's/^/base: /' \
        | tee -a "$RESULTS"
    say "== this build on BENCH_BASE's store"
    "$BENCH" query "$WORK/store-base" | sed 's/^/this on base: /' \
        | tee -a "$RESULTS"
fi

# 3. events/s with and without the counters

rm -rf "$WORK/events"
mkdir -p "$WORK/events"
"$BENCH" events "$EVENTS" > "$WORK/events/all.jsonl"
split -l 100 -d -a 4 "$WORK/events/all.jsonl" "$WORK/events/b"

# $1 loyaltyctl, $2 batches|one: events/s of one round on a fresh copy
# (BENCH_BASE's of its own store), then the 512-byte blocks it wrote
# (/usr/bin/time %O: the pages its commits dirtied, which they sync) per
# 100 events
rate() {
    local ctl=$1 how=$2 t0 t1 from=$WORK/store
    [ "$ctl" != "$BASE/loyaltyctl" ] || from=$WORK/store-base
    rm -rf "$WORK/run"
    mkdir -p "$WORK/run"
    mdb_copy "$from" "$WORK/run"
    sync
    t0=$(date +%s.%N)
    /usr/bin/time -f %O -o "$WORK/blocks" bash -c '
        if [ "$3" = one ]; then
            "$2" -s "$1/run" apply "$1/events/all.jsonl" > /dev/null
        else
            for f in "$1"/events/b*; do
                "$2" -s "$1/run" apply "$f" > /dev/null || exit 1
            done
        fi' rate "$WORK" "$ctl" "$how" || die "$ctl apply failed"
    t1=$(date +%s.%N)
    echo "$EVENTS $t0 $t1 $(tail -1 "$WORK/blocks")" \
        | awk '{ printf "%.0f %.0f\n", $1 / ($3 - $2), $4 * 100 / $1 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# $1: field of "events/s blocks" lines on stdin: their median
med() { awk -v f="$1" '{ print $f }' | median; }

say "== events/s of loyaltyctl apply, $EVENTS events, median of $ROUNDS" \
    "rounds, each side in turn (without: loyaltyctl-nocounters)"
cost() { echo "$1 $2" | awk '{ printf "%.1f", 100 * (1 - $1 / $2) }'; }

rates() { printf '%s\n' "$@" | awk '{ printf "%s%s", s, $1; s = " " }'; }

for how in batches one; do
    with=() without=() base=()
    for r in $(seq "$ROUNDS"); do
        without+=("$(rate "$OFF" "$how")")
        with+=("$(rate "$CTL" "$how")")
        [ -z "$BASE" ] || base+=("$(rate "$BASE/loyaltyctl" "$how")")
    done
    w=$(printf '%s\n' "${with[@]}" | med 1)
    wo=$(printf '%s\n' "${without[@]}" | med 1)
    say "$how: with counters $w/s ($(rates "${with[@]}")), without $wo/s" \
        "($(rates "${without[@]}")): cost $(cost "$w" "$wo")%;" \
        "blocks written per 100 events $(printf '%s\n' "${with[@]}" | med 2)" \
        "against $(printf '%s\n' "${without[@]}" | med 2)"
    if [ -n "$BASE" ]; then
        b=$(printf '%s\n' "${base[@]}" | med 1)
        say "$how: BENCH_BASE's build with counters $b/s" \
            "($(rates "${base[@]}")): cost $(cost "$b" "$wo")%; blocks" \
            "$(printf '%s\n' "${base[@]}" | med 2)"
    fi
done

rm -rf "$WORK/run" "$WORK/store-base"
say "figures in $RESULTS"
