# Click counters: loyalty_click_zone counts every click on a known code in
# shared memory, a worker flushes them every loyalty_click_flush into the
# store's daily aggregates, "loyaltyctl clicks" reads them.  Exact counts
# per counter, two workers under concurrent load, max_clicks under
# concurrency, reloads, the flush at exit, a store that cannot be
# written, and the configuration checks.

use lib 't/lib';
use Loyalty::Harness;

use File::Temp ();
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $HTTP = <<'END';
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1s;
END

my $CONFIG = <<'END';
location /s/ {
    loyalty_share;
    add_header X-Status $loyalty_ref_status always;
}

location /noref/ {
    loyalty_ref_arg off;
    return 200 "[$loyalty_ref_status]\n";
}

location /r/ {
    loyalty_ref_arg r;
    return 200 "[$loyalty_ref_status]\n";
}

location / {
    return 200 "[$loyalty_ref_status]\n";
}
END

my $STORE = <<'END';
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
{"id":"bob","tier":"gold","stage":"fan"}
{"id":"carol","tier":"gold","stage":"fan"}
[codes]
{"code":"ALICE1","member":"alice","target":"/p/a"}
{"code":"BOB1","vanity":true,"member":"bob","target":"/p/b"}
{"code":"GONE1","vanity":true,"member":"alice","target":"/p/gone","revoked":true}
{"code":"OLD1","vanity":true,"member":"alice","target":"/p/old","expires_at":"2020-01-01T00:00:00Z"}
{"code":"MAX3","vanity":true,"member":"bob","target":"/p/max3","max_clicks":3}
{"code":"MAX50","vanity":true,"member":"bob","target":"/p/max50","max_clicks":50}
{"code":"POST1","vanity":true,"member":"bob","target":"/p/post","max_clicks":1}
{"code":"CONC1","vanity":true,"member":"carol","target":"/p/conc"}
END

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
         . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';

my @COUNTERS = qw(total unique bot self rejected attributed);
my $JSON = JSON::PP->new;


# the store's counts: { CODE => "total unique bot self rejected attributed" }
# summed over the days (a test may cross midnight UTC)
sub counts {
    my ($store, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $store, 'clicks', @args);
    return { error => "loyaltyctl clicks: exit $rc: $err" } if $rc;
    my %sum;
    for (split /\n/, $out) {
        # days with nothing counted (the slot test puts in many)
        next if /"total":0,"unique":0,"bot":0,"self":0,"rejected":0,"attributed":0\}$/;
        my $e = $JSON->decode($_);
        $sum{$e->{code}}[$_] += $e->{$COUNTERS[$_]} for 0 .. $#COUNTERS;
    }
    return { map { $_ => join ' ', @{$sum{$_}} } keys %sum };
}

# waits up to 5 s for the store to say so about a code
sub wait_counts {
    my ($h, $code, $want) = @_;
    my $deadline = time + 5;
    my $got;
    while (1) {
        $got = counts($h->{store})->{$code} // '';
        return $got if $got eq $want || time > $deadline;
        sleep 0.1;
    }
}

# one click: (status, Location, X-Status, number of Set-Cookie)
sub click {
    my ($h, $method, $uri, %hdr) = @_;
    $hdr{'User-Agent'} //= $UA;
    delete $hdr{'User-Agent'} if $hdr{'User-Agent'} eq '-';
    my ($status, $hdr, $body) = http_request($h, $method, $uri, \%hdr);
    my $st = $hdr->{'x-status'} // ($body =~ /^\[(\w+)\]$/ ? $1 : '');
    return join ' ', $status // 'none', $st,
                scalar @{$hdr->{'set-cookie'} || []};
}

# $procs children at once, each running $each requests through $make
# ($proc, $n) -> [method, uri, headers]: every answer's "status X-Status
# cookies"
sub concurrently {
    my ($h, $procs, $each, $make) = @_;
    my $dir = test_dir();
    my @pids;

    for my $p (0 .. $procs - 1) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $out = '';
            for my $n (0 .. $each - 1) {
                my $r = eval {
                    my ($m, $u, $hd) = @{$make->($p, $n)};
                    my ($s, $hdr) = http_request($h->{port}, $m, $u, $hd);
                    join ' ', $s // 'none', $hdr->{'x-status'} // '',
                              scalar @{$hdr->{'set-cookie'} || []};
                } // "error $@";
                $out .= ($r =~ s/\n/ /gr) . "\n";
            }
            write_file("$dir/$p", $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }

    waitpid $_, 0 for @pids;

    my %tally;
    for my $p (0 .. $procs - 1) {
        $tally{$_}++ for split /\n/, eval { slurp("$dir/$p") } // '';
    }
    return \%tally;
}

sub no_trouble {
    my ($h, $name) = @_;
    my @bad = grep { /exited on signal|\[alert\]|\[emerg\]|\[crit\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$name: no crash, alert, crit or emerg") or diag(join "\n", @bad);
}

sub today {
    return POSIX::strftime('%Y-%m-%d', gmtime(shift // time));
}

sub member {
    return 'loyalty_member=' . sign_member($_[0], '1h');
}


# exact counts after a mix of clicks

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $day0 = today();
    my @got;

    # ALICE1
    push @got,
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA A"),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA A"),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA B"),
        click($h, 'GET', '/?ref=alice1', 'User-Agent' => "$UA A"),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => 'curl/8.5.0'),
        click($h, 'HEAD', '/s/ALICE1'),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => '-'),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA C",
              Cookie => member('alice')),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA D",
              Cookie => member('alice')),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA C",
              Cookie => member('bob')),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA D",
              Cookie => member('bob') . '; loyalty_ref='
                        . ref_cookie('ALICE1', 'alice', int(time) - 60)),
        click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA E",
              Cookie => 'loyalty_ref=' . ref_cookie('ALICE1', 'alice',
                                                    int(time) - 60));

    is_deeply(\@got, ['302 new 1', '302 new 1', '302 new 1', '200 new 1',
                      '302 bot 0', '302 bot 0', '302 bot 0',
                      '302 self 0', '302 self 0', '302 new 1',
                      '302 kept 0', '302 kept 0'],
              'mix: the answers');

    # BOB1: its member by argument, then another by a custom argument
    is(click($h, 'GET', '/?ref=BOB1', Cookie => member('bob')), '200 self 0',
       'mix: bob on his own code');
    is(click($h, 'GET', '/r/?r=bob1', 'User-Agent' => "$UA F"),
       '200 new 1', 'mix: loyalty_ref_arg r');
    is(click($h, 'GET', '/noref/?ref=BOB1', 'User-Agent' => "$UA G"),
       '200 none 0', 'mix: loyalty_ref_arg off is no click');

    # dead codes
    is(click($h, 'GET', '/s/GONE1', 'User-Agent' => "$UA A"),
       '302 revoked 0', 'mix: revoked');
    is(click($h, 'GET', '/s/GONE1', 'User-Agent' => "$UA A"),
       '302 revoked 0', 'mix: revoked again');
    is(click($h, 'GET', '/?ref=OLD1', 'User-Agent' => "$UA B"),
       '200 expired 0', 'mix: expired');

    # max_clicks 3, five people
    is_deeply([map { click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA M$_") }
                   1 .. 5],
              ['302 new 1', '302 new 1', '302 new 1', '302 exhausted 0',
               '302 exhausted 0'],
              'mix: max_clicks 3');

    # issue 18: bare and preview User-Agents are bots, WeChat's is a person
    is_deeply([map { click($h, 'GET', '/s/BOB1', 'User-Agent' => $_) }
                   'Mozilla/5.0',
                   'Mozilla/5.0 (Linux; Android 11; Pixel 2; '
                   . 'DuplexWeb-Google/1.0) AppleWebKit/537.36 (KHTML, like '
                   . 'Gecko) Chrome/86.0.4240.193 Mobile Safari/537.36 '
                   . 'Google-PageRenderer Google '
                   . '(+https://developers.google.com/+/web/snippet/)',
                   'Viber/20.9.0.8 CFNetwork/1410.0.3 Darwin/22.6.0',
                   'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; '
                   . 'compatible; ClaudeBot/1.0; +claudebot@anthropic.com)',
                   'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
                   . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
                   . 'MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI '
                   . 'Language/zh_CN'],
              ['302 bot 0', '302 bot 0', '302 bot 0', '302 bot 0',
               '302 new 1'],
              'mix: bare Mozilla/5.0, Google-PageRenderer, Viber, ClaudeBot '
              . 'are bots; WeChat is a person');

    # unknown and malformed codes count nothing
    is(click($h, 'GET', '/s/NOPE99'), '302 invalid 0', 'mix: unknown');
    is(click($h, 'GET', '/s/a.b'), '302 invalid 0', 'mix: malformed');
    is(click($h, 'GET', '/?ref=ZZ%3C1'), '200 invalid 0',
       'mix: malformed by argument');

    my %want = (
        ALICE1 => '12 5 3 2 0 5',
        BOB1   => '7 3 4 1 0 2',
        GONE1  => '2 1 0 0 2 0',
        OLD1   => '1 1 0 0 1 0',
        MAX3   => '5 5 0 0 2 3',
    );

    is(wait_counts($h, 'ALICE1', $want{ALICE1}), $want{ALICE1},
       'mix: flushed within 5 s');
    sleep 1.2;    # any other flush
    is_deeply(counts($h->{store}), \%want,
              'mix: exact counts of every code, nothing for unknown ones');

    my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'clicks', 'alice1');
    my $day1 = today();
    like($out, qr/^\{"code":"ALICE1","day":"(\Q$day0\E|\Q$day1\E)","total":12,"unique":5,"bot":3,"self":2,"rejected":0,"attributed":5\}\n\z/,
         'mix: the line loyaltyctl prints, today\'s');

    # the master runs as root and hands data.mdb to the workers' user
    if ($> == 0 && defined getpwnam('www-data')) {
        my @st = stat "$h->{store}/data.mdb";
        is(scalar getpwuid($st[4] // -1), 'www-data',
           'mix: the workers\' user owns data.mdb');
    }

    is(stop_nginx($h), 'QUIT', 'mix: graceful stop');
    is_deeply(counts($h->{store}), \%want,
              'mix: the flush at exit adds nothing twice');
    no_trouble($h, 'mix');
}


# a short link answers 405 to POST: that is no click, counts nothing and
# uses up none of max_clicks, whether or not the location's add_header
# asks for $loyalty_ref_status (as /s/ does) on the 405 page

{
    my $h = start_nginx(http_config => $HTTP, store => $STORE,
                        config => $CONFIG . <<'END');
location /t/ {
    loyalty_share;
}
END

    is_deeply([map { (click($h, 'POST', '/t/POST1', 'User-Agent' => "$UA T$_")
                      =~ /^(\d+)/)[0] } 1 .. 3],
              [405, 405, 405], 'POST: 405 without add_header');
    is_deeply([map { (click($h, 'POST', '/s/POST1', 'User-Agent' => "$UA P$_")
                      =~ /^(\d+)/)[0] } 1 .. 3],
              [405, 405, 405], 'POST: 405 with add_header X-Status');
    is(click($h, 'GET', '/s/POST1', 'User-Agent' => "$UA G"), '302 new 1',
       'POST: the first GET still attributes (max_clicks 1)');

    stop_nginx($h);
    is(counts($h->{store})->{POST1}, '1 1 0 0 0 1',
       'POST: only the GET is counted');
    no_trouble($h, 'POST');
}


# two workers, four clients at once: every click counted exactly once,
# and max_clicks exact under concurrency

{
    my $h = start_nginx(workers => 2, config => $CONFIG, store => $STORE,
                        http_config => $HTTP . <<'END');
log_format pids '$pid';
access_log %%PREFIX%%/logs/pids.log pids;
END

    my $t = concurrently($h, 4, 250, sub {
        my ($p, $n) = @_;
        return ['GET', '/s/CONC1',
                { 'User-Agent' => $p == 3 ? 'curl/8.5.0' : "$UA client-$p" }];
    });
    is_deeply($t, { '302 new 1' => 750, '302 bot 0' => 250 },
              'load: 1000 answers, 750 new, 250 bots');

    my %pids = map { $_ => 1 } split /\n/, slurp("$h->{prefix}/logs/pids.log");
    is(scalar keys %pids, 2, 'load: both workers served clicks');

    is(wait_counts($h, 'CONC1', '1000 3 250 0 0 750'), '1000 3 250 0 0 750',
       'load: total, unique, bot and attributed exact');

    # 200 first-time visitors for 50 attributions
    $t = concurrently($h, 4, 50, sub {
        my ($p, $n) = @_;
        return ['GET', '/s/MAX50', { 'User-Agent' => "$UA visitor-$p-$n" }];
    });
    is_deeply($t, { '302 new 1' => 50, '302 exhausted 0' => 150 },
              'max_clicks 50 under load: 50 new, 150 exhausted');

    is(wait_counts($h, 'MAX50', '200 200 0 0 150 50'), '200 200 0 0 150 50',
       'max_clicks 50 under load: the counts agree');

    is(stop_nginx($h), 'QUIT', 'load: graceful stop');
    my $c = counts($h->{store});
    is($c->{CONC1}, '1000 3 250 0 0 750', 'load: nothing doubled at exit');
    is($c->{MAX50}, '200 200 0 0 150 50', 'max_clicks: nothing doubled at exit');
    no_trouble($h, 'load');
}


# the flush at exit: with loyalty_click_flush 1h the store has the counts
# only once nginx stops, from both workers

{
    my $h = start_nginx(workers => 2, config => $CONFIG, store => $STORE,
                        http_config => $HTTP =~ s/flush 1s/flush 1h/r);

    my $t = concurrently($h, 2, 20, sub {
        my ($p, $n) = @_;
        return ['GET', $n % 2 ? '/s/ALICE1' : '/?ref=BOB1',
                { 'User-Agent' => "$UA exit-$p" }];
    });
    is_deeply($t, { '302 new 1' => 20, '200  1' => 20 }, 'exit: 40 clicks');

    sleep 1.5;
    is_deeply(counts($h->{store}), {}, 'exit: nothing flushed before the hour');

    is(stop_nginx($h), 'QUIT', 'exit: graceful stop');
    is_deeply(counts($h->{store}),
              { ALICE1 => '20 2 0 0 0 20', BOB1 => '20 2 0 0 0 20' },
              'exit: every click in the store after the stop');
    no_trouble($h, 'exit');
}


# reloads: counts survive, and are never counted twice

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);

    click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA R$_") for 1 .. 3;
    is(wait_counts($h, 'ALICE1', '3 3 0 0 0 3'), '3 3 0 0 0 3',
       'reload: three clicks flushed');

    # two more, not yet flushed when the old worker goes
    click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA R$_") for 4 .. 5;
    ok(reload_nginx($h, config => $CONFIG . "location /new/ { return 204; }\n"),
       'reload: same zone');
    is(click($h, 'GET', '/new/'), '204  0', 'reload: the new configuration');

    # the same visitors again: the zone remembers them
    click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA R$_") for 1 .. 4;
    is(wait_counts($h, 'ALICE1', '9 5 0 0 0 9'), '9 5 0 0 0 9',
       'reload: the sum, unique visitors remembered');

    # max_clicks 3 used up before a reload stays used up after it
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA R$_"), '302 new 1',
       "reload: MAX3 click $_") for 1 .. 3;
    ok(reload_nginx($h), 'reload: again');
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA R9"),
       '302 exhausted 0', 'reload: MAX3 still exhausted');

    # a zone of another size is a new zone: counts carry on from the store
    ok(reload_nginx($h, http_config => $HTTP =~ s/clicks 1m/clicks 2m/r),
       'reload: a bigger zone');
    click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA R$_") for 6 .. 7;
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA R10"),
       '302 exhausted 0', 'new zone: MAX3 still exhausted, from the store');

    is(stop_nginx($h), 'QUIT', 'reload: graceful stop');
    my $c = counts($h->{store});
    is($c->{ALICE1}, '11 7 0 0 0 11', 'reload: ALICE1 summed, not doubled');
    is($c->{MAX3}, '5 5 0 0 2 3', 'reload: MAX3 summed, not doubled');
    no_trouble($h, 'reload');
}


# days already in the store: nginx adds to today's; CODE and --since

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $today = today();
    my $tday = int(time / 86400);

    my $key = sub { $_[0] . "\0" . pack('N', $_[1]) };
    my $rec = sub { pack('C x7 Q<6', 1, @_) };
    my $day = sub { POSIX::strftime('%Y-%m-%d', gmtime($_[0] * 86400)) };

    # before any click: a slot reads the store when it is made
    my @put = (
        $key->('ALICE1', 20458), $rec->(10, 4, 1, 0, 0, 3),   # 2026-01-05
        $key->('ALICE1', $tday), $rec->(5, 1, 0, 0, 0, 1),
        $key->('BOB1', 20513), $rec->(2, 2, 0, 0, 0, 2),      # 2026-03-01
        $key->('MAX3', 20000), $rec->(2, 2, 0, 0, 0, 2),      # 2024-10-04
    );
    is(mdb_put_raw($h->{store}, 'clicks', @put), 0,
       'since: older days put in with mdb_load');

    is(click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA S"), '302 new 1',
       'since: a click');
    is(click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA S"), '302 new 1',
       'since: the same visitor again');
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA S1"), '302 new 1',
       'since: MAX3 had 2 attributions, one is left');
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA S2"),
       '302 exhausted 0', 'since: then MAX3 is exhausted');

    is(stop_nginx($h), 'QUIT', 'since: graceful stop');
    skip_midnight: {
        last skip_midnight if today() ne $today;

        my $d = sub { my ($code, $day, @c) = @_;
                      qq({"code":"$code","day":"$day","total":$c[0],"unique":$c[1],"bot":$c[2],"self":$c[3],"rejected":$c[4],"attributed":$c[5]}\n) };

        my %lines = (
            a_old => $d->('ALICE1', '2026-01-05', 10, 4, 1, 0, 0, 3),
            a_now => $d->('ALICE1', $today, 7, 2, 0, 0, 0, 3),
            b_old => $d->('BOB1', '2026-03-01', 2, 2, 0, 0, 0, 2),
            m_old => $d->('MAX3', '2024-10-04', 2, 2, 0, 0, 0, 2),
            m_now => $d->('MAX3', $today, 2, 2, 0, 0, 1, 1),
        );

        my $run = sub { (loyaltyctl('-s', $h->{store}, 'clicks', @_))[1] };

        is($run->(), join('', @lines{qw(a_old a_now b_old m_old m_now)}),
           'clicks: every code and day, in order; today\'s added to');
        is($run->('ALICE1'), join('', @lines{qw(a_old a_now)}),
           'clicks CODE');
        is($run->('max3'), join('', @lines{qw(m_old m_now)}),
           'clicks code in lower case');
        is($run->('--since', '2026-02-01'),
           join('', @lines{qw(a_now b_old m_now)}), 'clicks --since');
        is($run->('ALICE1', '--since', $today), $lines{a_now},
           'clicks CODE --since today');
        is($run->('--since', '2026-03-01'),
           join('', @lines{qw(a_now b_old m_now)}),
           'clicks --since takes that day in');
        is($run->('--since', '2026-03-02'),
           join('', @lines{qw(a_now m_now)}), 'clicks --since the day after');
        is($run->('NOPE99'), '', 'clicks of a code with none: nothing');
        is($run->('BOB1', '--since', $today), '',
           'clicks CODE --since after its days: nothing');
    }
    no_trouble($h, 'since');
}


# a store the workers cannot write: nginx serves on, says so once, keeps
# the counts in memory and writes them when it can again

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $data = "$h->{store}/data.mdb";

    click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA W$_") for 1 .. 2;
    is(wait_counts($h, 'ALICE1', '2 2 0 0 0 2'), '2 2 0 0 0 2',
       'read-only: two clicks flushed');

    chmod 0444, $data or die "chmod $data: $!";
    ok(reload_nginx($h), 'read-only: reload with data.mdb 0444');

    my @got = map { click($h, 'GET', '/s/ALICE1', 'User-Agent' => "$UA W$_") }
              3 .. 5;
    is_deeply(\@got, ['302 new 1', '302 new 1', '302 new 1'],
              'read-only: clicks still answered and attributed');
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA W$_"), '302 new 1',
       "read-only: MAX3 click $_") for 1 .. 3;
    is(click($h, 'GET', '/s/MAX3', 'User-Agent' => "$UA W4"),
       '302 exhausted 0', 'read-only: max_clicks still kept in memory');

    sleep 3;    # three flush intervals
    is(counts($h->{store})->{ALICE1}, '2 2 0 0 0 2',
       'read-only: nothing more in the store');

    my $log = error_log_text($h);
    my @said = $log =~ /(clicks stay counted in memory)/g;
    is(scalar @said, 1, 'read-only: said once') or diag($log);
    like($log, qr/\[error\].*loyalty_store: .*opening it read-only, clicks stay counted in memory/,
         'read-only: as an error');

    chmod 0644, $data or die "chmod $data: $!";
    ok(reload_nginx($h), 'read-only: writable again, reload');
    is(wait_counts($h, 'ALICE1', '5 5 0 0 0 5'), '5 5 0 0 0 5',
       'read-only: the counts kept in memory are written');

    is(stop_nginx($h), 'QUIT', 'read-only: graceful stop');
    my $c = counts($h->{store});
    is($c->{ALICE1}, '5 5 0 0 0 5', 'read-only: ALICE1 not doubled');
    is($c->{MAX3}, '4 4 0 0 1 3', 'read-only: MAX3 counted');
    no_trouble($h, 'read-only');
}


# a full zone: clicks on codes it has no room for are not counted, and
# the flusher says how many

{
    my $codes = join '', map {
        sprintf qq({"code":"Z%04d","vanity":true,"member":"bob","target":"/p/z"}\n), $_
    } 1 .. 400;

    my $h = start_nginx(config => $CONFIG
                                  . "location = /metrics { loyalty_metrics; }\n",
                        http_config => $HTTP =~ s/clicks 1m/clicks 64k/r,
                        store => $STORE . $codes);

    my ($room) = error_log_text($h)
        =~ /loyalty_click_zone "clicks": room for (\d+) codes/;
    ok($room && $room < 400, "full zone: room for $room codes");

    my %st;
    $st{click($h, 'GET', sprintf('/s/Z%04d', $_))}++ for 1 .. 400;
    is_deeply(\%st, { '302 new 1' => 400 },
              'full zone: every click still answered and attributed');

    # the clicks may span flushes, each saying what it lost since the last
    my $lost;
    for (1 .. 50) {
        $lost = 0;
        $lost += $_ for error_log_text($h) =~ /\[warn\] .*loyalty_click_zone "clicks" is full: (\d+) clicks on new codes were not counted; make it larger/g;
        last if $room && $lost >= 400 - $room;
        sleep 0.1;
    }
    ok($lost, 'full zone: the flusher warns');

    # later clicks that find no room are told too, though nothing else
    # is flushed with them (the last code had no room: clicked 20 times)
    my $then = $lost;
    click($h, 'GET', '/s/Z0400') for 1 .. 20;
    for (1 .. 50) {
        $lost = 0;
        $lost += $_ for error_log_text($h) =~ /\[warn\] .*loyalty_click_zone "clicks" is full: (\d+) clicks on new codes were not counted; make it larger/g;
        last if $lost >= $then + 20;
        sleep 0.1;
    }
    is($lost, $then + 20, 'full zone: lost clicks told with nothing to flush');

    # loyalty_metrics counts them all: a counter, never reset by the
    # flushes that told them
    my (undef, undef, $body) = http_request($h, 'GET', '/metrics');
    my ($metric) = $body =~ /^loyalty_click_zone_lost_total (\d+)$/m;
    is($metric, $lost, 'full zone: loyalty_click_zone_lost_total counts '
                       . 'every lost click, told or not');

    is(stop_nginx($h), 'QUIT', 'full zone: graceful stop');

    # a slow worker (a loaded VM, ASan) may flush in more than one go
    $lost = 0;
    $lost += $_ for error_log_text($h) =~ /\[warn\] .*loyalty_click_zone "clicks" is full: (\d+) clicks on new codes were not counted/g;

    my $c = counts($h->{store});
    is(scalar keys %$c, $room, 'full zone: as many codes counted as it has room for');
    ok(!grep({ $_ ne '1 1 0 0 0 1' } values %$c),
       'full zone: those counted exactly');
    is(scalar(keys %$c) + ($lost // 0), 420,
       'full zone: counted and not counted make every click');
    no_trouble($h, 'full zone');
}


# The first click on a code fills in its slot, reading the code's days
# in the store for max_clicks; a click on that code in the other worker
# meanwhile must wait for the slot.  A long history makes the filling
# slow enough to catch every time, as a page fault or a preempted worker
# does now and then in production: the waiting click must be neither lost
# nor refused as "exhausted".

{
    my $DAYS = 80000;
    my $shm = -w '/dev/shm' ? '/dev/shm' : '/tmp';
    my $tmp = File::Temp->newdir('loyalty-slot-XXXXXX', DIR => $shm);
    chmod 0755, "$tmp" or die "chmod $tmp: $!";
    my $store = "$tmp/store";

    my $import = sub {
        my ($kind, $text) = @_;
        write_file("$tmp/$kind.jsonl", $text);
        my ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', $kind,
                                          "$tmp/$kind.jsonl");
        die "import $kind: $err" if $rc;
    };
    loyaltyctl('-s', $store, 'init');
    $import->('tiers', qq({"name":"gold","rank":3}\n));
    $import->('members', qq({"id":"bob","tier":"gold","stage":"fan"}\n));
    $import->('codes', join '', map {
        qq({"code":"SLOW$_","vanity":true,"member":"bob","target":"/p/slow","max_clicks":1000}\n)
    } 1 .. 3);

    # days of nothing: the counts stay those of the test's clicks
    open my $fh, '|-', 'mdb_load', '-s', 'clicks', $store
        or die "mdb_load: $!";
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n";
    my $zero = unpack 'H*', pack('C x7 Q<6', 1, (0) x 6);
    for my $code (map { "SLOW$_" } 1 .. 3) {
        print $fh ' ', unpack('H*', "$code\0" . pack('N', $_)), "\n $zero\n"
            for 0 .. $DAYS - 1;
    }
    print $fh "DATA=END\n";
    close $fh;
    is($?, 0, "slot: $DAYS days of history for three codes");

    # reuseport: each worker its own socket, so connections reach both
    my $port2 = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0)->sockport;
    my $h = start_nginx(workers => 2, config => $CONFIG,
                        http_config => <<"END");
loyalty_store $store;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1s;

server {
    listen 127.0.0.1:$port2 reuseport;

    location /s/ {
        loyalty_share;
        add_header X-Status \$loyalty_ref_status always;
    }

    location / {
        add_header X-Pid \$pid always;
        return 204;
    }
}
END

    # one keep-alive connection to each worker
    my %conn;
    for (1 .. 64) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port2, Timeout => 10)
            or die "connect: $!";
        ka_send($s, '/', 'x');
        my $pid = (ka_read($s) =~ /^X-Pid: (\d+)/mi)[0] // 0;
        $conn{$pid} //= $s;
        last if keys %conn == 2;
    }
    is(scalar keys %conn, 2, 'slot: a connection to each worker');
    my @conn = values %conn;

    # the same new code in both workers at once
    my %st;
    for my $code (map { "SLOW$_" } 1 .. 3) {
        my $n = 0;
        ka_send($_, "/s/$code", "$UA slot-" . $n++) for @conn;
        $st{(ka_read($_) =~ /^X-Status: (\w+)/mi)[0] // 'none'}++ for @conn;
    }
    close $_ for @conn;

    is_deeply(\%st, { new => 6 },
              'slot: both of each pair attributed, none "exhausted"');

    is(stop_nginx($h), 'QUIT', 'slot: graceful stop');
    my $c = counts($store);
    is_deeply([map { $c->{"SLOW$_"} // '' } 1 .. 3],
              [('2 2 0 0 0 2') x 3], 'slot: every click counted');
    no_trouble($h, 'slot');
}


# HTTP/1.1 keep-alive by hand: the harness closes every connection
sub ka_send {
    my ($s, $uri, $ua) = @_;
    print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\nUser-Agent: $ua\r\n\r\n";
}

sub ka_read {
    my ($s) = @_;
    my $head = '';
    while (defined(my $line = <$s>)) {
        last if $line =~ /^\r?$/;
        $head .= $line;
    }
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;
    read($s, my $body, $len) if $len;
    return $head;
}


run_blocks(http_config => $HTTP, config => $CONFIG, store => $STORE);
done_testing();

__DATA__

=== TEST 1: the smallest zone, 64k, works
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 64k;
--- request
GET /s/ALICE1
--- more_headers
User-Agent: Mozilla/5.0 Firefox/120.0
--- error_code: 302
--- response_headers
X-Status: new
--- error_log_like
loyalty_click_zone "clicks": room for \d+ codes and \d+ recent visitor clicks


=== TEST 2: a zone under 64k is refused
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 10k;
--- config_error
"loyalty_click_zone" size must be at least 64k, not "10k"


=== TEST 3: a size that is no size
--- http_config
loyalty_store %%STORE%%;
loyalty_click_zone clicks lots;
--- config_error
"loyalty_click_zone" size must be at least 64k, not "lots"


=== TEST 4: a zone without a store
--- http_config
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
--- config
location / {
    return 200;
}
--- config_error
"loyalty_click_zone" requires "loyalty_store"


=== TEST 5: two zones
--- http_config
loyalty_store %%STORE%%;
loyalty_click_zone clicks 1m;
loyalty_click_zone other 1m;
--- config
location / {
    return 200;
}
--- config_error
"loyalty_click_zone" directive is duplicate


=== TEST 6: a flush interval of 0
--- http_config
loyalty_store %%STORE%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 0;
--- config
location / {
    return 200;
}
--- config_error
"loyalty_click_flush" must be more than 0


=== TEST 7: loyalty_click_zone only at http level
--- http_config
loyalty_store %%STORE%%;
--- config
location / {
    loyalty_click_zone clicks 1m;
}
--- config_error
"loyalty_click_zone" directive is not allowed here

