# Member prices: the price API, the price variables, the privilege guard.
# Tiers and prices follow the domain's examples: a 298 sofa at 258 for
# members, a 128 pack of nappies at 69 for partners.

use lib 't/lib';
use Loyalty::Harness;

my $STORE = <<'END';
[tiers]
{"name":"basic","rank":0,"label":"Basic"}
{"name":"vip","rank":1,"discount_bp":500,"label":"VIP \"金卡\""}
{"name":"ka","rank":2,"discount_bp":1000,"label":"Key account"}
{"name":"partner","rank":3,"discount_bp":4600,"label":"Partner"}
[members]
{"id":"basic1","tier":"basic","stage":"customer"}
{"id":"vip1","tier":"vip","stage":"member"}
{"id":"ka1","tier":"ka","stage":"member"}
{"id":"partner1","tier":"partner","stage":"partner"}
{"id":"blocked1","tier":"partner","stage":"partner","blocked":true}
[prices]
{"sku":"sofa-298","retail":29800,"tiers":{"vip":25800,"ka":25800,"partner":11800}}
{"sku":"nappies-128","retail":12800,"tiers":{"partner":6900}}
{"sku":"tea","retail":999}
{"sku":"pin","retail":10}
{"sku":"yen","retail":5000,"currency":"JPY"}
END

run_blocks(store => $STORE,
           http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n");
done_testing();

__DATA__

=== TEST 1: anonymous visitors pay retail: the public tier
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=sofa-298,nappies-128,tea
--- error_code: 200
--- response_headers
Content-Type: application/json
Cache-Control: private
Vary: Cookie
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"sofa-298","retail":29800,"price":29800,"saved":0,"label":""},{"sku":"nappies-128","retail":12800,"price":12800,"saved":0,"label":""},{"sku":"tea","retail":999,"price":999,"saved":0,"label":""}]}


=== TEST 2: a VIP member: overrides, then the tier discount rounded half up
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=sofa-298,nappies-128,tea,pin
--- more_headers
Cookie: loyalty_member=%%SIGN(vip1,1h)%%
--- response_body
{"tier":"vip","currency":"CNY","items":[{"sku":"sofa-298","retail":29800,"price":25800,"saved":4000,"label":"VIP \"金卡\""},{"sku":"nappies-128","retail":12800,"price":12160,"saved":640,"label":"VIP \"金卡\""},{"sku":"tea","retail":999,"price":949,"saved":50,"label":"VIP \"金卡\""},{"sku":"pin","retail":10,"price":10,"saved":0,"label":"VIP \"金卡\""}]}


=== TEST 3: a key account
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=sofa-298,nappies-128,tea,pin
--- more_headers
Cookie: loyalty_member=%%SIGN(ka1,1h)%%
--- response_body
{"tier":"ka","currency":"CNY","items":[{"sku":"sofa-298","retail":29800,"price":25800,"saved":4000,"label":"Key account"},{"sku":"nappies-128","retail":12800,"price":11520,"saved":1280,"label":"Key account"},{"sku":"tea","retail":999,"price":899,"saved":100,"label":"Key account"},{"sku":"pin","retail":10,"price":9,"saved":1,"label":"Key account"}]}


=== TEST 4: a partner buys nappies at 69 instead of 128
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=nappies-128,sofa-298,tea,pin
--- more_headers
Cookie: loyalty_member=%%SIGN(partner1,1h)%%
--- response_body
{"tier":"partner","currency":"CNY","items":[{"sku":"nappies-128","retail":12800,"price":6900,"saved":5900,"label":"Partner"},{"sku":"sofa-298","retail":29800,"price":11800,"saved":18000,"label":"Partner"},{"sku":"tea","retail":999,"price":539,"saved":460,"label":"Partner"},{"sku":"pin","retail":10,"price":5,"saved":5,"label":"Partner"}]}


=== TEST 5: a basic member pays retail, labelled with the tier
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=tea
--- more_headers
Cookie: loyalty_member=%%SIGN(basic1,1h)%%
--- response_body
{"tier":"basic","currency":"CNY","items":[{"sku":"tea","retail":999,"price":999,"saved":0,"label":"Basic"}]}


=== TEST 6: a blocked member gets public prices
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=nappies-128
--- more_headers
Cookie: loyalty_member=%%SIGN(blocked1,1h)%%
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"nappies-128","retail":12800,"price":12800,"saved":0,"label":""}]}


=== TEST 7: forged and expired cookies get public prices
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=nappies-128
--- more_headers
Cookie: loyalty_member=%%SIGN(partner1,-1m)%%
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"nappies-128","retail":12800,"price":12800,"saved":0,"label":""}]}


=== TEST 8: unknown skus are reported per item; repeats are answered
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=nope,tea,tea
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"nope","error":"unknown sku"},{"sku":"tea","retail":999,"price":999,"saved":0,"label":""},{"sku":"tea","retail":999,"price":999,"saved":0,"label":""}]}


=== TEST 9: percent-encoded commas
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=tea%2Cpin
--- response_body_like
^\{"tier":"public","currency":"CNY","items":\[\{"sku":"tea",.*\{"sku":"pin","retail":10,


=== TEST 10: a sku priced in another currency says so
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=yen,tea
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"yen","retail":5000,"price":5000,"saved":0,"label":"","currency":"JPY"},{"sku":"tea","retail":999,"price":999,"saved":0,"label":""}]}


=== TEST 11: loyalty_currency sets the default
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_currency USD;
--- config
location /prices { loyalty_price_api; }
location /jp {
    loyalty_currency JPY;
    loyalty_price_api;
}
--- request
GET /jp?sku=yen
--- response_body
{"tier":"public","currency":"JPY","items":[{"sku":"yen","retail":5000,"price":5000,"saved":0,"label":""}]}


=== TEST 12: no sku argument: 400 with a JSON error, logged at info
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":"the sku argument is required"}
--- error_log
[info]
loyalty price api: the sku argument is required
--- no_error_log
[error]


=== TEST 13: an empty sku argument
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=
--- error_code: 400
--- response_body
{"error":"the sku argument is required"}


=== TEST 14: an empty sku inside the list
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=tea,,pin
--- error_code: 400
--- response_body
{"error":"an empty sku"}


=== TEST 15: a trailing comma is an empty sku
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=tea,
--- error_code: 400
--- response_body
{"error":"an empty sku"}


=== TEST 16: more than 100 skus
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request eval
"GET /prices?sku=" . CORE::join(',', ('tea') x 101)
--- error_code: 400
--- response_body
{"error":"more than 100 skus"}


=== TEST 17: exactly 100 skus are answered
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request eval
"GET /prices?sku=" . CORE::join(',', ('tea') x 100)
--- error_code: 200
--- response_body_like
^\{"tier":"public","currency":"CNY","items":\[(\{"sku":"tea","retail":999,"price":999,"saved":0,"label":""\},){99}\{"sku":"tea",[^]]*\]\}$


=== TEST 18: an oversized argument
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request eval
"GET /prices?sku=" . ('a' x 7000)
--- error_code: 400
--- response_body
{"error":"the sku argument is too long"}


=== TEST 19: a sku with characters outside the alphabet
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
GET /prices?sku=tea,%22%3E%3Cscript%3E
--- error_code: 400
--- response_body
{"error":"a sku is not 1-64 characters of [A-Za-z0-9_.-]"}


=== TEST 20: a sku of 65 characters
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request eval
"GET /prices?sku=" . ('s' x 65)
--- error_code: 400
--- response_body
{"error":"a sku is not 1-64 characters of [A-Za-z0-9_.-]"}


=== TEST 21: POST is not allowed
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
POST /prices?sku=tea
--- request_body
x
--- error_code: 405


=== TEST 22: HEAD gets the headers only
--- http_config
loyalty_store %%STORE%%;
--- config
location /prices { loyalty_price_api; }
--- request
HEAD /prices?sku=tea
--- error_code: 200
--- response_headers
Content-Type: application/json
Content-Length: 105
--- response_body


=== TEST 23: the price variables for a member
--- config
location /product/ {
    loyalty_price_sku $arg_sku;
    add_header X-Price $loyalty_price;
    add_header X-Retail $loyalty_price_retail;
    add_header X-Price-Tier $loyalty_price_tier;
    return 200 "[$loyalty_price_tier][$loyalty_price][$loyalty_price_retail]\n";
}
--- request
GET /product/?sku=nappies-128
--- more_headers
Cookie: loyalty_member=%%SIGN(partner1,1h)%%
--- response_headers
X-Price: 6900
X-Retail: 12800
X-Price-Tier: partner
--- response_body
[partner][6900][12800]


=== TEST 24: the price variables for an anonymous visitor
--- config
location /product/ {
    loyalty_price_sku $arg_sku;
    return 200 "[$loyalty_price_tier][$loyalty_price][$loyalty_price_retail]\n";
}
--- request
GET /product/?sku=sofa-298
--- response_body
[public][29800][29800]


=== TEST 25: an unknown, invalid or missing sku leaves the prices empty
--- config
location /product/ {
    loyalty_price_sku $arg_sku;
    return 200 "[$loyalty_price_tier][$loyalty_price][$loyalty_price_retail]\n";
}
location /nosku {
    return 200 "[$loyalty_price_tier][$loyalty_price]\n";
}
--- request
GET /product/?sku=a%2Fb
--- response_body
[public][][]
--- no_error_log
[error]


=== TEST 26: a sku from a static value, as SSI or a product page would use
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_price_sku sofa-298;
--- config
location / {
    return 200 "[$loyalty_price_tier][$loyalty_price]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(vip1,1h)%%
--- response_body
[vip][25800]


=== TEST 27: without loyalty_price_sku the price is empty
--- http_config
loyalty_store %%STORE%%;
--- config
location / {
    return 200 "[$loyalty_price_tier][$loyalty_price][$loyalty_price_retail]\n";
}
--- request
GET /
--- response_body
[public][][]


=== TEST 28: loyalty_currency must be an ISO 4217 code
--- http_config
loyalty_store %%STORE%%;
loyalty_currency yuan;
--- config_error
"loyalty_currency" must be an ISO 4217 code such as CNY, not "yuan"


=== TEST 29: loyalty_price_api needs a store
--- http_config
# no loyalty_store
--- config
location /prices { loyalty_price_api; }
--- config_error
"loyalty_price_api" requires "loyalty_store"


=== TEST 30: loyalty_price_api takes no arguments and belongs in a location
--- http_config
loyalty_store %%STORE%%;
loyalty_price_api;
--- config_error
"loyalty_price_api" directive is not allowed here


=== TEST 31: SSI prices several skus on one page, each for this visitor
--- config
location = / {
    ssi on;
    default_type text/html;
    return 200 '<!--# include virtual="/price?sku=sofa-298" --> <!--# include virtual="/price?sku=nappies-128" --> <!--# include virtual="/price?sku=nope" -->';
}
location /price {
    loyalty_price_sku $arg_sku;
    return 200 "$arg_sku=[$loyalty_price]";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(partner1,1h)%%
--- response_body chomp
sofa-298=[11800] nappies-128=[6900] nope=[]


=== TEST 32: an answer the client is slow to take is sent once, whole
--- config
location /prices { loyalty_price_api; limit_rate 400; }
--- request
GET /prices?sku=sofa-298,nappies-128,tea
--- error_code: 200
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"sofa-298","retail":29800,"price":29800,"saved":0,"label":""},{"sku":"nappies-128","retail":12800,"price":12800,"saved":0,"label":""},{"sku":"tea","retail":999,"price":999,"saved":0,"label":""}]}
