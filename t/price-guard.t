# The privilege guard around prices: import refuses files that break it,
# the request path clamps records that break it anyway, and a shared cache
# keyed on $loyalty_price_tier never mixes tiers.

use lib 't/lib';
use Loyalty::Harness;
use File::Temp qw(tempdir);

my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;    # the workers must reach the store, as in /var/lib
my $store = "$dir/store";

sub put_file {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die "$name: $!";
    print $fh $text;
    close $fh;
    return "$dir/$name";
}

sub import_ok {
    my ($kind, $text, $name) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', $kind,
                                      put_file("in.jsonl", $text));
    is($rc, 0, $name) or diag("$out$err");
}

sub import_fails {
    my ($kind, $text, $why, $name) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', $kind,
                                      put_file("in.jsonl", $text));
    is($rc, 1, "$name: refused");
    like($err, qr/\Q$why\E[^\n]*; nothing imported\n\z/, "$name: says why");
}

sub price_of {
    my ($sku, $tier) = @_;
    my ($rc, $out) = loyaltyctl('-s', $store, 'get', 'price', $sku,
                                $tier ? ('--tier', $tier) : ());
    chomp $out;
    return $out;
}

is((loyaltyctl('-s', $store, 'init'))[0], 0, 'init');
import_ok(tiers => <<'END', 'four tiers');
{"name":"basic","rank":0,"label":"Basic"}
{"name":"vip","rank":1,"discount_bp":500,"label":"VIP"}
{"name":"ka","rank":2,"discount_bp":1000,"label":"Key account"}
{"name":"partner","rank":3,"discount_bp":4600,"label":"Partner"}
END
import_ok(prices => <<'END', 'domain prices');
{"sku":"sofa-298","retail":29800,"tiers":{"vip":25800,"ka":25800,"partner":11800}}
{"sku":"nappies-128","retail":12800,"tiers":{"partner":6900}}
END

my $sofa = '{"sku":"sofa-298","retail":29800,'
           . '"tiers":{"vip":25800,"ka":25800,"partner":11800}}';
is(price_of('sofa-298'), $sofa, 'get price');
is(price_of('sofa-298', 'ka'),
   '{"sku":"sofa-298","tier":"ka","retail":29800,"price":25800,"saved":4000}',
   'get price --tier');
is(price_of('nappies-128', 'public'),
   '{"sku":"nappies-128","tier":"public","retail":12800,"price":12800,'
   . '"saved":0}', 'the public tier pays retail');

# bad price files: each line 2, between two good lines
my @bad = (
    ['{"sku":"x","retail":"12800"}', '"retail" must be an integer',
     'non-numeric retail'],
    ['{"sku":"x","retail":-1}', '"retail" must be between 0 and',
     'negative retail'],
    ['{"sku":"x","retail":128.5}', '"retail" must be an integer',
     'fractional retail'],
    ['{"sku":"x","retail":99999999999999999999}', 'bad JSON: too big integer',
     'overflowing retail'],
    ['{"sku":"x","retail":1000000000000001}',
     '"retail" must be between 0 and 1000000000000000', 'retail too large'],
    ['{"sku":"x","retail":100,"tiers":{"vip":"90"}}',
     '"tiers": the price for "vip" must be an integer', 'non-numeric tier'],
    ['{"sku":"x","retail":100,"tiers":{"vip":-5}}',
     '"tiers": the price for "vip" must be an integer between 0',
     'negative tier price'],
    ['{"sku":"x","retail":100,"tiers":{"vip":89.9}}',
     '"tiers": the price for "vip" must be an integer', 'fractional tier'],
    ['{"sku":"x","retail":100,"tiers":{"gold":90}}',
     '"tiers": unknown tier "gold"', 'unknown tier in overrides'],
    ['{"sku":"x","retail":100,"tiers":{"vip":101}}',
     'sku "x" breaks the privilege guard: tier "vip" price 101 is above '
     . 'retail 100', 'a tier above retail'],
    ['{"sku":"x","retail":100,"tiers":{"vip":80,"ka":85}}',
     'sku "x" breaks the privilege guard: tier "ka" (rank 2) price 85 is '
     . 'above tier "vip" (rank 1) price 80', 'a higher tier above a lower'],
    ['{"sku":"x","retail":100,"tiers":{"vip":80}}',
     'sku "x" breaks the privilege guard: tier "ka" (rank 2) price 90 is '
     . 'above tier "vip" (rank 1) price 80',
     'a discount above a lower tier\'s override'],
    ['{"sku":"x","retail":100,"currency":"cny"}',
     '"currency" must be an ISO 4217 code', 'lowercase currency'],
    ['{"sku":"x","retail":100,"currency":"YUAN"}',
     '"currency" must be an ISO 4217 code', 'long currency'],
    ['{"sku":"a/b","retail":100}', '"sku" must be 1-64 characters',
     'sku with a slash'],
    ['{"sku":"' . ('s' x 65) . '","retail":100}',
     '"sku" must be 1-64 characters', 'sku of 65 characters'],
    ['{"sku":"x","retail":100,"discount":5}', 'unknown field "discount"',
     'unknown field'],
    ['{"sku":"x"}', '"retail" is required', 'missing retail'],
    ['{"sku":"x","retail":100,"tiers":[90]}', '"tiers" must be an object',
     'tiers as an array'],
);

for my $b (@bad) {
    my ($line, $why, $name) = @$b;
    import_fails(prices =>
                 qq({"sku":"ok1","retail":5}\n$line\n{"sku":"ok2","retail":5}\n),
                 "line 2: $why", $name);
}

is(price_of('ok1'), '', 'no line of a refused file was imported');
is(price_of('sofa-298'), $sofa, 'earlier prices are unchanged');

# a tier change that would break a stored price is refused too
import_fails(tiers => qq({"name":"vip","rank":1,"discount_bp":6000}\n),
             'these tiers break the privilege guard for sku "nappies-128": '
             . 'tier "ka" (rank 2) price 11520 is above tier "vip" (rank 1) '
             . 'price 5120', 'a tier discount that breaks the guard');
is((loyaltyctl('-s', $store, 'get', 'tier', 'vip'))[1],
   qq({"name":"vip","rank":1,"discount_bp":500,"label":"VIP"}\n),
   'the tier is unchanged');

# more overrides than a record holds
import_ok(tiers => join('', map { qq({"name":"t$_","rank":10,"discount_bp":6100}\n) }
                       1 .. 17),
          'seventeen more tiers');
import_fails(prices => '{"sku":"x","retail":100,"tiers":{'
                       . join(',', map { qq("t$_":90) } 1 .. 17) . "}}\n",
             'line 1: "tiers" has more than 16 entries', '17 overrides');

# the largest retail price, at every tier, without overflow
import_ok(prices => qq({"sku":"max","retail":1000000000000000}\n),
          'the largest retail price');
is(price_of('max', 'partner'),
   '{"sku":"max","tier":"partner","retail":1000000000000000,'
   . '"price":540000000000000,"saved":460000000000000}',
   'a 46% discount on it is exact');
is(price_of('max', 'basic'),
   '{"sku":"max","tier":"basic","retail":1000000000000000,'
   . '"price":1000000000000000,"saved":0}', 'no discount: retail');

is((loyaltyctl('-s', $store, 'verify'))[0], 0, 'verify: consistent');


# a record that breaks the guard, written around loyaltyctl: nginx clamps

sub raw_price {
    my ($retail, @ov) = @_;
    my $rec = pack('C C a3 x3 q<', 1, @ov / 2, "\0\0\0", $retail);
    while (my ($tier, $price) = splice @ov, 0, 2) {
        $rec .= pack('q< C a32 x7', $price, length $tier, $tier);
    }
    return join '', map { sprintf '\\%02x', ord } split //, $rec;
}

open my $load, '|-', "mdb_load -T -s prices $store" or die;
print $load "broken\n", raw_price(1000, vip => 900, ka => 950,
                                  partner => 1200), "\n";
close $load;
is($?, 0, 'a record that breaks the guard, loaded with mdb_load');

my ($rc, $out) = loyaltyctl('-s', $store, 'verify');
is($rc, 1, 'verify finds it');
like($out, qr{^prices/broken: tier "ka" \(rank 2\) price 950 is above tier "vip" \(rank 1\) price 900$}m,
     'and names the tiers');

import_ok(members => <<'END', 'members of each tier');
{"id":"vip1","tier":"vip","stage":"member"}
{"id":"vip2","tier":"vip","stage":"member"}
{"id":"ka1","tier":"ka","stage":"member"}
{"id":"partner1","tier":"partner","stage":"partner"}
END

my $h = start_nginx(http_config => <<"END", config => <<'END');
loyalty_store $store;
loyalty_keys %%KEYS%%;
END
location /prices { loyalty_price_api; }
location /sku {
    loyalty_price_sku broken;
    return 200 "[$loyalty_price_tier][$loyalty_price]\n";
}
END

sub get_as {
    my ($id, $uri) = @_;
    my ($status, $hdr, $body) = http_request($h, 'GET', $uri,
        $id ? { Cookie => 'loyalty_member=' . sign_member($id, 3600) } : {});
    return wantarray ? ($body, $hdr) : $body;
}

is(get_as('ka1', '/prices?sku=broken'),
   qq({"tier":"ka","currency":"CNY","items":[{"sku":"broken","retail":1000,)
   . qq("price":900,"saved":100,"label":"Key account"}]}\n),
   'a key account never pays more than a VIP');
is(get_as('partner1', '/sku'), "[partner][900]\n",
   'a partner never pays more than retail or a lower tier');
is(get_as('vip1', '/sku'), "[vip][900]\n", 'the VIP override is kept');
is(get_as(undef, '/sku'), "[public][1000]\n", 'the public pays retail');

stop_nginx($h);
my $log = error_log_text($h);
like($log, qr/\[info\].*loyalty: privilege guard lowered sku "broken" for tier "ka" from 950 to 900 \(1 in this worker\)/,
     'the clamp is logged at info, and counted');
like($log, qr/for tier "partner" from 1200 to 900 \(2 in this worker\)/,
     'the count goes on');
unlike($log, qr/lowered sku "broken" for tier "vip"/, 'no clamp for the VIP');


# a shared cache keyed on the price tier: one entry per tier, never mixed

my $upstream = do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp') or die;
    $s->sockport;
};

$h = start_nginx(http_config => <<"END", config => <<"END");
loyalty_store $store;
loyalty_keys %%KEYS%%;
proxy_cache_path %%PREFIX%%/cache keys_zone=pages:1m;

server {
    listen 127.0.0.1:$upstream;
    location / {
        return 200 "page for [\$http_x_price_tier] #\$request_id\n";
    }
}
END
location / {
    proxy_cache pages;
    proxy_cache_key "\$uri|\$loyalty_price_tier";
    proxy_cache_valid 200 10m;
    proxy_set_header X-Price-Tier \$loyalty_price_tier;
    proxy_set_header Cookie "";
    add_header X-Cache \$upstream_cache_status;
    proxy_pass http://127.0.0.1:$upstream;
}
END

my %seen;
for my $case (['vip1', 'MISS', 'vip'], ['vip2', 'HIT', 'vip'],
              ['ka1', 'MISS', 'ka'], [undef, 'MISS', 'public'],
              [undef, 'HIT', 'public'], ['partner1', 'MISS', 'partner'],
              ['ka1', 'HIT', 'ka'])
{
    my ($id, $cache, $tier) = @$case;
    my ($body, $hdr) = get_as($id, '/product/sofa-298');
    my $who = $id // 'anonymous';
    is($hdr->{'x-cache'}, $cache, "$who: cache $cache");
    like($body, qr/^page for \[\Q$tier\E\] #\w+$/, "$who: the $tier page");
    $seen{$tier} //= $body;
    is($body, $seen{$tier}, "$who: the page cached for $tier, if any");
}

isnt($seen{vip}, $seen{ka}, 'two tiers never share a page');
my @entries = glob "$h->{prefix}/cache/*";
is(scalar @entries, 4, 'four cache entries: vip, ka, public, partner');

stop_nginx($h);


# the per-worker price cache: never staler than the store, and a clamp
# answered from it is counted and logged as one read from the store

$h = start_nginx(http_config => <<"END", config => <<'END');
loyalty_store $store;
loyalty_keys %%KEYS%%;
END
location /prices { loyalty_price_api; }
END

my $sofa_ka = sub {
    qq({"tier":"ka","currency":"CNY","items":[{"sku":"sofa-298","retail":$_[0],)
    . qq("price":$_[1],"saved":) . ($_[0] - $_[1])
    . qq(,"label":"Key account"},{"sku":"new-1",$_[2]}]}\n);
};
my $unknown = '"error":"unknown sku"';

for my $n (1, 2) {
    is(get_as('ka1', '/prices?sku=sofa-298,new-1'),
       $sofa_ka->(29800, 25800, $unknown), "a key account's sofa, ask $n");
}
for my $n (1, 2) {
    is(get_as('ka1', '/prices?sku=broken'),
       qq({"tier":"ka","currency":"CNY","items":[{"sku":"broken","retail":1000,)
       . qq("price":900,"saved":100,"label":"Key account"}]}\n),
       "the clamped price, ask $n");
}

import_ok(prices => <<'END', 'the sofa repriced, a new sku, nginx running');
{"sku":"sofa-298","retail":31000,"tiers":{"vip":26000,"ka":24000,"partner":12500}}
{"sku":"new-1","retail":500}
END

for my $n (1, 2) {
    is(get_as('ka1', '/prices?sku=sofa-298,new-1'),
       $sofa_ka->(31000, 24000,
                  '"retail":500,"price":450,"saved":50,"label":"Key account"}'
                  =~ s/\}$//r),
       "the new prices at once, ask $n");
}
is(get_as('vip1', '/prices?sku=sofa-298'),
   qq({"tier":"vip","currency":"CNY","items":[{"sku":"sofa-298","retail":31000,)
   . qq("price":26000,"saved":5000,"label":"VIP"}]}\n),
   'another tier of the same sku');

stop_nginx($h);
$log = error_log_text($h);
like($log, qr/for tier "ka" from 950 to 900 \(1 in this worker\)/,
     'the first clamp is logged');
like($log, qr/for tier "ka" from 950 to 900 \(2 in this worker\)/,
     'the clamp answered again is logged again, counted');
no_crash($h, "the price cache");

done_testing();
