# HTTP case "price10": the price API (loyalty_price_api) for 10 SKUs,
# every request from a random member with a signed cookie.
PRICE_SKUS=10
. "$ROOT/bench/cases/price.inc"
CASE_TITLE="price API, 10 SKUs"

case_available() {
    [ -f "$MODULE_SO" ] || { echo "$MODULE_SO not built"; return 1; }
    [ -x "$LOYALTYCTL" ] || { echo "$LOYALTYCTL not built"; return 1; }
}

case_prepare() {
    local store="$CASE_DIR/store"
    rm -rf "$store"
    price_write_prices "$CASE_DIR/prices.jsonl"
    "$LOYALTYCTL" -s "$store" init
    "$LOYALTYCTL" -s "$store" import tiers "$DATA_DIR/tiers.jsonl"
    "$LOYALTYCTL" -s "$store" import members "$DATA_DIR/members.jsonl"
    "$LOYALTYCTL" -s "$store" import prices "$CASE_DIR/prices.jsonl"
}

case_main_conf() {
    echo "load_module $MODULE_SO;"
}

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
}

case_location_conf() {
    echo 'location = /api/prices { loyalty_price_api; }'
}

case_check() {
    local url=$1 cookie tier body
    read -r cookie _ tier _ < <(head -n 1 "$DATA_DIR/cookies.tsv")
    body=$(curl -s -f -H "Cookie: $COOKIE_NAME=$cookie" "$url") \
        || die "$CASE: GET $url failed"
    case $body in
        "{\"tier\":\"$tier\",\"currency\":\"CNY\",\"items\":[{\"sku\":\"sku0001\""*) ;;
        *) die "$CASE: unexpected answer for a $tier member: $body" ;;
    esac
    [ "$(grep -o '"sku"' <<<"$body" | wc -l)" -eq "$PRICE_SKUS" ] \
        || die "$CASE: expected $PRICE_SKUS items: $body"
}
