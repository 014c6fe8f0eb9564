# Order webhooks from the shop's platform (loyalty_webhook): WooCommerce,
# Shopify and the generic scheme (lua/adapters/youzan.lua), with payloads
# shaped as the platforms document them and our own data.  A delivery
# signed with the shop's secret is mapped and applied once; a forged,
# tampered or unsigned one is refused (401) and nothing applied; a
# replayed delivery id is answered 200 "duplicate" and not applied again;
# the wrong content type, a body that is not JSON, an oversized one, a
# payload the mapping refuses, a mapping that runs away (stopped by the
# budget) or returns bad events: refused, nothing half applied.  The
# counts in GET /admin/webhooks; configuration errors name the directive.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);
use File::Basename qw(dirname);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $ADAPTERS = "$ROOT/lua/adapters";
my $JSON = JSON::PP->new->canonical;

my $DIR = test_dir();
chmod 0755, "$DIR" or die "chmod $DIR: $!";

my %SECRET = (
    wc => 'wc-secret-5f1e0c7a9d2b4e6f',
    shopify => 'shpss_0d9c8b7a6f5e4d3c2b1a',
    youzan => 'yz-relay-secret-77a1c3',
);

write_file("$DIR/$_.secret", "$SECRET{$_}\n", 0600) for keys %SECRET;
write_file("$DIR/loop.lua", <<'LUA', 0644);
-- runs away: the budget must stop it
return { map = function(payload, headers) while true do end end }
LUA
write_file("$DIR/bad-events.lua", <<'LUA', 0644);
-- a signup, then an order of a member no one signed up: invalid
return { map = function(payload, headers)
  return {
    { type = "signup", member = "bad-1" },
    { type = "order", member = "nobody-here", order_id = "bad-order-1",
      amount = 100, at = "2026-11-21T10:00:00Z" },
  }
end }
LUA
write_file("$DIR/no-map.lua", "return { mapping = 1 }\n", 0644);

my $STORE = "[tiers]\n" . slurp("$EXAMPLES/tiers.jsonl")
            . "[rules]\n" . slurp("$EXAMPLES/rules.json");

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

sub hook {
    my ($name, $platform, $secret, $map, $more) = @_;
    return <<"END";
location = /hooks/$name {
    loyalty_webhook $platform;
    loyalty_webhook_secret $DIR/$secret.secret;
    loyalty_webhook_map $map;
    client_max_body_size 64k;
    ${\ ($more // '')}
}
END
}

my $CONFIG = "location /admin/ { %%ADMIN%% }\n"
    . hook('wc', 'woocommerce', 'wc', "$ADAPTERS/woocommerce.lua")
    . hook('shopify', 'shopify', 'shopify', "$ADAPTERS/shopify.lua")
    . hook('youzan', 'generic', 'youzan', "$ADAPTERS/youzan.lua")
    . hook('loop', 'generic', 'youzan', "$DIR/loop.lua")
    . hook('bad', 'generic', 'youzan', "$DIR/bad-events.lua");


# helpers

# one pattern of several, to keep lines short
sub re { my $s = join '', @_; return qr/$s/ }

sub b64 { return encode_base64($_[0], '') }

# (status, decoded body or text)
sub post {
    my ($h, $uri, $body, %hdr) = @_;
    my ($status, $headers, $text) =
        eval { http_request($h, 'POST', $uri, \%hdr, $body) };
    return ("error: $@", '') unless defined $headers;
    my $doc = eval { $JSON->decode($text) } // $text;
    return ($status, $doc);
}

sub wc {
    my ($h, $topic, $delivery, $payload, %o) = @_;
    my $body = ref $payload ? $JSON->encode($payload) : $payload;
    my $sig = exists $o{signature}
              ? $o{signature}
              : b64(hmac_sha256($o{signed} // $body, $SECRET{wc}));
    return post($h, '/hooks/wc', $body,
                'Content-Type' => $o{type} // 'application/json',
                'X-WC-Webhook-Source' => 'https://shop.example/',
                'X-WC-Webhook-Topic' => $topic,
                'X-WC-Webhook-Resource' => 'order',
                'X-WC-Webhook-Event' => (split /\./, $topic)[1],
                'X-WC-Webhook-ID' => '7',
                'X-WC-Webhook-Delivery-ID' => $delivery,
                defined $sig ? ('X-WC-Webhook-Signature' => $sig) : ());
}

sub shopify {
    my ($h, $topic, $id, $payload, $event) = @_;
    my $body = $JSON->encode($payload);
    return post($h, '/hooks/shopify', $body,
                'Content-Type' => 'application/json',
                'X-Shopify-Topic' => $topic,
                'X-Shopify-Shop-Domain' => 'loyalty-test.myshopify.com',
                'X-Shopify-API-Version' => '2024-07',
                'X-Shopify-Webhook-Id' => $id,
                defined $event ? ('X-Shopify-Event-Id' => $event) : (),
                'X-Shopify-Hmac-Sha256' =>
                    b64(hmac_sha256($body, $SECRET{shopify})));
}

sub generic {
    my ($h, $uri, $topic, $id, $payload) = @_;
    my $body = $JSON->encode($payload);
    return post($h, $uri, $body,
                'Content-Type' => 'application/json; charset=utf-8',
                'X-Loyalty-Topic' => $topic,
                'X-Loyalty-Delivery' => $id,
                'X-Loyalty-Signature' =>
                    'sha256=' . hmac_sha256_hex($body, $SECRET{youzan}));
}

# the member as the admin API has it, or undef
sub member {
    my ($h, $id) = @_;
    my ($status, $headers, $text) =
        admin_request($h, 'GET', "/admin/members/$id");
    return $status eq '200' ? $JSON->decode($text) : undef;
}

sub counts {
    my ($h) = @_;
    my ($status, $headers, $text) =
        http_request($h, 'GET', '/admin/webhooks', admin_auth('read'));
    return $status eq '200' ? $JSON->decode($text) : { status => $status };
}

sub answer {
    my ($status, $doc) = @_;
    return "$status " . (ref $doc ? $JSON->encode($doc) : $doc);
}


# payloads, shaped after the platforms' documentation, with our data

sub wc_order {
    my (%o) = @_;
    return {
        id => $o{id} // 4501, parent_id => 0, number => "$o{id}",
        order_key => 'wc_order_58d2d042d1d', created_via => 'checkout',
        version => '8.9.1', status => $o{status} // 'processing',
        currency => 'CNY', prices_include_tax => JSON::PP::false,
        date_created => '2026-11-21T18:00:00',
        date_created_gmt => '2026-11-21T10:00:00',
        date_paid => '2026-11-21T18:01:00',
        date_paid_gmt => '2026-11-21T10:01:00',
        discount_total => '0.00', shipping_total => '0.00',
        total => $o{total} // '128.00', total_tax => '0.00',
        customer_id => $o{customer} // 1001,
        billing => { first_name => 'Li', last_name => 'Na',
                     email => 'li.na@example.com', country => 'CN' },
        payment_method => 'bacs', payment_method_title => 'Bank transfer',
        line_items => [
            { id => 315, name => 'Nappies, pack', product_id => 93,
              variation_id => 0, quantity => 1, subtotal => '128.00',
              total => '128.00', sku => 'nappies-128', price => 128 },
        ],
        refunds => $o{refunds} // [],
        meta_data => [],
    };
}

my $BIG_ORDER = '5920173450112233445';      # beyond 2^53, as Shopify's
my $BIG_CUSTOMER = '7306458923456789012';

sub shopify_order {
    my (%o) = @_;
    return JSON::PP->new->decode(<<"END");
{"id": $BIG_ORDER,
 "admin_graphql_api_id": "gid://shopify/Order/$BIG_ORDER",
 "email": "wang.fang\@example.com", "created_at": "2026-11-21T18:05:00+08:00",
 "processed_at": "2026-11-21T18:05:03+08:00", "currency": "CNY",
 "financial_status": "paid", "name": "#1001", "order_number": 1001,
 "test": ${\ ($o{test} ? 'true' : 'false')},
 "total_price": "$o{total}", "subtotal_price": "$o{total}",
 "total_tax": "0.00",
 "customer": {"id": $BIG_CUSTOMER, "email": "wang.fang\@example.com",
              "created_at": "2026-10-01T09:00:00+08:00",
              "first_name": "Fang", "last_name": "Wang"},
 "line_items": [
   {"id": 866550311766439020, "variant_id": 808950810, "title": "Nappies",
    "quantity": 2, "sku": "nappies-128", "price": "128.00",
    "product_id": 632910392},
   {"id": 141249953214522974, "variant_id": 457924702, "title": "Wipes",
    "quantity": 1, "sku": "", "price": "$o{wipes}",
    "product_id": 921728736}
 ]}
END
}

sub shopify_refund {
    return JSON::PP->new->decode(<<"END");
{"id": 509562969, "order_id": $BIG_ORDER,
 "created_at": "2026-11-23T10:00:00+08:00", "note": "one pack back",
 "processed_at": "2026-11-23T10:00:00+08:00", "restock": true,
 "refund_line_items": [], "order_adjustments": [],
 "transactions": [
   {"id": 389404469, "order_id": $BIG_ORDER, "kind": "refund",
    "gateway": "bogus", "status": "success", "amount": "128.00",
    "currency": "CNY"},
   {"id": 389404470, "order_id": $BIG_ORDER, "kind": "refund",
    "gateway": "bogus", "status": "failure", "amount": "50.00",
    "currency": "CNY"}
 ]}
END
}


# configuration errors name the directive

sub refused {
    my ($config) = @_;
    my $h = eval { start_nginx(http_config => $HTTP, store => $STORE,
                               config => $config) };
    if ($h) {
        stop_nginx($h);
        return '';
    }
    return $@;
}

my $cannot_open = re(qr/loyalty_webhook_secret: cannot open /,
                  qr/"\Q$DIR\E\/missing\.secret"/);
like(refused(<<"END"), $cannot_open,
location = /hooks/wc {
    loyalty_webhook woocommerce;
    loyalty_webhook_secret $DIR/missing.secret;
    loyalty_webhook_map $ADAPTERS/woocommerce.lua;
}
END
     'a missing secret file: nginx -t fails naming the directive');

my $needs = re(qr/"loyalty_webhook woocommerce" needs /,
            qr/"loyalty_webhook_secret FILE;"/);
like(refused(<<"END"), $needs,
location = /hooks/wc {
    loyalty_webhook woocommerce;
    loyalty_webhook_map $ADAPTERS/woocommerce.lua;
}
END
     'no secret: nginx -t fails');

my $no_map = re(qr/loyalty_webhook_map "\Q$DIR\E\/no-map\.lua": /,
             qr/the script must return a table with a "map" function/);
like(refused(<<"END"), $no_map,
location = /hooks/wc {
    loyalty_webhook woocommerce;
    loyalty_webhook_secret $DIR/wc.secret;
    loyalty_webhook_map $DIR/no-map.lua;
}
END
     'a script without map: nginx -t fails naming the directive');

{
    # readable by every user: a warning naming the file, never the secret
    write_file("$DIR/open.secret", "$SECRET{wc}\n", 0644);
    my $h = start_nginx(http_config => $HTTP, store => $STORE,
                        config => hook('open', 'woocommerce', 'open',
                                       "$ADAPTERS/woocommerce.lua"));
    my $log = error_log_text($h);
    like($log, re(qr/\[warn\] .*loyalty_webhook_secret: /,
                  qr/"\Q$DIR\E\/open\.secret" /,
                  qr/is readable by every user: chmod 600 it/),
         'a secret file every user may read: warned of');
    unlike($log, qr/\Q$SECRET{wc}\E/, '... and the secret is not logged');
    stop_nginx($h);
}

like(refused(<<"END"), qr/"loyalty_webhook" and "loyalty_admin" in one/,
location = /hooks/wc {
    %%ADMIN%%
    loyalty_webhook woocommerce;
    loyalty_webhook_secret $DIR/wc.secret;
    loyalty_webhook_map $ADAPTERS/woocommerce.lua;
}
END
     'a webhook and the admin API in one location');

like(refused(<<"END"), qr/unknown platform "magento"/,
location = /hooks/wc {
    loyalty_webhook magento;
}
END
     'an unknown platform');

# each webhook directive once a location; a replay window of 1s or more
for my $d ('loyalty_webhook woocommerce', "loyalty_webhook_secret $DIR/wc.secret",
           "loyalty_webhook_map $ADAPTERS/woocommerce.lua",
           'loyalty_webhook_replay 1h')
{
    my ($name) = $d =~ /^(\S+)/;
    like(refused(<<"END"), qr/"\Q$name\E" directive is duplicate/,
location = /hooks/wc {
    $d;
    $d;
}
END
         "$name twice in a location: refused");
}

my $at_least = re(qr/"loyalty_webhook_replay" directive /,
                  qr/must be a time of at least 1s, such as 48h/);
like(refused(<<"END"), $at_least,
location = /hooks/wc {
    loyalty_webhook woocommerce;
    loyalty_webhook_replay 0;
}
END
     'a replay window of 0: refused');

like(refused(<<"END"), qr/go in a location with "loyalty_webhook"/,
location = /hooks/wc {
    loyalty_webhook_secret $DIR/wc.secret;
}
END
     'a secret without a webhook');


my $h = start_nginx(http_config => $HTTP, store => $STORE,
                    config => $CONFIG);

# WooCommerce

is(answer(post($h, '/hooks/wc', 'webhook_id=7',
               'Content-Type' => 'application/x-www-form-urlencoded')),
   '200 {"status":"ping"}', 'woocommerce: the ping as a webhook is saved');

my ($status, $doc) = wc($h, 'order.created', 'd-1', wc_order(id => 4501));
is("$status $doc->{status} $doc->{events}", '200 applied 2',
   'woocommerce: a signed paid order, applied (signup, order)');

my $m = member($h, 'wc-1001');
is(join(' ', map { $m->{$_} // '-' } qw(orders spend stage points)),
   '1 12800 member 128',
   'woocommerce: the member has the order, its spend and points');

is(answer(wc($h, 'order.created', 'd-1', wc_order(id => 4501))),
   '200 {"status":"duplicate"}',
   'woocommerce: the same delivery again: 200 duplicate');

($status, $doc) = wc($h, 'order.updated', 'd-2', wc_order(id => 4501));
is("$status $doc->{status} $doc->{applied}", '200 duplicate 0',
   'woocommerce: the same order in another delivery: a duplicate');

is(member($h, 'wc-1001')->{orders}, 1, 'woocommerce: still one order');

($status, $doc) = wc($h, 'order.updated', 'd-3',
                     wc_order(id => 4501,
                              refunds => [{ id => 4510, reason => '',
                                            total => '-28.00' }]));
is("$status $doc->{status} $doc->{applied}", '200 applied 1',
   'woocommerce: a refund in order.updated, applied');
is(member($h, 'wc-1001')->{spend}, 10000, 'woocommerce: spend less 28.00');

is(answer(wc($h, 'order.updated', 'd-4', wc_order(id => 4502,
                                                 status => 'pending'))),
   '200 {"status":"ignored"}', 'woocommerce: an unpaid order is ignored');

is(answer(wc($h, 'order.created', 'd-5', wc_order(id => 4503,
                                                 customer => 0))),
   '200 {"status":"ignored"}', 'woocommerce: a guest order is ignored');

# forged, tampered, unsigned: 401, nothing applied

my $order = $JSON->encode(wc_order(id => 4601, customer => 2002));

is(answer(wc($h, 'order.created', 'f-1', $order,
             signature => b64(hmac_sha256($order, 'not-the-secret')))),
   '401 {"error":"invalid signature"}', 'forged: 401');

(my $tampered = $order) =~ s/"128\.00"/"999.00"/g;
is(answer(wc($h, 'order.created', 'f-2', $tampered, signed => $order)),
   '401 {"error":"invalid signature"}', 'body tampered after signing: 401');

is(answer(wc($h, 'order.created', 'f-3', $order, signature => undef)),
   '401 {"error":"invalid signature"}', 'unsigned: 401');
is(answer(wc($h, 'order.created', 'f-4', $order, signature => 'AAAA')),
   '401 {"error":"invalid signature"}', 'a short signature: 401');

is(member($h, 'wc-2002'), undef, 'forged deliveries applied nothing');

# what the body is

is(answer(wc($h, 'order.created', 'b-1', $order, type => 'text/plain')),
   '415 {"error":"the body must be application/json"}',
   'the wrong content type: 415');

($status, $doc) = wc($h, 'order.created', 'b-2', '{"id": 4601, "status":');
is($status, 400, 'signed, not JSON: 400');

is(answer(wc($h, 'order.created', 'b-3', '[1, 2]')),
   '400 {"error":"the body must be a JSON object"}', 'a JSON array: 400');

($status) = wc($h, 'order.created', 'b-4',
               $JSON->encode(wc_order(id => 4602, customer => 2002))
               . (' ' x 70000));
is($status, 413, 'oversized: 413 (client_max_body_size)');

my $no_total = wc_order(id => 4603, customer => 2002);
delete $no_total->{total};
is(answer(wc($h, 'order.created', 'b-5', $no_total)),
   '422 {"error":"an amount is missing"}',
   'a payload the mapping cannot read: 422, its reason');

is(answer(wc($h, 'order.created', 'b-6', { hello => 'world' })),
   '422 {"error":"not a WooCommerce order: no id or status"}',
   'missing fields: 422');

is(member($h, 'wc-2002'), undef, 'refused deliveries applied nothing');

# a refused delivery is not remembered: once fixed, it goes in
($status, $doc) = wc($h, 'order.created', 'b-5',
                     wc_order(id => 4603, customer => 2002));
is("$status $doc->{status}", '200 applied',
   'a refused delivery id is not taken: its retry is applied');

# Shopify, ids beyond 2^53 kept exact

is(answer(shopify($h, 'orders/paid', 'sh-0',
                  shopify_order(total => '300.00', wipes => '44.00',
                                test => 1))),
   '200 {"status":"ignored"}', 'shopify: a test order is ignored');

($status, $doc) = shopify($h, 'orders/paid', 'sh-1',
                          shopify_order(total => '300.00', wipes => '44.00'));
is("$status $doc->{status} $doc->{applied}", '200 applied 2',
   'shopify: orders/paid applied');

$m = member($h, "shopify-$BIG_CUSTOMER");
is(join(' ', map { $m->{$_} // '-' } qw(orders spend stage)),
   '1 30000 member', 'shopify: the member, by the exact customer id');

($status, $doc) = shopify($h, 'refunds/create', 'sh-2', shopify_refund());
is("$status $doc->{status} $doc->{applied}", '200 applied 1',
   'shopify: refunds/create applied (the failed transaction not counted)');
is(member($h, "shopify-$BIG_CUSTOMER")->{spend}, 17200,
   'shopify: spend less 128.00');

is(answer(shopify($h, 'refunds/create', 'sh-2', shopify_refund())),
   '200 {"status":"duplicate"}', 'shopify: a replayed webhook id');
is(member($h, "shopify-$BIG_CUSTOMER")->{spend}, 17200,
   'shopify: the replay refunded nothing more');

# X-Shopify-Event-Id, the same across deliveries of one event, comes first
($status, $doc) = shopify($h, 'refunds/create', 'sh-3',
                          { %{shopify_refund()}, id => 509562970 },
                          'ev-77');
is("$status $doc->{status}", '200 applied', 'shopify: a second refund');
is(answer(shopify($h, 'refunds/create', 'sh-4',
                  { %{shopify_refund()}, id => 509562970 }, 'ev-77')),
   '200 {"status":"duplicate"}',
   'shopify: the same X-Shopify-Event-Id in another delivery: duplicate');

# the generic scheme, Youzan-style trade messages through a relay

($status, $doc) = generic($h, '/hooks/youzan', 'trade_TradePaid', 'yz-1', {
    type => 'trade_TradePaid', kdt_id => 1000,
    msg => { tid => 'E20261121100000000000001', fans_id => 88001,
             payment => '128.00', pay_time => '2026-11-21 18:00:00',
             orders => [{ outer_sku_id => 'nappies-128', num => 1 }] },
});
is("$status $doc->{status}", '200 applied', 'generic: youzan.lua applied');
$m = member($h, 'yz-88001');
is(join(' ', map { $m->{$_} // '-' } qw(orders spend last_order_at)),
   '1 12800 2026-11-21T10:00:00Z', 'generic: Beijing time taken as +08:00');

my $yz = $JSON->encode({ type => 'x', msg => { tid => 'E1' } });
is(answer(post($h, '/hooks/youzan', $yz,
               'Content-Type' => 'application/json',
               'X-Loyalty-Signature' =>
                   'sha256=' . hmac_sha256_hex($yz, $SECRET{wc}))),
   '401 {"error":"invalid signature"}',
   'generic: signed with another shop\'s secret: 401');

# the mapping's own failures: nothing applied

my $t0 = time;
is(answer(generic($h, '/hooks/loop', 'trade_TradePaid', 'loop-1',
                  { msg => { tid => 'E2' } })),
   '500 {"error":"the mapping script failed"}',
   'a runaway mapping: stopped by the budget, 500');
ok(time - $t0 < 5, 'the runaway mapping is stopped in under 5 s');
like(error_log_text($h),
     re(qr/loyalty_webhook_map "\Q$DIR\E\/loop\.lua": the mapping failed /,
     qr/\(budget\)/),
     'the budget stop is logged');

($status, $doc) = generic($h, '/hooks/bad', 'x', 'bad-1', { a => 1 });
is("$status $doc->{error}", '422 invalid events',
   'a mapping with a bad event: 422, the core\'s errors');
is(member($h, 'bad-1'), undef, 'the batch is all or nothing');

# the counts

# refused: 415, two 400s and two 422s; the 413 is nginx's own, uncounted
my $c = counts($h);
is($JSON->encode($c->{woocommerce}),
   '{"failed":0,"forged":4,"ignored":2,"mapped":3,"refused":5,'
   . '"replayed":2}', 'GET /admin/webhooks: woocommerce');
is($JSON->encode($c->{shopify}),
   '{"failed":0,"forged":0,"ignored":1,"mapped":3,"refused":0,'
   . '"replayed":2}', 'GET /admin/webhooks: shopify');
is($JSON->encode($c->{generic}),
   '{"failed":1,"forged":1,"ignored":0,"mapped":1,"refused":1,'
   . '"replayed":0}', 'GET /admin/webhooks: generic');

SKIP: {
    skip 'python3-jsonschema needed', 1
        if system('python3', '-c', 'import jsonschema') != 0;
    write_file("$DIR/counts.json", $JSON->encode($c));
    my ($rc) = run_out('python3', '-c', <<'PY',
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))
PY
                       "$ROOT/schema/webhooks.schema.json", "$DIR/counts.json");
    is($rc, 0, 'GET /admin/webhooks is valid (schema/webhooks.schema.json)');
}

# a reload keeps the counts and the delivery ids taken
ok(reload_nginx($h), 'reload');
is($JSON->encode(counts($h)), $JSON->encode($c), 'the counts survive it');
is(answer(wc($h, 'order.created', 'd-1', wc_order(id => 4501))),
   '200 {"status":"duplicate"}', 'and so do the delivery ids taken');

($status) = http_request($h, 'GET', '/hooks/wc', {});
is($status, 405, 'GET on a webhook: 405');

# under the sanitizers (README, Tests), a report ends the worker with a code
unlike(error_log_text($h),
       qr/AddressSanitizer|exited with code [1-9]|runtime error: .*webhook/,
       'no sanitizer report, no worker exit');
stop_checked($h, 'webhooks');


# two workers share the delivery ids taken: a replay is refused by the
# table whichever worker takes it, not only by the events' ids (checked
# once both have answered)
{
    my $h2 = start_nginx(http_config => $HTTP, store => $STORE, workers => 2,
                         config => hook('wc', 'woocommerce', 'wc',
                                        "$ADAPTERS/woocommerce.lua",
                                        'add_header X-Pid $pid always;'));
    my $body = $JSON->encode(wc_order(id => 4701, customer => 3003));
    my %hdr = ('Content-Type' => 'application/json',
               'X-WC-Webhook-Topic' => 'order.created',
               'X-WC-Webhook-Delivery-ID' => 'two-1',
               'X-WC-Webhook-Signature' =>
                   b64(hmac_sha256($body, $SECRET{wc})));
    my (%pids, %answers);
    for my $n (0 .. 59) {
        my ($status, $headers, $text) =
            http_request($h2, 'POST', '/hooks/wc', \%hdr, $body);
        my $pid = $headers->{'x-pid'};
        $pid = $pid->[0] if ref $pid;
        # the table's answer, not the batch's (duplicates, with counts)
        $pids{$pid // '-'}++ if $n > 0;
        $answers{"$status " . ($text // '') =~ s/\s+\z//r}++ if $n > 0;
        last if $n >= 10 && keys %pids > 1;
    }
    SKIP: {
        skip 'one worker took every replay', 1 if keys %pids < 2;
        is(join(',', sort keys %answers), '200 {"status":"duplicate"}',
           'two workers: every replay is a duplicate (delivery ids '
           . 'shared: ' . join(',', map { "$_ x$pids{$_}" } sort keys %pids)
           . ')');
    }
    stop_checked($h2, 'two workers');
}


# the adapters' events, exactly: a probe mapping runs one adapter (copied
# beside it) on the payload it is given and refuses with the events it got
# as text (or the adapter's own refusal), so that nothing is applied and
# fields the store does not keep (items, the signup's time) are seen too
{
    mkdir "$DIR/adapters" or die "mkdir $DIR/adapters: $!";
    write_file("$DIR/adapters/$_.lua", slurp("$ADAPTERS/$_.lua"), 0644)
        for qw(shopify woocommerce youzan);
    write_file("$DIR/probe.lua", <<'LUA', 0644);
local function text(e)
  local out = {}
  for _, k in ipairs({ "type", "member", "order_id", "refund_id", "amount",
                       "at" }) do
    if e[k] ~= nil then out[#out + 1] = k .. "=" .. tostring(e[k]) end
  end
  for _, i in ipairs(e.items or {}) do
    out[#out + 1] = i.sku .. "x" .. i.qty
  end
  return table.concat(out, " ")
end
return { map = function(probe, headers)
  local adapter = require("adapters." .. probe.adapter)
  local events, why = adapter.map(probe.payload, { topic = probe.topic })
  if not events then return nil, "refused: " .. why end
  if probe.event == 0 then return nil, #events .. " events" end
  return nil, text(events[probe.event])
end }
LUA
    my $hp = start_nginx(http_config => $HTTP, store => $STORE,
                         config => hook('probe', 'generic', 'youzan',
                                        "$DIR/probe.lua"));
    my $n = 0;
    my $probe = sub {
        my ($adapter, $topic, $payload, $event) = @_;
        my ($status, $doc) = generic($hp, '/hooks/probe', 'probe',
                                     'probe-' . $n++,
                                     { adapter => $adapter, topic => $topic,
                                       payload => $payload,
                                       event => $event // 0 });
        return "$status " . (ref $doc ? $doc->{error} // '' : $doc);
    };
    my $sh = shopify_order(total => '300.00', wipes => '44.00');
    my $sh_member = "member=shopify-$BIG_CUSTOMER";

    is($probe->('shopify', 'orders/paid', $sh, 1),
       "422 type=signup $sh_member at=2026-10-01T09:00:00+08:00",
       'shopify: the signup, at the customer\'s created_at');
    is($probe->('shopify', 'orders/paid', $sh, 2),
       "422 type=order $sh_member order_id=shopify-order-$BIG_ORDER "
       . 'amount=30000 at=2026-11-21T18:05:03+08:00 nappies-128x2 '
       . 'shopify-variant-457924702x1',
       'shopify: the order, its SKUs else variant ids');
    delete $sh->{customer}{created_at};
    like($probe->('shopify', 'orders/paid', $sh, 1),
         qr/ at=2026-11-21T18:05:03\+08:00\z/,
         'shopify: a customer without created_at signs up at the order');
    delete @$sh{qw(processed_at created_at)};
    is($probe->('shopify', 'orders/paid', $sh),
       '422 refused: the order has no processed_at or created_at',
       'shopify: an order without a time is refused');
    $sh->{customer}{id} = undef;
    is($probe->('shopify', 'orders/paid', $sh),
       '422 refused: the customer has no id',
       'shopify: a customer without an id is refused');

    my $wc = wc_order(id => 4801, refunds => [{ id => 4810,
                                                 total => '-5.00' }]);
    push @{$wc->{line_items}}, { product_id => 94, quantity => 3, sku => '' };
    is($probe->('woocommerce', 'order.updated', $wc, 0), '422 3 events',
       'woocommerce: signup, order and refund');
    is($probe->('woocommerce', 'order.updated', $wc, 2),
       '422 type=order member=wc-1001 order_id=wc-order-4801 amount=12800 '
       . 'at=2026-11-21T10:01:00Z nappies-128x1 wc-product-94x3',
       'woocommerce: the order, its SKUs else product ids');
    is($probe->('woocommerce', 'order.updated', $wc, 3),
       '422 type=refund order_id=wc-order-4801 refund_id=wc-refund-4810 '
       . 'amount=500', 'woocommerce: the refund');
    is($probe->('woocommerce', 'order.created',
                { %$wc, customer_id => 'li na' }),
       '422 refused: the customer id is not a number',
       'woocommerce: a customer id that is no id is refused');
    is($probe->('woocommerce', 'order.created',
                { %$wc, date_paid_gmt => undef, date_created_gmt => 'x' }),
       '422 refused: the order has no date_paid_gmt or date_created_gmt',
       'woocommerce: an order without a time is refused');

    my $yz = { tid => 'E20261121100000000000009', fans_id => 88002,
               payment => '99.50', pay_time => '2026-11-21 18:00:00',
               orders => [{ outer_sku_id => 'wipes-80', num => 2 },
                          { num => 1 }] };
    is($probe->('youzan', 'trade_TradePaid', { msg => $yz }, 1),
       '422 type=signup member=yz-88002', 'youzan: the signup, no time');
    is($probe->('youzan', 'trade_TradePaid', { msg => $yz }, 2),
       '422 type=order member=yz-88002 order_id=yz-order-'
       . 'E20261121100000000000009 amount=9950 at=2026-11-21T18:00:00+08:00 '
       . 'wipes-80x2', 'youzan: the order, lines without a SKU left out');
    is($probe->('youzan', 'trade_TradePaid',
                { msg => { %$yz, fans_id => undef } }),
       '422 0 events', 'youzan: a buyer who is no fan is ignored');
    is($probe->('youzan', 'trade_TradePaid',
                { msg => { %$yz, pay_time => undef } }),
       '422 refused: the trade has no pay_time',
       'youzan: a trade without pay_time is refused');
    is($probe->('youzan', 'trade_TradePaid',
                { msg => { %$yz, payment => '1.234' } }),
       '422 refused: more decimals than the currency has: "1.234"',
       'youzan: an amount the currency cannot have is refused');
    stop_checked($hp, 'probe');
}

done_testing();
