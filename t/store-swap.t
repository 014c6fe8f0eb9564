# A store taken away or swapped under a running nginx (issue 18, 4): no
# write is acknowledged that is not in the store at the configured path.
# A snapshot swapped in as the README says is written to by the next
# write, with no read traffic to notice it; a store removed answers
# writes 503 and says so at crit, while reads go on from the snapshot
# mapped; the click flush and the cadence sweep do not write into a store
# left behind; nginx -t fails when the workers' user cannot read the
# store, naming the path and the user.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use File::Path qw(remove_tree);
use JSON::PP ();
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->canonical;

my $TOKEN = 'swap-admin-token-7c41d29e';
my $DIR = test_dir();
write_file("$DIR/tokens", "swap write $TOKEN\n", 0600);

my $WORKER = $> == 0 ? (defined getpwnam('www-data') ? 'www-data' : 'nobody')
                     : undef;

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

my $CONFIG = <<"END" . <<'END';
location /admin/ {
    loyalty_admin;
    loyalty_admin_token $DIR/tokens;
}
END
location / {
    return 200 "[$loyalty_member][$loyalty_stage]\n";
}
END

my $STORE = <<'END';
[tiers]
{"name":"basic","rank":0}
[members]
{"id":"alice","tier":"basic","stage":"fan"}
END


sub post_event {
    my ($h, $event) = @_;
    my ($status, $hdr, $body) = http_request($h, 'POST', '/admin/events',
        { Authorization => "Bearer $TOKEN" }, $JSON->encode($event) . "\n");
    return ($status // 'none') . ' ' . ($hdr->{'retry-after'} // '-')
           . ' ' . ($body // '');
}

sub signup {
    my ($h, $id) = @_;
    return post_event($h, { type => 'signup', member => $id });
}

my $APPLIED = qq(200 - {"events":1,"applied":1,"duplicates":0}\n);

sub get_as {
    my ($h, $id) = @_;
    my ($status, undef, $body) = http_request($h, 'GET', '/',
        { Cookie => 'loyalty_member=' . sign_member($id, 3600) });
    return ($status // 'none') . " $body";
}

# whether a store holds a member
sub has_member {
    my ($store, $id) = @_;
    my ($rc) = loyaltyctl('-s', $store, 'get', 'member', $id);
    return $rc == 0 ? 1 : 0;
}

# the README's snapshot swap: a compacted copy, given to the workers'
# user, moved into place with the old store kept beside it
sub swap {
    my ($h) = @_;
    my $next = "$h->{store}.next";
    mkdir $next or die "$next: $!";
    system('mdb_copy', '-c', $h->{store}, $next) == 0 or die 'mdb_copy';
    # its lock file made now, so that a loyaltyctl run as root later does
    # not make it root's
    loyaltyctl('-s', $next, 'stat');
    system('chown', '-R', $WORKER, $next) == 0 or die 'chown' if $WORKER;
    rename $h->{store}, "$h->{store}.prev" or die "rename: $!";
    rename $next, $h->{store} or die "rename: $!";
}

sub bad_lines {
    my ($h, $crit_ok) = @_;
    return grep { /exited on signal|\[alert\]|\[emerg\]/
                  || !$crit_ok && /\[crit\]/ }
           split /\n/, error_log_text($h);
}


# the issue's repro: an event, a swap, three seconds with no request, four
# events: all four in the live store, none in the one left behind

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);

    is(signup($h, 'before'), $APPLIED, 'an event before the swap');

    swap($h);
    sleep 3;

    is(signup($h, "after-$_"), $APPLIED, "event $_ after the swap: applied")
        for 1 .. 4;

    is(join(' ', map { has_member($h->{store}, "after-$_") } 1 .. 4),
       '1 1 1 1', 'all four are in the live store');
    is(join(' ', map { has_member("$h->{store}.prev", "after-$_") } 1 .. 4),
       '0 0 0 0', 'none is in the store left behind');
    ok(has_member($h->{store}, 'before'), 'the one before is in both');

    like(error_log_text($h), qr/\[notice\].*replaced on disk, reopened/,
         'the take-up is logged');
    is(get_as($h, 'after-4'), "200 [after-4][fan]\n",
       'reads see the live store');

    my @bad = bad_lines($h);
    ok(!@bad, 'swap: no crash, alert, emerg or crit') or diag(join "\n", @bad);
    stop_nginx($h);
}


# swaps while a client writes: every acknowledged event is in the live
# store at the end (the snapshot copy is made while nothing writes, as
# the README asks)

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE, workers => 2);
    my (@acked, @refused);
    my $n = 0;

    for my $round (1 .. 3) {
        for (1 .. 5) {
            my $id = 'w' . $n++;
            my $answer = signup($h, $id);
            if ($answer eq $APPLIED) {
                push @acked, $id;
            } else {
                push @refused, "$id: $answer";
            }
        }
        swap($h);
        remove_tree("$h->{store}.prev");
    }
    for (1 .. 5) {
        my $id = 'w' . $n++;
        my $answer = signup($h, $id);
        $answer eq $APPLIED ? push @acked, $id : push @refused, "$id: $answer";
    }

    is(scalar @refused, 0, 'every write after a swap is applied')
        or diag(join "\n", @refused);
    my @lost = grep { !has_member($h->{store}, $_) } @acked;
    is(scalar @lost, 0, scalar(@acked) . ' acknowledged, all in the live store')
        or diag("lost: @lost");

    my @bad = bad_lines($h);
    ok(!@bad, 'swaps: no crash, alert, emerg or crit') or diag(join "\n", @bad);
    stop_nginx($h);
}


# rm -rf of the store: writes answer 503 and crit says why; reads go on
# from the snapshot mapped, and the log says so once; a store put back is
# taken up

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);

    is(get_as($h, 'alice'), "200 [alice][fan]\n", 'a read before');
    is(signup($h, 'bob'), $APPLIED, 'a write before');

    remove_tree($h->{store});
    ok(!-e $h->{store}, 'the store directory is removed');

    is(signup($h, 'carol'),
       qq(503 - {"error":"the store was removed; writes are refused until it is back"}\n),
       'a write into the removed store: 503');
    like(error_log_text($h),
         qr/\[crit\].*loyalty_store "\Q$h->{store}\E": the store was removed: writes are refused \(503\) until a store is back in its place; reads are served from the snapshot opened before; stat\(\) "\Q$h->{store}\E\/data.mdb" failed \(2: No such file or directory\)/,
         'logged at crit, with why');

    is(get_as($h, 'alice'), "200 [alice][fan]\n", 'reads are still answered');
    is(get_as($h, 'bob'), "200 [bob][fan]\n", 'from the snapshot mapped');

    sleep 1.1;
    is(get_as($h, 'alice'), "200 [alice][fan]\n", 'a second later too');
    like(signup($h, 'dave'), qr/^503 /, 'another write: 503');

    my @crit = error_log_text($h) =~ /the store was removed/g;
    is(scalar @crit, 1, 'logged once, not per request');

    # a store back in place: taken up by the next write
    write_file("$DIR/tiers.jsonl", qq({"name":"basic","rank":0}\n));
    my ($rc) = loyaltyctl('-s', $h->{store}, 'init');
    ($rc) = loyaltyctl('-s', $h->{store}, 'import', 'tiers', "$DIR/tiers.jsonl")
        unless $rc;
    is($rc, 0, 'a new store in its place');
    system('chown', '-R', $WORKER, $h->{store}) if $WORKER;
    is(signup($h, 'erin'), $APPLIED, 'the next write goes into it');
    ok(has_member($h->{store}, 'erin'), 'and is there');

    my @bad = bad_lines($h, 1);
    ok(!@bad, 'removed: no crash, alert or emerg') or diag(join "\n", @bad);
    stop_nginx($h);
}


# the cadence sweep does not write into a removed store: each sweep
# stops, saying why

{
    chmod 0755, $DIR;
    write_file("$DIR/cadences.lua", <<'END', 0644);
local cadence = require "loyalty.cadence"
return {
  cadences = {
    cadence.birthday { name = "bday", hour = 9, touch = "message",
                       reward = 10 },
  },
}
END
    my $h = start_nginx(
        http_config => $HTTP . "loyalty_lua_file $DIR/cadences.lua;\n"
                       . "loyalty_cadence_sweep 1s;\n",
        config => $CONFIG, store => $STORE);

    my $deadline = time + 5;
    sleep 0.1 until error_log_text($h) =~ /loyalty_cadence_sweep: \d+ members/
                    || time > $deadline;
    like(error_log_text($h), qr/loyalty_cadence_sweep: \d+ members/,
         'a sweep ran');

    remove_tree($h->{store});
    $deadline = time + 5;
    my $stopped = qr/\[error\].*loyalty_cadence_sweep: the store "\Q$h->{store}\E": the store was removed; the sweep stops here/;
    sleep 0.1 until error_log_text($h) =~ $stopped || time > $deadline;
    like(error_log_text($h), $stopped, 'the next sweep stops: the store was removed');

    my @bad = bad_lines($h, 1);
    ok(!@bad, 'sweep: no crash, alert or emerg') or diag(join "\n", @bad);
    stop_nginx($h);
}


# the click flush does not write into a store left behind

{
    my $h = start_nginx(
        http_config => $HTTP . "loyalty_click_zone clicks 1m;\n"
                       . "loyalty_click_flush 200ms;\n",
        config => <<'END', store => $STORE . <<'END');
location / {
    return 200 "[$loyalty_ref_status]\n";
}
END
[codes]
{"code":"ALICE1","member":"alice"}
END

    my $click = sub {
        my ($n) = @_;
        for (1 .. $n) {
            http_request($h, 'GET', '/?ref=ALICE1',
                         { 'User-Agent' => "Mozilla/5.0 (X11; Linux) v$_" });
        }
    };
    my $clicks = sub {
        my ($store) = @_;
        my ($rc, $out) = loyaltyctl('-s', $store, 'clicks', 'ALICE1');
        return 0 if $rc;
        my $sum = 0;
        for (split /\n/, $out) {
            my $e = eval { $JSON->decode($_) } or next;
            $sum += $e->{total} // 0;
        }
        return $sum;
    };

    $click->(3);
    my $deadline = time + 5;
    sleep 0.1 until $clicks->($h->{store}) >= 3 || time > $deadline;
    my $before = $clicks->($h->{store});
    cmp_ok($before, '>=', 3, "clicks flushed before the swap ($before)");

    swap($h);
    my $prev = $clicks->("$h->{store}.prev");
    $click->(4);

    $deadline = time + 5;
    sleep 0.1 until $clicks->($h->{store}) >= $before + 4 || time > $deadline;
    is($clicks->($h->{store}), $before + 4, 'the clicks after the swap are in the live store');
    is($clicks->("$h->{store}.prev"), $prev, 'none in the store left behind');

    my @bad = bad_lines($h);
    ok(!@bad, 'clicks: no crash, alert, emerg or crit') or diag(join "\n", @bad);
    stop_nginx($h);
}


# nginx -t as the workers' user would see the store: a root-owned store
# directory of mode 700, then an unreadable data.mdb

SKIP: {
    skip 'the master is not root', 10 unless $WORKER;

    # no writer: the data file stays root's, and must be readable
    my $h = start_nginx(http_config => $HTTP, config => <<'END',
location / {
    return 200 "[$loyalty_member][$loyalty_stage]\n";
}
END
                        store => $STORE);
    my $t = sub {
        return system("/usr/sbin/nginx -t -q -p $h->{prefix} -c $h->{conf} "
                      . "-e $h->{error_log} 2>/dev/null") == 0;
    };
    my $data = "$h->{store}/data.mdb";

    is(get_as($h, 'alice'), "200 [alice][fan]\n", 'the workers read the store');
    ok($t->(), 'nginx -t passes on a readable store');

    chmod 0700, $h->{store} or die;
    ok(!$t->(), 'nginx -t fails on a root-owned store directory of mode 700');
    like(error_log_text($h),
         qr/\[emerg\].*loyalty_store: the workers' user "\Q$WORKER\E" cannot read the store "\Q$data\E"; give it read access to the directory and its data.mdb \(13: Permission denied\)/,
         'naming the path and the user');

    ok(!reload_nginx($h), 'a reload is refused too');
    is(get_as($h, 'alice'), "200 [alice][fan]\n", 'the running workers serve on')
        or diag(error_log_text($h));

    chmod 0755, $h->{store} or die;
    chmod 0600, $data or die;
    ok(!$t->(), 'nginx -t fails on a data.mdb only root can read');
    like(error_log_text($h),
         qr/\[emerg\].*the workers' user "\Q$WORKER\E" cannot read the store "\Q$data\E"/,
         'naming it');

    chmod 0644, $data or die;
    ok($t->(), 'nginx -t passes once readable again');
    ok(reload_nginx($h), 'and so does a reload');

    stop_nginx($h);
}

done_testing();
