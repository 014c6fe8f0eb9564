# Short links: loyalty_share answers 302 to a code's target with the
# attribution cookie, or to loyalty_share_fallback for a code that cannot
# be followed; loyalty_share_hosts checked again at redirect time; bots
# followed without a cookie; max_clicks; the configuration checks.

use lib 't/lib';
use Loyalty::Harness;

use Time::HiRes qw(sleep);

my $HTTP = <<'END';
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_share_hosts shop.example.com;
END

my $CONFIG = <<'END';
large_client_header_buffers 4 16k;

location /s/ {
    loyalty_share;
    add_header X-Status $loyalty_ref_status always;
    add_header X-Code $loyalty_ref_code always;
    add_header X-Referrer $loyalty_referrer always;
}

location / {
    return 200 "home [$loyalty_ref_status]\n";
}
END

my $BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
              . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';

my $STORE = <<'END';
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"carol","tier":"gold","stage":"partner"}
{"id":"alice","tier":"gold","stage":"member","referrer":"carol"}
{"id":"bob","tier":"gold","stage":"fan"}
[codes --hosts shop.example.com,gone.example.com,a.shop.example.com,shop.example.com.evil.net]
{"code":"ALICE1","member":"alice","campaign":"spring","target":"/p/sofa"}
{"code":"BOB1","vanity":true,"member":"bob","target":"/p/bob?from=share&x=1"}
{"code":"a-b_c","vanity":true,"member":"bob","target":"/p/abc"}
{"code":"SHOP1","vanity":true,"member":"alice","target":"https://shop.example.com/p/1?x=1"}
{"code":"SHOP2","vanity":true,"member":"alice","target":"https://SHOP.Example.com:8443/p/2"}
{"code":"GONEHOST","member":"alice","target":"https://gone.example.com/p"}
{"code":"SUBHOST","member":"alice","target":"https://a.shop.example.com/p"}
{"code":"LOOKALIKE","member":"alice","target":"http://shop.example.com.evil.net/p"}
{"code":"NOTGT","vanity":true,"member":"bob"}
{"code":"OLD1","vanity":true,"member":"alice","target":"/p/old","expires_at":"2020-01-01T00:00:00Z"}
{"code":"GONE1","vanity":true,"member":"alice","target":"/p/gone","revoked":true}
{"code":"LATER1","member":"alice","target":"/p/later","expires_at":"2099-01-01T00:00:00Z"}
{"code":"MAX2","vanity":true,"member":"alice","target":"/p/max","max_clicks":2}
END

my @BOTS = (
    'curl/8.5.0',
    'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
    'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
    'Twitterbot/1.0',
    'WhatsApp/2.23.20.0 A',
    'TelegramBot (like TwitterBot)',
    'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)',
    'LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'python-requests/2.31.0',
    'Mozilla/5.0 (compatible; GOOGLEBOT/2.1)',
);

# in-app browsers and phones whose names look a little like bots
my @PEOPLE = (
    $BROWSER,
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]',
    'Mozilla/5.0 (Linux; Android 10; Cubot X30) AppleWebKit/537.36 Chrome/119.0 Mobile Safari/537.36',
    'Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.43',
);


# one request: (status, Location or "", [Set-Cookie...], X-Status or "")
sub click {
    my ($h, $method, $uri, $headers) = @_;
    my ($status, $hdr, $body) = http_request($h, $method, $uri,
                                             $headers // { 'User-Agent' => $BROWSER });
    return ($status // 'none', $hdr->{location} // '',
            $hdr->{'set-cookie'} || [], $hdr->{'x-status'} // '', $hdr);
}

sub no_trouble {
    my ($h, $name) = @_;
    unlike(error_log_text($h),
           qr/exited on signal|\[alert\]|\[emerg\]|\[crit\]/,
           "$name: no crash, alert or emerg");
}


# the attribution cookie: exact attributes, and a MAC that verifies

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $site = "http://localhost:$h->{port}";

    my $t0 = time;
    my ($status, $loc, $cookies, $st, $hdr) = click($h, 'GET', '/s/ALICE1');
    my $t1 = time;

    is($status, 302, 'cookie: 302');
    is($loc, "$site/p/sofa", 'cookie: Location is the target, made absolute');
    is($st, 'new', 'cookie: status new');
    is($hdr->{'cache-control'}, 'private, no-store', 'cookie: Cache-Control');
    is(scalar @$cookies, 1, 'cookie: exactly one Set-Cookie');

    my ($value) = ($cookies->[0] // '')
        =~ /^loyalty_ref=([^;]+); Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/;
    ok(defined $value, 'cookie: name and attributes exactly')
        or diag($cookies->[0]);

    my ($code, $at, $kid, $mac) = split /~/, $value // '', -1;
    is($code, 'ALICE1', 'cookie: code');
    ok(defined $at && "$at~$kid~$mac" !~ /alice/i,
       'cookie: the referrer, the code\'s member, is not in it');
    is($kid, 'k1', 'cookie: signed with the first key');
    ok(defined $at && $at =~ /^\d+$/ && $at >= $t0 && $at <= $t1,
       'cookie: click time is now') or diag("at $at, $t0..$t1");
    is($value, ref_cookie('ALICE1', 'alice', $at // 0),
       'cookie: the MAC verifies against the contract');

    # the cookie is honoured on the next request: kept, not set again
    my ($s2, undef, $c2, $st2, $h2) = click($h, 'GET', '/s/ALICE1',
        { 'User-Agent' => $BROWSER, Cookie => "loyalty_ref=$value" });
    is("$s2 $st2", '302 kept', 'cookie: the same code again is kept');
    is(scalar @$c2, 0, 'cookie: not set again');

    # first touch (the default): another code is followed but not taken
    my ($s3, $l3, $c3, $st3, $h3) = click($h, 'GET', '/s/BOB1',
        { 'User-Agent' => $BROWSER, Cookie => "loyalty_ref=$value" });
    is("$s3 $l3", "302 $site/p/bob?from=share&x=1",
       'first touch: another code still goes to its target');
    is($st3, 'kept', 'first touch: attribution kept');
    is($h3->{'x-code'}, 'ALICE1', 'first touch: code still ALICE1');
    is(scalar @$c3, 0, 'first touch: no Set-Cookie');

    # a forged cookie counts for nothing: the click attributes anew
    (my $forged = $value // '') =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    my (undef, undef, $c4, $st4) = click($h, 'GET', '/s/BOB1',
        { 'User-Agent' => $BROWSER, Cookie => "loyalty_ref=$forged" });
    is($st4, 'new', 'forged cookie: ignored, the click is new');
    like($c4->[0] // '', qr/^loyalty_ref=BOB1~\d+~k1~/,
         'forged cookie: replaced by a genuine one');

    # the code's member clicking their own link
    my ($s5, $l5, $c5, $st5) = click($h, 'GET', '/s/ALICE1',
        { 'User-Agent' => $BROWSER,
          Cookie => 'loyalty_member=' . sign_member('alice', '1h') });
    is("$s5 $l5 $st5", "302 $site/p/sofa self",
       'self: followed to the target, status self');
    is(scalar @$c5, 0, 'self: no Set-Cookie');

    # a logged-in member clicking someone else's link
    my (undef, $l6, $c6, $st6, $h6) = click($h, 'GET', '/s/ALICE1',
        { 'User-Agent' => $BROWSER,
          Cookie => 'loyalty_member=' . sign_member('bob', '1h') });
    is("$l6 $st6", "$site/p/sofa new", 'member: attributed to alice');
    is($h6->{'x-referrer'}, 'alice', 'member: $loyalty_referrer');
    like($c6->[0] // '', qr/^loyalty_ref=ALICE1~\d+~k1~[A-Za-z0-9_-]{43};/,
         'member: cookie set');

    stop_nginx($h);
    no_trouble($h, 'cookie');
}


# last touch: a second code replaces the first and sets a new cookie

{
    my $h = start_nginx(http_config => $HTTP . "loyalty_ref_model last;\n",
                        config => $CONFIG, store => $STORE);
    my $site = "http://localhost:$h->{port}";

    my $old = ref_cookie('ALICE1', 'alice', time - 3600);
    my ($s, $l, $c, $st) = click($h, 'GET', '/s/BOB1',
        { 'User-Agent' => $BROWSER, Cookie => "loyalty_ref=$old" });
    is("$s $l $st", "302 $site/p/bob?from=share&x=1 replaced",
       'last touch: replaced, followed');
    like($c->[0] // '', qr/^loyalty_ref=BOB1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/,
         'last touch: the new cookie');

    stop_nginx($h);
    no_trouble($h, 'last touch');
}


# bots and link previews are followed to the target, never given a cookie;
# people, including in-app browsers, are

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $site = "http://localhost:$h->{port}";

    for my $ua (@BOTS) {
        my ($s, $l, $c, $st) = click($h, 'GET', '/s/ALICE1',
                                     { 'User-Agent' => $ua });
        is("$s $l $st", "302 $site/p/sofa bot", "bot \"$ua\": followed");
        is(scalar @$c, 0, "bot \"$ua\": no cookie");
    }

    for my $ua (@PEOPLE) {
        my ($s, $l, $c, $st) = click($h, 'GET', '/s/ALICE1',
                                     { 'User-Agent' => $ua });
        is("$s $l $st", "302 $site/p/sofa new", "person \"$ua\": followed");
        is(scalar @$c, 1, "person \"$ua\": cookie set");
    }

    # HEAD, no User-Agent, an empty one
    my ($s, $l, $c, $st, $hdr) = click($h, 'HEAD', '/s/ALICE1');
    is("$s $l $st", "302 $site/p/sofa bot", 'HEAD: followed as a bot');
    is(scalar @$c, 0, 'HEAD: no cookie');
    is($hdr->{'cache-control'}, 'private, no-store', 'HEAD: Cache-Control');

    ($s, $l, $c, $st) = click($h, 'GET', '/s/ALICE1', {});
    is("$s $l $st", "302 $site/p/sofa bot", 'no User-Agent: followed as a bot');
    is(scalar @$c, 0, 'no User-Agent: no cookie');

    ($s, $l, $c, $st) = click($h, 'GET', '/s/ALICE1', { 'User-Agent' => '' });
    is("$s $l $st", "302 $site/p/sofa bot", 'empty User-Agent: a bot');
    is(scalar @$c, 0, 'empty User-Agent: no cookie');

    # a bot must not be shown where a dead code pointed either
    for my $code (qw(GONE1 OLD1)) {
        for my $how (['HEAD', undef], ['GET', { 'User-Agent' => 'curl/8.5.0' }],
                     ['GET', {}])
        {
            my $what = $how->[0] . (defined $how->[1]
                       ? ' ' . ($how->[1]{'User-Agent'} // 'no User-Agent')
                       : '');
            ($s, $l, $c) = click($h, $how->[0], "/s/$code",
                                 $how->[1] // { 'User-Agent' => $BROWSER });
            is("$s $l", "302 $site/",
               "bot ($what) on the dead code $code: the fallback, not its target");
            is(scalar @$c, 0, "bot ($what) on $code: no cookie");
        }
    }

    stop_nginx($h);
    no_trouble($h, 'bots');
}


# hostile codes never lead off the site, nor set a cookie

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $port = $h->{port};

    for my $uri ('/s/%2F%2Fevil.com', '/s/https:%2F%2Fevil.com',
                 '/s/%5C%5Cevil.com', '/s/%2F%5Cevil.com',
                 '/s/http%3A%2F%2Fevil.com%2F', '/s/@evil.com',
                 '/s/ALICE1%0D%0ALocation:%20http:%2F%2Fevil.com',
                 '/s/javascript:alert(1)', '/s/..%2F..%2Fevil.com',
                 '/s/%00evil', '/s/ALICE1%20', '/s/%09ALICE1',
                 '/s/' . ('%41' x 40), '/s/ALICE1.evil.com',
                 '/s/evil.com?ref=ALICE1', '/s/?ref=//evil.com')
    {
        my ($s, $l, $c, undef, $hdr) = click($h, 'GET', $uri);
        # the fallback, or nginx refuses the request itself
        ok($l eq "http://localhost:$port/" && $s == 302
           || $l eq '' && $s == 400,
           "hostile $uri: the fallback or 400") or diag("$s $l");
        is(scalar @$c, 0, "hostile $uri: no cookie");
        ok(!grep({ /evil|[\r\n]/ } map { ref $_ ? @$_ : $_ } values %$hdr),
           "hostile $uri: nothing of it in the headers");
    }

    stop_nginx($h);
    no_trouble($h, 'hostile');
}


# max_clicks: attributions stop after that many, the link keeps working

{
    my $h = start_nginx(http_config => $HTTP . "loyalty_click_zone share 1m;\n",
                        config => $CONFIG, store => $STORE);
    my $site = "http://localhost:$h->{port}";
    my @got;

    for my $n (1 .. 4) {
        my ($s, $l, $c, $st) = click($h, 'GET', '/s/MAX2',
                                     { 'User-Agent' => "$BROWSER visitor-$n" });
        push @got, "$s $l $st " . scalar @$c;
    }

    is_deeply(\@got, ["302 $site/p/max new 1", "302 $site/p/max new 1",
                      "302 $site/p/max exhausted 0",
                      "302 $site/p/max exhausted 0"],
              'max_clicks 2: two attributions, then exhausted, still followed');

    # a visitor already attributed to the code keeps it
    my $mine = ref_cookie('MAX2', 'alice', time - 60);
    my ($s, $l, $c, $st) = click($h, 'GET', '/s/MAX2',
        { 'User-Agent' => $BROWSER, Cookie => "loyalty_ref=$mine" });
    is("$s $l $st " . scalar @$c, "302 $site/p/max kept 0",
       'max_clicks: an attributed visitor keeps the attribution');

    like(error_log_text($h),
         qr/loyalty: click on exhausted share code "MAX2"/,
         'max_clicks: exhausted clicks logged');

    stop_nginx($h);
    no_trouble($h, 'max_clicks');
}


run_blocks(http_config => $HTTP, config => $CONFIG, store => $STORE,
           more_headers => "User-Agent: $BROWSER\n");
# issue 18: $loyalty_ref_miss keys a limit_req zone that slows the walk
# of the code space, and only it: hits are never limited

{
    my $h = start_nginx(
        http_config => $HTTP . <<'END',
map $loyalty_ref_miss $loyalty_miss_addr {
    ""      "";
    default $binary_remote_addr;
}
limit_req_zone $loyalty_miss_addr zone=loyalty_misses:1m rate=1r/m;
END
        config => <<'END',
location /s/ {
    loyalty_share;
    limit_req zone=loyalty_misses burst=3 nodelay;
    limit_req_status 429;
    add_header X-Status $loyalty_ref_status always;
    add_header X-Miss "[$loyalty_ref_miss]" always;
}

location / {
    # "return" would answer before limit_req: try_files comes after it
    limit_req zone=loyalty_misses burst=3 nodelay;
    limit_req_status 429;
    add_header X-Status $loyalty_ref_status always;
    add_header X-Miss "[$loyalty_ref_miss]" always;
    try_files /nothing-here =404;
}
END
        store => $STORE);
    my $miss = sub {
        my ($s, undef, undef, $st, $hdr) = click($h, 'GET', $_[0]);
        return "$s $st " . ($hdr->{'x-miss'} // '');
    };

    is($miss->('/s/ALICE1'), '302 new []', 'limit: a hit is no miss');
    is_deeply([map { $miss->("/s/NOPE$_") } 10 .. 13],
              [('302 invalid [1]') x 4],
              'limit: 4 misses pass (1 and a burst of 3)');
    like($miss->('/s/NOPE14'), qr/^429 /, 'limit: the 5th miss: 429');
    like($miss->('/s/GONE1'), qr/^429 /, 'limit: a revoked code is a miss');
    like($miss->('/?ref=NOPE15'), qr/^429 /,
         'limit: a miss by argument too');
    is_deeply([map { $miss->('/s/ALICE1') } 1 .. 10], [('302 new []') x 10],
              'limit: hits from the same address are never limited');
    is($miss->('/?ref=ALICE1'), '404 new []',
       'limit: a hit by argument is not limited');
    is($miss->('/'), '404 none []', 'limit: no code, no miss, not limited');

    stop_nginx($h);
    like(error_log_text($h), qr/limiting requests, excess: \d+\.\d+ by zone "loyalty_misses"/,
         'limit: nginx logs the limited misses');
    no_trouble($h, 'limit');
}

done_testing();

__DATA__

=== TEST 1: a path target: 302, absolute Location, cookie, no-store
--- request
GET /s/ALICE1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
Cache-Control: private, no-store
X-Status: new
X-Code: ALICE1
X-Referrer: alice
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax$
--- no_error_log
[warn]
[error]


=== TEST 2: a target with a query string is kept as it is
--- request
GET /s/BOB1?utm_source=x
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/bob?from=share&x=1
X-Status: new


=== TEST 3: lower and mixed case codes
--- request
GET /s/aLiCe1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
X-Code: ALICE1
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~


=== TEST 4: a percent-encoded code
--- request
GET /s/%41lic%65%31
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
X-Code: ALICE1


=== TEST 5: a code with "-" and "_", stored upper-case
--- request
GET /s/A-B_C
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/abc
X-Code: A-B_C
X-Referrer: bob


=== TEST 6: the code is the last segment of the path
--- request
GET /s/campaign/spring/alice1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
X-Code: ALICE1


=== TEST 7: an expiry ahead does not stop the code
--- request
GET /s/LATER1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/later
X-Status: new


=== TEST 8: an off-site target on loyalty_share_hosts
--- request
GET /s/SHOP1
--- error_code: 302
--- response_headers
Location: https://shop.example.com/p/1?x=1
Cache-Control: private, no-store
X-Status: new
--- response_headers_like
Set-Cookie: ^loyalty_ref=SHOP1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=2592000;
--- no_error_log
[warn]


=== TEST 9: hosts compare without regard to case, a port is no matter
--- request
GET /s/SHOP2
--- error_code: 302
--- response_headers
Location: https://SHOP.Example.com:8443/p/2


=== TEST 10: a host allowed at import but no longer in the configuration
--- request
GET /s/GONEHOST
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
Cache-Control: private, no-store
--- error_log
[warn]
loyalty: share code "GONEHOST" has a target off this site and not on loyalty_share_hosts, redirected to the fallback


=== TEST 11: a subdomain of an allowed host is another host
--- request
GET /s/SUBHOST
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
--- error_log
share code "SUBHOST" has a target off this site


=== TEST 12: a host that merely starts with an allowed one
--- request
GET /s/LOOKALIKE
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
--- error_log
share code "LOOKALIKE" has a target off this site


=== TEST 13: no loyalty_share_hosts: every off-site target falls back
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
--- request
GET /s/SHOP1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
--- error_log
share code "SHOP1" has a target off this site


=== TEST 14: loyalty_share_hosts in the location itself
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
--- config
location /s/ {
    loyalty_share;
    loyalty_share_hosts www.example.org gone.example.com;
}
--- request
GET /s/GONEHOST
--- error_code: 302
--- response_headers
Location: https://gone.example.com/p
--- no_error_log
[warn]


=== TEST 15: an unknown code: the fallback, no cookie
--- request
GET /s/NOPE99
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
Cache-Control: private, no-store
X-Status: invalid
!Set-Cookie
--- error_log
loyalty: unknown share code "NOPE99"


=== TEST 16: a malformed code with an escaped "<"
--- request
GET /s/AB%3Ccd
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: invalid
!Set-Cookie
--- error_log
loyalty: malformed share code (5 bytes) ignored


=== TEST 17: a malformed code with a dot
--- request
GET /s/a.b
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: invalid
!Set-Cookie


=== TEST 18: a code too short
--- request
GET /s/AB
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
!Set-Cookie


=== TEST 19: a code of 33 characters is too long
--- request
GET /s/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
!Set-Cookie
--- error_log
loyalty: malformed share code (33 bytes) ignored


=== TEST 20: a code of 10 KB
--- request eval
"GET /s/" . ("A" x 10240)
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: invalid
!Set-Cookie
--- error_log
loyalty: malformed share code (10240 bytes) ignored


=== TEST 21: an empty code
--- request
GET /s/
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: invalid
!Set-Cookie


=== TEST 22: a trailing slash leaves an empty last segment
--- request
GET /s/ALICE1/
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
!Set-Cookie


=== TEST 23: a revoked code: the fallback, no cookie
--- request
GET /s/GONE1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
Cache-Control: private, no-store
X-Status: revoked
!Set-Cookie
--- error_log
loyalty: click on revoked share code "GONE1"


=== TEST 24: an expired code: the fallback, no cookie
--- request
GET /s/OLD1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: expired
!Set-Cookie
--- error_log
loyalty: click on expired share code "OLD1"


=== TEST 25: a code without a target attributes and goes to the fallback
--- request
GET /s/NOTGT
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/
X-Status: new
X-Referrer: bob
--- response_headers_like
Set-Cookie: ^loyalty_ref=NOTGT~\d+~k1~


=== TEST 26: a custom fallback path, inherited from the server
--- config
loyalty_share_fallback /welcome?from=share;
location /s/ {
    loyalty_share;
}
--- request
GET /s/NOPE99
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/welcome?from=share
!Set-Cookie


=== TEST 27: a custom fallback URL for a revoked code
--- config
location /s/ {
    loyalty_share;
    loyalty_share_fallback https://www.example.com/sorry;
}
--- request
GET /s/GONE1
--- error_code: 302
--- response_headers
Location: https://www.example.com/sorry
!Set-Cookie


=== TEST 28: the fallback for a host no longer allowed is the custom one
--- config
location /s/ {
    loyalty_share;
    loyalty_share_fallback /home;
}
--- request
GET /s/GONEHOST
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/home
--- error_log
share code "GONEHOST" has a target off this site


=== TEST 29: POST is not allowed
--- config
location /s/ {
    loyalty_share;
}
--- request
POST /s/ALICE1
--- request_body
a=b
--- error_code: 405
--- response_headers
!Location
!Set-Cookie


=== TEST 30: PUT is not allowed
--- config
location /s/ {
    loyalty_share;
}
--- request
PUT /s/ALICE1
--- error_code: 405
--- response_headers
!Location
!Set-Cookie


=== TEST 31: HEAD is followed, without a cookie
--- request
HEAD /s/ALICE1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
X-Status: bot
!Set-Cookie


=== TEST 32: loyalty_ref_cookie and loyalty_ref_window shape the cookie
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_cookie ref_c;
loyalty_ref_window 7d;
--- request
GET /s/ALICE1
--- error_code: 302
--- response_headers_like
Set-Cookie: ^ref_c=ALICE1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax$


=== TEST 33: max_clicks without a click zone cannot be kept: it holds firm
--- request
GET /s/MAX2
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/max
X-Status: exhausted
!Set-Cookie


=== TEST 34: loyalty_ref_arg off does not stop short links
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_arg off;
--- request
GET /s/ALICE1
--- error_code: 302
--- response_headers
Location: http://localhost:%%PORT%%/p/sofa
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~


=== TEST 35: other locations are untouched
--- request
GET /p/sofa
--- error_code: 200
--- response_body
home [none]
--- response_headers
!Set-Cookie
!Location


=== TEST 36: a fallback of "javascript:" is refused
--- config
location /s/ {
    loyalty_share;
    loyalty_share_fallback "javascript:alert(1)";
}
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL, not "javascript:alert(1)"


=== TEST 37: a scheme-relative fallback is refused
--- config
location /s/ {
    loyalty_share;
    loyalty_share_fallback //evil.com/;
}
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL, not "//evil.com/"


=== TEST 38: a fallback with a backslash is refused
--- config
loyalty_share_fallback "/\evil.com";
location /s/ {
    loyalty_share;
}
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL


=== TEST 39: a fallback URL with user information is refused
--- config
location /s/ {
    loyalty_share;
    loyalty_share_fallback http://www.example.com@evil.com/;
}
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL


=== TEST 40: a fallback that is no URL at all is refused
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_share_fallback ftp://example.com/;
--- config
location /s/ {
    loyalty_share;
}
--- config_error
"loyalty_share_fallback" must be a path such as "/" or an http(s) URL, not "ftp://example.com/"


=== TEST 41: loyalty_share without loyalty_keys
--- http_config
loyalty_store %%STORE%%;
--- config
location /s/ {
    loyalty_share;
}
--- config_error
"loyalty_share" requires "loyalty_store" and "loyalty_keys"


=== TEST 42: loyalty_share without loyalty_store
--- http_config
loyalty_keys %%KEYS%%;
--- config
location /s/ {
    loyalty_share;
}
--- config_error
"loyalty_share" requires "loyalty_store" and "loyalty_keys"


=== TEST 43: loyalty_store without keys and no short links is fine
--- http_config
loyalty_store %%STORE%%;
--- config
location / {
    return 200 "ok\n";
}
--- request
GET /
--- error_code: 200
--- response_body
ok


=== TEST 44: loyalty_share_hosts takes host names only
--- config
location /s/ {
    loyalty_share;
    loyalty_share_hosts shop.example.com/path;
}
--- config_error
"loyalty_share_hosts": "shop.example.com/path" is not a host name


=== TEST 45: loyalty_share twice
--- config
location /s/ {
    loyalty_share;
    loyalty_share;
}
--- config_error
"loyalty_share" directive is duplicate
