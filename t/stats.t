# The conversion counters end to end, through a real nginx: clicks on a
# share code flushed into the per-day counters, a signup by the code
# (with the click's time), orders, a partial refund and a referred
# member's action through the admin API, then GET .../stats by code,
# campaign, referrer and day with exact counts (the refund subtracts
# what its order added, level-2 points), sorting, top and offset, the
# funnel's stages and moves, cadence touches per cadence and staff;
# loyaltyctl stats giving the same answers, in JSON and CSV; every answer
# against its JSON Schema; bad arguments (400 and exit 2) and the admin
# authentication (401 without a token); the shop's days in its time zone
# (an order at 23:30 UTC counts on the next day in Asia/Shanghai).

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;
use IPC::Open2 qw(open2);

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $SCRIPT = "$ROOT/t/cadence/cadences.lua";
my $JSON = JSON::PP->new->canonical;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
         . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';

my $HTTP = <<'END';
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1s;
END

my $CONFIG = <<'END';
location /admin/ { %%ADMIN%% }
location /s/ { loyalty_share; }
location / { return 200 "ok\n"; }
END

# alice referred bob; bob's code brings carol, then dave (by name)
my $STORE = example_store(qw(tiers rules)) . <<'END';
[members]
{"id":"alice","tier":"basic","stage":"member"}
{"id":"bob","tier":"basic","stage":"fan","referrer":"alice"}
{"id":"erin","tier":"basic","stage":"fan"}
[codes]
{"code":"BOB-SHARE","vanity":true,"member":"bob","campaign":"spring","target":"/p/b"}
{"code":"ERIN-1","vanity":true,"member":"erin","target":"/p/e"}
END

# the rules' points: 1 a 100 spent, 500 and 200 to the referrers of a
# first order
my @EVENTS = (
    { type => 'signup', member => 'carol', ref_code => 'bob-share',
      at => '2026-11-01T10:00:00Z', ref_at => '2026-10-31T23:00:00Z' },
    { type => 'order', member => 'carol', order_id => 'o1',
      amount => 10000, at => '2026-11-02T10:00:00Z' },
    { type => 'order', member => 'carol', order_id => 'o2',
      amount => 5000, at => '2026-11-03T10:00:00Z' },
    { type => 'refund', refund_id => 'r1', order_id => 'o1',
      amount => 4000, at => '2026-11-04T10:00:00Z' },
    { type => 'signup', member => 'dave', referrer => 'bob',
      at => '2026-11-03T12:00:00Z' },
    { type => 'order', member => 'dave', order_id => 'o3',
      amount => 2000, at => '2026-11-03T13:00:00Z' },
    # no attribution: counts nowhere
    { type => 'signup', member => 'fred', at => '2026-11-02T09:00:00Z' },
    { type => 'order', member => 'fred', order_id => 'o4',
      amount => 99900, at => '2026-11-02T09:30:00Z' },
);

my @C = qw(clicks unique_clicks bot_clicks attributed signups first_orders
           orders revenue refunds refunded points_l1 points_l2);

# "clicks ... points_l2" of a row, for exact comparisons
sub line {
    my ($r) = @_;
    return join ' ', map { $r->{$_} // '-' } @C;
}

sub get {
    my ($h, $query, $scope) = @_;
    my ($status, $hdr, $body) = http_request($h, 'GET', "/admin/stats?$query",
                                             admin_auth($scope // 'read'));
    my $doc = eval { $JSON->decode($body) } // { body => $body };
    return ($status, $doc, $body);
}

sub rows {
    my ($doc) = @_;
    return { map { $_->{key} => line($_) } @{$doc->{rows} || []} };
}

sub ctl_stats {
    my ($h, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'stats', @args);
    return ($rc, $out, $err);
}

sub today {
    return POSIX::strftime('%Y-%m-%d', gmtime(shift // time));
}

sub schema_ok {
    my ($schema, $doc, $name, %bad) = @_;
    my $dir = test_dir();
    write_file("$dir/doc.json", $JSON->encode($doc));
    schema_check("$ROOT/schema/$schema", "$dir/doc.json", \%bad);
}


my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                    store => $STORE);

# clicks: three by one person, one by another, a link-preview bot

my $day0 = today();
my @ua = ("$UA A", "$UA A", "$UA B", 'facebookexternalhit/1.1');
http_request($h, 'GET', '/s/BOB-SHARE', { 'User-Agent' => $_ }) for @ua;
http_request($h, 'GET', '/s/ERIN-1', { 'User-Agent' => "$UA A" });

my ($clicks, $deadline) = ('', time + 5);
while (time < $deadline) {
    my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'clicks', 'BOB-SHARE');
    $clicks = $out;
    last if $out =~ /"total":4/;
    sleep 0.2;
}
sleep 1.2;    # any other flush
my ($crc, $cout) = loyaltyctl('-s', $h->{store}, 'clicks');
my %click;
for (split /\n/, $cout) {
    my $e = $JSON->decode($_);
    $click{$e->{code}}{$_} += $e->{$_} for qw(total unique bot attributed);
}
is(join(' ', @{$click{'BOB-SHARE'}}{qw(total unique bot attributed)}),
   '4 2 1 3', 'clicks: the click counts of BOB-SHARE');

my $day1 = today();
my $range = "from=$day0&to=$day1";

{
    my ($status, $doc) = get($h, "by=code&$range");
    is($status, 200, 'clicks: by=code 200');
    is_deeply(rows($doc),
              { 'BOB-SHARE' => '4 2 1 3 0 0 0 0 0 0 0 0',
                'ERIN-1' => '1 1 0 1 0 0 0 0 0 0 0 0' },
              'clicks: per code, as the clicks database counts them');
    my ($bob) = grep { $_->{key} eq 'BOB-SHARE' } @{$doc->{rows}};
    is("$bob->{member} $bob->{campaign}", 'bob spring',
       'clicks: the code\'s member and campaign');

    ($status, $doc) = get($h, "by=campaign&$range");
    is_deeply(rows($doc), { spring => '4 2 1 3 0 0 0 0 0 0 0 0' },
              'clicks: per campaign (ERIN-1 has none)');
    ($status, $doc) = get($h, "by=referrer&$range");
    is_deeply(rows($doc), { bob => '4 2 1 3 0 0 0 0 0 0 0 0',
                            erin => '1 1 0 1 0 0 0 0 0 0 0 0' },
              'clicks: per referrer, the codes\' members');
    ($status, $doc) = get($h, "by=day&$range");
    is(line($doc->{totals}), '5 3 1 4 0 0 0 0 0 0 0 0',
       'clicks: the days\' totals');
    schema_ok('stats.schema.json', $doc, 'by=day',
              'a row without key' => sub { delete $_[0]{rows}[0]{key} },
              'a negative click count' =>
                  sub { $_[0]{rows}[0]{clicks} = -1 },
              'an unknown by' => sub { $_[0]{by} = 'member' });
}

# events through the admin API

{
    my ($status, $hdr, $body) =
        admin_request($h, 'POST', '/admin/events', $JSON->encode(\@EVENTS));
    is($status, 200, 'events applied') or diag($body);
    like($body, qr/"applied":8/, 'all eight');

    # a replay counts nothing twice
    ($status, $hdr, $body) =
        admin_request($h, 'POST', '/admin/events', $JSON->encode(\@EVENTS));
    like($body, qr/"duplicates":8/, 'the replay: duplicates');
}

my $NOV = 'from=2026-11-01&to=2026-11-30';

{
    # carol: signup, o1 10000 (first: 500 and 200 to bob and alice)
    # refunded 4000 (takes back 200 and 80), o2 5000; dave (bob by name,
    # no code): signup, o3 2000 (first: 500 to bob, 200 to alice)
    my ($status, $doc) = get($h, "by=code&$NOV");
    is($status, 200, 'by=code 200');
    is_deeply(rows($doc),
              { 'BOB-SHARE' => '0 0 0 0 1 1 2 11000 1 4000 300 120' },
              'by=code: carol\'s signup, orders, net revenue, refund, '
              . 'points paid');
    is($doc->{count}, 1, 'by=code: count');
    schema_ok('stats.schema.json', $doc, 'by=code',
              'a counter missing' => sub { delete $_[0]{totals}{orders} },
              'an extra field' => sub { $_[0]{rows}[0]{x} = 1 },
              'a bad day' => sub { $_[0]{from} = '2026-11-1' });

    ($status, $doc) = get($h, "by=campaign&$NOV");
    is_deeply(rows($doc),
              { spring => '0 0 0 0 1 1 2 11000 1 4000 300 120' },
              'by=campaign');

    ($status, $doc) = get($h, "by=referrer&$NOV");
    is_deeply(rows($doc),
              { bob => '0 0 0 0 2 2 3 13000 1 4000 800 0',
                alice => '0 0 0 0 2 2 3 13000 1 4000 0 320' },
              'by=referrer: level 1 and level 2, the points paid to each');
    is(join(' ', map { $_->{key} } @{$doc->{rows}}), 'alice bob',
       'by=referrer: equal revenue, by key');

    ($status, $doc) = get($h, "by=day&$NOV");
    is(scalar @{$doc->{rows}}, 30, 'by=day: every day of the range');
    my %d = %{rows($doc)};
    is($d{'2026-11-01'}, '0 0 0 0 1 0 0 0 0 0 0 0', 'by=day: 1st, signup');
    is($d{'2026-11-02'}, '0 0 0 0 0 1 1 6000 1 4000 300 120',
       'by=day: 2nd, o1 less its refund, on the order\'s day');
    is($d{'2026-11-03'}, '0 0 0 0 1 1 2 7000 0 0 500 200',
       'by=day: 3rd, o2, dave\'s signup and first order');
    is($d{'2026-11-04'}, '0 0 0 0 0 0 0 0 0 0 0 0',
       'by=day: 4th, the refund counts on its order\'s day');
    is($doc->{rows}[0]{key}, '2026-11-01', 'by=day: in date order');

    # sorting, top, offset
    ($status, $doc) = get($h, "by=referrer&$NOV&sort=points_l1");
    is($doc->{rows}[0]{key}, 'bob', 'sort=points_l1: bob first');
    ($status, $doc) = get($h, "by=referrer&$NOV&top=1");
    is(join(' ', map { $_->{key} } @{$doc->{rows}}), 'alice', 'top=1');
    is($doc->{count}, 2, 'top=1: count is every row');
    ($status, $doc) = get($h, "by=referrer&$NOV&top=1&offset=1");
    is(join(' ', map { $_->{key} } @{$doc->{rows}}), 'bob', 'offset=1');
    ($status, $doc) = get($h, "by=referrer&$NOV&offset=2");
    is(scalar @{$doc->{rows}}, 0, 'offset past the end: no rows');
    ($status, $doc) = get($h, "by=day&$NOV&sort=revenue&top=2");
    is(join(' ', map { $_->{key} } @{$doc->{rows}}),
       '2026-11-03 2026-11-02', 'by=day sort=revenue top=2');

    # a write token reads too
    ($status) = get($h, "by=code&$NOV", 'write');
    is($status, 200, 'the write scope reads');
}

# the funnel

{
    my ($status, $doc) = get($h, "by=funnel&$NOV");
    is($status, 200, 'by=funnel 200');
    is($doc->{members}, 6, 'by=funnel: members');
    is_deeply($doc->{stages}, { prospect => 0, fan => 2, customer => 2,
                                member => 2, partner => 0 },
              'by=funnel: stages');
    is(ref $doc->{lifecycles}, 'HASH', 'by=funnel: lifecycles with rules');
    is_deeply([ map { "$_->{day} $_->{from}>$_->{to} $_->{count}" }
                @{$doc->{movements}} ],
              [ '2026-11-01 new>fan 1', '2026-11-02 fan>customer 1',
                '2026-11-02 fan>member 1', '2026-11-02 new>fan 1',
                '2026-11-03 fan>customer 1', '2026-11-03 new>fan 1' ],
              'by=funnel: the moves per day');
    schema_ok('stats-funnel.schema.json', $doc, 'by=funnel',
              'an unknown stage' =>
                  sub { $_[0]{movements}[0]{to} = 'king' },
              'a stage missing' => sub { delete $_[0]{stages}{fan} });
}

# cadences, scheduled and acknowledged by loyaltyctl in the same store

{
    my $tmp = test_dir();
    my $f = "$tmp/orders.json";
    write_file($f, $JSON->encode([
        { type => 'order', member => 'erin', order_id => 'c1',
          amount => 60000, at => '2026-11-10T10:00:00Z' } ]));
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, '--lua', $SCRIPT,
                                      'apply', $f);
    is($rc, 0, 'cadences: an order scheduled') or diag($err);
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'ack', 'call7:erin:c1',
                                   'done', '--by', 'li');
    is($rc, 0, 'cadences: li called') or diag($err);

    my ($status, $doc) = get($h, 'by=cadence&from=2026-11-01');
    is($status, 200, 'by=cadence 200');
    is_deeply($doc->{cadences}{call7},
              { scheduled => 1, pending => 0, done => 1, skipped => 0,
                failed => 0, points => 0 }, 'by=cadence: per cadence');
    is_deeply($doc->{staff}, { li => { done => 1, skipped => 0,
                                       failed => 0 } },
              'by=cadence: per member of staff');
    ($rc, $out) = loyaltyctl('-s', $h->{store}, 'cadence-stats', '--since',
                             '2026-11-01');
    my $cs = $JSON->decode($out);
    delete $cs->{since};
    is_deeply({ %$doc{qw(cadences staff)} }, $cs,
              'by=cadence: what cadence-stats counts');
    schema_ok('stats-cadence.schema.json', $doc, 'by=cadence',
              'a bad staff count' => sub { $_[0]{staff}{li}{done} = -1 });
}

# loyaltyctl stats: the same question, the same answer

{
    for my $by (qw(code campaign referrer day)) {
        my ($status, $doc, $body) = get($h, "by=$by&$NOV&top=5");
        my ($rc, $out, $err) = ctl_stats($h, '--by', $by, '--from',
                                         '2026-11-01', '--to', '2026-11-30',
                                         '--top', '5');
        is($rc, 0, "loyaltyctl stats --by $by") or diag($err);
        is($out, $body, "loyaltyctl stats --by $by: the API's answer");
    }

    my ($rc, $out) = ctl_stats($h, '--by', 'referrer', '--from',
                               '2026-11-01', '--to', '2026-11-30', '--csv');
    is($out, join('', map { "$_\n" }
        'referrer,' . join(',', @C),
        'alice,0,0,0,0,2,2,3,13000,1,4000,0,320',
        'bob,0,0,0,0,2,2,3,13000,1,4000,800,0'), '--csv: by referrer');
    ($rc, $out) = ctl_stats($h, '--by', 'code', '--from', '2026-11-01',
                            '--to', '2026-11-02', '--csv');
    is($out, "code,member,campaign," . join(',', @C) . "\n"
             . "BOB-SHARE,bob,spring,0,0,0,0,1,1,1,6000,1,4000,300,120\n",
       '--csv: by code, with member and campaign');
    ($rc, $out) = ctl_stats($h, '--by', 'day', '--from', '2026-11-03',
                            '--to', '2026-11-04', '--csv');
    is($out, "day," . join(',', @C) . "\n"
             . "2026-11-03,0,0,0,0,1,1,2,7000,0,0,500,200\n"
             . "2026-11-04,0,0,0,0,0,0,0,0,0,0,0,0\n", '--csv: by day');

    ($rc, $out) = ctl_stats($h, '--by', 'funnel', '--from', '2026-11-01',
                            '--to', '2026-11-30');
    my ($status, $doc, $body) = get($h, "by=funnel&$NOV");
    is($out, $body, 'loyaltyctl stats --by funnel: the API\'s answer');
}

# deleting a member keeps the days' counts, and forgets the attribution

{
    my ($status) = admin_request($h, 'DELETE', '/admin/members/carol');
    is($status, 200, 'carol deleted');
    my ($s, $doc) = get($h, "by=code&$NOV");
    is(line($doc->{rows}[0]), '0 0 0 0 1 1 2 11000 1 4000 300 120',
       'the days\' counts stay');
    my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'stat');
    like($out, qr/^db attributions 1$/m, 'dave\'s attribution alone is left');
    my $err;
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'verify');
    is("$rc $out", '0 ', 'verify: the counters and attributions are sound')
        or diag($err);
}

# bad arguments: 400 and a JSON error, the same refusals in loyaltyctl

{
    my @bad = (
        ['', qr/"by" is required/],
        ['by=member', qr/"by" must be/],
        ['by=code&from=2026-02-30', qr/"from" must be a day/],
        ['by=code&to=26-11-01', qr/"to" must be a day/],
        ['by=code&from=1999-12-31', qr/"from" must be a day/],
        ['by=code&from=2026-11-05&to=2026-11-01', qr/"from" is after/],
        ['by=code&from=2025-01-01&to=2026-11-01', qr/more than 366 days/],
        ['by=code&top=0', qr/"top" must be/],
        ['by=code&top=1001', qr/"top" must be/],
        ['by=code&top=ten', qr/"top" must be/],
        ['by=code&offset=-1', qr/"offset" must be/],
        ['by=code&offset=99999999', qr/"offset" must be/],
        ['by=code&sort=joy', qr/"sort" must be/],
        ['by=funnel&top=5', qr/apply to by=code/],
        ['by=code&by=day', qr/given twice/],
        ['by=code&from=', qr/without a value/],
        ['by=code&from=2026-11-01%00', qr/"from" must be a day/],
    );

    for (@bad) {
        my ($q, $re) = @$_;
        my ($status, $doc, $body) = get($h, $q);
        is($status, 400, "bad: \"$q\" 400");
        like($doc->{error} // $body, $re, "bad: \"$q\" says why");
    }

    my ($status, $doc) = get($h, 'by=code&top=0');
    schema_ok('stats-error.schema.json', $doc, 'an error',
              'no message' => sub { $_[0]{error} = '' });

    my @ctl = (
        [], ['--by', 'member'], ['--by', 'code', '--from', '2026-02-30'],
        ['--by', 'code', '--from', '2026-11-05', '--to', '2026-11-01'],
        ['--by', 'code', '--from', '2025-01-01', '--to', '2026-11-01'],
        ['--by', 'code', '--top', '0'], ['--by', 'code', '--top', ''],
        ['--by', 'funnel', '--csv'], ['--by', 'code', 'extra'],
    );
    for (@ctl) {
        my ($rc, $out, $err) = ctl_stats($h, @$_);
        is($rc, 2, "loyaltyctl stats @$_: exit 2");
        is($out, '', "loyaltyctl stats @$_: nothing printed");
    }

    my ($s, $hdr) = admin_request($h, 'POST', '/admin/stats?by=code', '{}');
    is($s, 405, 'POST: 405');
    is($hdr->{allow}, 'GET', 'POST: Allow: GET');
}

# questions at once, each in the thread pool: every one answered, alike

{
    my $dir = test_dir();
    my @pids;
    for my $i (0 .. 7) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $out = '';
            for (1 .. 5) {
                my ($status, $doc) = get($h, "by=referrer&$NOV");
                $out .= "$status " . line($doc->{totals}) . "\n";
            }
            write_file("$dir/$i", $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my %seen;
    $seen{$_}++ for map { split /\n/, slurp("$dir/$_") } 0 .. 7;
    is_deeply(\%seen, { '200 0 0 0 0 4 4 6 26000 2 8000 800 320' => 40 },
              'forty questions at once: forty alike answers');
}

# authentication

{
    my ($status) = http_request($h, 'GET', "/admin/stats?by=code&$NOV");
    is($status, 401, 'no token: 401');
    ($status) = http_request($h, 'GET', "/admin/stats?by=code&$NOV",
                             { Authorization => 'Bearer not-a-token-at-all' });
    ok($status == 401 || $status == 403, 'a wrong token: refused');
}

stop_checked($h, 'stats');

# records laid out from schema/lmdb-layout.md; damage verify reports and
# questions skip

{
    my $put = sub { mdb_put_raw($h->{store}, @_) };
    my $day = 20769;    # 2026-11-12
    # version, the counters present, each a zigzag LEB128 varint
    my $enc = sub {
        my @c = @_;
        my ($mask, $v) = (0, '');
        for my $i (0 .. $#c) {
            next unless $c[$i];
            $mask |= 1 << $i;
            my $z = $c[$i] < 0 ? -2 * $c[$i] - 1 : 2 * $c[$i];
            while ($z >= 0x80) { $v .= chr(($z & 0x7f) | 0x80); $z >>= 7 }
            $v .= chr($z);
        }
        return pack('C v', 1, $mask) . $v;
    };
    my $rec = $enc->(7, 5, 1, 2, 1, 1, 1, 990, 0, 0, 10, 4);
    # a block (kind C, its first day, a multiple of 32): version, u32
    # of the days present, each day's length and running sums, the
    # latest day first
    my $block = 20768;  # 2026-11-11
    my $sums = sub { my $r = $enc->(@_); substr($r, 0, 1, chr(length($r) - 1)); $r };
    my $brec = pack('C V', 1, 0b110) . $sums->(5, 0, 0, 0, 0, 0, 0, 100)
               . $sums->(3, 0, 0, 0, 0, 0, 0, 100);

    is($put->('stats', 'c' . pack('N', $day) . 'RAW-1', $rec), 0,
       'a raw stats record loaded');
    my ($rc, $out) = ctl_stats($h, '--by', 'code', '--from', '2026-11-12',
                               '--to', '2026-11-12', '--csv');
    like($out, qr/^RAW-1,,,7,5,1,2,1,1,1,990,0,0,10,4$/m,
         'the layout document\'s record reads back');
    is($put->('stats', 'C' . pack('N', $block) . 'RAW-2', $brec,
              'c' . pack('N', $day + 1) . 'RAW-2', $enc->(1, 1)), 0,
       'a raw block record, and a day record of the same code');
    ($rc, $out) = ctl_stats($h, '--by', 'code', '--from', '2026-11-12',
                            '--to', '2026-11-12', '--csv');
    like($out, qr/^RAW-2,,,3,0,0,0,0,0,0,100,0,0,0,0$/m,
         'a day of the block as the layout document lays it out');
    ($rc, $out) = ctl_stats($h, '--by', 'code', '--from', '2026-11-13',
                            '--to', '2026-11-20', '--csv');
    like($out, qr/^RAW-2,,,3,1,0,0,0,0,0,0,0,0,0,0$/m,
         'the block\'s next day, and the day record: summed');
    ($rc, $out) = loyaltyctl('-s', $h->{store}, 'verify');
    is($rc, 0, 'verify: sound raw records');

    is($put->('stats', 'c' . pack('N', $day) . 'BAD-1', "\x01" x 20,
              'x' . pack('N', $day), $rec,
              'm' . pack('N', $day) . 'fan-customer', pack('C x15', 1),
              'z' . pack('Q>', 7), "\x01\x09c",
              'C' . pack('N', $block) . 'BAD-3',
              pack('C V', 1, 0b11) . $sums->(1) . "\x05\x01",
              'C' . pack('N', $day) . 'BAD-2', $brec), 0,
       'damaged stats records loaded');
    is($put->('attributions', 'ghost', pack('C5 x3 q< V x4', 1, 0, 0, 3, 0,
                                            0, $day) . 'bob'), 0,
       'an attribution of no member loaded');
    my $err;
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'verify');
    is($rc, 1, 'verify: exit 1');
    is($out, "stats/C/2026-11-11/BAD-3: block record does not decode\n"
             . "stats/C/2026-11-12/BAD-2: block key not at a block's "
             . "first day\n"
             . "stats/c/2026-11-12/BAD-1: record does not decode\n"
             . "stats/m/2026-11-12/fan-customer: move record does not "
             . "decode\n"
             . "stats/x/2026-11-12/: not a stats key\n"
             . "stats/z/7: pending delta does not decode\n"
             . "attributions/ghost: attribution of no member\n",
       'verify: each problem');
    ($rc, $out) = ctl_stats($h, '--by', 'code', '--from', '2026-11-12',
                            '--to', '2026-11-12', '--csv');
    is($out =~ tr/\n//, 3, 'a question skips the damaged records');
}

# The shop's days (loyalty_timezone, loyaltyctl --tz): an order placed
# at 23:30 UTC is placed at 07:30 the next morning in Asia/Shanghai and
# counts on that day in GET .../stats (by code and by day), in loyaltyctl
# --tz stats and in events applied by loyaltyctl --tz; the default range
# ends on the shop's today; loyaltyctl without --tz counts UTC days; a
# bad --tz is refused (exit 2).

my $TZ = 'Asia/Shanghai';
my $TZ_STORE = example_store('tiers') . <<'END';
[members]
{"id":"bob","tier":"basic","stage":"fan"}
[codes]
{"code":"BOB-TZ","vanity":true,"member":"bob","campaign":"night","target":"/p/b"}
END

# the day in Shanghai (UTC+8 all year) and in UTC
sub shop_day { POSIX::strftime('%Y-%m-%d', gmtime(time + 8 * 3600)) }
sub utc_day { POSIX::strftime('%Y-%m-%d', gmtime(time)) }

my $z = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                   . "loyalty_keys %%KEYS%%;\n"
                                   . "loyalty_timezone $TZ;\n",
                    config => "location /admin/ { %%ADMIN%% }\n",
                    store => $TZ_STORE);

{
    my ($status, $hdr, $body) = admin_request($z, 'POST', '/admin/events',
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
    my ($status, $doc) = get($z, 'by=code&from=2026-03-10&to=2026-03-10');
    is($status, 200, 'by=code 200');
    is_deeply(rows($doc), { 'BOB-TZ' => $ONE },
              'by=code: 23:30 UTC on the 9th and 15:59:59 UTC on the 10th '
              . 'are the shop\'s 10 March');
    schema_ok('stats.schema.json', $doc, 'tz by=code');

    ($status, $doc) = get($z, 'by=code&from=2026-03-09&to=2026-03-09');
    is($doc->{count}, 0, 'by=code: nothing on the UTC day, 9 March');

    ($status, $doc) = get($z, 'by=day&from=2026-03-09&to=2026-03-11');
    is_deeply(rows($doc), { '2026-03-09' => '0 0 0 0 0 0 0 0 0 0 0 0',
                            '2026-03-10' => $ONE,
                            '2026-03-11' => '0 0 0 0 0 0 0 0 0 0 0 0' },
              'by=day: the shop\'s 10 March');
    schema_ok('stats.schema.json', $doc, 'tz by=day');

    ($status, $doc) = get($z, 'by=campaign');
    is($doc->{to}, shop_day(), 'the default range ends on the shop\'s today');
}

# loyaltyctl --tz: the same days; without it, UTC's

{
    my ($rc, $out, $err) = loyaltyctl('--tz', $TZ, '-s', $z->{store},
                                      'stats', '--by', 'code', '--from',
                                      '2026-03-10', '--to', '2026-03-10');
    is($rc, 0, 'loyaltyctl --tz stats') or diag($err);
    is_deeply(rows(eval { $JSON->decode($out) } // {}),
              { 'BOB-TZ' => $ONE }, 'loyaltyctl --tz stats: the same day');

    ($rc, $out) = loyaltyctl('--tz', $TZ, '-s', $z->{store}, 'stats',
                             '--by', 'day');
    is((eval { $JSON->decode($out) } // {})->{to}, shop_day(),
       'loyaltyctl --tz stats: the shop\'s today');
    ($rc, $out) = loyaltyctl('-s', $z->{store}, 'stats', '--by', 'day');
    is((eval { $JSON->decode($out) } // {})->{to}, utc_day(),
       'loyaltyctl stats without --tz: UTC\'s today');

    ($rc, $out, $err) = loyaltyctl('--tz', 'Mars/Olympus', '-s',
                                   $z->{store}, 'stats', '--by', 'day');
    is($rc, 2, 'a bad --tz: 2');
    like($err, qr/invalid --tz "Mars\/Olympus"/, 'a bad --tz: why');
}

stop_checked($z, 'stats-tz');

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
    my ($rc, $out, $err) = loyaltyctl('--tz', $TZ, '-s', $z->{store},
                                      'apply', "$dir/ev.jsonl");
    is($rc, 0, 'loyaltyctl --tz apply') or diag($err);

    ($rc, $out) = loyaltyctl('-s', $z->{store}, 'stats', '--by', 'day',
                             '--from', '2026-04-01', '--to', '2026-04-02',
                             '--csv');
    like($out, qr/^2026-04-02,0,0,0,0,1,1,1,700,/m,
         'applied with --tz: counted on the shop\'s 2 April');
    like($out, qr/^2026-04-01,0,0,0,0,0,0,0,0,/m, 'and not on 1 April');
}


# the thread pool full (one thread, held on LMDB's writer lock by a write,
# a second write queued): a question is 503 with Retry-After: 1

{
    my $dir = test_dir();
    my ($rc) = lmdb_tool($dir, 'hold');
    is($rc, 0, 'the lock holder compiles');

    my $p = start_nginx(main_config => "thread_pool default threads=1 "
                                       . "max_queue=1;\n",
                        http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $pid = open2(my $from, my $to, "$dir/hold", $p->{store});
    is(scalar(<$from> // ''), "locked\n", 'the writer lock is held');

    my $token = admin_auth('write')->{Authorization} =~ s/^Bearer //r;
    my @w;
    for my $n (1, 2) {
        push @w, admin_send($p, $token, 'POST', '/admin/events',
            $JSON->encode([{ type => 'signup', member => "queued$n" }]));
        Time::HiRes::sleep(0.3);
    }

    my ($status, $hdr, $body) = http_request($p, 'GET', '/admin/stats?by=day',
                                             admin_auth('read'));
    is("$status " . ($hdr->{'retry-after'} // '-'), '503 1',
       'the pool full: 503, Retry-After: 1') or diag($body);
    like($body, qr/too busy/, 'saying so');

    close $to;
    waitpid $pid, 0;

    like(answer_of($_, 5), qr/^200 /, 'a write answered once the lock is free')
        for @w;
    ($status) = get($p, 'by=day');
    is($status, 200, 'then the question is answered');
    stop_nginx($p);
}

done_testing();
