# HTTP case "ours": ngx_http_loyalty_module verifies the signed member
# cookie, reads the member from the LMDB store and exposes it as variables.

CASE_TITLE="ngx_http_loyalty_module"

case_available() {
    [ -f "$MODULE_SO" ] || { echo "$MODULE_SO not built"; return 1; }
    [ -x "$LOYALTYCTL" ] || { echo "$LOYALTYCTL not built"; return 1; }
}

case_prepare() {
    local store="$CASE_DIR/store"
    rm -rf "$store"
    "$LOYALTYCTL" -s "$store" init
    "$LOYALTYCTL" -s "$store" import tiers "$DATA_DIR/tiers.jsonl"
    # Left owned by root, as deployed: the module hands the LMDB lock file
    # to the worker user itself.
    "$LOYALTYCTL" -s "$store" import members "$DATA_DIR/members.jsonl"
}

case_main_conf() {
    echo "load_module $MODULE_SO;"
}

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
}

case_location_conf() {
    echo 'add_header X-Member $loyalty_member;'
    echo 'add_header X-Tier $loyalty_tier;'
    echo 'add_header X-Stage $loyalty_stage;'
}

case_check() {
    ours_check "$1"
}

# ours_check URL: the checks of this case, also run by "ours_w"
ours_check() {
    local url=$1 cookie h
    check_member_headers "$url"
    # A cookie with a broken MAC must not identify anyone; otherwise the
    # benchmark would not be paying for the HMAC it claims to measure.
    cookie=$(head -n 1 "$DATA_DIR/cookies.tsv" | cut -f1)
    case $cookie in
        *A) cookie="${cookie%A}B" ;;
        *)  cookie="${cookie%?}A" ;;
    esac
    h=$(http_headers "$url" "$COOKIE_NAME=$cookie")
    [ -z "$(header X-Member <<<"$h")" ] \
        || die "$CASE: a cookie with a forged MAC was accepted"
}
