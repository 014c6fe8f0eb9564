# Lifecycle and segment variables: computed per request from the member's
# record, the store's rules and the time of the request.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;
use JSON::PP qw(decode_json);
use POSIX qw(strftime);
use Test::More;

sub ago {
    my ($days) = @_;
    return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - $days * 86400));
}

# the example rules, with the thresholds and segments these tests need
my $rules = decode_json(slurp('schema/examples/rules.json'));
$rules->{lifecycle} = { at_risk => 60, dormant => 120, lost => 365 };
$rules->{rfm} = { recency => [30, 60, 90, 180], frequency => [2, 4, 8, 16],
                  monetary => [12800, 50000, 200000, 1000000] };
$rules->{segments} = [ { name => 'A1', r => 5, f => 5, m => 5 },
                       { name => 'C1', r => 5, f => 2, m => 2 },
                       { name => 'D3' } ];
my $RULES = JSON::PP->new->canonical->encode($rules);

my %members = (
    vip    => [10, 20, 2000000],
    newbie => [5, 2, 12800],
    atrisk => [70, 3, 30000],
    sleepy => [200, 3, 30000],
    gone   => [400, 1, 5000],
);

my $store = "[tiers]\n" . slurp('schema/examples/tiers.jsonl') . "[members]\n";
for my $id (sort keys %members) {
    my ($days, $orders, $spend) = @{ $members{$id} };
    $store .= sprintf '{"id":"%s","tier":"basic","stage":"customer",'
        . '"first_order_at":"%s","last_order_at":"%s","orders":%d,'
        . '"spend":%d}' . "\n", $id, ago($days + 1), ago($days), $orders,
        $spend;
}
$store .= "{\"id\":\"fan\",\"tier\":\"basic\",\"stage\":\"fan\"}\n";

my $CONFIG = 'location / { return 200 "[$loyalty_lifecycle][$loyalty_segment]\n"; }';
my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

sub as {
    my ($h, $id) = @_;
    my %hdr = $id ? (Cookie => 'loyalty_member=' . sign_member($id, '1h'))
                  : ();
    my (undef, undef, $body) = http_request($h, 'GET', '/', \%hdr);
    return $body;
}

# without rules: nothing to say
{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $store);
    is(as($h, 'vip'), "[none][]\n", 'a store without rules: none, no segment');
    is(as($h, undef), "[none][]\n", 'an anonymous visitor: none');

    my $dir = test_dir();
    write_file("$dir/rules.json", "$RULES\n");
    is((loyaltyctl('-s', $h->{store}, 'import', 'rules', "$dir/rules.json"))[0],
       0, 'rules imported while nginx runs');

    is(as($h, 'vip'), "[active][A1]\n", 'the rules apply at once: active, A1');
    is(as($h, 'newbie'), "[active][C1]\n",
       'two recent orders of 128: active, C1');
    is(as($h, 'atrisk'), "[at_risk][D3]\n", '70 days without an order: at risk');
    is(as($h, 'sleepy'), "[dormant][D3]\n", '200 days: dormant');
    is(as($h, 'gone'), "[lost][D3]\n", '400 days: lost');
    is(as($h, 'fan'), "[none][D3]\n", 'no order yet: none, the last segment');
    is(as($h, undef), "[none][]\n", 'anonymous: none, no segment');

    # a store whose rules are replaced: the next request sees the new ones
    (my $later = $RULES) =~ s/"at_risk":60/"at_risk":5/ or die;
    write_file("$dir/rules.json", "$later\n");
    loyaltyctl('-s', $h->{store}, 'import', 'rules', "$dir/rules.json");
    is(as($h, 'vip'), "[at_risk][A1]\n", 'new thresholds apply at once');

    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|signal \d+/,
           'no trouble in the error log');
    stop_nginx($h);
}

done_testing();
