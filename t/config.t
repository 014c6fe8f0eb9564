# Configuration: nginx -t refuses what cannot work, and says why: each
# message names its directive, what it accepts, and the file and line of
# the directive at fault, also for checks made once a block is parsed
# (which nginx would otherwise place at the end of the file).  The harness
# writes a block's http_config from line 24 of nginx.conf, its config after
# it (t/lib/Loyalty/Harness.pm, _write_conf): a location's first line is
# line 30 without http_config.

use lib 't/lib';
use Loyalty::Harness;

run_blocks();
done_testing();

__DATA__

=== TEST 1: a store that does not exist
--- http_config
loyalty_store %%PREFIX%%/no-such-store;
--- config_error
loyalty_store: store "%%PREFIX%%/no-such-store": No such file or directory


=== TEST 2: a directory that is not a store
--- http_config
loyalty_store %%PREFIX%%/logs;
--- config_error
loyalty_store: store "%%PREFIX%%/logs" has no data.mdb: not a loyalty store, or not initialized (loyaltyctl init)


=== TEST 3: a store path that is a file
--- http_config
loyalty_store %%PREFIX%%/conf/nginx.conf;
--- config_error
is not a directory


=== TEST 4: a relative store path is taken from the prefix
--- http_config
loyalty_store store;
loyalty_keys %%KEYS%%;
--- config
location / {
    return 200 "[$loyalty_identity][$loyalty_tier]\n";
}
--- store
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body
[valid][gold]


=== TEST 5: a keys file that does not exist
--- http_config
loyalty_keys %%PREFIX%%/conf/missing.keys;
--- config_error
loyalty_keys "%%PREFIX%%/conf/missing.keys": cannot open "%%PREFIX%%/conf/missing.keys": No such file or directory


=== TEST 6: a short secret, named with its line
--- keys
# comment
k1 00112233
--- http_config
loyalty_keys %%KEYS%%;
--- config_error
line 2: secret must be 32 to 128 bytes written as hex


=== TEST 7: a bad key id
--- keys
k/1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
--- http_config
loyalty_keys %%KEYS%%;
--- config_error
line 1: key id must be 1-16 characters of [A-Za-z0-9_-]


=== TEST 8: a duplicate key id
--- keys
k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
k1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
--- http_config
loyalty_keys %%KEYS%%;
--- config_error
line 2: duplicate key id "k1"


=== TEST 9: a keys file without keys
--- keys
# nothing here yet
--- http_config
loyalty_keys %%KEYS%%;
--- config_error
: no keys


=== TEST 10: non-hex secret
--- keys
k1 zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
--- http_config
loyalty_keys %%KEYS%%;
--- config_error
line 1: secret must be


=== TEST 11: loyalty_store twice
--- http_config
loyalty_store %%STORE%%;
loyalty_store %%STORE%%;
--- config_error
"loyalty_store" directive is duplicate


=== TEST 12: loyalty_keys twice
--- http_config
loyalty_keys %%KEYS%%;
loyalty_keys %%KEYS%%;
--- config_error
"loyalty_keys" directive is duplicate


=== TEST 13: loyalty_store belongs to http
--- config
loyalty_store %%STORE%%;
--- config_error
"loyalty_store" directive is not allowed here


=== TEST 14: loyalty_keys belongs to http
--- config
location / {
    loyalty_keys %%KEYS%%;
}
--- config_error
"loyalty_keys" directive is not allowed here


=== TEST 15: an empty cookie name
--- config
loyalty_member_cookie "";
--- config_error
"loyalty_member_cookie" must not be empty


=== TEST 16: wrong number of arguments
--- http_config
loyalty_store a b;
--- config_error
invalid number of arguments in "loyalty_store" directive



=== TEST 17: a bad currency in http is named at its line
--- http_config
loyalty_store %%STORE%%;
loyalty_currency yuan;
--- config
location / {
    return 200;
}
--- config_error
"loyalty_currency" must be an ISO 4217 code such as CNY, not "yuan" in %%PREFIX%%/conf/nginx.conf:25


=== TEST 18: a bad currency in a location is named at its line
--- config
location / {
    loyalty_currency yuan;
    return 200;
}
--- config_error
"loyalty_currency" must be an ISO 4217 code such as CNY, not "yuan" in %%PREFIX%%/conf/nginx.conf:31


=== TEST 19: the price API without a store, at its line
--- config
location /a {
    return 200;
}
location /price {
    loyalty_price_api;
}
location /b {
    return 200;
}
--- config_error
"loyalty_price_api" requires "loyalty_store" in %%PREFIX%%/conf/nginx.conf:34


=== TEST 20: share links without a store, at their line
--- config
location /s/ {
    loyalty_share;
}
location /b {
    return 200;
}
--- config_error
"loyalty_share" requires "loyalty_store" and "loyalty_keys" in %%PREFIX%%/conf/nginx.conf:31


=== TEST 21: a bad share fallback, at its line
--- http_config
loyalty_share_fallback javascript:alert(1);
loyalty_ref_arg ref;
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL, not "javascript:alert(1)" in %%PREFIX%%/conf/nginx.conf:24


=== TEST 22: a click zone without a store, at its line
--- http_config
loyalty_click_zone clicks 1m;
loyalty_ref_arg ref;
--- config_error
"loyalty_click_zone" requires "loyalty_store" in %%PREFIX%%/conf/nginx.conf:24


=== TEST 23: a cadence sweep without a store, at its line
--- http_config
loyalty_ref_arg ref;
loyalty_cadence_sweep 1m;
--- config_error
"loyalty_cadence_sweep" requires "loyalty_store" in %%PREFIX%%/conf/nginx.conf:25


=== TEST 24: the admin API without a store, at its line
--- config
location /a {
    return 200;
}
location /admin/ {
    %%ADMIN%%
}
--- config_error
"loyalty_admin" requires "loyalty_store" in %%PREFIX%%/conf/nginx.conf:34


=== TEST 25: an admin API without a token, at its line
--- http_config
loyalty_store %%STORE%%;
--- config
location /admin/ {
    loyalty_admin;
}
location /b {
    return 200;
}
--- config_error
"loyalty_admin" needs "loyalty_admin_token FILE;" (lines of "ID read|write TOKEN"), or, for local development only, "loyalty_admin_open loopback;" in %%PREFIX%%/conf/nginx.conf:32


=== TEST 26: a webhook without its secret, at its line
--- http_config
loyalty_store %%STORE%%;
--- config
location /hooks/shop {
    loyalty_webhook shopify;
}
location /b {
    return 200;
}
--- config_error
"loyalty_webhook shopify" needs "loyalty_webhook_secret FILE;" and "loyalty_webhook_map FILE;" in %%PREFIX%%/conf/nginx.conf:32


=== TEST 27: an attribution model names the directive and what it accepts
--- http_config
loyalty_ref_model last-click;
--- config_error
invalid value "last-click" in "loyalty_ref_model", it must be "first" or "last" in %%PREFIX%%/conf/nginx.conf:24


=== TEST 28: an admin opening names the directive and what it accepts
--- config
loyalty_admin_open everyone;
--- config_error
invalid value "everyone" in "loyalty_admin_open", it must be "off" or "loopback" in %%PREFIX%%/conf/nginx.conf:30


=== TEST 29: a member cache too large names the directive
--- http_config
loyalty_member_cache 2000000;
--- config_error
"loyalty_member_cache" value must be between 0 and 1048576 entries, not "2000000" in %%PREFIX%%/conf/nginx.conf:24


=== TEST 30: an attribution window of 0 names the directive and its range
--- http_config
loyalty_ref_arg ref;
loyalty_ref_window 0;
--- config_error
"loyalty_ref_window" must be more than 0 and at most 10 years, such as 30d, not "0" in %%PREFIX%%/conf/nginx.conf:25


=== TEST 31: an admin batch of 0, at its line
--- config
location /admin/ {
    loyalty_admin_batch 0;
}
--- config_error
"loyalty_admin_batch" must be 1 to 100000 events, not "0" in %%PREFIX%%/conf/nginx.conf:31


=== TEST 32: a sweep of half a second names what it accepts
--- http_config
loyalty_cadence_sweep 500ms;
--- config_error
"loyalty_cadence_sweep" must be at least 1s, such as 1m, or 0 for none, not "500ms" in %%PREFIX%%/conf/nginx.conf:24


=== TEST 33: the member cookie named at its line
--- config
location / {
    loyalty_member_cookie "";
}
--- config_error
"loyalty_member_cookie" must not be empty: it is the name of the member cookie, such as "loyalty_member" in %%PREFIX%%/conf/nginx.conf:31


=== TEST 34: a Lua script that does not load, at its directive's line
--- http_config
loyalty_lua_file %%PREFIX%%/conf/no-such-hooks.lua;
loyalty_ref_arg ref;
--- config_error
loyalty_lua_file "%%PREFIX%%/conf/no-such-hooks.lua": cannot open "%%PREFIX%%/conf/no-such-hooks.lua": No such file or directory in %%PREFIX%%/conf/nginx.conf:24
