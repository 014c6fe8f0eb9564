# The admin API's promises when things go wrong: a 200 means the batch
# is committed and synced, so kill -9 of nginx while a client posts
# batches loses none that got 200 and half-applies none; a reload or a
# stop while a write waits on LMDB's writer lock still answers it; a
# store that grows full is grown and the client told to retry; a store
# grown by loyaltyctl is written on without a failure; the writing
# thread runs as SCHED_BATCH and is put back after.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use IPC::Open2 qw(open2);
use JSON::PP ();
use List::Util qw(sum0);
use POSIX ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $JSON = JSON::PP->new->canonical;

my $TOKEN = $ADMIN_TOKEN;
my $DIR = test_dir();
write_admin_tokens("$DIR/tokens");

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

my $CONFIG = <<"END" . <<'END';
location /admin/ {
    loyalty_admin;
    loyalty_admin_token $DIR/tokens;
    client_max_body_size 4m;
}
END
location / {
    return 200 "[$loyalty_member][$loyalty_stage][$loyalty_points]\n";
}
END

my $MEMBERS = 10;
my $STORE = "[tiers]\n" . slurp("$ROOT/schema/examples/tiers.jsonl")
    . "[members]\n"
    . join('', map { qq({"id":"d$_","tier":"basic","stage":"fan"}\n) } 0 .. $MEMBERS - 1)
    . "[rules]\n" . slurp("$ROOT/schema/examples/rules.json");


# helpers

sub batch_ok {
    my ($n, $applied, $dup) = @_;
    return qq(200 {"events":$n,"applied":$applied,"duplicates":$dup}\n);
}

# "STATUS BODY" of a POST of events, or why there is none
sub post_body {
    my ($port, $body) = @_;
    my ($status, $hdr, $text) = eval {
        http_request($port, 'POST', '/admin/events',
                     { Authorization => "Bearer $TOKEN" }, $body);
    };
    return defined $hdr ? ($status // 'none') . " $text"
                        : 'error ' . ($@ =~ s/\n.*//sr);
}

sub ctl_json {
    my ($h, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, @args);
    return $rc ? "exit $rc: $err" : $JSON->decode($out);
}

# one field of a record, or why there is none
sub field {
    my ($h, $kind, $id, $name) = @_;
    my $r = ctl_json($h, 'get', $kind, $id);
    return ref $r ? $r->{$name} // 'absent' : $r;
}

sub no_trouble {
    my ($h, $name) = @_;
    my @bad = grep { /exited on signal|\[alert\]|\[emerg\]|\[crit\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$name: no crash, alert, crit or emerg")
        or diag(join "\n", @bad);
}

sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my ($state) = (<$fh> // '') =~ /^\d+ \(.*\) (\S) /s;
    return defined $state && $state ne 'Z';
}

sub children {
    my ($ppid) = @_;
    my @kids;
    for (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $_ or next;
        my ($pid, $state, $parent) = (<$fh> // '') =~ /^(\d+) \(.*\) (\S) (\d+) /s
            or next;
        push @kids, $pid if $parent == $ppid && $state ne 'Z';
    }
    return @kids;
}

sub wait_for {
    my ($cond, $seconds) = @_;
    my $deadline = time + $seconds;
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.02;
    }
    return 1;
}

# nginx started again in the same prefix, after a kill -9 or a stop: the
# harness's own start, which also has it stopped at the end
sub restart {
    my ($h) = @_;
    eval { Loyalty::Harness::_start($h); 1 } or diag("restart: $@");
    return $h;
}



# C helpers of the harness, built with the system's liblmdb
for my $name (qw(hold shrink)) {
    my ($rc) = lmdb_tool($DIR, $name);
    is($rc, 0, "the $name helper compiles") or BAIL_OUT("cannot build $name");
}

# gives the stopped nginx's store a map with little room left
sub shrink_store {
    my ($h, $pages) = @_;
    my $new = "$h->{store}.new";
    mkdir $new or die "$new: $!";
    my ($rc, $size) = run_out("$DIR/shrink", $h->{store}, $new, $pages);
    rename "$new/data.mdb", "$h->{store}/data.mdb" or die "rename: $!";
    rmdir $new;
    return $rc ? 0 : $size + 0;
}


# kill -9 of the master and the workers while a client posts batches of
# 100 events: after a restart every batch that got 200 is there in full,
# none is there in part; three times over

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE, workers => 2);
    my (%acked, %sent);

    for my $round (1 .. 3) {
        my $log = "$DIR/round$round";
        write_file($log, '');

        my $client = fork // die "fork: $!";
        if ($client == 0) {
            open my $fh, '>>', $log or POSIX::_exit(1);
            $fh->autoflush(1);
            for my $k (0 .. 100000) {
                my $body = $JSON->encode([map {
                    { type => 'order', member => 'd' . ($_ % $MEMBERS),
                      order_id => "r$round-k$k-$_", amount => 100 * (1 + $_ % 3),
                      at => '2026-11-20T10:00:00Z' } } 0 .. 99]);
                print $fh "sent $k\n";
                my $answer = post_body($h->{port}, $body);
                print $fh "$k " . ($answer eq batch_ok(100, 100, 0) ? 'ok' : 'failed') . "\n";
                last if $answer ne batch_ok(100, 100, 0);
            }
            POSIX::_exit(0);
        }

        # a few batches in, at a moment of its own each round
        wait_for(sub { (() = slurp($log) =~ /^\d+ ok$/mg) >= 3 }, 20)
            or diag("round $round: the client made no progress");
        sleep rand 0.3;

        my @procs = ($h->{master}, children($h->{master}));
        kill 'KILL', @procs;
        ok(wait_for(sub { !grep { alive($_) } @procs }, 5),
           "round $round: master and workers killed");
        waitpid $client, 0;

        for (split /\n/, slurp($log)) {
            $sent{"r$round-k$1"} = 1 if /^sent (\d+)$/;
            $acked{"r$round-k$1"} = 1 if /^(\d+) ok$/;
        }

        restart($h);
        ok(scalar(children($h->{master})) >= 2, "round $round: restarted");
    }

    cmp_ok(scalar(keys %acked), '>=', 9, 'batches were acknowledged: '
                                         . scalar(keys %acked));

    # each batch's orders, from every ledger
    my (%found, %orders, %points);
    for my $id (map { "d$_" } 0 .. $MEMBERS - 1) {
        my $l = ctl_json($h, 'get', 'ledger', $id);
        my $m = ctl_json($h, 'get', 'member', $id);
        for (@{ref $l ? $l->{entries} : []}) {
            $found{$1}++ if $_->{reason} eq 'order' && $_->{event} =~ /^(r\d+-k\d+)-\d+$/;
            $orders{$id}++ if $_->{reason} eq 'order';
        }
        is(ref $m ? $m->{points} : $m, ref $l ? sum0(map { $_->{delta} } @{$l->{entries}}) : $l,
           "$id: points are the sum of the ledger");
        is(ref $m ? $m->{orders} : $m, $orders{$id} // 0, "$id: an order count for each order");
    }

    my @lost = grep { ($found{$_} // 0) != 100 } sort keys %acked;
    is(scalar(@lost), 0, 'every batch that got 200 is in the store in full')
        or diag("lost: @lost[0 .. ($#lost > 9 ? 9 : $#lost)]");
    my @half = grep { $found{$_} != 100 } sort keys %found;
    is(scalar(@half), 0, 'no batch is in the store in part')
        or diag(join ' ', map { "$_: $found{$_}" } @half);
    my @ghost = grep { !$sent{$_} } sort keys %found;
    is(scalar(@ghost), 0, 'nothing in the store that was not sent');

    # a retry of each round's last batch: all applied or all duplicates
    for my $round (1 .. 3) {
        my ($last) = sort { $b <=> $a } map { /^r$round-k(\d+)$/ ? $1 : () } keys %sent;
        next unless defined $last;
        my $body = $JSON->encode([map {
            { type => 'order', member => 'd' . ($_ % $MEMBERS),
              order_id => "r$round-k$last-$_", amount => 100 * (1 + $_ % 3),
              at => '2026-11-20T10:00:00Z' } } 0 .. 99]);
        my $answer = post_body($h->{port}, $body);
        my $was = $found{"r$round-k$last"} ? batch_ok(100, 0, 100) : batch_ok(100, 100, 0);
        is($answer, $was, "round $round: the batch in flight, retried: "
                          . ($found{"r$round-k$last"} ? 'all duplicates' : 'all applied'));
    }

    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'verify');
    is("$rc $out", '0 ', 'loyaltyctl verify finds nothing wrong') or diag($err);

    no_trouble($h, 'kill -9');
    stop_nginx($h);
}


# a reload, then a stop, while a write waits on LMDB's writer lock: the
# old worker answers it before it exits, once the lock is free

for my $how (qw(reload stop)) {
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $master = $h->{master};
    my ($worker) = children($master);

    my $holder = open2(my $from, my $to, "$DIR/hold", $h->{store});
    is(scalar(<$from> // ''), "locked\n", "$how: the writer lock is held from outside");

    my $sock = admin_send($h, $TOKEN, 'POST', '/admin/events',
                          qq({"type":"signup","member":"$how-1"}\n));
    is(answer_of($sock, 0.5), 'none', "$how: the write waits");

    kill $how eq 'reload' ? 'HUP' : 'QUIT', $master;
    if ($how eq 'reload') {
        ok(wait_for(sub { grep { $_ != $worker } children($master) }, 5),
           "$how: a new worker started");
    }
    sleep 1;

    close $to;
    waitpid $holder, 0;

    is(answer_of($sock, 10), batch_ok(1, 1, 0), "$how: the waiting write is answered");
    is(field($h, 'member', "$how-1", 'stage'), 'fan', "$how: and applied");
    ok(wait_for(sub { !alive($worker) }, 10), "$how: the old worker exits");

    if ($how eq 'reload') {
        is(post_body($h->{port}, qq({"type":"signup","member":"$how-2"}\n)),
           batch_ok(1, 1, 0), "$how: the new worker writes");
    } else {
        ok(wait_for(sub { !alive($master) }, 10), "$how: nginx stops");
    }

    no_trouble($h, $how);
    stop_nginx($h);
}


# the store writer's thread runs as SCHED_BATCH while it writes, so that
# waking up it does not preempt the worker's requests, and as it was
# after: the pool's other users ("aio threads") keep their policy.  Seen
# while a write waits on LMDB's writer lock held from outside.

# "POLICY: THREADS" of every policy the workers' threads have
sub policy_counts {
    my ($policies) = @_;
    my %n;
    $n{$_}++ for values %$policies;
    return join ', ', map { "$_: $n{$_}" } sort keys %n;
}

# the workers' main threads' policies
sub main_policies {
    my ($policies) = @_;
    return join ',', map { $policies->{$_} }
                     grep { m{^(\d+)/\1$} } sort keys %$policies;
}

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    # a request answered: the worker has started its thread pool
    my ($s) = http_request($h, 'GET', '/');
    is($s, 200, 'sched: the worker answers');
    my $all = scalar keys %{thread_policies($h)};
    cmp_ok($all, '>', 1, "sched: the worker has its thread pool ($all threads)");
    is(policy_counts(thread_policies($h)), "0: $all",
       'sched: every thread SCHED_OTHER before a write');

    for my $k (1 .. 2) {
        my $holder = open2(my $from, my $to, "$DIR/hold", $h->{store});
        is(scalar(<$from> // ''), "locked\n", "sched $k: the writer lock is held");

        my $sock = admin_send($h, $TOKEN, 'POST', '/admin/events',
                              qq({"type":"signup","member":"sched-$k"}\n));
        my $during = {};
        wait_for(sub { $during = thread_policies($h);
                       grep { $_ == 3 } values %$during }, 5);
        is(policy_counts($during), '0: ' . ($all - 1) . ', 3: 1',
           "sched $k: the writing thread is SCHED_BATCH, no other");
        is(main_policies($during), '0', "sched $k: the worker's main thread is not");
        is(answer_of($sock, 0.2), 'none', "sched $k: the write waits");

        close $to;
        waitpid $holder, 0;

        is(answer_of($sock, 10), batch_ok(1, 1, 0), "sched $k: answered");
        is(policy_counts(thread_policies($h)), "0: $all",
           "sched $k: every thread SCHED_OTHER again once answered");
    }

    # a thread of another policy is left as it is, and writes all the same
    my %workers = map { m{^(\d+)/} ? ($1 => 1) : () } keys %{thread_policies($h)};
    is(join(' ', map { system('chrt', '-a', '-i', '-p', '0', $_) } sort keys %workers),
       '0', 'sched: the worker made SCHED_IDLE from outside');
    my $holder = open2(my $from, my $to, "$DIR/hold", $h->{store});
    is(scalar(<$from> // ''), "locked\n", 'sched idle: the writer lock is held');
    my $sock = admin_send($h, $TOKEN, 'POST', '/admin/events',
                          qq({"type":"signup","member":"sched-idle"}\n));
    is(answer_of($sock, 0.5), 'none', 'sched idle: the write waits');
    is(policy_counts(thread_policies($h)), "5: $all",
       'sched idle: every thread still SCHED_IDLE meanwhile');
    close $to;
    waitpid $holder, 0;
    is(answer_of($sock, 10), batch_ok(1, 1, 0), 'sched idle: answered');
    is(policy_counts(thread_policies($h)), "5: $all",
       'sched idle: and still SCHED_IDLE after');
    unlike(error_log_text($h), qr/store writer's thread cannot/, 'sched: no failure logged');

    no_trouble($h, 'sched');
    stop_nginx($h);
}


# a store that grows full: the worker grows the map and writes the batch
# again at once, so the client gets one answer, 200

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    stop_nginx($h);
    ok(shrink_store($h, 16), 'a store with 16 free pages');
    restart($h);

    my $body = $JSON->encode([map { { type => 'signup', member => "full-$_" } } 1 .. 1000]);
    my ($s, $hdr, $b) = http_request($h, 'POST', '/admin/events',
                                     { Authorization => "Bearer $TOKEN" }, $body);
    is(($s // 'none') . ' ' . ($hdr->{'retry-after'} // '-') . " $b",
       '200 - ' . substr(batch_ok(1000, 1000, 0), 4),
       '1000 signups into a store with no room: grown, applied, 200');
    like(error_log_text($h), qr/\[notice\].*full, grown from \d+ KB to \d+ KB/,
         'the growth is logged');

    is(post_body($h->{port}, $body), batch_ok(1000, 0, 1000), 'a retry is a duplicate');
    is(field($h, 'member', 'full-1000', 'stage'), 'fan', 'in the store');

    no_trouble($h, 'a full store');
    stop_nginx($h);
}


# two workers and a full map: one growth decision for the store.  The
# worker that finds it full grows it and commits the batch, which records
# the size in the store; the other takes that size up rather than growing
# its own map, so no batch is ever answered 503

{
    my $h = start_nginx(http_config => $HTTP
                                       . "log_format pids '\$pid \$status';\n",
                        config => $CONFIG =~ s{client_max_body_size 4m;}
                            {client_max_body_size 4m;\n    access_log %%PREFIX%%/logs/pids.log pids;}r,
                        store => $STORE, workers => 2);
    stop_nginx($h);
    ok(shrink_store($h, 16), 'a store with 16 free pages');
    restart($h);

    my @answers;
    for my $k (1 .. 30) {
        my $body = $JSON->encode([map { { type => 'signup', member => "two-$k-$_" } }
                                  1 .. 300]);
        push @answers, post_body($h->{port}, $body);
    }
    my @bad = grep { $_ ne batch_ok(300, 300, 0) } @answers;
    is(scalar @bad, 0, '30 batches over two workers, each answered 200 once')
        or diag(join '', @bad);

    my %pids = map { (split ' ')[0] => 1 } split /\n/, slurp("$h->{prefix}/logs/pids.log");
    my $log = error_log_text($h);
    Test::More::note('workers that wrote: ' . scalar(keys %pids)
                     . '; sizes taken up: ' . (() = $log =~ /took up the map size/g)
                     . '; maps followed: ' . (() = $log =~ /map resized/g));

    # one decision per size: two workers growing from the same size is the bug
    my @grown = error_log_text($h) =~ /full, grown from (\d+ KB to \d+ KB)/g;
    my %seen;
    my @twice = grep { $seen{$_}++ } @grown;
    cmp_ok(scalar @grown, '>=', 1, 'the map grew: ' . join(', ', @grown));
    is(scalar @twice, 0, 'never twice from the same size');
    unlike(error_log_text($h), qr/admin write failed/, 'no write failed');

    no_trouble($h, 'two workers, a full map');
    stop_nginx($h);
}


# a store whose map loyaltyctl grew while nginx runs: the workers' next
# write works (a 503 to retry at most), and the next read too

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    stop_nginx($h);
    ok(shrink_store($h, 16), 'a store with 16 free pages');
    restart($h);

    is(post_body($h->{port}, qq({"type":"signup","member":"before"}\n)),
       batch_ok(1, 1, 0), 'a write before');

    write_file("$DIR/big.jsonl",
               join '', map { qq({"type":"signup","member":"big-$_"}\n) } 1 .. 3000);
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'apply', "$DIR/big.jsonl");
    is("$rc $out", qq(0 {"events":3000,"applied":3000,"duplicates":0}\n),
       'loyaltyctl apply grows the map') or diag($err);

    my $answer = post_body($h->{port}, qq({"type":"signup","member":"after"}\n));
    if ($answer =~ /^503 /) {
        Test::More::note("first write after the growth: $answer");
        $answer = post_body($h->{port}, qq({"type":"signup","member":"after"}\n));
    }
    is($answer, batch_ok(1, 1, 0), 'the next write works (after one retry at most)');
    unlike(error_log_text($h), qr/admin write failed/, 'no write failed');

    my ($s, undef, $b) = http_request($h, 'GET', '/',
        { Cookie => 'loyalty_member=' . sign_member('big-3000', '1h') });
    is("$s $b", "200 [big-3000][fan][0]\n", 'the next read sees the import');

    no_trouble($h, 'a grown map');
    stop_nginx($h);
}

done_testing();
