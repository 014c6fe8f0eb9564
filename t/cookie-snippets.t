# The member cookie snippets a shop copies (docs/snippets/member-cookie.*,
# in PHP, Node.js, Python and Go): each against every test vector of
# docs/member-cookie-vectors.json (checked against the C code by
# build/unit/cookie_vectors.t), then against the live module, whose
# verdict on what each language signs and forges is the last word.
# The vectors file is checked against its schema here too.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use JSON::PP ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $VECTORS = "$ROOT/docs/member-cookie-vectors.json";
my $SCHEMA = "$ROOT/schema/member-cookie-vectors.schema.json";
my $SNIPPETS = "$ROOT/docs/snippets";
my $DRIVERS = "$ROOT/t/cookie-snippets";
my $PYTHON = '/usr/bin/python3';

my $json = JSON::PP->new->utf8->canonical;
my $doc = $json->decode(slurp($VECTORS));
my $tmp = test_dir();


# the vectors file and its schema

# the file is valid, and the schema can reject
schema_check($SCHEMA, $VECTORS, {
    'an unknown reason' => sub { $_[0]{invalid}[0]{reason} = 'stale' },
    'a valid cookie with a space' =>
        sub { $_[0]{valid}[0]{cookie} =~ s/~/ ~/ },
    'a limit changed' => sub { $_[0]{limits}{cookie_max} = 146 },
    'a field more' => sub { $_[0]{valid}[0]{extra} = 1 },
});

my @valid = @{$doc->{valid}};
my @invalid = @{$doc->{invalid}};
my @unsignable = @{$doc->{unsignable}};
my @bad_keys = @{$doc->{bad_keys_files}};
my %reasons = map { $_->{reason} => 1 } @invalid;
is(join(',', sort keys %reasons),
   'bad-mac,expired,malformed,oversized,unknown-kid',
   'invalid vectors of every reason');


# each language's driver: a command that takes "vectors FILE",
# "sign KEYS ID TTL" or "verify KEYS VALUE"

my %driver;

sub interpreter {
    my ($lang, $cmd, $package) = @_;
    my ($rc, $path) = run_out('sh', '-c', "command -v $cmd");
    chomp $path;
    ok($rc == 0 && $path, "$lang: $cmd is installed")
        or diag("install $package (sh .ci/install-deps)");
    return $rc == 0 ? $path : undef;
}

if (my $php = interpreter('PHP', 'php', 'php-cli')) {
    $driver{PHP} = [$php, "$DRIVERS/driver.php",
                    "$SNIPPETS/member-cookie.php"];
}

if (my $node = interpreter('Node.js', 'node', 'nodejs')) {
    $driver{'Node.js'} = [$node, "$DRIVERS/driver.js",
                          "$SNIPPETS/member-cookie.js"];
}

if (interpreter('Python', $PYTHON, 'python3')) {
    $driver{Python} = [$PYTHON, "$DRIVERS/driver.py",
                       "$SNIPPETS/member-cookie.py"];
}

if (my $go = interpreter('Go', 'go', 'golang-go')) {
    # built once, offline, as a module holding the snippet as a package
    my $dir = "$tmp/go";
    mkdir $_ or die "$_: $!" for $dir, "$dir/membercookie";
    write_file("$dir/go.mod", "module loyaltytest\n\ngo 1.19\n");
    copy("$SNIPPETS/member-cookie.go", "$dir/membercookie/member-cookie.go")
        or die $!;
    copy("$DRIVERS/driver.go", "$dir/main.go") or die $!;

    # offline, and nothing kept outside the test's directory
    local %ENV = (%ENV, GOCACHE => "$tmp/gocache",
                  GOPATH => "$tmp/gopath", GOPROXY => 'off',
                  GOFLAGS => '-mod=mod', GOENV => 'off', CGO_ENABLED => 0);
    my ($rc, $out) = run_out('sh', '-c',
                             "cd $dir && $go build -o driver . 2>&1");
    is($rc, 0, 'Go: the snippet and its driver build') or diag($out);
    $driver{Go} = ["$dir/driver"] if $rc == 0;

    ($rc, $out) = run_out(dirname($go) . '/gofmt', '-l',
                          "$SNIPPETS/member-cookie.go", "$DRIVERS/driver.go");
    is("$rc $out", '0 ', 'Go: gofmt has nothing to say');
}

sub show {
    return $json->encode($_[0] // { missing => 1 });
}

sub drive {
    my ($lang, @args) = @_;
    my ($rc, $out) = run_out(@{$driver{$lang}}, @args);
    return ($rc, $out);
}


# every vector

my @keys = map { [$_->{kid}, $_->{secret_hex}] } @{$doc->{keys}};

for my $lang (sort keys %driver) {
    my ($rc, $out) = drive($lang, 'vectors', $VECTORS);
    is($rc, 0, "$lang: runs the vectors");
    my @res = map { $json->decode($_) } grep { /\S/ } split /\n/, $out;
    my %got;
    for (@res) {
        # the one key that is not a result names the vector's kind
        my ($kind) = grep { !/^(signed|verified|parsed|at_|after)/ }
                     keys %$_;
        $kind eq 'keys' ? ($got{keys} = $_->{keys})
                        : ($got{$kind}[$_->{$kind}] = $_);
    }

    is_deeply($got{keys}, \@keys, "$lang: reads keys_file as the keys");

    for my $i (0 .. $#valid) {
        my $v = $valid[$i];
        my $r = $got{valid}[$i] // {};
        is($r->{signed}, $v->{cookie}, "$lang signs: $v->{name}");
        ok(($r->{at_now} // '') eq $v->{member}
           && ($r->{at_expiry} // '') eq $v->{member}
           && !defined $r->{after},
           "$lang verifies until expiry, not after: $v->{name}")
            or diag(show($r));
    }

    for my $i (0 .. $#invalid) {
        my $v = $invalid[$i];
        my $r = $got{invalid}[$i];
        ok($r && exists $r->{verified} && !defined $r->{verified},
           "$lang refuses ($v->{reason}): $v->{name}")
            or diag(show($r));
    }

    for my $i (0 .. $#unsignable) {
        my $r = $got{unsignable}[$i];
        ok($r && exists $r->{signed} && !defined $r->{signed},
           "$lang will not sign: $unsignable[$i]{name}")
            or diag(show($r));
    }

    for my $i (0 .. $#bad_keys) {
        my $r = $got{bad_keys}[$i];
        ok($r && defined $r->{parsed} && !$r->{parsed},
           "$lang refuses the keys file: $bad_keys[$i]{name}");
    }
}


# the live module: what each language signs is accepted, what it forges
# refused; the keys file is the vectors', as nginx reads it

my $h = start_nginx(
    keys => $doc->{keys_file},
    store => "[tiers]\n{\"name\":\"gold\",\"rank\":3}\n[members]\n"
             . "{\"id\":\"alice\",\"tier\":\"gold\",\"stage\":\"member\"}\n"
             . "{\"id\":\"mallory\",\"tier\":\"gold\",\"stage\":\"member\"}\n",
    http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n",
    config => 'location / { '
              . 'return 200 "[$loyalty_identity][$loyalty_member]\n"; }');

# k1 as the signing key's id, with another key's secret
write_file("$tmp/wrong.keys", "k1 $doc->{keys}[1]{secret_hex}\n");

sub seen {
    my ($cookie) = @_;
    my ($status, undef, $body) = http_request($h, 'GET', '/',
        { Cookie => "loyalty_member=$cookie" });
    return ($status // 'none') . " " . ($body // '');
}

my ($rc, $ctl_cookie) = loyaltyctl('sign-member', 'alice', '--keys',
                                   $h->{keys}, '--ttl', '1h');
chomp $ctl_cookie;
is(seen($ctl_cookie), "200 [valid][alice]\n", 'loyaltyctl signs for alice');
(my $ctl_tampered = $ctl_cookie) =~ s/^alice~/mallory~/;

for my $lang (sort keys %driver) {
    my ($rc, $cookie) = drive($lang, 'sign', $h->{keys}, 'alice', 3600);
    chomp $cookie;
    like($cookie, qr/\Aalice~\d{10}~k1~[A-Za-z0-9_-]{43}\z/,
         "$lang signs for alice with the first key");
    is(seen($cookie), "200 [valid][alice]\n", "$lang: nginx accepts it");

    (my $tampered = $cookie) =~ s/^alice~/mallory~/;
    is(seen($tampered), "200 [invalid][]\n",
       "$lang: nginx refuses it moved to mallory");

    ($rc, my $forged) = drive($lang, 'sign', "$tmp/wrong.keys", 'alice',
                              3600);
    chomp $forged;
    ok($rc == 0 && $forged =~ /^alice~\d+~k1~/ && $forged ne $cookie,
       "$lang signs with the wrong secret");
    is(seen($forged), "200 [invalid][]\n",
       "$lang: nginx refuses the wrong secret's cookie");

    ($rc, my $expired) = drive($lang, 'sign', $h->{keys}, 'alice', -60);
    chomp $expired;
    is(seen($expired), "200 [expired][]\n",
       "$lang: nginx finds a minute-old expiry expired");

    ($rc, my $id) = drive($lang, 'verify', $h->{keys}, $ctl_cookie);
    is($id, "alice\n", "$lang verifies loyaltyctl's cookie");
    ($rc, $id) = drive($lang, 'verify', $h->{keys}, $ctl_tampered);
    is($id, "REFUSED\n", "$lang refuses it moved to mallory");
}

stop_checked($h, 'snippets against nginx');

done_testing();
