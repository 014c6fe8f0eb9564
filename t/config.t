# Configuration: nginx -t refuses what cannot work, and says why.

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
