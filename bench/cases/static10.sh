# HTTP case "static10": the limit for price10, nginx without the module
# serving a JSON file the size of the price API's answer for 10 SKUs.
PRICE_SKUS=10
. "$ROOT/bench/cases/price.inc"
CASE_TITLE="static JSON, 10 SKUs"

case_prepare() {
    mkdir -p "$CASE_DIR/www/api"
    price_static_body > "$CASE_DIR/www/api/prices"
}

case_location_conf() {
    echo 'location = /api/prices {'
    echo "    root $CASE_DIR/www;"
    echo '    default_type application/json;'
    price_headers | sed 's/^/    /'
    echo '}'
}

case_check() {
    local body
    body=$(curl -s -f "$1") || die "$CASE: GET $1 failed"
    [ "$body" = "$(price_static_body)" ] || die "$CASE: unexpected body"
}
