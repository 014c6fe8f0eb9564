# Member identity: the signed cookie, the store lookup and the variables.

use lib 't/lib';
use Loyalty::Harness;

# what most blocks share; a block's own section replaces it
run_blocks(http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n",
           config => <<'CONFIG', store => <<'END');
location / {
    return 200 "[$loyalty_identity][$loyalty_member]\n";
}
CONFIG
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
END
done_testing();

__DATA__

=== TEST 1: an anonymous visitor is a prospect with empty member fields
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_tier_rank][$loyalty_stage][$loyalty_points][$loyalty_blocked]\n";
}
--- store
[tiers]
{"name":"gold","rank":3,"discount_bp":1000,"label":"Gold"}
[members]
{"id":"alice","tier":"gold","stage":"member","points":120}
--- request
GET /
--- error_code: 200
--- response_body
[none][][][][prospect][][]
--- no_error_log
loyalty:
[warn]


=== TEST 2: a valid cookie gives every variable
--- config
location / {
    add_header X-Member $loyalty_member;
    add_header X-Tier $loyalty_tier;
    add_header X-Stage $loyalty_stage;
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_tier_rank][$loyalty_stage][$loyalty_points][$loyalty_blocked]\n";
}
--- store
[tiers]
{"name":"silver","rank":1,"discount_bp":500,"label":"Silver"}
{"name":"gold","rank":3,"discount_bp":1000,"label":"Gold"}
[members]
{"id":"alice","tier":"gold","stage":"member","points":120}
{"id":"bob.b-1_x","tier":"silver","stage":"fan","points":-7,"referrer":"alice"}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_headers
X-Member: alice
X-Tier: gold
X-Stage: member
--- response_body
[valid][alice][gold][3][member][120][0]
--- no_error_log
loyalty:


=== TEST 3: ids with dots, dashes and underscores; negative points
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier_rank][$loyalty_stage][$loyalty_points]\n";
}
--- store
[tiers]
{"name":"silver","rank":-1}
[members]
{"id":"bob.b-1_x","tier":"silver","stage":"fan","points":-7}
--- request
GET /
--- more_headers
Cookie: theme=dark; loyalty_member=%%SIGN(bob.b-1_x,1h)%%; lang=zh
--- response_body
[valid][bob.b-1_x][-1][fan][-7]


=== TEST 4: a cookie signed with the second key verifies (rotation)
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h,k0)%%
--- response_body
[valid][alice]


=== TEST 5: a key no longer in the keys file is rejected
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
--- keys
k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_stage]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h,k0)%%
--- response_body
[invalid][][prospect]
--- error_log
[info]
loyalty: invalid member cookie


=== TEST 6: an expired cookie is anonymous and logged at info
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_stage]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,-1h)%%
--- response_body
[expired][][][prospect]
--- error_log
loyalty: expired member cookie for "alice"
--- no_error_log
[error]
[warn]


=== TEST 7: a forged MAC is invalid
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_stage]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=alice~9999999999~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
--- response_body
[invalid][][prospect]
--- error_log
loyalty: invalid member cookie


=== TEST 8: a signature moved onto another member is invalid
--- store
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
{"id":"mallory","tier":"gold","stage":"partner"}
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
$c =~ s/^alice/mallory/;
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member=$c\r\n\r\n"
--- response_body
[invalid][]


=== TEST 9: truncated, oversized and malformed cookies are invalid, never an error
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_stage]\n";
}
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member=" . substr($c, 0, -1) . "\r\n\r\n"
--- response_body
[invalid][][prospect]
--- no_error_log
[error]


=== TEST 10: an oversized cookie is invalid
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member=" . ("a" x 3000) . $c . "\r\n\r\n"
--- response_body
[invalid][]
--- no_error_log
[error]


=== TEST 11: extra separators, empty value, binary junk
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- raw_request eval
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member=~~~~; loyalty_member=\xff\xfe~1~k1~x\r\n\r\n"
--- response_body
[invalid]
--- no_error_log
[error]


=== TEST 12: an empty cookie value is invalid
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=
--- response_body
[invalid]


=== TEST 13: a validly signed cookie for someone not in the store is unknown
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_stage][$loyalty_points]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(ghost,1h)%%
--- response_body
[unknown][][][prospect][]
--- no_error_log
[error]
[info] loyalty


=== TEST 14: a blocked member keeps their identity; the operator decides
--- config
location / {
    if ($loyalty_blocked = 1) {
        return 403;
    }
    return 200 "[$loyalty_member][$loyalty_blocked]\n";
}
--- store
[tiers]
{"name":"basic","rank":0}
[members]
{"id":"sun","tier":"basic","stage":"customer","blocked":true}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(sun,1h)%%
--- error_code: 403


=== TEST 15: loyalty_member_cookie names the cookie, inherited from server
--- config
loyalty_member_cookie shop_id;
location / {
    return 200 "[$loyalty_identity][$loyalty_member]\n";
}
location /legacy {
    loyalty_member_cookie sid;
    return 200 "[$loyalty_identity][$loyalty_member]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(ghost,1h)%%; shop_id=%%SIGN(alice,1h)%%
--- response_body
[valid][alice]


=== TEST 16: a location-level cookie name overrides the server's
--- config
loyalty_member_cookie shop_id;
location /legacy {
    loyalty_member_cookie sid;
    return 200 "[$loyalty_identity][$loyalty_member]\n";
}
--- request
GET /legacy
--- more_headers
Cookie: shop_id=%%SIGN(ghost,1h)%%; sid=%%SIGN(alice,1h)%%
--- response_body
[valid][alice]


=== TEST 17: without loyalty_keys every cookie is invalid, and says why
--- http_config
loyalty_store %%STORE%%;
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body
[invalid][]
--- error_log
invalid member cookie (no loyalty_keys)


=== TEST 18: without loyalty_store a valid cookie is unknown
--- http_config
loyalty_keys %%KEYS%%;
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_stage]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body
[unknown][][prospect]


=== TEST 19: bad cookies are quiet above info: a flood cannot fill the log
--- log_level: notice
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=alice~9999999999~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
--- response_body
[invalid]
--- no_error_log
member cookie
loyalty:


=== TEST 20: the upstream sees the member through proxy_set_header
--- config
location / {
    proxy_set_header X-Member $loyalty_member;
    proxy_set_header X-Tier $loyalty_tier;
    proxy_set_header X-Stage $loyalty_stage;
    proxy_set_header Cookie "";
    proxy_pass http://127.0.0.1:%%PORT%%/upstream;
}
location /upstream {
    return 200 "upstream saw [$http_x_member][$http_x_tier][$http_x_stage][$loyalty_identity]\n";
}
--- store
[tiers]
{"name":"partner","rank":3}
[members]
{"id":"wang","tier":"partner","stage":"partner"}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(wang,1h)%%
--- response_body
upstream saw [wang][partner][partner][none]


=== TEST 22: the main request's cookie name decides, whoever asks first
--- config
location / {
    loyalty_member_cookie main_id;
    ssi on;
    default_type text/html;
    return 200 '<!--# include virtual="/sub" -->';
}
location /sub {
    loyalty_member_cookie sub_id;
    return 200 "sub [$loyalty_member]";
}
--- request
GET /
--- more_headers
Cookie: sub_id=%%SIGN(ghost,1h)%%; main_id=%%SIGN(alice,1h)%%
--- response_body_like
^sub \[alice\]


=== TEST 21: variables in a subrequest describe the main request's visitor
--- config
location / {
    ssi on;
    default_type text/html;
    return 200 'main [$loyalty_member] <!--# include virtual="/sub" -->';
}
location /sub {
    return 200 "sub [$loyalty_member][$loyalty_stage]";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body_like
^main \[alice\] sub \[alice\]\[member\]


=== TEST 22: a refused cookie's reason is logged at info: unknown key id
--- keys
k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h,k0)%%
--- response_body
[invalid]
--- error_log_like
\[info\] .*loyalty: invalid member cookie: unknown key id
--- no_error_log
bad MAC
[warn]


=== TEST 23: a refused cookie's reason is logged at info: bad MAC
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=alice~9999999999~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
--- response_body
[invalid]
--- error_log_like
\[info\] .*loyalty: invalid member cookie: bad MAC
--- no_error_log
unknown key id
[warn]


=== TEST 24: a refused cookie's reason is logged at info: malformed
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=alice~tomorrow
--- response_body
[invalid]
--- error_log_like
\[info\] .*loyalty: invalid member cookie: malformed
--- no_error_log
[warn]


=== TEST 25: a refused cookie's reason is logged at info: expired
--- config
location / {
    return 200 "[$loyalty_identity]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,-1h)%%
--- response_body
[expired]
--- error_log_like
\[info\] .*loyalty: expired member cookie for "alice"
--- no_error_log
invalid member cookie
[warn]



=== TEST 27: the member cookie as nginx's parser finds it: in a second Cookie header, the name in another case, spaces at "="
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: a=1\r\nCookie: x=y;  Loyalty_Member = $c\r\n\r\n"
--- response_body
[valid][alice]


=== TEST 28: the member cookie as nginx's parser finds it: pairs are split at "," too
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: a=1, loyalty_member=$c\r\n\r\n"
--- response_body
[valid][alice]


=== TEST 29: the member cookie as nginx's parser finds it: the first of two wins
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member=x; loyalty_member=$c\r\n\r\n"
--- response_body
[invalid][]


=== TEST 30: the member cookie as nginx's parser finds it: a name that only begins or ends like it is another cookie
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: xloyalty_member=$c; loyalty_memberx=$c\r\n\r\n"
--- response_body
[none][]


=== TEST 31: the member cookie as nginx's parser finds it: as nginx, the character after a name without "=" is passed over
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member;loyalty_member=$c\r\n\r\n"
--- response_body
[none][]


=== TEST 32: the member cookie as nginx's parser finds it: as nginx, the pair after it is found
--- raw_request eval
my $c = Loyalty::Harness::sign_member('alice', 3600);
"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: loyalty_member;x=1;loyalty_member=$c\r\n\r\n"
--- response_body
[valid][alice]


=== TEST 33: $loyalty_member read first: $loyalty_tier and $loyalty_stage are the member's, in the body and the headers
--- config
location / {
    add_header X-Stage $loyalty_stage;
    add_header X-Tier $loyalty_tier;
    return 200 "[$loyalty_member][$loyalty_stage][$loyalty_tier][$loyalty_personal]\n";
}
--- store
[tiers]
{"name":"silver","rank":1}
[members]
{"id":"carol","tier":"silver","stage":"prospect"}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(carol,1h)%%
--- response_headers
X-Stage: prospect
X-Tier: silver
--- response_body
[carol][prospect][silver][1]


=== TEST 34: $loyalty_personal stays empty for a prospect's $loyalty_stage read alone
--- config
location / {
    return 200 "[$loyalty_stage][$loyalty_personal][$loyalty_identity]\n";
}
--- store
[tiers]
{"name":"silver","rank":1}
[members]
{"id":"carol","tier":"silver","stage":"prospect"}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(carol,1h)%%
--- response_body
[prospect][][valid]


=== TEST 35: an anonymous visitor's $loyalty_member read first: tier and stage an anonymous visitor's, nothing personal
--- config
location / {
    return 200 "[$loyalty_member][$loyalty_tier][$loyalty_stage][$loyalty_personal]\n";
}
--- request
GET /
--- response_body
[][][prospect][]
