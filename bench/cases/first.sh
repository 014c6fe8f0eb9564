# HTTP case "first": "ours" with the verified-cookie cache off
# (loyalty_member_cache 0), so that every request is a first visit: the
# HMAC-SHA256 of the cookie and a B-tree walk of the members database,
# as for a returning member the cache has not seen (after a reload, or
# one of more members than the cache holds).  Compared with "bare".
. "$ROOT/bench/cases/ours.sh"

CASE_TITLE="ngx_http_loyalty_module, first visits (no member cache)"

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
    echo "loyalty_member_cache 0;"
}
