package Loyalty::Harness;

# Test harness for nginx-loyalty: runs the system nginx, with the module
# loaded, against Test::Base blocks; every block gets a fresh prefix,
# port, keys file and store.  Block sections, all optional:
#
#   main_config, http_config, config   main, http{} and server{} text
#   no_module                          do not load the module
#   workers, log_level                 default 1 and info
#   keys                               keys file, default k1 then k0
#   store                              "[kind]" lines, JSON Lines beneath,
#                                      imported with loyaltyctl; options
#                                      may follow: [codes --hosts a.com]
#   request                            "METHOD URI"
#   raw_request                        sent as is, use "eval" for \r\n
#   more_headers, request_body
#   error_code, response_body, response_body_like
#   response_headers                   "Name: value" or "!Name"
#   response_headers_like              "Name: regex"
#   error_log, error_log_like, no_error_log    one entry a line
#   config_error                       "nginx -t" must fail saying this
#
# Placeholders in any section: %%STORE%% %%KEYS%% %%PREFIX%% %%PORT%%
# %%ROOT%% %%NOW%% and %%SIGN(id,ttl[,kid])%%, ttl like -1h, 30m, 2d.
# The admin API: %%ADMIN%% is "loyalty_admin; loyalty_admin_token FILE;"
# with the test tokens file (%%ADMIN_TOKENS%%: id "writer" of scope write,
# $ADMIN_TOKEN, and id "reader" of scope read, $ADMIN_READ_TOKEN, also
# %%ADMIN_TOKEN%% and %%ADMIN_READ_TOKEN%%); admin_request() sends the
# write token.
# Every block that runs nginx also fails on a worker crash, [alert] or
# [emerg] unless error_log asks for it, and on a non-graceful stop.
#
# Sanitized runs (t/sanitize, `make test-asan`): LOYALTY_MODULE and
# LOYALTY_CTL name the sanitized builds, nginx is started with
# LD_PRELOAD=$LOYALTY_PRELOAD, and sanitizer reports go to files in a
# directory of this script's own under $LOYALTY_SANITIZE: a block, a
# no_crash() and done_testing() fail if a report appeared since the last
# check, and show it.
#
# Member cookie contract (implemented independently here and in C):
#
#   value = ID "~" EXP "~" KID "~" MAC
#   ID    member id, 1-64 chars of [A-Za-z0-9_.-]
#   EXP   expiry, unix seconds, decimal
#   KID   key id, 1-16 chars of [A-Za-z0-9_-]
#   MAC   base64url, no padding (43 chars), of
#         HMAC-SHA256(secret, "member~" ID "~" EXP "~" KID)
#         where secret is the key's hex string decoded to bytes
#
# Attribution cookie contract, likewise:
#
#   value = CODE "~" AT "~" KID "~" MAC, MAC of
#           HMAC-SHA256(secret, "ref2~" CODE "~" AT "~" KID "~" REFERRER)
#   (the referrer, the code's owner, is in the MAC, not in the value)
#   AT    the click, unix seconds; %%REF(code,referrer,age[,kid])%% signs
#         one whose click was age ago (age like ttl: 0, 5m, 31d)
#   ref_cookie_legacy() signs the old form, which named the referrer:
#   CODE "~" REFERRER "~" AT "~" KID "~" MAC, MAC of
#   HMAC-SHA256(secret, "ref~" CODE "~" REFERRER "~" AT "~" KID)
#
# Keys file: "KID SECRET_HEX" lines, "#" comments and blank lines allowed;
# the first key signs, all keys verify.

use strict;
use warnings;

use Test::Base -base;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256);
use File::Basename qw(dirname);
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use POSIX ();
use Test::More ();
use Time::HiRes qw(sleep);

our @EXPORT = qw(
    run_blocks done_testing
    sign_member member_cookie ref_cookie ref_cookie_legacy %TEST_KEYS
    start_nginx stop_nginx reload_nginx http_request error_log_text
    no_crash stop_checked sanitizer_check nginx_run
    loyaltyctl test_dir write_file slurp run_out new_store example_store
    mdb_put_raw
    schema_check
    $ADMIN_TOKEN $ADMIN_READ_TOKEN admin_request admin_auth
    write_admin_tokens lmdb_tool admin_send answer_of thread_policies
);

# fixed test secrets, not used anywhere else
our %TEST_KEYS = (
    k1 => '5ddf6f585beb20501799d3b7b6370cac263cda66dc4a6ff968c1a9c5006a6158',
    k0 => '55c91fc43a6dfb674fd6f8e4f0da91bd79b6afc2488d5b265efe6bc465a4afbc',
);

# the test admin tokens, "ID SCOPE TOKEN" lines
our $ADMIN_TOKEN = 'test-admin-writer-6f1d2c9a0b7e';
our $ADMIN_READ_TOKEN = 'test-admin-reader-3e8b5a71c40d';

my $ADMIN_TOKENS = "# nginx-loyalty test admin tokens: ID SCOPE TOKEN\n"
                   . "writer write $ADMIN_TOKEN\n"
                   . "reader read $ADMIN_READ_TOKEN\n";

my $DEFAULT_KEYS = "# nginx-loyalty test keys, the first one signs\n"
                   . "k1 $TEST_KEYS{k1}\nk0 $TEST_KEYS{k0}\n";

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my $NGINX = $ENV{LOYALTY_NGINX} // '/usr/sbin/nginx';
my $MODULE = $ENV{LOYALTY_MODULE} // "$ROOT/build/ngx_http_loyalty_module.so";
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";

# sanitizer reports of this script's processes land in $SAN_DIR
my $SAN_DIR;
my %SAN_SEEN;

if (my $san = $ENV{LOYALTY_SANITIZE}) {
    (my $script = $0) =~ s{.*/}{};
    $SAN_DIR = "$san/$script";
    mkdir $SAN_DIR;
    # nginx's workers are not root
    chmod 01777, $SAN_DIR or die "chmod $SAN_DIR: $!";
    # later options win over earlier ones; UBSan reports through ASan
    $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '',
                                                   "log_path=$SAN_DIR/asan";
}

# nginx with the sanitized module: the runtimes preloaded, no leak check
# (the stock nginx leaves its own allocations to exit())
my %NGINX_ENV = !$ENV{LOYALTY_PRELOAD} ? () : (
    LD_PRELOAD => $ENV{LOYALTY_PRELOAD},
    ASAN_OPTIONS => ($ENV{ASAN_OPTIONS} // '') . ':detect_leaks=0',
);

# like a packaged nginx: master as root, workers unprivileged
my $WORKER = $> != 0 ? undef
             : defined getpwnam('www-data') ? 'www-data' : 'nobody';

my %SECTIONS = map { $_ => 1 } qw(
    main_config http_config config store keys workers log_level no_module
    request raw_request more_headers request_body
    response_body response_body_like response_headers response_headers_like
    error_code error_log error_log_like no_error_log config_error
    ONLY SKIP LAST
);

my $OWNER = $$;
my %RUNNING;

END {
    # forked children must not stop the parent's servers
    if ($$ == $OWNER) {
        local $?;
        stop_nginx($_) for values %RUNNING;
    }
}

$SIG{$_} = sub { exit 1 } for qw(INT TERM);


# Test::Base runs its own comparisons at exit unless it saw a plan;
# an empty plan() records one without printing anything.

sub done_testing {
    sanitizer_check('end of the script');
    Test::Builder->new->plan;
    Test::More::done_testing(@_);
}


# the test tokens file, as an operator keeps it (root's alone): its path
sub write_admin_tokens {
    my ($path) = @_;
    _write($path, $ADMIN_TOKENS, 0600);
    return $path;
}


# {Authorization => "Bearer ..."}: the write token, or the read one
sub admin_auth {
    my ($scope) = @_;
    my $token = ($scope // 'write') eq 'read' ? $ADMIN_READ_TOKEN
                                              : $ADMIN_TOKEN;
    return { Authorization => "Bearer $token" };
}


# http_request with the write token: ($port or server, METHOD, URI, body,
# more headers, which may replace Authorization)
sub admin_request {
    my ($port, $method, $uri, $body, %hdr) = @_;
    return http_request($port, $method, $uri, { %{admin_auth()}, %hdr },
                        $body);
}


sub member_cookie {
    my ($id, $exp, $kid, $secret_hex) = @_;
    my $mac = hmac_sha256("member~$id~$exp~$kid", pack 'H*', $secret_hex);
    return join '~', $id, $exp, $kid, encode_base64url($mac);
}


sub ref_cookie {
    my ($code, $referrer, $at, $kid, $secret_hex) = @_;
    $kid //= 'k1';
    $secret_hex //= $TEST_KEYS{$kid} // croak "no test key \"$kid\"";
    my $mac = hmac_sha256("ref2~$code~$at~$kid~$referrer",
                          pack 'H*', $secret_hex);
    return join '~', $code, $at, $kid, encode_base64url($mac);
}


sub ref_cookie_legacy {
    my ($code, $referrer, $at, $kid, $secret_hex) = @_;
    $kid //= 'k1';
    $secret_hex //= $TEST_KEYS{$kid} // croak "no test key \"$kid\"";
    my $mac = hmac_sha256("ref~$code~$referrer~$at~$kid",
                          pack 'H*', $secret_hex);
    return join '~', $code, $referrer, $at, $kid, encode_base64url($mac);
}


sub sign_member {
    my ($id, $ttl, $kid, $secret_hex) = @_;
    $kid //= 'k1';
    $secret_hex //= $TEST_KEYS{$kid} // croak "no test key \"$kid\"";
    return member_cookie($id, time + _seconds($ttl), $kid, $secret_hex);
}


sub _seconds {
    my ($ttl) = @_;
    my %unit = ('' => 1, s => 1, m => 60, h => 3600, d => 86400, w => 604800);
    $ttl =~ /^(-?\d+)([smhdw]?)$/ or croak "bad ttl \"$ttl\"";
    return $1 * $unit{$2};
}


sub start_nginx {
    my $h = _prepare(@_);
    _start($h);
    return $h;
}


# returns the signal that stopped the master: QUIT unless it hung

sub stop_nginx {
    my ($h) = @_;
    delete $RUNNING{$h->{prefix}} or return;
    my $master = $h->{master} or return;

    # remembered now: a killed master would orphan them
    my @procs = ($master, _children($master));

    for my $sig (qw(QUIT TERM KILL)) {
        kill $sig, $sig eq 'KILL' ? @procs : $master;
        return $sig if _poll(sub { !grep { _alive($_) } @procs });
    }

    croak "nginx $master survived SIGKILL";
}


# new options are merged into the old ones and the files rewritten;
# true once only workers of the new configuration are running

sub reload_nginx {
    my ($h, %new) = @_;

    if (%new) {
        my $o = $h->{opts} = { %{$h->{opts}}, %new };
        _write_keys($h, $o->{keys}) if exists $new{keys};
        _write_conf($h, %$o);
    }

    my %old = map { $_ => 1 } _children($h->{master});
    my $logged = length error_log_text($h);
    my $failed;

    kill 'HUP', $h->{master} or croak "HUP $h->{master}: $!";

    _poll(sub {
        # a rejected configuration leaves the old workers running
        return $failed = 1
            if substr(error_log_text($h), $logged) =~ /\[emerg\]/;
        my @now = _children($h->{master});
        return @now >= $h->{workers} && !grep { $old{$_} } @now;
    }, 10) or return 0;

    return !$failed;
}


# for tests that start nginx themselves: no worker crashed, nothing logged
# at [alert] (or [emerg] unless expected)
sub no_crash {
    my ($h, $what, $emerg_ok) = @_;
    my @bad = grep { /exited on signal|\[alert\]/ || !$emerg_ok && /\[emerg\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$what: no crash, no alert") or diag(join "\n", @bad);
    sanitizer_check($what);
}


# sanitized runs: no sanitizer report since the last check (a report is
# shown and counted once); nothing to check otherwise
sub sanitizer_check {
    my ($what) = @_;
    return unless $SAN_DIR;

    my @new = grep { !$SAN_SEEN{$_}++ } sort glob "$SAN_DIR/*";
    Test::More::ok(!@new, "$what - no sanitizer report")
        or Test::More::diag(join '', map { "$_:\n" . _slurp($_) } @new);
}

# ... and nginx stops gracefully
sub stop_checked {
    my ($h, $what, $emerg_ok) = @_;
    no_crash($h, $what, $emerg_ok);
    is(stop_nginx($h), 'QUIT', "$what: nginx stops gracefully");
}


sub error_log_text {
    my ($h) = @_;
    return _slurp($h->{error_log});
}


sub loyaltyctl {
    return _run($CTL, @_);
}


# Helpers for tests that drive loyaltyctl without nginx.

# A temporary directory, removed at the end (kept under LOYALTY_KEEP if
# keep is asked for); in TMPDIR where others may pass through every part
# of its path, else in /tmp: the workers run unprivileged ($WORKER) and
# must traverse the path to what is in it.
sub test_dir {
    my (%o) = @_;
    my $name = $o{name} // 'test';

    # the six X are the template's placeholder that File::Temp (mkdtemp)
    # replaces
    return File::Temp->newdir("loyalty-$name-XXXXXX", DIR => _tmp_base(),
                              CLEANUP => !($o{keep} && $ENV{LOYALTY_KEEP}));
}


sub _tmp_base {
    my $dir = $ENV{TMPDIR};
    return '/tmp' unless defined $dir && $dir =~ m{^/} && -d $dir;

    my $path = '';
    for my $part ('', grep { length } split m{/}, $dir) {
        $path .= "$part/";
        my @st = stat $path or return '/tmp';
        return '/tmp' unless $st[2] & 0001;
    }

    return $dir;
}


sub write_file {
    my ($path, $bytes, $mode) = @_;
    open my $fh, '>:raw', $path or croak "$path: $!";
    print $fh $bytes;
    close $fh or croak "$path: $!";
    chmod $mode, $path or croak "chmod $path: $!" if defined $mode;
}


sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or croak "$path: $!";
    local $/;
    return scalar <$fh>;
}


# runs a command: (exit, stdout); stderr is left to the caller
sub run_out {
    my (@cmd) = @_;
    open my $fh, '-|', @cmd or croak "$cmd[0]: $!";
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}


# Checks a JSON file against its JSON Schema (python3-jsonschema, Draft
# 2020-12, one python3 run: jsonschema takes a second to load): a test
# that the file is valid, and one for each entry of %$bad, name => a sub
# that spoils the decoded file given it, that the schema rejects the copy
# so spoilt.  A single failed test when python3 has no jsonschema.
sub schema_check {
    my ($schema, $file, $bad) = @_;
    my $python = '/usr/bin/python3';

    if (system($python, '-c', 'import jsonschema') != 0) {
        Test::More::fail("$python with jsonschema (python3-jsonschema) "
                         . "needed");
        return;
    }

    my $tmp = test_dir();
    my $json = JSON::PP->new->utf8->canonical;

    # python3 validate.py SCHEMA FILE...: a line for each file, its first
    # error or "valid"
    write_file("$tmp/validate.py", <<'PY');
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1], encoding='utf-8'))
Draft202012Validator.check_schema(schema)
for path in sys.argv[2:]:
    errors = list(Draft202012Validator(schema).iter_errors(
        json.load(open(path, encoding='utf-8'))))
    print(errors[0].message if errors else 'valid')
PY

    my @what = sort keys %$bad;

    for my $i (0 .. $#what) {
        my $copy = $json->decode(slurp($file));
        $bad->{$what[$i]}->($copy);
        write_file("$tmp/bad-$i.json", $json->encode($copy));
    }

    my ($rc, $out) = run_out($python, "$tmp/validate.py", $schema, $file,
                             map { "$tmp/bad-$_.json" } 0 .. $#what);
    my @verdicts = split /\n/, $out;
    Test::More::is("$rc " . (shift(@verdicts) // ''), '0 valid',
                   "$file is valid");

    for my $i (0 .. $#what) {
        Test::More::ok(defined $verdicts[$i] && $verdicts[$i] ne 'valid',
                       "the schema rejects $what[$i]")
            or Test::More::diag($verdicts[$i]);
    }
}


# Builds one of the harness's C programs on the system's liblmdb,
# t/lib/Loyalty/lmdb-NAME.c, as DIR/NAME: (exit of cc, the program's path)
#   hold DIR                 holds the store's writer lock until stdin
#                            closes; says "locked" once it has it
#   shrink SRC DST PAGES     a compacted copy of SRC whose map has PAGES
#                            pages free; prints the map size
sub lmdb_tool {
    my ($dir, $name) = @_;
    my $src = "$ROOT/t/lib/Loyalty/lmdb-$name.c";
    croak "no $src" unless -f $src;
    my ($rc) = run_out('cc', '-O2', '-o', "$dir/$name", $src, '-llmdb');
    return ($rc, "$dir/$name");
}


# the scheduling policy of every thread of nginx $h's workers, from
# /proc (0 SCHED_OTHER, 3 SCHED_BATCH, ...): { "PID/TID" => policy }
sub thread_policies {
    my ($h) = @_;
    my %policy;
    for my $pid (_children($h->{master})) {
        for my $task (glob "/proc/$pid/task/*/stat") {
            open my $t, '<', $task or next;
            my ($tid, $rest) = (<$t> // '') =~ /^(\d+) \(.*\) (.*)$/s
                or next;
            # the policy is field 41 of stat; $rest starts at field 3
            $policy{"$pid/$tid"} = (split ' ', $rest)[38];
        }
    }
    return \%policy;
}


# an admin API request with the bearer $token sent to nginx $h, its
# answer left to answer_of(): the socket
sub admin_send {
    my ($h, $token, $method, $path, $body) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $h->{port}, Timeout => 5)
        or croak "connect: $!";
    print $sock "$method $path HTTP/1.1\r\nHost: localhost\r\n"
                . "Authorization: Bearer $token\r\nConnection: close\r\n"
                . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    return $sock;
}


# "STATUS BODY" of a request sent earlier on $sock and not yet answered,
# within $timeout seconds; "none" if no answer came
sub answer_of {
    my ($sock, $timeout) = @_;
    my $sel = IO::Select->new($sock);
    my $deadline = Time::HiRes::time() + $timeout;
    my $resp = '';
    while (1) {
        my $left = $deadline - Time::HiRes::time();
        last if $left <= 0 || !$sel->can_read($left);
        sysread($sock, $resp, 65536, length $resp) or last;
    }
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d+)} or return 'none';
    return "$status " . ($body // '');
}


# a fresh initialized store in a fresh directory, with the example files
# of the given kinds imported: ($dir_object, $store_path)
sub new_store {
    my (@kinds) = @_;
    my $tmp = test_dir();
    my $dir = "$tmp/store";
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'init');
    croak "init $dir: $rc $err" if $rc;
    for my $kind (@kinds) {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', $kind,
                                       "$ROOT/schema/examples/$kind.jsonl");
        croak "import $kind: $rc $err" if $rc;
    }
    return ($tmp, $dir);
}


# puts raw pairs (key, value, ...) into the sub-database $db of the store
# in $dir with mdb_load -T (every byte "\xx"): its wait status ($?), 0
# when every pair went in
sub mdb_put_raw {
    my ($dir, $db, @pairs) = @_;
    open my $fh, '|-', 'mdb_load', '-T', '-s', $db, $dir
        or croak "mdb_load: $!";
    binmode $fh;
    while (my ($k, $v) = splice @pairs, 0, 2) {
        print $fh map { unpack('H*', $_) =~ s/(..)/\\$1/gr . "\n" } $k, $v;
    }
    close $fh;
    return $?;
}


# store text (start_nginx's store) of the example files of the given
# kinds, schema/examples/KIND.jsonl (the rules: rules.json)
sub example_store {
    return join '', map {
        "[$_]\n" . slurp("$ROOT/schema/examples/$_."
                         . ($_ eq 'rules' ? 'json' : 'jsonl'))
    } @_;
}


# ($port or server, "METHOD", URI, {Name => value or [values]}, body)
# or ($port or server, raw request text)

sub http_request {
    my ($port, $method, $uri, $headers, $body) = @_;
    $port = $port->{port} if ref $port;

    return _exchange($port, $method) unless defined $uri;

    my @lines;
    for my $name (sort keys %{$headers || {}}) {
        my $v = $headers->{$name};
        push @lines, map { "$name: $_" } ref $v ? @$v : $v;
    }

    return _exchange($port, _request_text($method, $uri, \@lines, $body));
}


# run_blocks(store => $text, ...): defaults for blocks without the section
sub run_blocks {
    my (%defaults) = @_;
    _run_block($_, \%defaults) for blocks();
}


sub _run_block {
    my ($block, $defaults) = @_;
    my $name = $block->name;
    my $failures = _failures();

    my @unknown = grep { !$SECTIONS{$_} } @{$block->{_section_order}[0]};
    if (@unknown) {
        fail("$name - unknown sections: @unknown");
        return;
    }

    my $h = eval {
        _prepare(no_module => exists $block->{no_module},
                 map { $_ => _section($block, $_) // $defaults->{$_} }
                     qw(main_config http_config config store keys
                        workers log_level));
    };
    if (!$h) {
        fail("$name - setup");
        diag($@);
        return;
    }

    my %x = map { $_ => _expand($h, _section($block, $_) // $defaults->{$_}) }
            qw(request raw_request more_headers request_body
               response_body response_body_like response_headers
               response_headers_like error_code error_log error_log_like
               no_error_log config_error);

    if (defined $x{config_error}) {
        my ($rc, $out, $err) = _nginx($h, '-t');
        ok($rc != 0, "$name - nginx -t fails");
        ok(index("$out$err", _chomp($x{config_error})) >= 0,
           "$name - config error") or diag("$out$err");
        sanitizer_check($name);
        return;
    }

    my @res = eval {
        _start($h);

        my $raw = $x{raw_request};
        if (!defined $raw && defined $x{request}) {
            my ($method, $uri) = $x{request} =~ /^\s*(\S+)\s+(\S+)/
                or croak "bad request line \"$x{request}\"";
            $raw = _request_text($method, $uri, [_lines($x{more_headers})],
                                 $x{request_body});
        }

        defined $raw ? _exchange($h->{port}, $raw) : ();
    };

    if ($@) {
        fail("$name - run");
        diag($@);
    } elsif (@res) {
        _check_response($name, \%x, @res);
    }

    if ($h->{master}) {
        my $sig = stop_nginx($h);
        _check_log($name, \%x, error_log_text($h), $sig);
    }

    sanitizer_check($name);

    if (_failures() > $failures) {
        diag("error.log:\n" . _tail($h));
        diag("kept $h->{prefix}") if $ENV{LOYALTY_KEEP};
    }
}


sub _check_response {
    my ($name, $x, $status, $hdr, $body) = @_;

    if (defined $x->{error_code}) {
        is($status, _chomp($x->{error_code}), "$name - status");
    }

    if (defined $x->{response_body}) {
        is($body, $x->{response_body}, "$name - response body");
    }

    if (defined $x->{response_body_like}) {
        my $re = _chomp($x->{response_body_like});
        like($body, qr/$re/s, "$name - response body like");
    }

    for (_lines($x->{response_headers})) {
        if (/^!\s*(\S+)$/) {
            ok(!exists $hdr->{lc $1}, "$name - no header $1");
            next;
        }

        my ($n, $want) = /^([^:]+?)\s*:\s*(.*)$/
            or croak "bad response_headers line \"$_\"";
        my $got = $hdr->{lc $n};

        # a repeated header passes if any of its values matches
        $got = (grep { $_ eq $want } @$got) ? $want : join ' | ', @$got
            if ref $got;

        is($got, $want, "$name - header $n");
    }

    for (_lines($x->{response_headers_like})) {
        my ($n, $re) = /^([^:]+?)\s*:\s*(.*)$/
            or croak "bad response_headers_like line \"$_\"";
        my $got = $hdr->{lc $n};
        $got = join "\n", @$got if ref $got;
        like($got, qr/$re/m, "$name - header $n like");
    }
}


sub _check_log {
    my ($name, $x, $log, $sig) = @_;

    for (_lines($x->{error_log})) {
        ok(index($log, $_) >= 0, "$name - error_log: $_");
    }

    for (_lines($x->{error_log_like})) {
        like($log, qr/$_/m, "$name - error_log like: $_");
    }

    for (_lines($x->{no_error_log})) {
        ok(index($log, $_) < 0, "$name - no error_log: $_");
    }

    # crashes and alerts fail every block unless it asks for them
    my $expected = join "\n", _lines($x->{error_log}),
                              _lines($x->{error_log_like});
    my @bad = grep {
        /exited on signal \d+/ ? $expected !~ /signal/
        : /\[alert\]/ && $expected !~ /alert/
          || /\[emerg\]/ && $expected !~ /emerg/
    } split /\n/, $log;

    push @bad, "nginx needed SIG$sig to stop" if $sig ne 'QUIT';

    ok(!@bad, "$name - no crash, alert or emerg") or diag(join "\n", @bad);
}


sub _prepare {
    my (%o) = @_;

    my $dir = test_dir(name => 'nginx', keep => 1);
    my $p = $dir->dirname;

    # workers must reach the store through the prefix
    chmod 0755, $p or croak "chmod $p: $!";

    for (qw(conf logs html store)) {
        mkdir "$p/$_" or croak "mkdir $p/$_: $!";
    }

    # as in Debian's prefix, for "load_module modules/..." from
    # /etc/nginx/modules-enabled (t/deb.t includes it)
    symlink '/usr/lib/nginx/modules', "$p/modules"
        if -d '/usr/lib/nginx/modules';

    my $h = {
        dir => $dir,
        prefix => $p,
        port => _free_port(),
        store => "$p/store",
        keys => "$p/conf/loyalty.keys",
        conf => "$p/conf/nginx.conf",
        error_log => "$p/logs/error.log",
        admin_tokens => "$p/conf/admin.tokens",
        opts => \%o,
    };

    write_admin_tokens($h->{admin_tokens});

    _write_keys($h, $o{keys});

    # bare nginx needs no store, and loyaltyctl may not be built
    if (defined $o{store} || !$o{no_module}) {
        _make_store($h, _expand($h, $o{store}));
    }

    _write_conf($h, %o);

    return $h;
}


sub _write_keys {
    my ($h, $text) = @_;
    my $keys = _expand($h, $text // $DEFAULT_KEYS);

    $h->{keyring} = {};
    $h->{signer} = undef;

    for (split /\n/, $keys) {
        next if /^\s*(#|$)/;
        my ($kid, $hex) = split ' ';
        $h->{signer} //= $kid;
        $h->{keyring}{$kid} = $hex // '';
    }

    # as an admin would install it: read by the master (root) alone
    _write($h->{keys}, $keys, 0600);
}


sub _make_store {
    my ($h, $text) = @_;
    my @imports;

    for (split /\n/, $text // '') {
        if (/^\s*\[(\w+)((?:\s+\S+)*)\]\s*$/) {
            push @imports, [$1, '', split ' ', $2];
        } elsif (/\S/) {
            croak "store data before any [kind] line" unless @imports;
            $imports[-1][1] .= "$_\n";
        }
    }

    _ctl_ok('-s', $h->{store}, 'init');

    my $n = 0;
    for (@imports) {
        my ($kind, $data, @options) = @$_;
        my $file = "$h->{prefix}/conf/import-" . $n++ . "-$kind.jsonl";
        _write($file, $data);
        _ctl_ok('-s', $h->{store}, 'import', $kind, $file, @options);
    }
}


sub _ctl_ok {
    my ($rc, $out, $err) = loyaltyctl(@_);
    croak "loyaltyctl @_: exit $rc\n$out$err" if $rc;
}


sub _write_conf {
    my ($h, %o) = @_;
    my $p = $h->{prefix};
    my %x = map { $_ => _expand($h, $o{$_}) // '' }
            qw(main_config http_config config);

    $h->{workers} = 0 + ($o{workers} // 1);
    my $level = ($o{log_level} // 'info') =~ s/\s+//gr;

    my $load = $o{no_module} ? '' : "load_module $MODULE;";
    my $user = $WORKER ? "user $WORKER;" : '';

    # Debian's compiled-in temp paths point into /var/lib/nginx
    my $temp = join "\n    ", map { "${_}_temp_path $p/${_}_temp;" }
                                    qw(client_body proxy fastcgi uwsgi scgi);

    _write($h->{conf}, <<"END");
$load
$user
worker_processes $h->{workers};
daemon on;
master_process on;
pid $p/logs/nginx.pid;
error_log $h->{error_log} $level;

$x{main_config}

events {
    worker_connections 256;
}

http {
    access_log $p/logs/access.log;
    $temp
    default_type text/plain;

$x{http_config}

    server {
        listen 127.0.0.1:$h->{port};
        server_name localhost;

$x{config}
    }
}
END
}


sub _expand {
    my ($h, $text) = @_;
    return undef unless defined $text;

    my %simple = (
        STORE => $h->{store},
        KEYS => $h->{keys},
        PREFIX => $h->{prefix},
        PORT => $h->{port},
        ROOT => $ROOT,
        NOW => time,
        ADMIN => "loyalty_admin; loyalty_admin_token $h->{admin_tokens};",
        ADMIN_TOKENS => $h->{admin_tokens},
        ADMIN_TOKEN => $ADMIN_TOKEN,
        ADMIN_READ_TOKEN => $ADMIN_READ_TOKEN,
    );

    $text =~ s{%%SIGN\(([^()]*)\)%%}{_sign($h, split /\s*,\s*/, $1)}ge;
    $text =~ s{%%REF\(([^()]*)\)%%}{_ref($h, split /\s*,\s*/, $1)}ge;
    $text =~ s{%%(\w+)%%}
              {$simple{$1} // croak "unknown placeholder %%$1%%"}ge;

    return $text;
}


# a kid missing from the block's keys still signs with a test key,
# to check that the module rejects it

sub _sign {
    my ($h, @args) = @_;
    my ($id, $ttl, $kid) = @args;
    croak "%%SIGN(@args)%%: want id, ttl[, kid]" if @args < 2 || @args > 3;
    $kid //= $h->{signer} // 'k1';
    my $secret = $h->{keyring}{$kid} // $TEST_KEYS{$kid}
                 // croak "no key \"$kid\" to sign with";
    return sign_member($id, $ttl, $kid, $secret);
}


sub _ref {
    my ($h, @args) = @_;
    my ($code, $referrer, $age, $kid) = @args;
    croak "%%REF(@args)%%: want code, referrer, age[, kid]"
        if @args < 3 || @args > 4;
    $kid //= $h->{signer} // 'k1';
    my $secret = $h->{keyring}{$kid} // $TEST_KEYS{$kid}
                 // croak "no key \"$kid\" to sign with";
    return ref_cookie($code, $referrer, time - _seconds($age), $kid, $secret);
}


sub _start {
    my ($h) = @_;

    my ($rc, $out, $err) = _nginx($h, '-t');
    croak "nginx -t failed:\n$out$err" if $rc;

    ($rc, $out, $err) = _nginx($h);
    croak "nginx failed to start:\n$out$err" if $rc;

    $RUNNING{$h->{prefix}} = $h;

    _poll(sub {
        my ($pid) = _slurp("$h->{prefix}/logs/nginx.pid") =~ /^(\d+)/
            or return 0;
        $h->{master} = $pid;
        return _listening($h->{port}) && _children($pid) >= $h->{workers};
    }) or croak "nginx did not come up on port $h->{port}";
}


# runs the block's nginx with more arguments, e.g. "-t": (exit, out, err);
# with the environment a sanitized module needs
sub nginx_run {
    return _nginx(@_);
}


sub _nginx {
    my ($h, @args) = @_;
    local @ENV{keys %NGINX_ENV} = values %NGINX_ENV;
    return _run($NGINX, '-p', $h->{prefix}, '-c', $h->{conf},
                '-e', $h->{error_log}, @args);
}


sub _request_text {
    my ($method, $uri, $lines, $body) = @_;
    my @h = @$lines;

    unshift @h, 'Host: localhost' unless grep { /^host\s*:/i } @h;
    push @h, 'Connection: close' unless grep { /^connection\s*:/i } @h;
    push @h, 'Content-Length: ' . length $body
        if defined $body
           && !grep { /^(content-length|transfer-encoding)\s*:/i } @h;

    return join("\r\n", "$method $uri HTTP/1.1", @h, '', '') . ($body // '');
}


sub _exchange {
    my ($port, $raw) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port,
                                     Timeout => 10)
        or croak "connect to 127.0.0.1:$port: $!";

    {
        # nginx may answer a bad request and close before reading it all
        local $SIG{PIPE} = 'IGNORE';
        print $sock $raw;
    }

    my $sel = IO::Select->new($sock);
    my $deadline = Time::HiRes::time() + 10;
    my $resp = '';

    while (1) {
        $sel->can_read($deadline - Time::HiRes::time())
            or croak "no response within 10 s, got:\n$resp";
        sysread($sock, $resp, 65536, length $resp) or last;
    }

    # no status for anything but HTTP, e.g. a connection closed by "444"
    my ($head, $body) = split /\r?\n\r?\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/\d\.\d (\d{3})}
        or return (undef, {}, $resp);

    my %hdr;
    for (split /\r?\n/, $head) {
        push @{$hdr{lc $1}}, $2 if /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
    }

    $body //= '';
    $body = _unchunk($body)
        if join(',', @{$hdr{'transfer-encoding'} || []}) =~ /chunked/i;

    for (keys %hdr) {
        $hdr{$_} = join ', ', @{$hdr{$_}} unless $_ eq 'set-cookie';
    }

    return ($status, \%hdr, $body);
}


sub _unchunk {
    my ($data) = @_;
    my $out = '';

    while ($data =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $size = hex $1 or last;
        $out .= substr $data, 0, $size, '';
        $data =~ s/^\r\n//;
    }

    return $out;
}


sub _run {
    my (@cmd) = @_;

    # files, not pipes: a daemonizing nginx keeps inherited descriptors
    my ($out, $err) = (File::Temp->new, File::Temp->new);

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $out;
        open STDERR, '>&', $err;
        exec { $cmd[0] } @cmd or print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;

    return ($rc, _slurp("$out"), _slurp("$err"));
}


sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp')
        or croak "no free port: $!";
    return $s->sockport;
}


sub _listening {
    my ($port) = @_;
    my $hex = sprintf '%04X', $port;

    open my $fh, '<', '/proc/net/tcp' or croak "/proc/net/tcp: $!";
    return grep { my @f = split; $f[1] =~ /:$hex$/ && $f[3] eq '0A' } <$fh>;
}


sub _children {
    my ($ppid) = @_;
    my @kids;

    for (glob '/proc/[0-9]*/stat') {
        my ($pid, $state, $parent) =
            _slurp($_) =~ /^(\d+) \(.*\) (\S) (\d+) /s or next;
        push @kids, $pid if $parent == $ppid && $state ne 'Z';
    }

    return @kids;
}


# a daemon's zombie counts as gone: the container's init may not reap it

sub _alive {
    my ($pid) = @_;
    my ($state) = _slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S) /s;
    return defined $state && $state ne 'Z';
}


sub _poll {
    my ($cond, $seconds) = @_;
    my $deadline = Time::HiRes::time() + ($seconds // 5);

    until ($cond->()) {
        return 0 if Time::HiRes::time() > $deadline;
        sleep 0.05;
    }

    return 1;
}


sub _section {
    my ($block, $name) = @_;
    return exists $block->{$name} ? join '', @{$block->{$name}} : undef;
}


sub _lines {
    my ($text) = @_;
    return map { s/^\s+|\s+$//gr } grep { /\S/ } split /\n/, $text // '';
}


sub _chomp {
    my ($text) = @_;
    return $text =~ s/\s+\z//r;
}


sub _failures {
    return scalar grep { !$_ } Test::Builder->new->summary;
}


sub _tail {
    my ($h) = @_;
    my @lines = split /^/, error_log_text($h);
    return join '', @lines > 40 ? @lines[-40 .. -1] : @lines;
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh> // '';
}


sub _write {
    my ($path, $text, $mode) = @_;
    open my $fh, '>', $path or croak "$path: $!";
    print $fh $text;
    close $fh or croak "$path: $!";
    chmod $mode, $path or croak "chmod $path: $!" if $mode;
}


1;
