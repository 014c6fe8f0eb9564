# Self-test of t/lib/Loyalty/Harness.pm against bare nginx: needs neither
# the module nor loyaltyctl.

use lib 't/lib';
use Loyalty::Harness;

# Known answer, also usable by the C tests; openssl recomputes it so the
# vector does not rest on the harness alone.

my $msg = 'member~alice~1700000000~k1';
my $mac = `printf %s '$msg' | openssl dgst -sha256 -mac HMAC \\
           -macopt hexkey:$TEST_KEYS{k1} -binary | openssl base64 -A`;
$mac =~ tr{+/=\n}{-_}d;

is(member_cookie('alice', 1700000000, 'k1', $TEST_KEYS{k1}),
   'alice~1700000000~k1~1N3LKt3Zzb9GPB3D3I5oZtrv2fNgWsXZvMVeCbm8BJI',
   'member_cookie known answer');
is($mac, '1N3LKt3Zzb9GPB3D3I5oZtrv2fNgWsXZvMVeCbm8BJI', 'openssl agrees');

my ($id, $exp, $kid) = split /~/, sign_member('bob', '-1h', 'k0');
ok($id eq 'bob' && $kid eq 'k0' && abs($exp - (time - 3600)) <= 2,
   'sign_member with negative ttl and kid');

run_blocks();

# custom test: start, reload with new config, stop, nothing left behind

my $h = start_nginx(no_module => 1, config => <<'END');
location / { return 200 "one %%PORT%%\n"; }
END

my ($status, $hdr, $body) = http_request($h, 'GET', '/', { 'X-A' => 'b' });
is("$status $body", "200 one $h->{port}\n", 'custom request');

ok(reload_nginx($h, config => 'location / { return 200 "two\n"; }'),
   'reload');
($status, $hdr, $body) = http_request($h->{port}, "GET / HTTP/1.0\r\n\r\n");
is("$status $body", "200 two\n", 'raw request after reload');

ok(!reload_nginx($h, config => 'bogus;'), 'reload with a bad config fails');
($status, $hdr, $body) = http_request($h, 'GET', '/');
is($body, "two\n", 'old configuration still serves');

my @pids = ($h->{master}, split ' ', `pgrep -P $h->{master}`);
is(stop_nginx($h), 'QUIT', 'graceful stop');
is(`pgrep -f $h->{prefix}`, '', 'no master left');
ok(!grep({ -e "/proc/$_" && `ps -o stat= -p $_` !~ /Z/ } @pids),
   'no worker left');

done_testing();

__DATA__

=== TEST 1: status, body, headers
--- no_module
--- config
location / {
    add_header X-Test hello;
    add_header Set-Cookie a=1;
    add_header Set-Cookie b=2;
    return 200 "ok\n";
}
--- request
GET /
--- response_headers
X-Test: hello
Set-Cookie: b=2
!X-Absent
--- response_headers_like
Content-Type: ^text/plain$
--- response_body
ok
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: error_log and placeholders
--- no_module
--- config
location / {
    root %%PREFIX%%/html;
}
--- request
GET /missing
--- error_code: 404
--- error_log
%%PREFIX%%/html/missing" failed (2: No such file or directory)
--- error_log_like
\[error\] \d+#\d+: \*\d+ open\(\)



=== TEST 3: request headers and body, signed cookie
--- no_module
--- workers: 2
--- config
location / {
    return 200 "$http_x_foo $content_length $cookie_loyalty_member\n";
}
--- request
POST /
--- more_headers
X-Foo: bar
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- request_body
hello
--- response_body_like
^bar 6 alice~\d+~k1~[A-Za-z0-9_-]{43}$



=== TEST 4: chunked response
--- no_module
--- config
location / {
    default_type text/html;
    sub_filter world there;
    return 200 "hello world\n";
}
--- request
GET /
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello there



=== TEST 5: raw request
--- no_module
--- config
--- raw_request eval
"GARBAGE\r\n\r\n"
--- error_code: 400



=== TEST 6: configuration rejected
--- no_module
--- config
no_such_directive on;
--- config_error
unknown directive "no_such_directive"
