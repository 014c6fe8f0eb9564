#!/usr/bin/perl
# Benchmarks of a cluster of edges (README, "Several edges"; bench/README.md):
# a three-node NATS JetStream cluster (the test harness's, t/lib/Loyalty/
# Nats.pm) with a stream of 3 replicas, three nginx edges with followers.
#
#   1. follower apply throughput: BENCH_NATS_EVENTS events (batches of 100
#      orders in one message each) applied by `loyaltyctl follow --once` to
#      a fresh replica;
#   2. admin API events per second, batches of 100 posted one after the
#      other, through NATS (R3) and, on a plain nginx, the local write path;
#   3. replication lag: an order posted to edge 1, polled on edge 3 through
#      nginx ($loyalty_points) until it shows, while edge 2 takes about
#      BENCH_NATS_RATE events per second: p50 and p99;
#   4. reads on edge 3 while its follower applies that load, against idle.
#
# Run as root from the repository (make bench-nats).  It reports; it does
# not gate.

use strict;
use warnings;

use FindBin ();
use lib "$FindBin::Bin/../t/lib";
use Loyalty::Harness;
use Loyalty::Nats;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

$| = 1;
my $ROOT = "$FindBin::Bin/..";
my $CTL = "$ROOT/build/loyaltyctl";
my $EVENTS = $ENV{BENCH_NATS_EVENTS} // 20000;
my $RATE = $ENV{BENCH_NATS_RATE} // 1000;
my $SAMPLES = $ENV{BENCH_NATS_SAMPLES} // 200;
my $SECONDS = $ENV{BENCH_NATS_SECONDS} // 5;
my $JSON = JSON::PP->new->canonical;
my $TMP = test_dir();
my @MEMBERS = map { sprintf 'm%04d', $_ } 1 .. 1000;
my $seq = 0;

sub now_at { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime) }

sub orders {
    my ($n) = @_;
    my $at = now_at();
    return [ map {
        { type => 'order', member => $MEMBERS[rand @MEMBERS],
          order_id => "B-$$-" . $seq++, amount => 1000, at => $at,
          items => [{ sku => 'tea', qty => 1 }] }
    } 1 .. $n ];
}

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[int($p / 100 * $#v + 0.5)];
}

my $c = nats_cluster(3);
nats_stream($c, 'LOYALTY', 3);
$ENV{LOYALTY_NATS_PASSWORD} = $NATS_PASSWORD;
my @NATS = ('--nats', nats_plain_urls($c), '--user', $NATS_USER);

write_file("$TMP/tiers.jsonl", slurp("$ROOT/schema/examples/tiers.jsonl"));
# the example shop's rules: a point per 100 of spend, which the lag reads
write_file("$TMP/rules.jsonl", slurp("$ROOT/schema/examples/rules.json"));
write_file("$TMP/members.jsonl",
           join '', map { qq({"id":"$_","tier":"basic","stage":"fan"}\n) }
                    @MEMBERS);
for my $kind (qw(tiers members rules)) {
    my ($rc, $out, $err) = loyaltyctl('import', $kind, "$TMP/$kind.jsonl",
                                      @NATS);
    die "import $kind: $err" if $rc;
}

# 1. follower apply throughput
my $first = nats_last_seq($c, 'LOYALTY');
my $batches = int($EVENTS / 100);
for my $i (1 .. $batches) {
    my $msg = $JSON->encode({ v => 1, kind => 'events', edge => 'bench',
                              at => time, body => $JSON->encode(orders(100))
                            });
    nats_request($c, 'loyalty.LOYALTY.events', $msg) // die "publish";
}
loyaltyctl('-s', "$TMP/replica", 'init');
my $t0 = time;
my ($rc, $out, $err) = loyaltyctl('-s', "$TMP/replica", 'follow', @NATS,
                                  '--edge', 'bench', '--once');
my $apply = time - $t0;
die "follow --once: $err" if $rc;
my $applied = 100 * $batches;
printf "follower apply: %d events (%d messages of 100, after %d) in %.2f s: "
       . "%.0f events/s\n", $applied, $batches, $first, $apply,
       $applied / $apply;

# the edges
my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
         . "loyalty_nats " . nats_urls($c) . ";\n";
my $CONFIG = <<'END';
location /admin/ {
    %%ADMIN%%
    client_max_body_size 1m;
}
location / {
    return 200 "$loyalty_points";
}
END
my (@edge, @follower);
for my $i (0 .. 2) {
    $edge[$i] = start_nginx(http_config => $HTTP . "loyalty_edge e$i;\n",
                            config => $CONFIG, store => '', workers => 1);
    my $pid = fork // die;
    if ($pid == 0) {
        open STDERR, '>', "$TMP/follow-$i.log";
        { exec $CTL, '-s', $edge[$i]{store}, 'follow', @NATS, '--edge',
               "e$i" };
        POSIX::_exit(127);
    }
    $follower[$i] = $pid;
}
my $local = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n",
                        config => $CONFIG, workers => 1,
                        store => "[tiers]\n" . slurp("$TMP/tiers.jsonl")
                                 . "[members]\n"
                                 . slurp("$TMP/members.jsonl"));
loyaltyctl('-s', $local->{store}, 'import', 'rules', "$TMP/rules.jsonl");
END { kill 'TERM', grep { $_ } @follower }

# wait for the replicas
my $last = nats_last_seq($c, 'LOYALTY');
for my $e (@edge) {
    my $deadline = time + 60;
    while (time < $deadline) {
        my ($r, $o) = loyaltyctl('-s', $e->{store}, 'checksum');
        last if !$r && $JSON->decode($o)->{seq} >= $last;
        sleep 0.1;
    }
}

# 2. admin API events per second, one connection, batches of 100
for my $case (['NATS R3', $edge[0]], ['local', $local]) {
    my ($name, $h) = @$case;
    my ($n, $bad) = (0, 0);
    my $end = time + $SECONDS;
    my $start = time;
    while (time < $end) {
        my ($s) = admin_request($h, 'POST', '/admin/events',
                                $JSON->encode(orders(100)));
        $s == 200 ? ($n += 100) : $bad++;
    }
    printf "admin API, %s: %.0f events/s (batches of 100, one connection"
           . "%s)\n", $name, $n / (time - $start),
           $bad ? ", $bad refused" : '';
}

# 3. and 4. lag and reads under load: edge 2 takes $RATE events/s
sub reads {
    my ($h, $secs) = @_;
    my $cookie = 'loyalty_member=' . sign_member('m0001', '1h');
    my ($n, $start) = (0, time);
    while (time - $start < $secs) {
        http_request($h, 'GET', '/', { Cookie => $cookie });
        $n++;
    }
    return $n / (time - $start);
}

my $idle = reads($edge[2], 3);

my $loader = fork // die;
if ($loader == 0) {
    my $next = time;
    while (1) {
        admin_request($edge[1], 'POST', '/admin/events',
                      $JSON->encode(orders(100)));
        $next += 100 / $RATE;
        my $wait = $next - time;
        sleep $wait if $wait > 0;
    }
}

my $busy = reads($edge[2], 3);

my @lag;
for my $k (1 .. $SAMPLES) {
    my $m = $MEMBERS[$k % @MEMBERS];
    my $cookie = 'loyalty_member=' . sign_member($m, '1h');
    my (undef, undef, $before) = http_request($edge[2], 'GET', '/',
                                              { Cookie => $cookie });
    my $o = { type => 'order', member => $m, order_id => "LAG-$$-$k",
              amount => 100, at => now_at(), items => [{ sku => 'tea' }] };
    my ($s) = admin_request($edge[0], 'POST', '/admin/events',
                            $JSON->encode([$o]));
    next unless $s == 200;
    my $t = time;
    while (time - $t < 5) {
        my (undef, undef, $now) = http_request($edge[2], 'GET', '/',
                                               { Cookie => $cookie });
        last if $now ne $before;
    }
    push @lag, (time - $t) * 1000;
}
kill 'KILL', $loader;
waitpid $loader, 0;

printf "replication lag, 2xx on edge 1 to visible through nginx on edge 3, "
       . "%d samples under %d events/s: p50 %.1f ms, p99 %.1f ms\n",
       scalar @lag, $RATE, pct(50, @lag), pct(99, @lag);
printf "reads on edge 3 (one connection, sequential): idle %.0f/s, while "
       . "its follower applies %d events/s %.0f/s: %.2f\n", $idle, $RATE,
       $busy, $busy / $idle;

stop_nginx($_) for @edge, $local;
