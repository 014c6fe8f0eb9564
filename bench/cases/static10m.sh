# HTTP case "static10m": static10's JSON file, served by nginx with the
# module identifying the visitor as price10 does (the member cookie
# verified or found in the member cache, the member read): the limit for
# price10 with the identification both pay, so that price10/static10m is
# the price API's own cost.  Proposed beside static10, which identifies
# nobody; not in the default BENCH_CASES.
PRICE_SKUS=10
. "$ROOT/bench/cases/price.inc"
. "$ROOT/bench/cases/ours.sh"
CASE_TITLE="static JSON, $PRICE_SKUS SKU(s), the member identified"

case_prepare() {
    local store="$CASE_DIR/store"
    mkdir -p "$CASE_DIR/www/api"
    price_static_body > "$CASE_DIR/www/api/prices"
    rm -rf "$store"
    "$LOYALTYCTL" -s "$store" init
    "$LOYALTYCTL" -s "$store" import tiers "$DATA_DIR/tiers.jsonl"
    "$LOYALTYCTL" -s "$store" import members "$DATA_DIR/members.jsonl"
}

# "set" reads the tier in the rewrite phase: the identification the
# price API makes, without a header price10 does not send
case_location_conf() {
    echo 'location = /api/prices {'
    echo "    root $CASE_DIR/www;"
    echo '    default_type application/json;'
    echo '    set $bench_price_tier $loyalty_price_tier;'
    price_headers | sed 's/^/    /'
    echo '}'
}

case_check() {
    local body
    body=$(curl -s -f "$1") || die "$CASE: GET $1 failed"
    [ "$body" = "$(price_static_body)" ] || die "$CASE: unexpected body"
}
