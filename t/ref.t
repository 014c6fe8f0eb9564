# Referral attribution: ?ref= clicks, the attribution cookie, the models,
# self-referral, the lifetime referrer, bots, and the $loyalty_ref_*
# variables.

use lib 't/lib';
use Loyalty::Harness;

run_blocks(http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n",
           config => <<'END',
location / {
    return 200 "[$loyalty_ref_status][$loyalty_ref_code][$loyalty_referrer][$loyalty_referrer2][$loyalty_ref_age]\n";
}
END
           more_headers => "User-Agent: Mozilla/5.0 (X11; Linux x86_64) "
                           . "AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
           store => <<'END');
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"carol","tier":"gold","stage":"partner"}
{"id":"alice","tier":"gold","stage":"member","referrer":"carol"}
{"id":"bob","tier":"gold","stage":"fan"}
{"id":"dave","tier":"gold","stage":"fan","referrer":"carol"}
[codes]
{"code":"ALICE1","member":"alice","campaign":"spring","target":"/p/sofa"}
{"code":"BOB1","vanity":true,"member":"bob"}
{"code":"OLD1","vanity":true,"member":"alice","expires_at":"2020-01-01T00:00:00Z"}
{"code":"GONE1","vanity":true,"member":"alice","revoked":true}
{"code":"CAROL1","member":"carol"}
END

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36';
my $STATUS = 'location / { return 200 "[$loyalty_ref_status][$loyalty_ref_code]\n"; }';

# an operator's bots list adds to the built-in one; a bad one is refused
{
    my $dir = test_dir();
    write_file("$dir/bots.txt", "# our uptime monitor\nShopMonitor/\n");
    write_file("$dir/bad-bots.txt", "ok-pattern\nab\n");

    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_bots $dir/bots.txt;\n",
                        config => $STATUS,
                        store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n"
                                 . "[members]\n{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"member\"}\n"
                                 . "[codes]\n{\"code\":\"ALICE1\",\"member\":\"alice\"}\n");
    my ($code, $hdr, $body) = http_request($h, 'GET', '/?ref=ALICE1',
        { 'User-Agent' => 'Mozilla/5.0 ShopMonitor/2.1' });
    is($body, "[bot][]\n", "the operator's pattern makes a bot");
    (undef, undef, $body) = http_request($h, 'GET', '/?ref=ALICE1',
        { 'User-Agent' => 'Twitterbot/1.0' });
    is($body, "[bot][]\n", 'the built-in patterns still apply');
    (undef, undef, $body) = http_request($h, 'GET', '/?ref=ALICE1',
        { 'User-Agent' => $UA });
    is($body, "[new][ALICE1]\n", 'a browser is no bot');

    ok(!reload_nginx($h, http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_bots $dir/bad-bots.txt;\n"),
       'a bots list with a 2-byte pattern is refused');
    like(error_log_text($h),
         qr/\[emerg\].*loyalty_bots: .*bad-bots\.txt.*line 2/,
         'naming the file and line');
    stop_nginx($h);
}

# a cookie re-pointed at another referrer fails its MAC
{
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n",
                        config => $STATUS,
                        store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n"
                                 . "[members]\n{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"member\"}\n"
                                 . "[codes]\n{\"code\":\"ALICE1\",\"member\":\"alice\"}\n"
                                 . "{\"code\":\"ALICE2\",\"member\":\"alice\"}\n");
    my @f = split /~/, ref_cookie('ALICE1', 'alice', time - 60);
    my $good = join '~', @f;
    $f[0] = 'ALICE2';    # replayed on another code of the same member
    my $bad = join '~', @f;

    my (undef, undef, $body) = http_request($h, 'GET', '/',
        { 'User-Agent' => $UA, Cookie => "loyalty_ref=$good" });
    is($body, "[kept][ALICE1]\n", 'the genuine cookie is kept');
    (undef, undef, $body) = http_request($h, 'GET', '/',
        { 'User-Agent' => $UA, Cookie => "loyalty_ref=$bad" });
    is($body, "[none][]\n", 'the re-pointed one is ignored');
    stop_nginx($h);
}

# the code cache: a write to the store retires it, a click flush does not
{
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_click_zone clicks 1m;\n"
                                       . "loyalty_click_flush 1s;\n",
                        config => $STATUS,
                        log_level => 'debug',
                        store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n"
                                 . "[members]\n{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"member\"}\n"
                                 . "[codes]\n{\"code\":\"ALICE1\",\"member\":\"alice\"}\n"
                                 . "{\"code\":\"ALICE2\",\"member\":\"alice\"}\n");
    my $click = sub {
        my (undef, undef, $body) = http_request($h, 'GET', "/?ref=$_[0]",
                                                { 'User-Agent' => $UA });
        return $body;
    };
    my $cached = sub {
        my @hits = error_log_text($h) =~ /share code "ALICE1" cached/g;
        return scalar @hits;
    };

    is($click->('ALICE1'), "[new][ALICE1]\n", 'a click');
    is($cached->(), 0, 'the first click reads the store');
    is($click->('ALICE1'), "[new][ALICE1]\n", 'another click');
    is($cached->(), 1, 'the second finds the code cached');

    # wait for a flush to land in the store
    my $flushed;
    for (1 .. 50) {
        last if ($flushed = ((loyaltyctl('-s', $h->{store}, 'clicks'))[1]
                             =~ /"ALICE1"/));
        select undef, undef, undef, 0.1;
    }
    ok($flushed, 'the clicks were flushed into the store');
    is($click->('ALICE1'), "[new][ALICE1]\n", 'a click after the flush');
    is($cached->(), 2, 'the flush did not retire the cached code');

    is((loyaltyctl('-s', $h->{store}, 'revoke-code', 'alice1'))[0], 0,
       'the code revoked while nginx runs');
    is($click->('ALICE1'), "[revoked][]\n",
       'the next click sees the revocation: the write retired the cache');
    is($click->('ALICE2'), "[new][ALICE2]\n", 'other codes still work');
    stop_nginx($h);
}

# issue 18: the attribution cookie carries no member id; the referrer is
# read from the code's record, so a code given to another member since
# loses the attribution, a revoked one keeps it; old-form cookies, which
# named the referrer, are honoured once and replaced
{
    use MIME::Base64 qw(decode_base64 decode_base64url);

    my $FULL = 'location / { return 200 "[$loyalty_ref_status]'
               . '[$loyalty_ref_code][$loyalty_referrer][$loyalty_referrer2]'
               . '[$loyalty_ref_age]\n"; }';
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n",
                        config => $FULL,
                        store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n"
                                 . "[members]\n"
                                 . "{\"id\":\"carol\",\"tier\":\"gold\",\"stage\":\"partner\"}\n"
                                 . "{\"id\":\"lin.fan\",\"tier\":\"gold\",\"stage\":\"member\",\"referrer\":\"carol\"}\n"
                                 . "{\"id\":\"bob\",\"tier\":\"gold\",\"stage\":\"fan\"}\n"
                                 . "[codes]\n{\"code\":\"Q7ZK4MPX2R\",\"member\":\"lin.fan\"}\n"
                                 . "{\"code\":\"BOB1\",\"vanity\":true,\"member\":\"bob\"}\n");
    my $get = sub {
        my ($path, $cookie) = @_;
        my (undef, $hdr, $body) = http_request($h, 'GET', $path,
            { 'User-Agent' => $UA,
              $cookie ? (Cookie => "loyalty_ref=$cookie") : () });
        return ($body, $hdr->{'set-cookie'} || []);
    };

    my ($body, $sc) = $get->('/?ref=Q7ZK4MPX2R');
    is($body, "[new][Q7ZK4MPX2R][lin.fan][carol][0]\n",
       'cookie: a click attributes to lin.fan and carol');
    my ($v) = ($sc->[0] // '') =~ /^loyalty_ref=([^;]+);/;
    ok(defined $v && $v !~ /lin\.fan/i, 'cookie: no member id in it')
        or diag($v);

    # nothing in it decodes to the member id either
    my @parts = ($v // '', split /~/, $v // '');
    my $leaks = grep { my $p = $_;
                       grep { /lin\.fan|carol/ }
                           decode_base64url($p), decode_base64($p),
                           decode_base64url(substr $p, 1),
                           decode_base64(substr $p, 2) } @parts;
    is($leaks, 0, 'cookie: no part decodes (base64, base64url) to it');

    is(($get->('/', $v))[0] =~ s/\[\d+\]$/[age]/r,
       "[kept][Q7ZK4MPX2R][lin.fan][carol][age]\n",
       'cookie: both levels come back from the code\'s record');

    (my $forged = $v) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    is(($get->('/', $forged))[0], "[none][][][][]\n", 'forged: ignored');

    is(($get->('/', ref_cookie('Q7ZK4MPX2R', 'lin.fan',
                               time - 31 * 86400)))[0],
       "[none][][][][]\n", 'expired: past the window, ignored');

    (my $replayed = $v) =~ s/^Q7ZK4MPX2R~/BOB1~/;
    is(($get->('/', $replayed))[0], "[none][][][][]\n",
       'replayed on another code: ignored');
    is(($get->('/', ref_cookie('BOB1', 'lin.fan', time - 60)))[0],
       "[none][][][][]\n",
       'signed for a member the code does not belong to: ignored');
    is(($get->('/', ref_cookie('NOSUCH1', 'lin.fan', time - 60)))[0],
       "[none][][][][]\n", 'a code not in the store: ignored');

    # the old form: honoured for the code's owner, and replaced
    my $at = time - 3600;
    ($body, $sc) = $get->('/', ref_cookie_legacy('Q7ZK4MPX2R', 'lin.fan',
                                                 $at));
    like($body, qr/^\[kept\]\[Q7ZK4MPX2R\]\[lin\.fan\]\[carol\]\[36\d\d\]$/,
         'old form: the attribution is kept');
    my ($nv, $age) = ($sc->[0] // '')
        =~ /^loyalty_ref=([^;]+); Max-Age=(\d+); Path=\/; HttpOnly; SameSite=Lax$/;
    is($nv, ref_cookie('Q7ZK4MPX2R', 'lin.fan', $at),
       'old form: replaced by the new form, same code and click time');
    ok(defined $age && $age <= 2592000 - 3600 && $age > 2592000 - 3700,
       'old form: the new one lives what is left of the window')
        or diag($sc->[0]);

    ($body, $sc) = $get->('/', ref_cookie_legacy('Q7ZK4MPX2R', 'bob',
                                                 time - 60));
    is("$body@$sc", "[none][][][][]\n",
       'old form naming another referrer than the code\'s: ignored');
    (my $old_forged = ref_cookie_legacy('Q7ZK4MPX2R', 'lin.fan', time - 60))
        =~ s/~lin\.fan~/~bob~/;
    is(($get->('/', $old_forged))[0], "[none][][][][]\n",
       'old form re-pointed: ignored');

    # a worker remembers the cookies it checked, with the keys: one
    # checked just now is refused once its key is retired, and taken
    # again when the key comes back
    is(($get->('/', $v))[0] =~ s/\[\d+\]$/[age]/r,
       "[kept][Q7ZK4MPX2R][lin.fan][carol][age]\n",
       'cookie: kept again, from the cookies this worker checked');
    ok(reload_nginx($h, keys => "k0 $TEST_KEYS{k0}\n"), 'k1 retired');
    is(($get->('/', $v))[0], "[none][][][][]\n",
       'cookie: its key retired, the cookie checked before is ignored');
    ok(reload_nginx($h, keys => undef), 'k1 back');
    is(($get->('/', $v))[0] =~ s/\[\d+\]$/[age]/r,
       "[kept][Q7ZK4MPX2R][lin.fan][carol][age]\n",
       'cookie: its key back, kept again');

    # revoked: the attribution it made stands
    is((loyaltyctl('-s', $h->{store}, 'revoke-code', 'q7zk4mpx2r'))[0], 0,
       'the code revoked while nginx runs');
    is(($get->('/', $v))[0] =~ s/\[\d+\]$/[age]/r,
       "[kept][Q7ZK4MPX2R][lin.fan][carol][age]\n",
       'revoked: the cookie still attributes to lin.fan');

    # given to bob: lin.fan's cookie no longer attributes, to anyone
    my $dir = test_dir();
    write_file("$dir/codes.jsonl",
               qq({"code":"Q7ZK4MPX2R","member":"bob"}\n));
    is((loyaltyctl('-s', $h->{store}, 'import', 'codes',
                   "$dir/codes.jsonl"))[0], 0, 'the code given to bob');
    is(($get->('/', $v))[0], "[none][][][][]\n",
       'reassigned: the old cookie attributes to nobody');

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|signal \d+ \(SIG(SEGV|ABRT|BUS)/,
           'cookie: no crash, alert, crit or emerg');
}

# The cookies a worker checked: many at once, each kept on every visit;
# a twin of a remembered cookie with one character of its MAC changed,
# or signed for another referrer, is refused, the genuine one still kept
{
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n",
                        config => 'location / { return 200 '
                                  . '"[$loyalty_ref_status]'
                                  . '[$loyalty_referrer]\n"; }',
                        store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n"
                                 . "[members]\n"
                                 . "{\"id\":\"bob\",\"tier\":\"gold\",\"stage\":\"fan\"}\n"
                                 . "{\"id\":\"carol\",\"tier\":\"gold\",\"stage\":\"fan\"}\n"
                                 . "[codes]\n{\"code\":\"BOB1\",\"vanity\":true,\"member\":\"bob\"}\n");
    my $status = sub {
        my (undef, undef, $body) = http_request($h, 'GET', '/',
            { 'User-Agent' => $UA, Cookie => "loyalty_ref=$_[0]" });
        return $body // '';
    };
    my $now = time;
    my @v = map { ref_cookie('BOB1', 'bob', $now - 60 - $_) } 1 .. 300;
    my @forged = map { s/(.)$/$1 eq 'A' ? 'B' : 'A'/er } @v;
    my @other = map { ref_cookie('BOB1', 'carol', $now - 60 - $_) } 1 .. 300;

    for my $pass (1, 2) {
        is(scalar(grep { $status->($_) eq "[kept][bob]\n" } @v), 300,
           "checked cookies, pass $pass: all 300 kept");
        is(scalar(grep { $status->($_) eq "[none][]\n" } @forged), 300,
           "pass $pass: their twins with a changed MAC are all refused");
        is(scalar(grep { $status->($_) eq "[none][]\n" } @other), 300,
           "pass $pass: cookies signed for another referrer are refused");
    }

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|signal \d+ \(SIG(SEGV|ABRT|BUS)/,
           'checked cookies: no crash, alert, crit or emerg');
}

done_testing();

__DATA__

=== TEST 1: no click, no cookie: none
--- request
GET /
--- response_body
[none][][][][]
--- response_headers
!Set-Cookie


=== TEST 2: a click on a code attributes the visitor to its owner and the owner's referrer
--- request
GET /?ref=ALICE1
--- response_body
[new][ALICE1][alice][carol][0]
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax$


=== TEST 3: codes are case-insensitive and may be percent-encoded
--- request
GET /?x=1&ref=%61lice1&y=2
--- response_body
[new][ALICE1][alice][carol][0]


=== TEST 4: the cookie keeps the attribution on later requests
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,1h)%%
--- response_body_like
^\[kept\]\[ALICE1\]\[alice\]\[carol\]\[36\d\d\]$
--- response_headers
!Set-Cookie


=== TEST 5: first-touch: a later click on another code keeps the first attribution
--- request
GET /?ref=BOB1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,2d)%%
--- response_body_like
^\[kept\]\[ALICE1\]\[alice\]\[carol\]\[1728\d\d\]$
--- response_headers
!Set-Cookie


=== TEST 6: last-touch: a later click on another code replaces it
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_model last;
--- request
GET /?ref=BOB1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,2d)%%
--- response_body
[replaced][BOB1][bob][][0]
--- response_headers_like
Set-Cookie: ^loyalty_ref=BOB1~\d+~k1~


=== TEST 7: last-touch: clicking the same code again keeps the attribution and its time
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_model last;
--- request
GET /?ref=alice1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,2d)%%
--- response_body_like
^\[kept\]\[ALICE1\]\[alice\]\[carol\]\[1728\d\d\]$
--- response_headers
!Set-Cookie


=== TEST 8: an attribution past the window is gone; a click then is new
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_window 1h;
--- request
GET /?ref=BOB1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,3601)%%
--- response_body
[new][BOB1][bob][][0]
--- response_headers_like
Set-Cookie: ; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax$


=== TEST 9: the window's edge: one second inside, the attribution holds
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_window 1h;
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,3595)%%
--- response_body_like
^\[kept\]\[ALICE1\]\[alice\]\[carol\]\[359\d\]$


=== TEST 10: the window's edge: at the window, it is gone
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_window 1h;
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,3600)%%
--- response_body
[none][][][][]


=== TEST 11: a member clicking their own code is not attributed to themselves
--- request
GET /?ref=ALICE1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body
[self][][carol][][]
--- response_headers
!Set-Cookie


=== TEST 12: an attribution to oneself made before logging in is void
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(bob,1h)%%; loyalty_ref=%%REF(BOB1,bob,1h)%%
--- response_body
[none][][][][]


=== TEST 13: a member whose record names a referrer keeps that referrer for life
--- request
GET /?ref=BOB1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(dave,1h)%%
--- response_body
[kept][][carol][][]
--- response_headers
!Set-Cookie


=== TEST 14: the lifetime referrer wins over an attribution cookie to someone else
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_model last;
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(dave,1h)%%; loyalty_ref=%%REF(BOB1,bob,1h)%%
--- response_body
[kept][][carol][][]


=== TEST 15: with the lifetime referrer's own code, the cookie's code and age show
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(alice,1h)%%; loyalty_ref=%%REF(CAROL1,carol,10m)%%
--- response_body_like
^\[kept\]\[CAROL1\]\[carol\]\[\]\[60\d\]$


=== TEST 16: a logged-in member without a referrer is attributed like anyone
--- request
GET /?ref=ALICE1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=%%SIGN(bob,1h)%%
--- response_body
[new][ALICE1][alice][carol][0]


=== TEST 17: a forged cookie is ignored, and logged at info
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=ALICE1~mallory~1700000000~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
--- response_body
[none][][][][]
--- error_log_like
\[info\].*loyalty: invalid attribution cookie ignored


=== TEST 19: a member cookie's MAC does not make an attribution cookie
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%SIGN(alice,1h)%%
--- response_body
[none][][][][]


=== TEST 20: a cookie signed with a key the server lacks is ignored
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,1h,k0)%%
--- keys
k1 5ddf6f585beb20501799d3b7b6370cac263cda66dc4a6ff968c1a9c5006a6158
--- response_body
[none][][][][]


=== TEST 21: a cookie from the future is ignored
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,-1h)%%
--- response_body
[none][][][][]
--- error_log_like
\[info\].*attribution cookie from the future ignored


=== TEST 22: bots and link-preview fetchers are not attributed
--- request
GET /?ref=ALICE1
--- more_headers
User-Agent: facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)
--- response_body
[bot][][][][]
--- response_headers
!Set-Cookie


=== TEST 23: curl is a bot
--- request
GET /?ref=ALICE1
--- more_headers
User-Agent: curl/8.4.0
--- response_body
[bot][][][][]


=== TEST 24: no User-Agent is a bot
--- raw_request eval
"GET /?ref=ALICE1 HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
[bot][][][][]


=== TEST 25: HEAD requests are bots
--- config
location / {
    add_header X-Status $loyalty_ref_status;
    return 200;
}
--- request
HEAD /?ref=ALICE1
--- response_headers
X-Status: bot
!Set-Cookie


=== TEST 26: a bot keeps the attribution it came with
--- request
GET /?ref=BOB1
--- more_headers
User-Agent: Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)
Cookie: loyalty_ref=%%REF(ALICE1,alice,1h)%%
--- response_body_like
^\[bot\]\[ALICE1\]\[alice\]\[carol\]\[36\d\d\]$


=== TEST 27: an unknown code is invalid, logged at info; the old attribution stays
--- request
GET /?ref=NOSUCH
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_ref=%%REF(ALICE1,alice,1h)%%
--- response_body_like
^\[invalid\]\[ALICE1\]\[alice\]\[carol\]\[36\d\d\]$
--- error_log_like
\[info\].*loyalty: unknown share code "NOSUCH"
--- response_headers
!Set-Cookie


=== TEST 28: a revoked code does not attribute
--- request
GET /?ref=gone1
--- response_body
[revoked][][][][]
--- response_headers
!Set-Cookie


=== TEST 29: an expired code does not attribute
--- request
GET /?ref=OLD1
--- response_body
[expired][][][][]
--- response_headers
!Set-Cookie


=== TEST 30: codes with odd characters are invalid, and not echoed to the log
--- request
GET /?ref=AL%3Cscript%3EICE
--- response_body
[invalid][][][][]
--- error_log_like
loyalty: malformed share code \(13 bytes\) ignored
--- no_error_log
<script>


=== TEST 31: a code of 10 KB is invalid, cheaply
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
large_client_header_buffers 4 16k;
--- request eval
"GET /?ref=" . ("A" x 10240)
--- response_body
[invalid][][][][]
--- error_log_like
malformed share code \(10240 bytes\)


=== TEST 32: a code of 33 characters is invalid; of 2 too
--- config
location / {
    return 200 "[$loyalty_ref_status]\n";
}
--- request eval
"GET /?ref=" . ("A" x 33)
--- response_body
[invalid]


=== TEST 33: an empty ref argument is an invalid click
--- request
GET /?ref=
--- response_body
[invalid][][][][]


=== TEST 34: a dot or a NUL does not pass for a code
--- request
GET /?ref=ALICE1%00
--- response_body
[invalid][][][][]


=== TEST 35: several ref arguments: the first counts
--- request
GET /?ref=BOB1&ref=ALICE1
--- response_body
[new][BOB1][bob][][0]


=== TEST 36: loyalty_ref_arg names the argument
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_arg from;
--- request
GET /?ref=BOB1&from=ALICE1
--- response_body
[new][ALICE1][alice][carol][0]


=== TEST 37: loyalty_ref_arg off: no clicks by argument in that location
--- config
location / {
    loyalty_ref_arg off;
    return 200 "[$loyalty_ref_status][$loyalty_ref_code]\n";
}
location /on {
    return 200 "[$loyalty_ref_status][$loyalty_ref_code]\n";
}
--- request
GET /?ref=ALICE1
--- response_body
[none][]
--- response_headers
!Set-Cookie


=== TEST 38: loyalty_ref_cookie names the cookie; the window sets Max-Age
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_cookie shop_ref;
loyalty_ref_window 7d;
--- request
GET /?ref=ALICE1
--- response_headers_like
Set-Cookie: ^shop_ref=ALICE1~\d+~k1~[A-Za-z0-9_-]{43}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax$


=== TEST 39: the click sets its cookie even when no variable is read
--- config
location / {
    return 200 "plain\n";
}
--- request
GET /?ref=ALICE1
--- response_body
plain
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~


=== TEST 40: the cookie goes on error responses too, once
--- config
location / {
    root %%PREFIX%%/html-none;
}
--- request
GET /missing?ref=ALICE1
--- error_code: 404
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~


=== TEST 41: an internal redirect does not click twice or send two cookies
--- config
location / {
    try_files /nothing @app;
}
location @app {
    add_header X-Status $loyalty_ref_status;
    return 200 "[$loyalty_ref_status][$loyalty_ref_code]\n";
}
--- request
GET /page?ref=ALICE1
--- response_body
[new][ALICE1]
--- response_headers
X-Status: new


=== TEST 42: a signed member and a tampered member cookie do not disturb attribution
--- request
GET /?ref=ALICE1
--- more_headers
User-Agent: Mozilla/5.0 Chrome/120.0
Cookie: loyalty_member=alice~1~k1~xx
--- response_body
[new][ALICE1][alice][carol][0]


=== TEST 43: without loyalty_keys nothing is attributed and no cookie is sent
--- http_config
loyalty_store %%STORE%%;
--- request
GET /?ref=ALICE1
--- response_body
[none][][][][]
--- response_headers
!Set-Cookie


=== TEST 44: the referrer ids reach an upstream with proxy_set_header
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
server {
    listen unix:%%PREFIX%%/upstream.sock;
    location / {
        return 200 "upstream saw [$http_x_referrer][$http_x_referrer2][$http_x_ref_code]\n";
    }
}
--- config
location / {
    proxy_set_header X-Referrer $loyalty_referrer;
    proxy_set_header X-Referrer2 $loyalty_referrer2;
    proxy_set_header X-Ref-Code $loyalty_ref_code;
    proxy_pass http://unix:%%PREFIX%%/upstream.sock:;
}
--- request
GET /?ref=ALICE1
--- response_body
upstream saw [alice][carol][ALICE1]
--- response_headers_like
Set-Cookie: ^loyalty_ref=ALICE1~


=== TEST 45: config: a bad model, cookie name or window is refused
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_model middle;
--- config_error
invalid value "middle"


=== TEST 46: config: a cookie name with a semicolon is refused
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_cookie "a;b";
--- config_error
"loyalty_ref_cookie" must be a cookie name of [A-Za-z0-9_.-], not "a;b"


=== TEST 47: config: a window of 0 is refused
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_ref_window 0;
--- config_error
"loyalty_ref_window" must be more than 0
