# The admin API is closed by default (issue 18, 3): "loyalty_admin"
# without "loyalty_admin_token" fails nginx -t, naming the directive, its
# file and its line; "loyalty_admin_open loopback" is the explicit,
# loudly logged opt-out that admits loopback clients only (checked
# against non-loopback clients over a real non-loopback address, IPv6,
# a unix socket and realip); tokens carry an id and a scope, read or
# write; the tokens file's mistakes name the file and the line and never
# the token; each request's token id is logged and in
# $loyalty_admin_token_id, and no token ever is.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::IP;
use IO::Socket::UNIX;
use JSON::PP ();
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $JSON = JSON::PP->new->canonical;
my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

my $STORE = "[tiers]\n" . slurp("$EXAMPLES/tiers.jsonl") . <<'END';
[members]
{"id":"li.member","tier":"vip","stage":"member","points":100}
END

my $MEMBER = '{"tier":"basic","stage":"fan"}';
my $SIGNUP = '[{"type":"signup","member":"new.fan"}]';

my $DIR = test_dir();
chmod 0755, "$DIR" or die "chmod $DIR: $!";


# (status, body, headers) of a request, to a server or any address
sub api {
    my ($h, $method, $uri, $body, %hdr) = @_;
    my ($status, $headers, $text) =
        eval { http_request($h, $method, $uri, \%hdr, $body) };
    return ("error: $@", '', {}) unless defined $headers;
    return ($status // 'none', $text, $headers);
}

sub call {
    my ($status, $body) = api(@_);
    return "$status $body";
}

sub as_reader { return call(@_[0 .. 3], %{admin_auth('read')}) }
sub as_writer { return call(@_[0 .. 3], %{admin_auth('write')}) }

sub error_body {
    my ($status, $message) = @_;
    return "$status " . $JSON->encode({ error => $message }) . "\n";
}

# nginx -t's complaint about a configuration, or "" if it starts
sub refused {
    my (%o) = @_;
    my $h = eval { start_nginx(http_config => $HTTP, store => $STORE, %o) };
    if ($h) {
        stop_nginx($h);
        return '';
    }
    return $@;
}

# a raw GET of the admin API over a socket, from and to $addr
sub status_over {
    my ($sock, $uri, %hdr) = @_;
    return 'no socket' unless $sock;
    my $head = join '', map { "$_: $hdr{$_}\r\n" } sort keys %hdr;
    print $sock "GET $uri HTTP/1.1\r\nHost: localhost\r\n$head"
                . "Connection: close\r\n\r\n";
    my $sel = IO::Select->new($sock);
    my $resp = '';
    while ($sel->can_read(10)) {
        sysread($sock, $resp, 65536, length $resp) or last;
    }
    my ($status) = $resp =~ m{^HTTP/1\.1 (\d{3})} or return "none: $resp";
    my (undef, $body) = split /\r\n\r\n/, $resp, 2;
    return "$status $body";
}

# the machine's own non-loopback addresses, of a family ("inet", "inet6")
sub local_addresses {
    my ($family) = @_;
    my $flag = $family eq 'inet6' ? '-6' : '-4';
    my ($rc, $out) = eval { run_out('ip', '-o', $flag, 'addr', 'show',
                                    'scope', 'global') };
    return () if !defined $rc || $rc;
    return map { m{\s$family\s+([0-9a-f.:]+)/} ? $1 : () } split /\n/, $out;
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp') or die "no free port: $!";
    return $s->sockport;
}


# closed by default: nginx -t names the directive, its file and line

{
    # the directive in an included file, on its third line, and in a file
    # included by a glob, whose name does not outlive the include
    write_file("$DIR/admin.conf", "# the admin API\n\nloyalty_admin;\n");
    write_file("$DIR/globbed-admin.conf", "\n\n\n\nloyalty_admin;\n");

    my $want = '"loyalty_admin" needs "loyalty_admin_token FILE;" (lines of '
               . '"ID read|write TOKEN"), or, for local development only, '
               . '"loyalty_admin_open loopback;"';

    my $err = refused(config => "location /admin/ {\n"
                                . "    include $DIR/admin.conf;\n}\n");
    like($err, qr/\[emerg\] \Q$want\E in \Q$DIR\E\/admin\.conf:3\n/,
         'no token: nginx -t fails naming loyalty_admin, its file and line');

    $err = refused(config => "location /admin/ {\n"
                             . "    include $DIR/globbed-*.conf;\n}\n");
    like($err, qr/\Q$want\E in \Q$DIR\E\/globbed-admin\.conf:5\n/,
         'no token, loyalty_admin from a glob include: its file and line');

    $err = refused(config => "location /admin/ {\n"
                             . "    loyalty_admin_batch 10;\n"
                             . "    loyalty_admin;\n}\n");
    like($err, qr/\Q$want\E in \S+\/conf\/nginx\.conf:\d+\n/,
         'no token, loyalty_admin in nginx.conf');

    # a token elsewhere does not open this location
    $err = refused(config => "location /a/ { %%ADMIN%% }\n"
                             . "location /b/ { loyalty_admin; }\n");
    like($err, qr/\Q$want\E/, 'a token in another location does not count');

    # the "off" of an inherited opt-out closes it again
    $err = refused(http_config => $HTTP . "loyalty_admin_open loopback;\n",
                   config => "location /a/ { loyalty_admin_open off; "
                             . "loyalty_admin; }\n");
    like($err, qr/\Q$want\E/, 'loyalty_admin_open off closes it again');

    $err = refused(config => "location /a/ { %%ADMIN%% "
                             . "loyalty_admin_open loopback; }\n");
    like($err, qr/"loyalty_admin" has both "loyalty_admin_token" and "loyalty_admin_open loopback": remove one in /,
         'a token and the opt-out together are refused');

    $err = refused(config => "location /a/ { loyalty_admin; "
                             . "loyalty_admin_open anyone; }\n");
    like($err, qr/\[emerg\] invalid value "anyone" in "loyalty_admin_open", it must be "off" or "loopback" in \S+nginx\.conf:\d+/,
         'loyalty_admin_open takes off or loopback');

    # inherited from the server level, the token counts
    is(refused(config => "loyalty_admin_token %%ADMIN_TOKENS%%;\n"
                         . "location /a/ { loyalty_admin; }\n"),
       '', 'a token file of the server level protects the location');
}


# the opt-out: loopback clients only, and a warning at every load

{
    my $v4 = free_port();
    my $unix = "$DIR/admin.sock";
    my @global4 = local_addresses('inet');
    my @global6 = local_addresses('inet6');
    my $six = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Proto => 'tcp');
    my $v6 = $six ? $six->sockport : undef;
    undef $six;

    my $listen = "listen 127.0.0.1:$v4;\n" . "listen unix:$unix;\n";
    $listen .= "listen $global4[0]:$v4;\n" if @global4;
    $listen .= "listen [::1]:$v6;\n" if $v6;
    $listen .= "listen [$global6[0]]:$v6;\n" if $v6 && @global6;

    my $h = start_nginx(http_config => $HTTP . <<"END", store => $STORE,
server {
    $listen
    location /admin/ {
        loyalty_admin;
        loyalty_admin_open loopback;
    }
    location /real/ {
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        loyalty_admin_open loopback;
        loyalty_admin;
    }
}
END
                        config => '');

    my $port = $h->{port};
    my $warn = qr/\[warn\] .*"loyalty_admin" is OPEN: any loopback client may read and write without a token \("loyalty_admin_open loopback"\); for local development only in \S+nginx\.conf:\d+/;
    # nginx -t, then the start, each warn of both locations
    my $warned = () = error_log_text($h) =~ /$warn/g;
    is($warned, 4, 'the opt-out is warned of at start, for each location');

    is(call($v4, 'PUT', '/admin/members/dev.fan', $MEMBER),
       qq(200 {"stored":"member"}\n), '127.0.0.1 may write without a token');
    is(call($v4, 'GET', '/admin/members/dev.fan'),
       qq(200 {"id":"dev.fan","tier":"basic","stage":"fan","orders":0,"spend":0,"points":0,"blocked":false}\n),
       '127.0.0.1 may read');

    # realip sets the client's address the check sees
    my %real = (
        '127.0.0.9' => 200, '::1' => 200, '::ffff:127.0.0.1' => 200,
        '192.0.2.77' => 403, '10.0.0.1' => 403, '128.0.0.1' => 403,
        '126.255.255.255' => 403, '2001:db8::1' => 403, '::2' => 403,
        '::ffff:10.1.2.3' => 403, '::' => 403, '0.0.0.0' => 403,
        'fe80::1' => 403,
    );
    for my $ip (sort keys %real) {
        is(call($v4, 'GET', '/real/members/dev.fan', undef,
                'X-Real-IP' => $ip) =~ s/ .*//sr,
           $real{$ip}, "a client of $ip: $real{$ip}");
    }
    is(call($v4, 'PUT', '/real/members/intruder', $MEMBER,
            'X-Real-IP' => '192.0.2.77'),
       error_body(403, 'this admin API admits loopback clients only'),
       'a non-loopback client cannot write');
    like(error_log_text($h),
         qr/\[info\] .*loyalty: admin request refused: "loyalty_admin_open loopback" admits loopback clients only, client: 192\.0\.2\.77/,
         'the refusal is logged at info');

    my $u = IO::Socket::UNIX->new(Peer => $unix);
    is(status_over($u, '/admin/members/dev.fan') =~ s/ .*//sr, 403,
       'a unix socket client is refused');

  SKIP: {
        skip 'no non-loopback IPv4 address on this machine', 2
            unless @global4;
        my $s = IO::Socket::INET->new(PeerAddr => $global4[0],
                                      PeerPort => $v4, LocalAddr => $global4[0],
                                      Timeout => 10);
        is(status_over($s, '/admin/members/dev.fan'),
           error_body(403, 'this admin API admits loopback clients only'),
           "a client of $global4[0], this machine's own address, is refused");
        $s = IO::Socket::INET->new(PeerAddr => $global4[0], PeerPort => $v4,
                                   LocalAddr => '127.0.0.1', Timeout => 10);
        is(status_over($s, '/admin/members/dev.fan') =~ s/ .*//sr, 200,
           "a loopback client on the address $global4[0] is admitted");
    }

  SKIP: {
        skip 'no IPv6 loopback', 2 unless $v6;
        my $s = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $v6,
                                    Timeout => 10);
        is(status_over($s, '/admin/members/dev.fan') =~ s/ .*//sr, 200,
           '::1 is admitted');

        skip 'no non-loopback IPv6 address on this machine', 1
            unless @global6;
        $s = IO::Socket::IP->new(PeerHost => $global6[0], PeerPort => $v6,
                                 LocalHost => $global6[0], Timeout => 10);
        is(status_over($s, '/admin/members/dev.fan') =~ s/ .*//sr, 403,
           "a client of $global6[0] is refused");
    }

    is(call($v4, 'GET', '/admin/members/intruder') =~ s/ .*//sr, 404,
       'the refused write wrote nothing');

    ok(reload_nginx($h), 'reload');
    my $again = () = error_log_text($h) =~ /$warn/g;
    is($again, $warned + 2, 'the warning again at the reload');

    stop_checked($h, 'the opt-out');
}


# scopes: a read token reads, a write token also writes

{
    my $log = '$loyalty_admin_token_id [$loyalty_member] $status $request';
    my $h = start_nginx(http_config => $HTTP . "log_format ids '$log';\n",
                        store => $STORE, config => <<'END');
access_log %%PREFIX%%/logs/ids.log ids;
location /admin/ { %%ADMIN%% }
END

    my @reads = (
        ['GET', '/admin/members/li.member', 200],
        ['GET', '/admin/members/li.member/referrals', 200],
        ['GET', '/admin/members/li.member/ledger', 200],
        ['GET', '/admin/rules', 404],
        ['GET', '/admin/lua', 200],
    );
    for (@reads) {
        my ($m, $uri, $want) = @$_;
        is(as_reader($h, $m, $uri) =~ s/ .*//sr, $want,
           "a read token may $m $uri");
    }

    my $ack = '{"id":"t1","outcome":"done","by":"amy"}';
    my @writes = (
        ['POST', '/admin/events', $SIGNUP],
        ['PUT', '/admin/members/new.member', $MEMBER],
        ['PUT', '/admin/members/li.member', $MEMBER],
        ['PUT', '/admin/codes/read-code-1',
         '{"member":"li.member","target":"/products/tea"}'],
        ['PUT', '/admin/prices/sku-1', '{"retail":100}'],
        ['PUT', '/admin/rules', slurp("$EXAMPLES/rules.json")],
        ['DELETE', '/admin/members/new.member', undef],
        ['GET', '/admin/due', undef],
        ['POST', '/admin/due/ack', $ack],
    );
    for (@writes) {
        my ($m, $uri, $body) = @$_;
        my ($status, $text, $hdr) = api($h, $m, $uri, $body,
                                        %{admin_auth('read')});
        is("$status $text", error_body(403, 'this token may only read'),
           "a read token may not $m $uri");
        is(join('|', $hdr->{'cache-control'} // '-',
                     $hdr->{'content-type'} // '-',
                     $hdr->{'www-authenticate'} // '-'),
           'no-store|application/json|-', "$m $uri: 403's headers");
    }

    is(as_reader($h, 'GET', '/admin/members/li.member'),
       qq(200 {"id":"li.member","tier":"vip","stage":"member","orders":0,"spend":0,"points":100,"blocked":false}\n),
       'the read token changed nothing');
    is(as_reader($h, 'GET', '/admin/members/new.member') =~ s/ .*//sr, 404,
       'nor created anything');
    like(error_log_text($h),
         qr/\[info\] .*loyalty: admin request refused: token "reader" may only read/,
         'a refused write is logged with the token id');

    # routes answer before scopes; a bad token before anything
    is(as_reader($h, 'POST', '/admin/members/li.member', $MEMBER)
       =~ s/ .*//sr, 405, 'a read token and a method not allowed: 405');
    is(as_reader($h, 'PATCH', '/admin/members/li.member', $MEMBER)
       =~ s/ .*//sr, 403, 'a read token and a PATCH: 403');
    is(as_reader($h, 'POST', '/admin/nothing', '{}') =~ s/ .*//sr, 404,
       'a read token and no such resource: 404');
    my ($status, undef, $hdr) = api($h, 'POST', '/admin/events', $SIGNUP,
        Authorization => "Bearer ${ADMIN_READ_TOKEN}x");
    is("$status " . ($hdr->{'www-authenticate'} // '-'), '401 Bearer',
       'a wrong token: 401 with WWW-Authenticate');

    is(as_writer($h, 'POST', '/admin/events', $SIGNUP),
       qq(200 {"events":1,"applied":1,"duplicates":0}\n),
       'a write token may post events');
    for (@writes[1 .. $#writes]) {
        my ($m, $uri, $body) = @$_;
        my $want = $uri =~ /ack$/ ? 404 : 200;   # no such touch
        is(as_writer($h, $m, $uri, $body) =~ s/ .*//sr, $want,
           "a write token may $m $uri");
    }
    is(as_writer($h, 'GET', '/admin/members/li.member') =~ s/ .*//sr, 200,
       'a write token reads too');

    # the id in the log and the variable, the tokens nowhere
    my $member = 'loyalty_member=' . sign_member('li.member', '1h');
    is(call($h, 'PUT', '/admin/members/li.member', $MEMBER,
            %{admin_auth('write')}, Cookie => $member) =~ s/ .*//sr, 200,
       'a write with a member cookie');

    stop_checked($h, 'scopes');

    my $ids = slurp("$h->{prefix}/logs/ids.log");
    like($ids, qr{^reader \[\] 200 GET /admin/members/li\.member HTTP}m,
         '$loyalty_admin_token_id: the reader');
    like($ids, qr{^reader \[\] 403 POST /admin/events HTTP}m,
         '$loyalty_admin_token_id: the reader refused');
    like($ids, qr{^writer \[\] 200 POST /admin/events HTTP}m,
         '$loyalty_admin_token_id: the writer');
    like($ids, qr{^- \[\] 401 POST /admin/events HTTP}m,
         '$loyalty_admin_token_id: none for a wrong token');
    like($ids, qr{^writer \[li\.member\] 200 PUT /admin/members/li\.member}m,
         '$loyalty_member beside it in an admin location');
    like(error_log_text($h),
         qr/\[info\] .*loyalty: admin request with token "writer" \(write\)/,
         'the error log names the token id at info');

    my $all = join '', error_log_text($h), $ids,
                       slurp("$h->{prefix}/logs/access.log") // '';
    for ($ADMIN_TOKEN, $ADMIN_READ_TOKEN) {
        ok(index($all, $_) < 0, 'no log holds a token');
    }
}


# the tokens file: its mistakes name the file and the line, never a token

{
    my $T = 'Secret-Token-Value-0123456789';
    my $U = 'Other-Secret-Value-9876543210';
    my @lines = map { "t$_ read tok-$_-0123456789abcdef\n" } 1 .. 64;
    my %files = (
        scope    => ["# dashboards\nboard reader $T\n", 2,
                     'the scope is "read" or "write"'],
        scope_uc => ["board READ $T\n", 1,
                     'the scope is "read" or "write"'],
        dup_id   => ["board read $T\n\nboard write $U\n", 3,
                     'the id "board" is on line 1 too'],
        dup_tok  => ["board read $T\nshop write $T\n", 2,
                     'the same token as line 1'],
        short    => ["board read $T\nshop write 0123456789abcde\n", 2,
                     'a token is 16 to 256 printable characters'],
        bad_id   => ["shop/1 write $T\n", 1,
                     'an id is 1 to 64 of A-Z a-z 0-9 _ . -'],
        long_id  => [('i' x 65) . " write $T\n", 1,
                     'an id is 1 to 64 of A-Z a-z 0-9 _ . -'],
        two      => ["board $T\n", 1, '"ID SCOPE TOKEN" expected'],
        four     => ["board read $T $U\n", 1, '"ID SCOPE TOKEN" expected'],
        many     => [join('', @lines, "t65 read $T\n"), 65,
                     'more than 64 tokens'],
    );

    for my $name (sort keys %files) {
        my ($text, $line, $why) = @{$files{$name}};
        write_file("$DIR/$name", $text, 0600);
        my $err = refused(config => "location /a/ {\n    loyalty_admin;\n"
                                    . "    loyalty_admin_token $DIR/$name;\n"
                                    . "}\n");
        like($err, qr/\[emerg\] loyalty_admin_token: "\Q$DIR\/$name\E" line $line: \Q$why\E in \S+nginx\.conf:\d+/,
             "tokens file $name: the file, the line, the reason");
        ok(index($err, $T) < 0 && index($err, $U) < 0,
           "tokens file $name: the message holds no token");
    }

    write_file("$DIR/many-ok", join('', @lines), 0600);
    is(refused(config => "location /a/ { loyalty_admin; "
                         . "loyalty_admin_token $DIR/many-ok; }\n"),
       '', '64 tokens load');

    # readable by every user: a warning naming the file
    write_file("$DIR/open", "shop write $T\n", 0644);
    my $h = start_nginx(http_config => $HTTP, store => $STORE,
                        config => "location /a/ { loyalty_admin; "
                                  . "loyalty_admin_token $DIR/open; }\n");
    like(error_log_text($h),
         qr/\[warn\] .*loyalty_admin_token: tokens file "\Q$DIR\E\/open" is readable by every user: chmod 600 it in \S+nginx\.conf:\d+/,
         'a tokens file every user may read is warned of');
    stop_checked($h, 'a readable tokens file');
}


# the format of old: bare tokens are write tokens named by their line

{
    my $T = 'old-style-bare-token-0123456789';
    write_file("$DIR/old", "# the shop's backend\n$T\n", 0600);
    my $log = '$loyalty_admin_token_id $status';
    my $h = start_nginx(http_config => $HTTP . "log_format ids '$log';\n",
                        store => $STORE, config => <<"END");
access_log %%PREFIX%%/logs/ids.log ids;
location /admin/ { loyalty_admin; loyalty_admin_token $DIR/old; }
END
    like(error_log_text($h),
         qr/\[warn\] .*loyalty_admin_token: "\Q$DIR\E\/old" line 2: a bare token, taken as "line-2 write TOKEN": give it an id and a scope/,
         'a bare token is warned of');
    is(call($h, 'PUT', '/admin/members/old.fan', $MEMBER,
            Authorization => "Bearer $T"),
       qq(200 {"stored":"member"}\n), 'a bare token writes');
    stop_checked($h, 'bare tokens');
    like(slurp("$h->{prefix}/logs/ids.log"), qr/^line-2 200$/m,
         'its id is its line');
}

done_testing();
