# HTTP case "anon": the module as in "ours", visitors with no cookie at all
# (most of a shop's traffic: the module finds no member cookie and names
# nobody).  Compared with "bare", which sends its constant headers to
# requests that carry a member cookie, so "anon" parses a little less
# request and sends a little less response than "bare": the ratio is an
# upper bound of what an anonymous visitor costs, the cost itself is what
# the worker spends per request.
. "$ROOT/bench/cases/ours.sh"

CASE_TITLE="ngx_http_loyalty_module, visitors without a cookie"

case_check() {
    local h
    h=$(http_headers "$1")
    [ -z "$(header X-Member <<<"$h")" ] \
        || die "$CASE: a request without a cookie named a member"
}

case_load() {
    wrk_run "$1" "$2" "$ROOT/bench/wrk/anon.lua"
}
