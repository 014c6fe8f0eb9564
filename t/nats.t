# Several edges, one loyalty state: three nginx edges, each with its own
# store and follower (loyaltyctl follow), on a three-node NATS JetStream
# cluster (real nats-server processes, authentication on, a stream of 3
# replicas).  Writes posted to different edges converge (the same
# checksum everywhere); imports go through the stream and a local import
# into a replica is refused; clicks on every edge add up; the same event
# posted to two edges is applied once; a malformed or foreign message is
# logged and skipped with its sequence; a follower killed with -9 again
# and again in the middle of its batches loses and repeats nothing; one
# NATS node killed under write load loses no acknowledged write; with NATS
# wholly down the admin API answers 503 and reads go on, and the
# followers catch up by themselves when it is back; sweeps run once per
# cluster; a fresh edge bootstraps from a replica while writes go on; a
# PATCH and an erasure reach every edge alike, an export is not published,
# a prune goes through the stream.
# Slow (about a minute): in the Makefile's SLOW_TESTS.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;
use Loyalty::Nats;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX ();
use MIME::Base64 ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $JSON = JSON::PP->new->canonical;

system('nats-server', '--version') == 0
    or BAIL_OUT('nats-server is needed (make deps)');

my $c = nats_cluster(3);
my $info = nats_stream($c, 'LOYALTY', 3);
is($info->{config}{num_replicas}, 3, 'the stream has 3 replicas');

my $URLS = nats_urls($c);
my $PLAIN = nats_plain_urls($c);
$ENV{LOYALTY_NATS_PASSWORD} = $NATS_PASSWORD;
my @NATS = ('--nats', $PLAIN, '--user', $NATS_USER);

my $TMP = test_dir();
my %BAD;    # the sequences of the malformed and foreign messages

my $CONFIG = <<'END';
location /admin/ {
    %%ADMIN%%
}

location /s/ {
    loyalty_share;
}

location / {
    return 200 "[$loyalty_member][$loyalty_tier][$loyalty_stage][$loyalty_points]";
}
END

# the operator's event hook, on the edges only: the followers apply its
# decisions from the stream
write_file("$TMP/hook.lua", <<'END');
return {
  event = function(ctx)
    if ctx.type == "order" and ctx.amount == 4242 then
      return { points = 777 }
    end
  end
}
END

# the edges: nginx and a follower each
my (@edge, @follower);
my $OWNER = $$;

END {
    if ($$ == $OWNER) {
        kill 'KILL', grep { $_ } @follower;
    }
}

for my $i (0 .. 2) {
    $edge[$i] = start_nginx(
        http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
                       . "loyalty_nats $URLS;\n"
                       . "loyalty_edge e$i;\nloyalty_nats_timeout 10s;\n"
                       . "loyalty_click_zone clicks 1m;\n"
                       . "loyalty_click_flush 1s;\n"
                       . "loyalty_cadence_sweep 1s;\n"
                       . "loyalty_lua_file $TMP/hook.lua;\n",
        config => $CONFIG,
        store => '',
    );
    start_follower($i);
}

sub start_follower {
    my ($i, @more) = @_;
    my $log = "$TMP/follow-e$i.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log;
        open STDERR, '>>', $log;
        { exec $CTL, '-s', $edge[$i]{store}, 'follow', @NATS,
               '--edge', "e$i", @more };
        POSIX::_exit(127);
    }
    $follower[$i] = $pid;
}

sub kill_follower {
    my ($i, $sig) = @_;
    kill $sig // 'KILL', $follower[$i];
    waitpid $follower[$i], 0;
    $follower[$i] = undef;
}

sub checksum {
    my ($store) = @_;
    my ($rc, $out) = loyaltyctl('-s', $store, 'checksum');
    return $rc ? {} : $JSON->decode($out);
}

# every edge at the stream's last sequence with one checksum: the sums
sub converged {
    my ($what, @stores) = @_;
    @stores = map { $_->{store} } @edge[0 .. 2] unless @stores;
    my (@sums, $last);
    my $deadline = time + 20;
    while (time < $deadline) {
        $last = nats_last_seq($c, 'LOYALTY') // -1;
        @sums = map { checksum($_) } @stores;
        last if !grep { ($_->{seq} // -2) != $last } @sums
                and !grep { $_->{checksum} ne $sums[0]{checksum} } @sums;
        sleep 0.1;
    }
    my %distinct = map { ($_->{checksum} // '') => 1 } @sums;
    ok(keys %distinct == 1 && !(grep { ($_->{seq} // -1) != $last } @sums),
       "$what: every edge at $last with one checksum")
        or diag($JSON->encode(\@sums));
    return $sums[0];
}

sub api {
    my ($i, $method, $path, $body) = @_;
    my ($status, $hdr, $text) =
        eval { admin_request($edge[$i], $method, $path, $body) };
    return ($status // 'none', $text // $@);
}

sub get_member {
    my ($store, $id) = @_;
    my ($rc, $out) = loyaltyctl('-s', $store, 'get', 'member', $id);
    return $rc ? undef : $JSON->decode($out);
}

sub order {
    my ($member, $id, $amount) = @_;
    return { type => 'order', member => $member, order_id => $id,
             amount => $amount // 1000, items => [{ sku => 'tea', qty => 1 }],
             at => POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime) };
}

sub post_orders {
    my ($i, @orders) = @_;
    return api($i, 'POST', '/admin/events', $JSON->encode(\@orders));
}


# imports through the stream: every edge gets them
for my $kind (qw(tiers members codes)) {
    my @hosts = $kind eq 'codes' ? ('--hosts', 'mall.example.cn') : ();
    my ($rc, $out, $err) = loyaltyctl('-s', $edge[0]{store}, 'import', $kind,
                                      "$EXAMPLES/$kind.jsonl", @NATS,
                                      '--edge', 'ops', @hosts);
    like("$rc $out", qr/^0 published $kind to LOYALTY, sequence \d+$/,
         "import $kind --nats") or diag($err);
    # the next kind is checked against the replica: it needs this one
    converged("import $kind");
}

{
    my ($rc, $out, $err) = loyaltyctl('import', 'rules',
                                      "$EXAMPLES/rules.json", @NATS);
    is($rc, 0, 'import rules --nats without a store: published unchecked')
        or diag($err);

    # a bad file is refused before it is published
    write_file("$TMP/bad.jsonl", qq({"id":"x","tier":"nope","stage":"fan"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $edge[0]{store}, 'import',
                                   'members', "$TMP/bad.jsonl", @NATS);
    like("$rc $err", qr/^1 .*line 1: .*nothing published/,
         'import --nats: a file the replica refuses is not published');
}

converged('imports');

{
    my $m = get_member($edge[2]{store}, 'li.member');
    is($m && $m->{tier}, 'vip', 'imported members are on the third edge');

    my ($rc, $out, $err) = loyaltyctl('-s', $edge[1]{store}, 'import',
                                      'members', "$EXAMPLES/members.jsonl");
    like("$rc $err", qr/^1 loyaltyctl: this store is a replica of the stream LOYALTY, written by its follower only/,
         'a local import into a replica is refused');
}


# writes on each edge converge; a read on another edge sees them
{
    my ($s, $b) = api(0, 'POST', '/admin/events',
                      slurp("$EXAMPLES/events.jsonl"));
    like("$s $b", qr/^200 \{"events":\d+,"applied":\d+,"duplicates":0\}/,
         'events on edge 0: 200 once JetStream acknowledged them');

    ($s, $b) = api(1, 'PUT', '/admin/members/new.one',
                   '{"tier":"basic","stage":"fan"}');
    is("$s $b", qq(200 {"stored":"member"}\n), 'a member put on edge 1');

    # edge 2 checks the code against its replica: the member must be there
    converged('a member put on edge 1');

    ($s, $b) = api(2, 'PUT', '/admin/codes/NEW-ONE-CODE',
                   '{"member":"new.one","target":"/p/new"}');
    like("$s $b", qr/^200 \{"stored":"code"/, 'a code put on edge 2');

    ($s, $b) = api(1, 'DELETE', '/admin/members/sun.blocked');
    is($s, 200, 'a member deleted on edge 1');

    ($s, $b) = api(1, 'GET', '/admin/due?limit=5&lease=1m');
    is("$s $b", qq(200 {"due":[]}\n), 'a claim on edge 1 (through the stream)');

    ($s, $b) = api(2, 'PUT', '/admin/members/bad', '{"tier":"nope"}');
    is($s, 422, 'a refused write is refused by the edge, not published');

    converged('events, puts and a delete on three edges');

    my $cookie = 'loyalty_member=' . sign_member('xiao.ming', '1h');
    my ($status, undef, $body) = http_request($edge[2], 'GET', '/',
                                              { Cookie => $cookie });
    my $m = get_member($edge[0]{store}, 'xiao.ming');
    is("$status $body", "200 [xiao.ming][$m->{tier}][$m->{stage}]"
                        . "[$m->{points}]",
       'edge 2 serves what was posted to edge 0');
    ok(!get_member($edge[2]{store}, 'sun.blocked'),
       'the delete on edge 1 reached edge 2');
}


# clicks on every edge add up on every replica
{
    for my $i (0 .. 2) {
        my ($status) = http_request($edge[$i], 'GET', '/s/NEW-ONE-CODE',
                                    { 'User-Agent' => 'Mozilla/5.0 test' });
        is($status, 302, "a click on edge $i");
    }

    my @totals;
    my $deadline = time + 10;
    while (time < $deadline) {
        @totals = map {
            my ($rc, $out) = loyaltyctl('-s', $_->{store}, 'clicks',
                                        'NEW-ONE-CODE');
            $rc || !$out ? 0 : $JSON->decode($out)->{total}
        } @edge;
        last unless grep { $_ != 3 } @totals;
        sleep 0.2;
    }
    is("@totals", '3 3 3', 'the code has 3 clicks on every edge');
}


# a limited code across edges: each click checks the store's count, which
# holds every edge's flushed attributions, and its own since: a round of
# one click per edge may overshoot by what the other edges attribute
# before their flush reaches the store, at most edges - 1 here
{
    my ($s, $b) = api(0, 'PUT', '/admin/codes/MAX-FIVE',
                      '{"member":"new.one","target":"/p/m","max_clicks":5,'
                      . '"vanity":true}');
    like("$s $b", qr/^200 \{"stored":"code"/, 'a code of 5 clicks at most');
    converged('the limited code');

    my @total;
    for my $round (1 .. 4) {
        for my $i (0 .. 2) {
            http_request($edge[$i], 'GET', '/s/MAX-FIVE',
                         { 'User-Agent' => 'Mozilla/5.0 test' });
        }
        # the flushes (every second) in the stream and the stores
        my $deadline = time + 5;
        while (time < $deadline) {
            @total = map {
                my ($rc, $out) = loyaltyctl('-s', $_->{store}, 'clicks',
                                            'MAX-FIVE');
                $rc || !$out ? 0 : $JSON->decode($out)->{total}
            } @edge;
            last unless grep { $_ != 3 * $round } @total;
            sleep 0.2;
        }
    }
    is("@total", '12 12 12', '12 clicks on the limited code, 4 per edge');

    my ($rc, $out) = loyaltyctl('-s', $edge[2]{store}, 'clicks', 'MAX-FIVE');
    my $c = $JSON->decode($out);
    ok($c->{attributed} >= 5 && $c->{attributed} <= 7,
       "at most edges - 1 over the limit of 5: $c->{attributed} attributed, "
       . "$c->{rejected} rejected");
}


# the same event posted to two edges is applied once
{
    my $before = get_member($edge[0]{store}, 'li.member');
    my @o = (order('li.member', 'SO-TWICE-1', 5000));
    my ($s1) = post_orders(0, @o);
    my ($s2) = post_orders(1, @o);
    is("$s1 $s2", '200 200', 'the same order posted to two edges');
    converged('the same order on two edges');
    for my $i (0 .. 2) {
        my $m = get_member($edge[$i]{store}, 'li.member');
        is("$m->{orders} $m->{spend}",
           ($before->{orders} + 1) . ' ' . ($before->{spend} + 5000),
           "edge $i: the order counted once");
    }
}


# the edge's Lua event hook decides; every replica applies its decision
{
    my $before = get_member($edge[0]{store}, 'zhao.member');
    my ($s) = post_orders(1, order('zhao.member', 'SO-HOOK-1', 4242));
    is($s, 200, 'an order the event hook gives 777 points, on edge 1');
    converged('the hook\'s decision');
    for my $i (0 .. 2) {
        is(get_member($edge[$i]{store}, 'zhao.member')->{points},
           $before->{points} + 777, "edge $i: the hook's 777 points");
    }
}


# a malformed and a foreign message are logged and skipped
{
    my $r1 = $JSON->decode(nats_request($c, 'loyalty.LOYALTY.events',
                                        'this is no JSON'));
    my $r2 = $JSON->decode(nats_request($c, 'loyalty.LOYALTY.other',
                                        '{"v":9,"kind":"events"}'));
    my $r3 = $JSON->decode(nats_request($c, 'loyalty.LOYALTY.put',
        '{"v":1,"kind":"put","edge":"x","at":1700000000,"what":"member",'
        . '"key":"ghost","record":{"tier":"nope","stage":"fan"}}'));
    $BAD{$_->{seq}} = 1 for $r1, $r2, $r3;
    my ($s) = post_orders(2, order('li.member', 'SO-AFTER-BAD'));
    is($s, 200, 'a write after the bad messages');
    converged('after a malformed and a foreign message');

    for my $i (0 .. 2) {
        my $log = slurp("$TMP/follow-e$i.log");
        like($log, qr/sequence $r1->{seq} \(loyalty\.LOYALTY\.events\) skipped: not JSON/,
             "follower e$i: the malformed message skipped with its sequence");
        like($log, qr/sequence $r2->{seq} \(loyalty\.LOYALTY\.other\) skipped: not a loyalty message/,
             "follower e$i: the foreign message skipped");
        like($log, qr/sequence $r3->{seq} \(loyalty\.LOYALTY\.put\) skipped: .*tier/,
             "follower e$i: a refused put skipped");
        ok(kill(0, $follower[$i]), "follower e$i is still running");
    }
}


# kill -9 of a follower in the middle of its batches, again and again
{
    kill_follower(1);
    my @who = qw(li.member zhao.member wang.partner chen.customer);
    my @orders = map { order($who[$_ % 4], "SO-KILL-$_", 100) } 0 .. 399;
    my $before = { map { $_ => get_member($edge[0]{store}, $_) }
                   qw(li.member zhao.member wang.partner chen.customer) };
    my $ok = 0;
    for my $k (0 .. 39) {
        my ($s) = post_orders(0, @orders[$k * 10 .. $k * 10 + 9]);
        $ok++ if $s == 200;
    }
    is($ok, 40, '40 batches of 10 orders acknowledged');

    my $target = nats_last_seq($c, 'LOYALTY');
    my ($kills, $seqs) = (0, '');
    for my $n (1 .. 6) {
        start_follower(1, '--batch', 7);
        sleep 0.02 + rand(0.1);
        kill_follower(1);
        $kills++;
        $seqs .= ' ' . (checksum($edge[1]{store})->{seq} // '?');
    }
    ok($kills == 6, "the follower of e1 killed with -9 6 times, at$seqs");
    start_follower(1);

    my $sum = converged('after the kills');
    for my $id (sort keys %$before) {
        my @m = map { get_member($_->{store}, $id) } @edge;
        is(join(' ', map { $_->{orders} } @m),
           join(' ', ($before->{$id}{orders} + 100) x 3),
           "$id: 100 orders more on every edge, none lost or doubled");
    }
    my @ledgers = map {
        my ($rc, $out) = loyaltyctl('-s', $_->{store}, 'get', 'ledger',
                                    'li.member');
        $JSON->decode($out)->{balance}
    } @edge;
    is(scalar(keys %{{ map { $_ => 1 } @ledgers }}), 1,
       "li.member's ledger balance is the same on every edge (@ledgers)");
}


# one NATS node killed under write load, the stream's leader: nothing
# acknowledged is lost
{
    my $leader = $JSON->decode(nats_request($c,
        '$JS.API.STREAM.INFO.LOYALTY', '') // '{}')->{cluster}{leader} // 'n0';
    my ($victim) = $leader =~ /^n(\d)$/;
    $victim //= 0;
    my $before = get_member($edge[0]{store}, 'zhao.member');
    my ($acked, @other) = (0);
    my $started = time;
    my $killed;
    for my $k (0 .. 59) {
        if (!$killed && $k == 15) {
            nats_kill($c, $victim);
            $killed = time;
        }
        my $t0 = time;
        my ($s, $b) = post_orders($k % 3,
                                  order('zhao.member', "SO-NODE-$k", 10));
        if ($s == 200) {
            $acked++;
        } else {
            push @other, sprintf("%s %s (%.1fs after the kill, took %.1fs)",
                                 $s, $b, $t0 - $killed, time - $t0);
        }
    }
    ok($killed, "node n$victim, the stream's leader, killed during the "
                . 'writes');
    is($acked, 60, '60 writes acknowledged across the kill')
        or diag(join "\n", @other);
    nats_start($c, $victim);
    converged('after a NATS node was killed');
    my $m = get_member($edge[2]{store}, 'zhao.member');
    is($m->{orders}, $before->{orders} + $acked,
       'every acknowledged write is on the edges');
}


# NATS wholly down: 503, reads go on; back: the followers catch up
{
    nats_kill($c, $_) for 0 .. 2;

    my $t = time;
    my ($s, $b) = post_orders(0, order('li.member', 'SO-DOWN-1'));
    my $took = time - $t;
    is($s, 503, 'NATS down: a write answers 503');
    like($b, qr/^\{"error":"NATS (is unreachable|did not acknowledge the write: Timeout)"\}/,
         'with a JSON error');
    ok($took < 3, sprintf('at once, NATS being away (%.1fs)', $took));

    $t = time;
    my $cookie = 'loyalty_member=' . sign_member('li.member', '1h');
    my ($status, undef, $body) = http_request($edge[1], 'GET', '/',
                                              { Cookie => $cookie });
    like("$status $body", qr/^200 \[li\.member\]\[vip\]/,
         'NATS down: reads go on');
    ok(time - $t < 0.5, sprintf('and do not wait (%.3fs)', time - $t));

    nats_start($c, $_) for 0 .. 2;

    # the cluster elects and the edge reconnects: seconds, more under ASan
    # on a loaded VM (20 s was once too few there)
    my $deadline = time + 60;
    do {
        sleep 0.25;
        ($s, $b) = post_orders(0, order('li.member', 'SO-DOWN-2'));
    } until $s == 200 || time > $deadline;
    is($s, 200, 'NATS back: writes are acknowledged again');
    converged('the followers caught up by themselves');
    ok(!get_member($edge[0]{store}, 'li.member')->{_none},
       'li.member still there');
}


# sweeps: once per cluster and period, whichever edge comes first
{
    my $reply = nats_request($c, '$JS.API.STREAM.INFO.LOYALTY',
        $JSON->encode({ subjects_filter => 'loyalty.LOYALTY.sweep.>' }));
    my $subjects = $JSON->decode($reply)->{state}{subjects} // {};
    my @counts = values %$subjects;
    ok(@counts >= 3, scalar(@counts) . ' sweep periods in the stream');
    is(scalar(grep { $_ != 1 } @counts), 0,
       'each period swept once by the cluster of three edges');
}


# members' data on a cluster: a PATCH and an erasure on one edge reach
# every replica alike (the edge's pseudonym, carried in the message); an
# export is a read, never published; a prune goes through the stream
{
    converged("before the members' data");
    my $chen = get_member($edge[1]{store}, 'chen.customer');
    my ($s, $b) = api(1, 'PATCH', '/admin/members/zhou.fan',
                      '{"birthday":"05-20","tier":"vip"}');
    like("$s $b", qr/^200 \{.*"birthday":"05-20"/, 'a PATCH on edge 1');

    ($s, $b) = api(1, 'POST', '/admin/members/chen.customer/erase');
    like("$s $b", qr/^200 \{"erased":"chen.customer","pseudonym":"erased-[0-9a-f]{24}"\}/,
         'an erasure on edge 1');
    my $p = ($b =~ /"pseudonym":"([^"]+)"/)[0] // 'none';

    ($s, $b) = api(2, 'PATCH', '/admin/members/zhou.fan', '{"colour":"red"}');
    is($s, 400, 'a PATCH the member refuses is refused, not published');

    converged('a PATCH and an erasure on edge 1');

    for my $i (0 .. 2) {
        my $z = get_member($edge[$i]{store}, 'zhou.fan');
        my $e = get_member($edge[$i]{store}, $p);
        is(join(' ', $z->{tier} // '-', $z->{birthday} // '-',
                $z->{referrer} // '-',
                defined get_member($edge[$i]{store}, 'chen.customer')
                    ? 'kept' : 'gone',
                $e ? "$e->{orders} $e->{spend} $e->{points}" : 'none',
                $e && $e->{blocked} ? 'blocked' : '-'),
           "vip 05-20 wang.partner gone $chen->{orders} $chen->{spend} "
           . "$chen->{points} blocked",
           "edge $i: the patched fields, the erased member under the edge's "
           . "pseudonym");
    }

    my $last = nats_last_seq($c, 'LOYALTY');
    ($s, $b) = api(0, 'GET', '/admin/members/li.member/export');
    like("$s $b", qr/^200 \{.*"li.member"/, 'an export on edge 0');
    # the edges' click flushes and cadence sweeps (every second) may
    # publish meanwhile; an export must add nothing else
    my @after;
    for my $seq ($last + 1 .. nats_last_seq($c, 'LOYALTY')) {
        my $r = $JSON->decode(nats_request($c,
            '$JS.API.STREAM.MSG.GET.LOYALTY', qq({"seq":$seq})) // '{}');
        my $m = $JSON->decode(MIME::Base64::decode_base64(
            $r->{message}{data} // '') || '{}');
        push @after, $m->{kind} // 'none';
    }
    is(join(' ', grep { $_ ne 'clicks' && $_ ne 'sweep' } @after), '',
       'an export publishes nothing');

    my ($rc, $out, $err) = loyaltyctl('-s', $edge[2]{store}, 'prune');
    like("$rc $err", qr/^1 loyaltyctl: this store is a replica of the stream LOYALTY, written by its follower only: prune/,
         'a local prune of a replica is refused');
    ($rc, $out, $err) = loyaltyctl('prune', '--older-than', '1', '--now',
                                   '2000-01-02T00:00:00Z', @NATS,
                                   '--edge', 'ops');
    like("$rc $out", qr/^0 published prune to LOYALTY, sequence \d+$/,
         'prune --nats') or diag($err);
    converged('a prune through the stream');
}


# every message the edges and loyaltyctl published, against the schema
{
    my $last = nats_last_seq($c, 'LOYALTY');
    my (@msgs, %kinds);
    for my $seq (1 .. $last) {
        next if $BAD{$seq};
        my $r = $JSON->decode(nats_request($c,
            '$JS.API.STREAM.MSG.GET.LOYALTY', qq({"seq":$seq})) // '{}');
        my $data = $r->{message}{data} // next;
        push @msgs, MIME::Base64::decode_base64($data);
        $kinds{$JSON->decode($msgs[-1])->{kind}}++;
    }
    is(join(' ', sort keys %kinds),
       'claim clicks delete erase events import patch prune put sweep',
       'the stream holds each kind of message');
    write_file("$TMP/messages.jsonl", join("\n", @msgs) . "\n");
    write_file("$TMP/validate.py", <<'PY');
import json, sys
from jsonschema import Draft202012Validator
v = Draft202012Validator(json.load(open(sys.argv[1])))
bad = [(i, e.message) for i, line in enumerate(open(sys.argv[2]))
       for e in list(v.iter_errors(json.loads(line)))[:1]]
print(len(bad), bad[:3])
PY
    my ($rc, $out) = run_out('/usr/bin/python3', "$TMP/validate.py",
                             "$ROOT/schema/repl-message.schema.json",
                             "$TMP/messages.jsonl");
    is($out, "0 []\n", scalar(@msgs) . ' messages valid against '
                        . 'schema/repl-message.schema.json');
}


# a fresh edge bootstraps from a replica while writes go on
{
    my $new = "$TMP/e3";
    my ($rc, $out, $err);
    my $pid = fork // die;
    if ($pid == 0) {
        for my $k (0 .. 19) {
            post_orders($k % 3, order('wang.partner', "SO-BOOT-$k", 10));
        }
        POSIX::_exit(0);
    }
    sleep 0.1;
    ($rc, $out, $err) = loyaltyctl('-s', $new, 'bootstrap', '--from',
                                   $edge[2]{store});
    like("$rc $out", qr/^0 \{"stream":"LOYALTY","seq":\d+,"checksum":"[0-9a-f]{64}"\}/,
         'bootstrap from edge 2 while writes go on') or diag($err);
    waitpid $pid, 0;
    ($rc, $out, $err) = loyaltyctl('-s', $new, 'follow', @NATS,
                                   '--edge', 'e3', '--once');
    is($rc, 0, 'the new edge follows from the snapshot\'s sequence')
        or diag($err);
    like($err, qr/follow: LOYALTY from \d+ as follow-e3/,
         'from the sequence after the snapshot\'s');
    $edge[3] = { store => $new };
    start_follower(3);
    converged('the bootstrapped edge', map { $_->{store} } @edge);
    kill_follower(3, 'TERM');
}


for my $i (0 .. 2) {
    kill_follower($i, 'TERM');
    stop_checked($edge[$i], "edge $i");
}

done_testing();
