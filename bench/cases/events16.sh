# HTTP case "events16": events per second through the admin API, batches
# of BENCH_EVENTS_BATCH (100) posted by wrk from 16 connections.
EVENTS_CONNECTIONS=16
. "$ROOT/bench/cases/events.inc"
events_throughput_case
