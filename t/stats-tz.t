# The conversion counters count the shop's days (loyalty_timezone,
# loyaltyctl --tz), through a real nginx: an order placed at 23:30 UTC is
# placed at 07:30 the next morning in Asia/Shanghai and counts on that
# day in GET .../stats (by code and by day), in loyaltyctl --tz stats
# and in events applied by loyaltyctl --tz; the default range ends on
# the shop's today; loyaltyctl without --tz counts UTC days; a bad --tz
# is refused (exit 2).

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $JSON = JSON::PP->new->canonical;
my $TZ = 'Asia/Shanghai';

my @C = qw(clicks unique_clicks bot_clicks attributed signups first_orders
           orders revenue refunds refunded points_l1 points_l2);

my $STORE = "[tiers]\n" . slurp("$EXAMPLES/tiers.jsonl") . <<'END';
[members]
{"id":"bob","tier":"basic","stage":"fan"}
[codes]
{"code":"BOB-TZ","vanity":true,"member":"bob","campaign":"night","target":"/p/b"}
END

sub line {
    my ($r) = @_;
    return join ' ', map { $r->{$_} // '-' } @C;
}

sub rows {
    my ($doc) = @_;
    return { map { $_->{key} => line($_) } @{$doc->{rows} || []} };
}

sub get {
    my ($h, $query) = @_;
    my ($status, $hdr, $body) = http_request($h, 'GET', "/admin/stats?$query",
                                             admin_auth('read'));
    return ($status, eval { $JSON->decode($body) } // { body => $body });
}

sub schema_ok {
    my ($doc, $name) = @_;
    my $dir = test_dir();
    write_file("$dir/doc.json", $JSON->encode($doc));
    schema_check("$ROOT/schema/stats.schema.json", "$dir/doc.json", {});
}

# the day in Shanghai (UTC+8 all year) and in UTC
sub shop_day { POSIX::strftime('%Y-%m-%d', gmtime(time + 8 * 3600)) }
sub utc_day { POSIX::strftime('%Y-%m-%d', gmtime(time)) }


my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                   . "loyalty_keys %%KEYS%%;\n"
                                   . "loyalty_timezone $TZ;\n",
                    config => "location /admin/ { %%ADMIN%% }\n",
                    store => $STORE);

{
    my ($status, $hdr, $body) = admin_request($h, 'POST', '/admin/events',
        $JSON->encode([
            { type => 'signup', member => 'ann', ref_code => 'BOB-TZ',
              at => '2026-03-09T23:30:00Z' },
            { type => 'order', member => 'ann', order_id => 'tz1',
              amount => 1200, at => '2026-03-09T23:30:00Z' },
            { type => 'order', member => 'ann', order_id => 'tz2',
              amount => 300, at => '2026-03-10T15:59:59Z' },
        ]));
    is($status, 200, 'events at 23:30 UTC applied') or diag($body);
}

my $ONE = '0 0 0 0 1 1 2 1500 0 0 0 0';

{
    my ($status, $doc) = get($h, 'by=code&from=2026-03-10&to=2026-03-10');
    is($status, 200, 'by=code 200');
    is_deeply(rows($doc), { 'BOB-TZ' => $ONE },
              'by=code: 23:30 UTC on the 9th and 15:59:59 UTC on the 10th '
              . 'are the shop\'s 10 March');
    schema_ok($doc, 'by=code');

    ($status, $doc) = get($h, 'by=code&from=2026-03-09&to=2026-03-09');
    is($doc->{count}, 0, 'by=code: nothing on the UTC day, 9 March');

    ($status, $doc) = get($h, 'by=day&from=2026-03-09&to=2026-03-11');
    is_deeply(rows($doc), { '2026-03-09' => '0 0 0 0 0 0 0 0 0 0 0 0',
                            '2026-03-10' => $ONE,
                            '2026-03-11' => '0 0 0 0 0 0 0 0 0 0 0 0' },
              'by=day: the shop\'s 10 March');
    schema_ok($doc, 'by=day');

    ($status, $doc) = get($h, 'by=campaign');
    is($doc->{to}, shop_day(), 'the default range ends on the shop\'s today');
}

# loyaltyctl --tz: the same days; without it, UTC's

{
    my ($rc, $out, $err) = loyaltyctl('--tz', $TZ, '-s', $h->{store},
                                      'stats', '--by', 'code', '--from',
                                      '2026-03-10', '--to', '2026-03-10');
    is($rc, 0, 'loyaltyctl --tz stats') or diag($err);
    is_deeply(rows(eval { $JSON->decode($out) } // {}),
              { 'BOB-TZ' => $ONE }, 'loyaltyctl --tz stats: the same day');

    ($rc, $out) = loyaltyctl('--tz', $TZ, '-s', $h->{store}, 'stats',
                             '--by', 'day');
    is((eval { $JSON->decode($out) } // {})->{to}, shop_day(),
       'loyaltyctl --tz stats: the shop\'s today');
    ($rc, $out) = loyaltyctl('-s', $h->{store}, 'stats', '--by', 'day');
    is((eval { $JSON->decode($out) } // {})->{to}, utc_day(),
       'loyaltyctl stats without --tz: UTC\'s today');

    ($rc, $out, $err) = loyaltyctl('--tz', 'Mars/Olympus', '-s',
                                   $h->{store}, 'stats', '--by', 'day');
    is($rc, 2, 'a bad --tz: 2');
    like($err, qr/invalid --tz "Mars\/Olympus"/, 'a bad --tz: why');
}

stop_checked($h, 'stats-tz');

# events applied by loyaltyctl --tz count the shop's day too

{
    my $dir = test_dir();
    write_file("$dir/ev.jsonl",
               $JSON->encode({ type => 'signup', member => 'cy',
                               ref_code => 'BOB-TZ',
                               at => '2026-04-01T23:30:00Z' }) . "\n"
               . $JSON->encode({ type => 'order', member => 'cy',
                                 order_id => 'tz3', amount => 700,
                                 at => '2026-04-01T23:30:00Z' }) . "\n");
    my ($rc, $out, $err) = loyaltyctl('--tz', $TZ, '-s', $h->{store},
                                      'apply', "$dir/ev.jsonl");
    is($rc, 0, 'loyaltyctl --tz apply') or diag($err);

    ($rc, $out) = loyaltyctl('-s', $h->{store}, 'stats', '--by', 'day',
                             '--from', '2026-04-01', '--to', '2026-04-02',
                             '--csv');
    like($out, qr/^2026-04-02,0,0,0,0,1,1,1,700,/m,
         'applied with --tz: counted on the shop\'s 2 April');
    like($out, qr/^2026-04-01,0,0,0,0,0,0,0,0,/m, 'and not on 1 April');
}

done_testing();
