# HTTP case "refbare": stock nginx, no module, answering the referral
# requests of the "ref" case with a response of the same shape: X-Ref-Status
# ("new" without an attribution cookie, "kept" with one), X-Referrer and
# X-Referrer2 with constant member ids, and a Set-Cookie of a real signed
# attribution cookie's length only for requests without a loyalty_ref
# cookie.  Only the module's work is missing: the ceiling for "ref".
. "$ROOT/bench/cases/ref.inc"
CASE_TITLE="nginx, no module, referral response"

case_prepare() {
    ref_need_data
}

# The constant cookie is a genuine one from refs.tsv: same code, member id,
# key id and MAC lengths as the cookies "ref" sends.  The maps cost a hash
# lookup of the cookie, about what nginx would spend on any such rule.
case_http_conf() {
    local cookie
    cookie=$(awk -F'\t' '$2 != "-" { print $2; exit }' "$REF_TSV")
    [ -n "$cookie" ] || die "$CASE: no returning visitor in $REF_TSV"
    echo 'map $cookie_loyalty_ref $bench_ref_status {'
    echo '    "" new;'
    echo '    default kept;'
    echo '}'
    echo 'map $cookie_loyalty_ref $bench_ref_set_cookie {'
    echo "    \"\" \"$REF_COOKIE=$cookie$REF_SET_COOKIE_ATTRS\";"
    echo '    default "";'
    echo '}'
}

case_location_conf() {
    echo 'add_header X-Ref-Status $bench_ref_status;'
    echo 'add_header X-Referrer m0000000;'
    echo 'add_header X-Referrer2 m0000000;'
    # add_header sends nothing for an empty value: returning visitors
    echo 'add_header Set-Cookie $bench_ref_set_cookie;'
}

# The shape must be the module's, or the ratio compares different responses.
case_check() {
    local url=$1 code cookie status n=0 h got
    check_static "$url"
    while IFS=$'\t' read -r code cookie status _; do
        h=$(ref_headers "$url" "$code" "$cookie")
        ref_ok "$h" "$code"
        got="$(header X-Ref-Status <<<"$h") $(ref_set_cookies <<<"$h" | wc -l)"
        case $status in
            new)  [ "$got" = "new 1" ] ;;
            *)    [ "$got" = "kept 0" ] ;;
        esac || die "$CASE: $code: X-Ref-Status and Set-Cookie count '$got'"
        [ -n "$(header X-Referrer <<<"$h")" ] \
            && [ -n "$(header X-Referrer2 <<<"$h")" ] \
            || die "$CASE: $code: X-Referrer or X-Referrer2 missing"
        n=$((n + 1))
    done < <(head -n "$BENCH_CHECKS" "$REF_TSV")
    log "$CASE: $n requests answer with the referral response's shape"
}
