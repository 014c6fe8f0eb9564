# The README's recipes, taken from README.md as they are printed and run
# together against a real upstream (an nginx server that answers with
# the headers it was given): the Quick start, which tells the upstream who
# the member is, and the per-tier page cache.  A VIP must never receive a
# page made for another member; anonymous visitors, and a tier's members
# where only the tier is told, still share cached pages.  The same
# recipes without `proxy_no_cache $loyalty_personal` leak, which shows
# that this test sees a leak when there is one.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;
use Test::More;

my $README = slurp('README.md');

# the Quick start's site, and the cache recipe's two parts
my ($site) = $README =~ m{```nginx\n(# /etc/nginx/conf\.d/shop\.conf\n.*?)```}s
    or BAIL_OUT('README.md: no Quick start site');
my ($cache_http, $cache_loc) =
    $README =~ m{```nginx\n\# http \{\}\n(.*?)\n\# location\n(.*?)```}s
    or BAIL_OUT('README.md: no per-tier page cache recipe');

like($cache_loc, qr/\$loyalty_price_tier/, 'the cache is keyed by tier');
like($site, qr/X-Member\s+\$loyalty_member/,
     'the Quick start tells the upstream who the member is');

# the examples' shop, and a second VIP who has never been here
my $store = '';
for my $kind (qw(tiers members)) {
    $store .= "[$kind]\n" . slurp("schema/examples/$kind.jsonl");
}
$store .= '{"id":"he.vip","tier":"vip","stage":"member"}' . "\n";
$store .= "[codes --hosts mall.example.cn]\n"
          . slurp('schema/examples/codes.jsonl');

# the upstream: says what it was told, and lets the page be cached
my $UPSTREAM = <<'END';
server {
    listen unix:%%PREFIX%%/shop.sock;
    location / {
        return 200 "member [$http_x_member] tier [$http_x_tier] price tier [$http_x_price_tier] referrer [$http_x_referrer]\n";
    }
}
END


# the recipes as an operator combines them: the cache in the Quick
# start's "location /", and in a location of its own for product pages
sub recipes {
    my ($keep) = @_;
    my ($s, $http, $loc) = ($site, $cache_http, $cache_loc);

    if (!$keep) {
        s/^\s*proxy_(?:no_cache|cache_bypass)\s+\$loyalty_personal;\n//mg
            for $s, $loc;
    }

    $s =~ s{/var/lib/loyalty}{%%STORE%%}g;
    $s =~ s{/etc/nginx/loyalty\.keys}{%%KEYS%%}g;
    $s =~ s{listen\s+80;}{listen 127.0.0.1:%%PORT%%;}
        or BAIL_OUT('Quick start: no "listen 80"');
    $s =~ s{server 127\.0\.0\.1:8000;}{server unix:%%PREFIX%%/shop.sock;}
        or BAIL_OUT('Quick start: no upstream server');
    $http =~ s{/var/cache/nginx/shop}{%%PREFIX%%/cache}
        or BAIL_OUT('cache recipe: no proxy_cache_path');

    my $probe = "add_header X-Cache \$upstream_cache_status always;\n";

    $s =~ s{(\n(\s*)location / \{\n)}{$1$loc$probe}
        or BAIL_OUT('Quick start: no "location /"');
    $s =~ s{(\n(\s*)location / \{)}{
        location /p/ {
            $loc$probe
            proxy_set_header Host \$host;
            proxy_pass http://shop;
        }
$1} or BAIL_OUT('Quick start: no "location /"');

    return "$http\n$UPSTREAM\n$s";
}


# GET as a member, a stranger (undef), or a stranger another member
# referred ("ref:CODE:REFERRER", with the attribution cookie of a click
# a minute ago)
sub get {
    my ($h, $uri, $who) = @_;
    my %hdr = (Host => 'shop.example',
               'User-Agent' => 'Mozilla/5.0 (X11; Linux x86_64) '
                               . 'Chrome/120.0');
    if ($who && $who =~ /^ref:([^:]+):(.+)$/) {
        $hdr{Cookie} = 'loyalty_ref=' . ref_cookie($1, $2, time - 60);
    } elsif ($who) {
        $hdr{Cookie} = 'loyalty_member=' . sign_member($who, '1h');
    }
    my ($status, $hdr, $body) = http_request($h, 'GET', $uri, \%hdr);
    is($status, 200, "GET $uri as " . ($who // 'a stranger'));
    return ($hdr->{'x-cache'} // '', $body // '');
}


# the recipes as the README prints them
{
    my $h = start_nginx(http_config => recipes(1), store => $store);

    my ($cache, $body) = get($h, '/account', 'li.member');
    like($body, qr/member \[li\.member\] tier \[vip\]/,
         'the upstream is told who the member is');
    isnt($cache, 'HIT', 'a member\'s page does not come from the cache');

    ($cache, $body) = get($h, '/account', 'he.vip');
    like($body, qr/member \[he\.vip\]/, 'a new VIP gets their own page');
    unlike($body, qr/li\.member/, 'never another member\'s');
    isnt($cache, 'HIT', 'made for them, not taken from the cache');

    ($cache, $body) = get($h, '/account', 'li.member');
    like($body, qr/member \[li\.member\]/, 'the first VIP, again');
    isnt($cache, 'HIT', 'a member\'s page was not stored');

    # strangers share what was made for strangers
    ($cache, $body) = get($h, '/account');
    like($body, qr/member \[\] tier \[\] price tier \[public\]/,
         'a stranger\'s page');
    is($cache, 'MISS', 'made by the upstream');
    ($cache, $body) = get($h, '/account');
    is($cache, 'HIT', 'and served from the cache to the next stranger');
    unlike($body, qr/li\.member|he\.vip/, 'naming no member');

    # a stranger whom a member referred: the page names the referrer
    ($cache, $body) = get($h, '/welcome', 'ref:li-vip-tea:li.member');
    like($body, qr/member \[\] .*referrer \[li\.member\]/,
         'the upstream is told who referred the stranger');
    isnt($cache, 'HIT', 'made for them');
    ($cache, $body) = get($h, '/welcome');
    unlike($body, qr/li\.member/,
           'another stranger never gets the referred stranger\'s page');
    is($cache, 'MISS', 'which was not stored');
    ($cache, $body) = get($h, '/welcome');
    is($cache, 'HIT', 'strangers share theirs');

    # where the upstream is told the tier alone, a tier shares its pages
    ($cache, $body) = get($h, '/p/sofa', 'li.member');
    like($body, qr/member \[\] tier \[\] price tier \[vip\]/,
         'a product page made for the VIP tier');
    is($cache, 'MISS', 'by the upstream');
    ($cache, $body) = get($h, '/p/sofa', 'he.vip');
    is($cache, 'HIT', 'served from the cache to another VIP');
    like($body, qr/price tier \[vip\]/, 'the VIP tier\'s page');
    ($cache, $body) = get($h, '/p/sofa', 'zhao.member');
    like($body, qr/price tier \[ka\]/, 'another tier gets its own page');
    isnt($cache, 'HIT', 'not the VIPs\'');

    stop_checked($h, 'the recipes together');
}


# without $loyalty_personal, the same recipes leak: the test can fail
{
    my $h = start_nginx(http_config => recipes(0), store => $store);

    get($h, '/account', 'li.member');
    my ($cache, $body) = get($h, '/account', 'he.vip');
    is($cache, 'HIT', 'without $loyalty_personal: from the cache');
    like($body, qr/member \[li\.member\]/,
         'without $loyalty_personal a new VIP gets another member\'s page');

    stop_checked($h, 'the recipes without $loyalty_personal');
}

done_testing();
