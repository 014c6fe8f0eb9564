# loyalty_timezone NAME: the shop's time zone, read from the system's
# tzdata by our own reader; the Lua date helpers count its days (DST
# included), the click counters count clicks on its days, and a bad name
# is refused by nginx -t at its line.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $JSON = JSON::PP->new;

my $STORE = <<'END';
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
[prices]
{"sku":"tea","retail":1000}
[codes]
{"code":"ALICE1","member":"alice","target":"/p/a"}
END

my $CONFIG = <<'END';
location /price { loyalty_price_api; }
location /s/ { loyalty_share; }
END

# what Python's zoneinfo (the same tzdata, another reader) says of a zone
# now: "ZONE OFFSET YYYY-MM-DD ISO-WEEKDAY"
sub python_now {
    my ($zone, $t) = @_;
    my $out = `python3 -c 'import sys, datetime, zoneinfo
z = zoneinfo.ZoneInfo(sys.argv[1]) if sys.argv[1] != "UTC" else datetime.timezone.utc
d = datetime.datetime.fromtimestamp(int(sys.argv[2]), z)
print(sys.argv[1], int(d.utcoffset().total_seconds()), d.strftime("%Y-%m-%d"), d.isoweekday())' $zone $t`;
    chomp $out;
    return $out;
}

sub label {
    my ($h) = @_;
    my ($s, undef, $b) = http_request($h, 'GET', '/price?sku=tea', {});
    my $doc = eval { $JSON->decode($b) } or return "bad answer: $b";
    return $doc->{items}[0]{promo} // '-';
}

for my $zone ('Asia/Shanghai', 'America/New_York', 'UTC', undef) {
    my $http = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
             . ($zone ? "loyalty_timezone $zone;\n" : '')
             . "loyalty_lua_file $ROOT/t/lua/zone.lua;\n";
    my $h = start_nginx(http_config => $http, config => $CONFIG,
                        store => $STORE);
    my $t = time;
    my $got = label($h);
    my $want = python_now($zone // 'UTC', int $t);
    # a second may pass between the two clocks: ask again then
    $want = python_now($zone // 'UTC', int time) if $got ne $want;
    is($got, $want, 'the Lua date helpers in ' . ($zone // 'no zone')
                    . ': zone, offset, day and weekday as zoneinfo says');
    stop_checked($h, $zone // 'no zone');
}

# the click counters' day is the shop's: a zone whose date differs from
# UTC's now (+14 after 10:00 UTC, -11 before 11:00 UTC)
{
    my $hour = (gmtime)[2];
    my $zone = $hour >= 10 ? 'Pacific/Kiritimati' : 'Pacific/Pago_Pago';
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_timezone $zone;\n"
                                       . "loyalty_click_zone clicks 1m;\n"
                                       . "loyalty_click_flush 1s;\n",
                        config => $CONFIG, store => $STORE);
    my ($s) = http_request($h, 'GET', '/s/ALICE1',
                           { 'User-Agent' => 'Mozilla/5.0 (X11; Linux '
                             . 'x86_64) Chrome/120.0 Safari/537.36' });
    is($s, 302, 'a click');
    my $day = '';
    my $deadline = time + 5;
    while (time < $deadline) {
        my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'clicks', 'ALICE1');
        ($day) = $out =~ /"day":"([\d-]+)"/;
        last if $day;
        sleep 0.2;
    }
    my (undef, undef, $shop) = split ' ', python_now($zone, int time);
    my @g = gmtime;
    my $utc = sprintf '%04d-%02d-%02d', $g[5] + 1900, $g[4] + 1, $g[3];
    isnt($shop, $utc, "$zone: its date is not UTC's now");
    is($day // '', $shop, "$zone: the click counted on the shop's day");
    stop_checked($h, 'clicks');
}

run_blocks();
done_testing();

__DATA__

=== TEST 1: an unknown zone, at its line
--- http_config
loyalty_timezone Mars/Olympus;
--- config_error
"loyalty_timezone" unknown time zone "Mars/Olympus": no file "/usr/share/zoneinfo/Mars/Olympus" (the system's tzdata) in %%PREFIX%%/conf/nginx.conf:24


=== TEST 2: a path out of tzdata
--- http_config
loyalty_timezone ../../../etc/passwd;
--- config_error
"loyalty_timezone" invalid time zone "../../../etc/passwd": an IANA name such as Asia/Shanghai or America/New_York in %%PREFIX%%/conf/nginx.conf:24


=== TEST 3: a directory of tzdata
--- http_config
loyalty_timezone Asia;
--- config_error
"loyalty_timezone" unknown time zone "Asia": Is a directory


=== TEST 4: twice
--- http_config
loyalty_timezone Asia/Shanghai;
loyalty_timezone UTC;
--- config_error
"loyalty_timezone" directive is duplicate in %%PREFIX%%/conf/nginx.conf:25


=== TEST 5: a file of tzdata that is not a zone
--- http_config
loyalty_timezone zone.tab;
--- config_error
"loyalty_timezone" time zone "zone.tab": "/usr/share/zoneinfo/zone.tab" is not a TZif file
