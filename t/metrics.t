# loyalty_metrics: the Prometheus text format, checked by promtool on the
# live output; a scripted series of requests (identities, the member
# cache, clicks of every class, the price API and its guard, Lua hooks
# that fail and run away, admin writes accepted, refused and denied)
# served by two workers, and the sums moving by exactly what the
# responses say happened; the store's gauges against mdb_stat; counts
# kept across a reload and a killed worker; the method, and the
# configuration checks.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->canonical;

my $HOOKS = test_dir();
write_file("$HOOKS/hooks.lua", <<'END');
-- t/metrics.t: a price hook that asks too much, fails, or runs away
return {
  price = function(ctx)
    if ctx.sku == "up" then return ctx.price * ctx.qty + 100, "more" end
    if ctx.sku == "err" then error("boom") end
    if ctx.sku == "loop" then while true do end end
    return nil
  end,
}
END

my $HTTP = <<"END";
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1h;
loyalty_lua_file $HOOKS/hooks.lua;
END

# a second listener shares connections out between the workers
my $PORT2 = do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "bind: $!";
    $s->sockport;
};

my $CONFIG = <<"END";
listen 127.0.0.1:$PORT2 reuseport;

location = /metrics {
    loyalty_metrics;
    allow 127.0.0.1;
    deny all;
}

location = /metrics-elsewhere {
    loyalty_metrics;
    deny all;
}

location /api/prices {
    loyalty_price_api;
}

location /admin/ {
    %%ADMIN%%
}

location / {
    add_header X-Pid \$pid always;
    return 200 "\$loyalty_identity \$loyalty_ref_status\\n";
}
END

my $STORE = <<'END';
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
{"id":"bob","tier":"gold","stage":"fan"}
{"id":"carol","tier":"gold","stage":"fan"}
[prices]
{"sku":"tea","retail":1000,"tiers":{"gold":900}}
{"sku":"up","retail":1000}
{"sku":"err","retail":1000}
{"sku":"loop","retail":1000}
[codes]
{"code":"ALICE1","member":"alice","target":"/p/a"}
{"code":"BOB1","vanity":true,"member":"bob","target":"/p/b"}
{"code":"GONE1","vanity":true,"member":"alice","target":"/p/gone","revoked":true}
{"code":"OLD1","vanity":true,"member":"alice","target":"/p/old","expires_at":"2020-01-01T00:00:00Z"}
END

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
         . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';


# { 'name{labels}' => value } of a scrape, and its text
sub scrape {
    my ($h, $port) = @_;
    my ($status, $hdr, $body) = http_request($port // $h, 'GET', '/metrics');
    die "scrape: $status\n$body" unless ($status // 0) == 200;
    my %m;
    for (split /\n/, $body) {
        next if /^#/;
        /^(\S+) (\S+)$/ or die "bad sample line \"$_\"";
        $m{$1} = $2;
    }
    return (\%m, $body, $hdr);
}

# what moved between two scrapes, counters only
sub moved {
    my ($before, $after) = @_;
    my %d;
    for (keys %$after) {
        next unless /_total(\{|$)/;
        my $n = $after->{$_} - ($before->{$_} // 0);
        $d{$_} = $n if $n;
    }
    return \%d;
}

my $h = start_nginx(http_config => $HTTP, config => $CONFIG, store => $STORE,
                    workers => 2);

# the workers take their slots as they start
my ($m0, $text0, $hdr0);
for (1 .. 50) {
    ($m0, $text0, $hdr0) = scrape($h);
    last if $m0->{loyalty_metrics_processes} == 2;
    sleep 0.1;
}

is($hdr0->{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'the text exposition format 0.0.4');
is($m0->{loyalty_metrics_processes}, 2, 'both workers count');
is(scalar(grep { /_total/ && $m0->{$_} != 0 } keys %$m0), 0,
   'a new nginx has counted nothing')
    or diag($text0);


# the script: every request says what it was; expected counts follow
my (%want, %seen_by, %pids);

sub count { $want{$_[0]} += $_[1] // 1 }

sub page {
    my ($uri, %hdr) = @_;
    $hdr{'User-Agent'} //= $UA;
    my ($status, $hdr, $body) = http_request($PORT2, 'GET', $uri, \%hdr);
    my ($identity, $ref) = ($body // '') =~ /^(\w+) (\w+)$/
        or die "GET $uri: $status $body";
    my $pid = $hdr->{'x-pid'};
    $pids{$pid}++;

    count("loyalty_identity_requests_total{outcome=\"$identity\"}");
    count("loyalty_clicks_total{class=\"$ref\"}") if $uri =~ /[?&]ref=/;

    # the member cache: a worker keeps verified cookies, valid or unknown
    if (my ($cookie) = ($hdr{Cookie} // '') =~ /loyalty_member=([^;]+)/) {
        my $kept = $identity eq 'valid' || $identity eq 'unknown';
        my $hit = $kept && $seen_by{"$pid $cookie"}++;
        count('loyalty_member_cache_lookups_total{result="'
              . ($hit ? 'hit' : 'miss') . '"}');
    }

    return "$identity $ref";
}

my $alice = 'loyalty_member=' . sign_member('alice', '1h');
my %identities = (
    none => [undef, 3],
    valid => [$alice, 5],
    unknown => ['loyalty_member=' . sign_member('ghost', '1h'), 3],
    expired => ['loyalty_member=' . sign_member('alice', '-1h'), 2],
    invalid => ['loyalty_member=alice~9999999999~k1~AAAA', 2],
);

for my $outcome (sort keys %identities) {
    my ($cookie, $n) = @{$identities{$outcome}};
    for (1 .. $n) {
        is(page('/', $cookie ? (Cookie => $cookie) : ()), "$outcome none",
           "identity $outcome");
    }
}

my $at = int(time) - 60;
my @clicks = (
    ['/?ref=ALICE1', 'new', 3],
    ['/?ref=ALICE1', 'bot', 2, 'User-Agent' => 'facebookexternalhit/1.1'],
    ['/?ref=NOPE99', 'invalid', 2],
    ['/?ref=GONE1', 'revoked', 1],
    ['/?ref=OLD1', 'expired', 1],
    ['/?ref=ALICE1', 'self', 1, Cookie => $alice],
    ['/?ref=ALICE1', 'kept', 2,
     Cookie => 'loyalty_ref=' . ref_cookie('BOB1', 'bob', $at)],
);

for (@clicks) {
    my ($uri, $class, $n, %hdr) = @$_;
    for (1 .. $n) {
        like(page($uri, %hdr), qr/^\w+ $class$/, "a click: $class");
    }
}
count('loyalty_attributions_total', 3);

# the price API: the hook asks more than the price (the guard clamps),
# fails, and runs away; anonymous callers, one call of the hook per SKU
for my $sku (qw(tea up err loop)) {
    my ($status, $hdr, $body) = http_request($PORT2, 'GET',
                                             "/api/prices?sku=$sku");
    is($status, 200, "price of $sku");
    count('loyalty_identity_requests_total{outcome="none"}');
    count('loyalty_price_api_answers_total{result="ok"}');
    count("loyalty_lua_hook_calls_total{hook=\"price\"}");
}
count('loyalty_price_guard_clamps_total');
count('loyalty_lua_hook_errors_total{hook="price"}', 2);
count('loyalty_lua_hook_stops_total{hook="price",limit="budget"}');

my ($st) = http_request($PORT2, 'GET', '/api/prices');
is($st, 400, 'the price API without a SKU');
count('loyalty_price_api_answers_total{result="bad_request"}');

# the admin API
my @writes = (
    ['POST', '/admin/events', '[{"type":"signup","member":"dan"}]', 200,
     'accepted'],
    ['PUT', '/admin/members/erin', '{"tier":"gold","stage":"fan"}', 200,
     'accepted'],
    ['POST', '/admin/events', '[{"type":"nope","member":"dan"}]', 422,
     'invalid'],
    ['PUT', '/admin/members/erin', '[1]', 400, 'bad_request'],
    ['DELETE', '/admin/members/nobody', undef, 404, 'not_found'],
);

for (@writes) {
    my ($method, $uri, $body, $status, $result) = @$_;
    my ($got) = admin_request($PORT2, $method, $uri, $body);
    is($got, $status, "admin $method $uri: $status");
    count("loyalty_admin_writes_total{result=\"$result\"}");
}

# reads in the thread pool are no writes: counted nowhere
for my $uri ('/admin/members/erin/export', '/admin/members/erin/referrals') {
    my ($got) = admin_request($PORT2, 'GET', $uri);
    is($got, 200, "admin GET $uri: 200, and no write counted");
}

($st) = http_request($PORT2, 'POST', '/admin/events', {}, '[]');
is($st, 401, 'admin without a token');
count('loyalty_admin_denied_total{reason="token"}');

($st) = http_request($PORT2, 'POST', '/admin/events', admin_auth('read'),
                     '[]');
is($st, 403, 'admin write with a read token');
count('loyalty_admin_denied_total{reason="scope"}');

ok(keys %pids == 2, 'the requests went to both workers')
    or diag(explain(\%pids));

my ($m1, $text1) = scrape($h);
is_deeply(moved($m0, $m1), \%want,
          'the counters moved by exactly what the requests did')
    or diag($text1);

# promtool, on the live answer
my $dir = test_dir();
write_file("$dir/metrics.txt", $text1);
my ($rc, $out) = run_out('sh', '-c',
                         "promtool check metrics < $dir/metrics.txt 2>&1");
is($rc, 0, 'promtool check metrics')
    or diag("$out\n(promtool is in Debian's prometheus: make deps)\n$text1");
is($out, '', 'promtool: no lint problem');

# the gauges, against what LMDB's own tools say
my $store = $h->{store};
my $fields = 'Map size|Page size|Max readers|Number of pages used';
my %env = `mdb_stat -e $store` =~ /^\s*($fields): (\d+)/mg;
my ($members) = `mdb_stat -s members $store` =~ /Entries: (\d+)/;
my ($due) = `mdb_stat -s due $store` =~ /Entries: (\d+)/;

is($m1->{loyalty_store_up}, 1, 'the store is up');
is($m1->{loyalty_store_map_size_bytes}, $env{'Map size'}, 'map size');
is($m1->{loyalty_store_map_used_bytes},
   $env{'Number of pages used'} * $env{'Page size'}, 'map used');
is($m1->{loyalty_store_readers_max}, $env{'Max readers'}, 'reader slots');
is($m1->{loyalty_store_readers}, 0, 'no read transaction open between '
   . 'requests');
is($m1->{loyalty_store_members}, $members, 'members');
is($members, 5, 'three imported, a signup and a PUT');
is($m1->{loyalty_cadence_due_touches}, $due, 'the due queue');
ok($m1->{loyalty_store_last_write_age_seconds} <= 5,
   'the last write was just now');
is($m1->{loyalty_click_zone_codes}, 3,
   'the click zone counts the known codes clicked');
ok($m1->{loyalty_click_zone_codes_max} > 1000, 'and has room for more');
is($m1->{loyalty_click_zone_lost_total}, 0, 'no click lost');

# where the operator did not allow it, nginx refuses it
($st) = http_request($PORT2, 'GET', '/metrics-elsewhere');
is($st, 403, 'deny all keeps the metrics in');

# the method
my ($s405, $h405) = http_request($PORT2, 'POST', '/metrics', {}, 'x');
is($s405, 405, 'POST: 405');
is($h405->{allow}, 'GET, HEAD', 'with Allow');
my ($s_head, undef, $b_head) = http_request($PORT2, 'HEAD', '/metrics');
is("$s_head [$b_head]", '200 []', 'HEAD');

# a worker killed: its counts stay, its slot is not counted as a process
my @workers = keys %pids;
kill 'KILL', $workers[0];
my $deadline = time + 5;
my $m2;
while (time < $deadline) {
    ($m2) = eval { scrape($h) };
    last if $m2 && $m2->{loyalty_metrics_processes} == 2
            && !kill 0, $workers[0];
    sleep 0.1;
}
is_deeply(moved($m1, $m2), {}, 'a killed worker takes no count with it');
is($m2->{loyalty_metrics_processes}, 2, 'two workers count again');

# a reload: the zone is kept, counts go on
ok(reload_nginx($h), 'reload');
my $m3;
$deadline = time + 5;
while (time < $deadline) {
    ($m3) = scrape($h);
    last if $m3->{loyalty_metrics_processes} == 2;
    sleep 0.1;
}
is_deeply(moved($m1, $m3), {}, 'the counts go on across a reload');
is($m3->{loyalty_metrics_processes}, 2, 'the old workers gave their slots');
page('/');
my ($m4) = scrape($h);
is_deeply(moved($m3, $m4),
          { 'loyalty_identity_requests_total{outcome="none"}' => 1 },
          'and the new workers count on');

like(error_log_text($h), qr/exited on signal 9/, 'the killed worker');
my @bad = grep { /\[alert\]|\[emerg\]|exited on signal/
                && !/process $workers[0] exited on signal 9$/ }
          split /\n/, error_log_text($h);
ok(!@bad, 'no other crash, no alert') or diag(join "\n", @bad);
is(stop_nginx($h), 'QUIT', 'nginx stops gracefully');

run_blocks(http_config => "loyalty_store %%STORE%%;\n");

done_testing();

__DATA__

=== loyalty_metrics takes no argument
--- config
location /metrics { loyalty_metrics on; }
--- config_error
invalid number of arguments in "loyalty_metrics" directive

=== loyalty_metrics belongs in a location
--- http_config
loyalty_store %%STORE%%;
loyalty_metrics;
--- config_error
"loyalty_metrics" directive is not allowed here

=== loyalty_metrics twice in a location
--- config
location /metrics { loyalty_metrics; loyalty_metrics; }
--- config_error
"loyalty_metrics" directive is duplicate

=== loyalty_metrics beside another content handler
--- config
location /admin/ { %%ADMIN%% loyalty_metrics; }
--- config_error
"loyalty_metrics" cannot share a location with another content handler

=== one worker
--- config
location /metrics { loyalty_metrics; }
--- request
GET /metrics
--- error_code: 200
--- response_body_like
^# HELP loyalty_identity_requests_total .*\nloyalty_metrics_processes 1\n$

=== without a store: counters, no store gauges
--- http_config
--- config
location /metrics { loyalty_metrics; }
location / { return 200 "$loyalty_identity\n"; }
--- request
GET /metrics
--- error_code: 200
--- response_body_like
loyalty_lua_hook_calls_total\{hook="price"\} 0\n(?!.*loyalty_store_up)
