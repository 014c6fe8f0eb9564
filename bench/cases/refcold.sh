# HTTP case "refcold": "ref" with the worker's code cache off
# (loyalty_code_cache 0), so that every click reads its code and the
# owner's referrer from the store's B-trees, as for a code the cache has
# not seen.  bench/scale runs it over stores of more and more codes;
# compared with "refbare".
. "$ROOT/bench/cases/ref.sh"

CASE_TITLE="ngx_http_loyalty_module, referral clicks (no code cache)"

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
    echo "loyalty_click_zone clicks 16m;"
    echo "loyalty_click_flush ${BENCH_CLICK_FLUSH:-10s};"
    echo "loyalty_code_cache 0;"
}
