# HTTP case "events4": events per second through the admin API, batches
# of BENCH_EVENTS_BATCH (100) posted by wrk from 4 connections.
EVENTS_CONNECTIONS=4
. "$ROOT/bench/cases/events.inc"
events_throughput_case
