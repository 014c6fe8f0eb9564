# HTTP case "ref": ngx_http_loyalty_module attributing referral clicks.
# Every request clicks a share code: the module looks the code up in the
# store, checks the User-Agent against its bots list, counts the click in
# the shared-memory zone (flushed into the store by the thread pool) and
# either keeps a returning visitor's attribution cookie (verified, first-
# touch) or signs a new one.  The headers name the attribution.
. "$ROOT/bench/cases/ref.inc"
CASE_TITLE="ngx_http_loyalty_module, referral clicks"

case_available() {
    [ -f "$MODULE_SO" ] || { echo "$MODULE_SO not built"; return 1; }
    [ -x "$LOYALTYCTL" ] || { echo "$LOYALTYCTL not built"; return 1; }
}

case_prepare() {
    local store="$CASE_DIR/store"
    ref_need_data
    rm -rf "$store"
    "$LOYALTYCTL" -s "$store" init
    "$LOYALTYCTL" -s "$store" import tiers "$DATA_DIR/tiers.jsonl"
    "$LOYALTYCTL" -s "$store" import members "$DATA_DIR/members.jsonl"
    "$LOYALTYCTL" -s "$store" import codes "$DATA_DIR/codes.jsonl"
}

case_main_conf() {
    echo "load_module $MODULE_SO;"
}

case_http_conf() {
    echo "loyalty_store $CASE_DIR/store;"
    echo "loyalty_keys $DATA_DIR/keys.txt;"
    echo "loyalty_click_zone clicks 16m;"
    # bench/scale sets 1h: no flush inside its callgrind passes
    echo "loyalty_click_flush ${BENCH_CLICK_FLUSH:-10s};"
}

case_location_conf() {
    echo 'add_header X-Ref-Status $loyalty_ref_status;'
    echo 'add_header X-Referrer $loyalty_referrer;'
    echo 'add_header X-Referrer2 $loyalty_referrer2;'
}

# ref_check_cookie SET_COOKIE CODE REFERRER: die unless SET_COOKIE is
# "loyalty_ref=CODE~NOW~KID~MAC" with the usual attributes, a click time of
# now and the MAC that keys.txt's key gives, REFERRER bound into it
# (docs/attribution-cookie.md).
ref_check_cookie() {
    local err
    err=$(perl -MDigest::SHA=hmac_sha256 -MMIME::Base64=encode_base64url \
               -e '
        my ($sc, $code, $referrer, $attrs, $keys) = @ARGV;
        my %key;
        open my $fh, "<", $keys or die "$keys: $!\n";
        while (<$fh>) { $key{$1} = pack "H*", $2 if /^(\S+)\s+([0-9a-f]+)/ }
        my ($name, $value, $rest) = $sc =~ /^([^=]+)=([^;]*)(.*)$/
            or die "not a cookie\n";
        $name eq "loyalty_ref" or die "cookie named $name\n";
        $rest eq $attrs or die "attributes \"$rest\"\n";
        my ($c, $at, $kid, $mac) = split /~/, $value, -1;
        defined $mac && $value =~ tr/~// == 3 or die "not 4 fields\n";
        $c eq $code or die "code $c, want $code\n";
        $at =~ /^\d+$/ && abs($at - time) <= 60
            or die "click time $at is not now\n";
        $key{$kid} or die "unknown key id $kid\n";
        $mac eq encode_base64url(hmac_sha256("ref2~$c~$at~$kid~$referrer",
                                             $key{$kid}))
            or die "MAC does not verify (the referrer bound: $referrer)\n";
    ' "$1" "$2" "$3" "$REF_SET_COOKIE_ATTRS" "$DATA_DIR/keys.txt" 2>&1) \
        || die "$CASE: Set-Cookie for a click on $2: $err: $1"
}

# ref_clicks: total clicks the store holds, over all codes and days
ref_clicks() {
    "$LOYALTYCTL" -s "$CASE_DIR/store" clicks \
        | perl -ne '$t += $1 if /"total":(\d+)/; END { print $t || 0, "\n" }'
}

case_check() {
    local url=$1 code cookie status referrer referrer2 h got sc n=0
    local fresh fresh_code forged
    check_static "$url"

    # The first requests of the benchmark set: status, referrers, cookie.
    while IFS=$'\t' read -r code cookie status referrer referrer2; do
        h=$(ref_headers "$url" "$code" "$cookie")
        ref_ok "$h" "$code"
        got="$(header X-Ref-Status <<<"$h")/$(header X-Referrer <<<"$h")"
        got="$got/$(header X-Referrer2 <<<"$h")"
        [ "$got" = "$status/$referrer/${referrer2#-}" ] \
            || die "$CASE: click on $code (cookie $cookie): got" \
                   "X-Ref-Status/X-Referrer/X-Referrer2 '$got', want" \
                   "'$status/$referrer/${referrer2#-}'"
        sc=$(ref_set_cookies <<<"$h")
        if [ "$status" = new ]; then
            [ "$(wc -l <<<"$sc")" -eq 1 ] && [ -n "$sc" ] \
                || die "$CASE: new visitor on $code: Set-Cookie '$sc'"
            ref_check_cookie "$sc" "$code" "$referrer"
            fresh=${sc#*=}; fresh=${fresh%%;*}; fresh_code=$code
        else
            [ -z "$sc" ] || die "$CASE: returning visitor got Set-Cookie: $sc"
        fi
        n=$((n + 1))
    done < <(head -n "$BENCH_CHECKS" "$REF_TSV")
    [ -n "$fresh" ] || die "$CASE: no new visitor among the checked requests"

    # The cookie just set brings the visitor back as kept, on another code.
    code=$(awk -F'\t' -v c="$fresh_code" '$1 != c { print $1; exit }' "$REF_TSV")
    h=$(ref_headers "$url" "$code" "$fresh")
    [ "$(header X-Ref-Status <<<"$h")" = kept ] \
        && [ -z "$(ref_set_cookies <<<"$h")" ] \
        || die "$CASE: the cookie set for $fresh_code is not kept:" \
               "$(header X-Ref-Status <<<"$h")"

    # A forged MAC is no attribution: the click is new and sets a cookie.
    case $fresh in
        *A) forged="${fresh%A}B" ;;
        *)  forged="${fresh%?}A" ;;
    esac
    h=$(ref_headers "$url" "$code" "$forged")
    [ "$(header X-Ref-Status <<<"$h")" = new ] \
        && [ -n "$(ref_set_cookies <<<"$h")" ] \
        || die "$CASE: a cookie with a forged MAC gave" \
               "'$(header X-Ref-Status <<<"$h")', want new and a Set-Cookie"

    # curl's own User-Agent is a bot's: no attribution, no cookie.
    h=$(ref_headers "$url" "$code" - "")
    [ "$(header X-Ref-Status <<<"$h")" = bot ] \
        && [ -z "$(ref_set_cookies <<<"$h")" ] \
        || die "$CASE: curl's User-Agent gave" \
               "'$(header X-Ref-Status <<<"$h")', want bot and no cookie"

    log "$CASE: $n clicks attributed right, cookies verify; the new" \
        "cookie is kept, a forged one is not, curl is a bot"
    REF_CLICKS_BEFORE=$(ref_clicks)
}

# After the round nginx has stopped, and its workers flush what the zone
# still holds on exit: the store must count at least every click wrk made.
case_after() {
    local log=$1 made after
    made=$(cat "$log.warmup" "$log" | awk '/ requests in / { s += $1 }
                                          END { print s + 0 }')
    after=$(ref_clicks)
    [ $((after - REF_CLICKS_BEFORE)) -ge "$made" ] \
        || die "$CASE: the store counts $((after - REF_CLICKS_BEFORE))" \
               "clicks of this round, wrk made $made (see" \
               "$CASE_DIR/logs/error.log)"
    log "$CASE: the store counts $((after - REF_CLICKS_BEFORE)) clicks for" \
        "this round's $made requests"
}
