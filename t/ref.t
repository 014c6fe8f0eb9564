# Referral attribution: ?ref= clicks, the attribution cookie, the models,
# self-referral, the lifetime referrer, bots, and the $loyalty_ref_*
# variables.

use lib 't/lib';
use Loyalty::Harness;

run_blocks(http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n",
           config => <<'END',
location / {
    return 200 "[$loyalty_ref_status][$loyalty_ref_code][$loyalty_referrer][$loyalty_referrer2][$loyalty_ref_age]\n";
}
END
           more_headers => "User-Agent: Mozilla/5.0 (X11; Linux x86_64) "
                           . "AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
           store => <<'END');
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"carol","tier":"gold","stage":"partner"}
{"id":"alice","tier":"gold","stage":"member","referrer":"carol"}
{"id":"bob","tier":"gold","stage":"fan"}
{"id":"dave","tier":"gold","stage":"fan","referrer":"carol"}
[codes]
{"code":"ALICE1","member":"alice","campaign":"spring","target":"/p/sofa"}
{"code":"BOB1","member":"bob"}
{"code":"OLD1","member":"alice","expires_at":"2020-01-01T00:00:00Z"}
{"code":"GONE1","member":"alice","revoked":true}
END
done_testing();

__DATA__

=== TEST 1: no click, no cookie: none
--- request
GET /
--- response_body
[none][][][][]
--- response_headers
!Set-Cookie


=== TEST 2: a click on a code attributes the visitor to its owner and the owner's referrer
--- request
GET /?ref=ALICE1
--- response_body
[new][ALICE1][alice][carol][0]
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~alice~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax$


=== TEST 3: codes are case-insensitive and may be percent-encoded
--- request
GET /?x=1&ref=%61lice1&y=2
--- response_body
[new][ALICE1][alice][carol][0]


=== TEST 4: the cookie keeps the attribution on later requests
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,1h)%%
--- response_body_like
^\[kept\]\[ALICE1\]\[alice\]\[carol\]\[36\d\d\]$
--- response_headers
!Set-Cookie
