# The dashboard at ADMIN/dashboard: its files served before any token is
# asked for (they hold no data), only those, with their types and
# headers; then, in headless Chromium (t/dashboard/check.js, playwright-
# core), a store seeded with clicks, signups by code, orders, a refund and
# cadence touches acknowledged by two members of staff: the page loads
# without a console error, asks for a token, shows what the statistics
# API says to it (every KPI, row and stage), in English and in Chinese by
# the browser's language and by the switch, forgets a refused token; the
# screenshots are kept in build/dashboard-test/.  loyalty_admin_dashboard
# off, and its configuration errors.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $DASH = "$ROOT/build/dashboard";
my $OUT = "$ROOT/build/dashboard-test";
my $JSON = JSON::PP->new->canonical;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
         . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';

ok(-f "$DASH/index.html" && -f "$DASH/echarts.min.js",
   'the dashboard is built (make dashboard)') or Test::More::BAIL_OUT('make dashboard');

my $HTTP = <<"END";
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1s;
loyalty_admin_dashboard $DASH;
END

my $CONFIG = <<'END';
location /admin/ { %%ADMIN%% }
location /s/ { loyalty_share; }
location / { return 200 "ok\n"; }
END

my $STORE = example_store(qw(tiers rules)) . <<'END';
[members]
{"id":"alice","tier":"basic","stage":"member"}
{"id":"bob","tier":"basic","stage":"fan","referrer":"alice"}
{"id":"erin","tier":"basic","stage":"fan"}
[codes]
{"code":"BOB-SHARE","vanity":true,"member":"bob","campaign":"spring","target":"/p/b"}
{"code":"ERIN-1","vanity":true,"member":"erin","campaign":"summer","target":"/p/e"}
END

sub get {
    my ($h, $uri, $hdr) = @_;
    return http_request($h, 'GET', $uri, $hdr // {});
}

sub day {
    return POSIX::strftime('%Y-%m-%d', gmtime(time - 86400 * (shift // 0)));
}

sub iso {
    return POSIX::strftime('%Y-%m-%dT%H:%M:%SZ',
                           gmtime(time - 86400 * (shift // 0)));
}


my $h = start_nginx(http_config => $HTTP, config => $CONFIG, store => $STORE);

# the files, without a token

{
    my ($status, $hdr, $body) = get($h, '/admin/dashboard');
    is($status, 200, 'ADMIN/dashboard without a token');
    is($body, slurp("$DASH/index.html"), 'is the page');
    is($hdr->{'content-type'}, 'text/html; charset=utf-8', 'as HTML');
    like($hdr->{'content-security-policy'},
         qr/^default-src 'none'; script-src 'self';.*connect-src 'self';/,
         'nothing from elsewhere');
    like($hdr->{'content-security-policy'}, qr/frame-ancestors 'none'$/,
         'in no frame');
    is(join('|', map { $hdr->{$_} // '-' }
                 qw(x-frame-options referrer-policy cache-control
                    x-content-type-options)),
       'DENY|no-referrer|no-cache|nosniff', 'and the other headers');
    unlike($body, qr/https?:/, 'the page loads nothing by address');

    ($status, undef, $body) = get($h, '/admin/dashboard/');
    is($status, 200, 'ADMIN/dashboard/ is the page too');

    ($status, $hdr, $body) = get($h, '/admin/dashboard/echarts.min.js');
    is("$status $hdr->{'content-type'}",
       '200 text/javascript; charset=utf-8', 'ECharts, from the folder');
    is(length $body, -s "$DASH/echarts.min.js", 'all of it');
    ok(!exists $hdr->{'content-security-policy'}, 'a script has no CSP');

    ($status, $hdr) = get($h, '/admin/dashboard/app.css',
                          { 'If-None-Match' => '"x"' });
    is($status, 200, 'app.css');
    my $etag = $hdr->{etag};
    ($status) = get($h, '/admin/dashboard/app.css',
                    { 'If-None-Match' => $etag });
    is($status, 304, 'revalidated by its ETag');

    for (['/admin/dashboard/nope.js', 404, 'a file not there'],
         ['/admin/dashboard/echarts-LICENSE', 404, 'a type not served'],
         ['/admin/dashboard/..%2Fapp.js', 401,
          'an escaped slash, /admin/app.js: the API\'s'],
         ['/admin/dashboard/.hidden.js', 404, 'a dot file'],
         ['/admin/dashboard/a/b.js', 404, 'a subfolder'],
         ['/admin/dashboard/' . ('a' x 70) . '.js', 404, 'a long name'])
    {
        my ($uri, $want, $name) = @$_;
        ($status) = get($h, $uri);
        is($status, $want, "$name: $want");
    }

    ($status, $hdr) = http_request($h, 'POST', '/admin/dashboard', {}, 'x');
    is("$status $hdr->{allow}", '405 GET, HEAD', 'POST: 405');

    # the API itself still wants its token
    ($status) = get($h, '/admin/stats?by=day');
    is($status, 401, 'ADMIN/stats without a token: 401');
    ($status) = get($h, '/admin/dashboards');
    is($status, 401, 'ADMIN/dashboards is the API\'s: 401');
    ($status) = get($h, '/admin/members/dashboard', admin_auth('read'));
    is($status, 404, 'a member named dashboard is the API\'s');
}

# the seed: clicks today (3 people, a bot) and yesterday's events

http_request($h, 'GET', '/s/BOB-SHARE', { 'User-Agent' => $_ })
    for "$UA A", "$UA A", "$UA B", 'facebookexternalhit/1.1';
http_request($h, 'GET', '/s/ERIN-1', { 'User-Agent' => "$UA C" });

my $span = 'from=' . day(29) . '&to=' . day(0);
my ($clicks, $deadline) = (0, time + 6);
while (time < $deadline) {
    my (undef, undef, $body) = get($h, "/admin/stats?by=day&$span",
                                   admin_auth('read'));
    $clicks = eval { $JSON->decode($body)->{totals}{clicks} } // 0;
    last if $clicks == 5;
    sleep 0.2;
}
is($clicks, 5, 'the clicks are flushed into the day\'s counters');

my @events = (
    { type => 'signup', member => 'carol', ref_code => 'BOB-SHARE',
      at => iso(1) },
    { type => 'order', member => 'carol', order_id => 'o1',
      amount => 12800, at => iso(1) },
    { type => 'order', member => 'carol', order_id => 'o2',
      amount => 60000, at => iso(0.5) },
    { type => 'refund', refund_id => 'r1', order_id => 'o1',
      amount => 2800, at => iso(0.4) },
    { type => 'signup', member => 'dan', ref_code => 'ERIN-1',
      at => iso(2) },
    { type => 'order', member => 'dan', order_id => 'o3',
      amount => 55000, at => iso(1) },
    { type => 'signup', member => 'fay', at => iso(3) },
);
my ($status, undef, $body) =
    admin_request($h, 'POST', '/admin/events', $JSON->encode(\@events));
is($status, 200, 'the events') or diag($body);

# two touches of the call7 cadence (orders over 500), one done by li,
# one skipped by wang
{
    my $tmp = test_dir();
    write_file("$tmp/orders.json", $JSON->encode([
        { type => 'order', member => 'erin', order_id => 'c1',
          amount => 60000, at => iso(3) },
        { type => 'order', member => 'alice', order_id => 'c2',
          amount => 70000, at => iso(3) } ]));
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, '--lua',
                                      "$ROOT/t/cadence/cadences.lua",
                                      'apply', "$tmp/orders.json");
    is($rc, 0, 'cadence touches scheduled') or diag($err);
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'ack', 'call7:erin:c1',
                                   'done', '--by', 'li');
    is($rc, 0, 'li called erin') or diag($err);
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'ack',
                                   'call7:alice:c2', 'skipped', '--by',
                                   'wang');
    is($rc, 0, 'wang skipped alice') or diag($err);
}

# the browser

make_path($OUT);
unlink glob "$OUT/*.png";

my $t0 = time;
my ($rc, $out) = run_out('node', "$ROOT/t/dashboard/check.js",
                         "http://127.0.0.1:$h->{port}/admin/dashboard",
                         $ADMIN_READ_TOKEN, $OUT);
my $doc = eval { $JSON->decode($out) } // { checks => [[
    'the browser script answered', 0, "exit $rc: $out" ]] };
diag(sprintf 'the browser took %.1f s', time - $t0);

for (@{$doc->{checks}}) {
    my ($name, $ok, $why) = @$_;
    ok($ok, "browser: $name") or diag($why);
}
cmp_ok(scalar @{$doc->{checks}}, '>', 100, 'the browser checked it all');

# what the page was compared with is what the seed made
my $seen = $doc->{seen} // {};
is(join(' ', map { $seen->{days}{totals}{$_} // '-' }
             qw(clicks unique_clicks bot_clicks signups first_orders orders
                revenue refunds)),
   '5 3 1 2 2 3 125000 1', 'the seeded totals: 5 clicks, 2 signups by '
   . 'code, 3 orders less a refund');
is(join(',', map { "$_->{key}=$_->{revenue}" }
             @{$seen->{codes}{rows} || []}),
   'BOB-SHARE=70000,ERIN-1=55000', 'the codes, by revenue');
is(join(',', map { "$_->{key}=$_->{signups}" }
             @{$seen->{campaigns}{rows} || []}),
   'spring=1,summer=1', 'the campaigns');
is($JSON->encode($seen->{cadence}{staff} // {}),
   '{"li":{"done":1,"failed":0,"skipped":0},'
   . '"wang":{"done":0,"failed":0,"skipped":1}}', 'the staff\'s follow-ups');
is($JSON->encode($seen->{funnel}{stages} // {}),
   '{"customer":0,"fan":2,"member":4,"partner":0,"prospect":0}',
   'the funnel: bob and fay fans; alice, erin, carol and dan members by '
   . 'an order over 500');
ok(-s "$OUT/dashboard.png" && -s "$OUT/dashboard-zh.png",
   "screenshots in $OUT");

stop_checked($h, 'the dashboard');

run_blocks(http_config => "loyalty_store %%STORE%%;\n"
                          . "loyalty_admin_dashboard $DASH;\n");

done_testing();

__DATA__

=== loyalty_admin_dashboard off: the API's own 401
--- config
location /admin/ { %%ADMIN%% loyalty_admin_dashboard off; }
--- request
GET /admin/dashboard
--- error_code: 401

=== a folder without the page: 404, logged
--- config
location /admin/ { %%ADMIN%% loyalty_admin_dashboard %%PREFIX%%/html; }
--- request
GET /admin/dashboard
--- error_code: 404
--- error_log_like
loyalty_admin_dashboard: cannot open ".*/html/index.html"

=== a regular expression location: no dashboard
--- config
location ~ ^/admin/ { %%ADMIN%% }
--- request
GET /admin/dashboard
--- error_code: 401

=== loyalty_admin_dashboard twice
--- config
location /admin/ { loyalty_admin_dashboard off; loyalty_admin_dashboard off; }
--- config_error
"loyalty_admin_dashboard" directive is duplicate

=== loyalty_admin_dashboard without a folder
--- config
location /admin/ { loyalty_admin_dashboard ""; }
--- config_error
"loyalty_admin_dashboard" needs a folder, or "off"

=== loyalty_admin_dashboard takes one argument
--- config
location /admin/ { loyalty_admin_dashboard a b; }
--- config_error
invalid number of arguments in "loyalty_admin_dashboard" directive
