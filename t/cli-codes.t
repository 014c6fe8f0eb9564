# loyaltyctl and share codes: import codes, get code, mint-code,
# revoke-code, clicks, and what stat and verify say about the codes and
# clicks databases.  Raw records are built here from schema/lmdb-layout.md
# and put in with mdb_load, so that the document is checked too.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use Time::Local qw(timegm);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $EXAMPLES = "$ROOT/schema/examples";
my $ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
my $MALL = 'mall.example.cn';


# helpers

# a store with the example tiers and members
sub shop {
    return new_store(qw(tiers members));
}

# writes the text next to the store and imports it as codes
sub import_codes {
    my ($tmp, $dir, $text, @opts) = @_;
    my $file = "$tmp/codes.jsonl";
    write_file($file, $text);
    return (loyaltyctl('-s', $dir, 'import', 'codes', $file, @opts), $file);
}

sub import_stdin {
    my ($dir, $text, @opts) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $CTL, '-s', $dir, 'import',
                    'codes', '-', @opts);
    binmode $in;
    print $in $text;
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

sub get_code {
    my ($dir, $code) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'code', $code);
    return $rc ? "exit $rc: $err" : $out;
}

sub entries {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_stat', '-s', $db, $dir);
    return $rc == 0 && $out =~ /^\s*Entries: (\d+)$/m ? $1 : "mdb_stat $rc";
}

# key => value, raw bytes, of one sub-database
sub raw_db {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-s', $db, $dir);
    die "mdb_dump -s $db: exit $rc" if $rc;
    my ($data) = $out =~ /^HEADER=END\n(.*)^DATA=END$/ms
        or die "mdb_dump: no data";
    my %kv = map { pack 'H*', $_ } map { /^ (\S*)$/ } split /\n/, $data;
    return \%kv;
}

# every database, keys and values, and the entries; not the map size
sub snapshot {
    my ($dir) = @_;
    my ($rc, $dump) = run_out('mdb_dump', '-a', $dir);
    die "mdb_dump -a: exit $rc" if $rc;
    $dump =~ s/^mapsize=.*\n//mg;
    return $dump;
}

# a code record v1 as schema/lmdb-layout.md lays it out
sub code_rec {
    my (%f) = @_;
    my $member = $f{member} // 'lin.fan';
    my $campaign = $f{campaign} // '';
    my $target = $f{target} // '';
    return pack('C C C C v v q< q< q<',
                $f{version} // 1, $f{flags} // 0,
                $f{member_len} // length $member,
                $f{campaign_len} // length $campaign,
                $f{target_len} // length $target, $f{reserved} // 0,
                $f{created} // 0, $f{expires} // 0, $f{max} // 0)
           . $member . $campaign . $target;
}

# the clicks key and record v1
sub clicks_key {
    my ($code, $day) = @_;
    return $code . "\0" . pack('N', $day);
}

sub clicks_rec {
    my (@counts) = @_;
    return pack('C x7 Q<6', 1, @counts);
}

sub day_of {
    my ($y, $m, $d) = @_;
    return timegm(0, 0, 0, $d, $m - 1, $y) / 86400;
}

sub utc {
    my ($y, $mo, $d, $h, $mi, $s) = @_;
    return timegm($s // 0, $mi // 0, $h // 0, $d, $mo - 1, $y);
}

sub code_json {
    my ($code, $member, %f) = @_;
    return qq({"code":"$code","member":"$member")
           . (defined $f{campaign} ? qq(,"campaign":"$f{campaign}") : '')
           . (defined $f{target} ? qq(,"target":"$f{target}") : '')
           . qq(,"created_at":"$f{created_at}")
           . (defined $f{expires_at} ? qq(,"expires_at":"$f{expires_at}") : '')
           . (defined $f{max_clicks} ? qq(,"max_clicks":$f{max_clicks}) : '')
           . ',"revoked":' . ($f{revoked} ? 'true' : 'false') . "}\n";
}

sub clicks_json {
    my ($code, $day, @c) = @_;
    return qq({"code":"$code","day":"$day","total":$c[0],"unique":$c[1],)
           . qq("bot":$c[2],"self":$c[3],"rejected":$c[4],)
           . qq("attributed":$c[5]}\n);
}


# usage

{
    delete local $ENV{LOYALTY_STORE};

    my ($rc, $out, $err) = loyaltyctl('--help');
    for my $line ('import members|tiers|prices|codes FILE',
                  'get code CODE', 'mint-code MEMBER', 'revoke-code CODE',
                  'clicks [CODE] [--since YYYY-MM-DD]')
    {
        like($out, qr/^  \Q$line\E/m, "--help lists $line");
    }

    my %usage = (
        'mint-code' => "usage: loyaltyctl -s DIR mint-code MEMBER "
                       . "[--campaign C] [--target T]\n",
        'revoke-code' => "usage: loyaltyctl -s DIR revoke-code CODE\n",
        clicks => "usage: loyaltyctl -s DIR clicks [CODE] "
                  . "[--since YYYY-MM-DD]\n",
    );
    for my $cmd (sort keys %usage) {
        for my $flag (qw(--help -h)) {
            my ($rc, $out, $err) = loyaltyctl($cmd, $flag);
            is("$rc|$err", '0|', "$cmd $flag: exit 0 without a store");
            is(substr($out, 0, length $usage{$cmd}), $usage{$cmd},
               "$cmd $flag: its usage on stdout");
        }
    }

    ($rc, $out) = loyaltyctl('get', '--help');
    like($out, qr/^ {7}loyaltyctl -s DIR get code CODE$/m,
         'get --help shows get code');
    ($rc, $out) = loyaltyctl('import', '--help');
    my $line = '       loyaltyctl -s DIR import codes FILE '
               . "[--hosts HOST[,HOST...]]\n";
    ok(index($out, $line) > 0, 'import --help shows --hosts');
    ($rc, $out) = loyaltyctl('mint-code', 'a', '--frob', '--help');
    is($rc, 0, '--help wins over a bad option');

    for my $args (['clicks'], ['clicks', 'ABC'], ['mint-code', 'lin.fan'],
                  ['revoke-code', 'ABC'], ['get', 'code', 'ABC'],
                  ['import', 'codes', "$EXAMPLES/codes.jsonl"])
    {
        ($rc, $out, $err) = loyaltyctl(@$args);
        is("$rc|$out|$err",
           "2||loyaltyctl: no store: use -s DIR or set LOYALTY_STORE\n",
           "@$args without a store: exit 2");
    }
}

{
    my ($tmp, $dir) = shop();
    my $before = snapshot($dir);

    for my $args (['mint-code'], ['mint-code', 'a', 'b'],
                  ['mint-code', 'lin.fan', '--frob'],
                  ['mint-code', 'lin.fan', '--target'],
                  ['revoke-code'], ['revoke-code', 'ABC', 'DEF'],
                  ['clicks', 'ABC', 'DEF'], ['clicks', '--frob'],
                  ['clicks', '--since'],
                  ['get', 'code'], ['get', 'code', 'ABC', 'DEF'],
                  ['get', 'codes', 'ABC'],
                  ['import', 'codes'],
                  ['import', 'codes', "$EXAMPLES/codes.jsonl", 'x'],
                  ['import', 'members', "$EXAMPLES/members.jsonl",
                   '--hosts', $MALL],
                  ['import', 'codes', "$EXAMPLES/codes.jsonl", '--frob'])
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, @$args);
        is("$rc|$out", '2|', "@$args: exit 2, nothing on stdout");
        like($err, qr/^usage: loyaltyctl/m, "@$args: usage on stderr");
    }

    for my $hosts ('', ',', 'a,,b', 'a,', ',a', 'a b', 'a/b', 'a:80',
                   'user@a', 'x' x 254)
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                          "$EXAMPLES/codes.jsonl",
                                          '--hosts', $hosts);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --hosts \"$hosts\"\n",
           "import --hosts \"$hosts\": exit 2");
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
                                       '--hosts', $hosts);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --hosts \"$hosts\"\n",
           "mint-code --hosts \"$hosts\": exit 2");
    }

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
        "$EXAMPLES/codes.jsonl", map { ('--hosts', "h$_.example") } 1 .. 65);
    is($rc, 2, 'import with 65 hosts: exit 2');

    is(snapshot($dir), $before, 'usage errors change nothing');
}


# import codes: the examples

my %EXAMPLE = (
    'WANG-NAPPIES' => code_json('WANG-NAPPIES', 'wang.partner',
        campaign => 'nappies-128', target => '/products/nappies-128',
        created_at => '2026-09-01T01:00:00Z'),
    'WANG-MALL' => code_json('WANG-MALL', 'wang.partner',
        campaign => 'spring-festival',
        target => "https://$MALL/shop/wang-partner?from=share",
        created_at => '2026-11-20T12:00:00Z',
        expires_at => '2027-02-28T15:59:59Z'),
    'LI-VIP-TEA' => code_json('LI-VIP-TEA', 'li.member',
        campaign => 'tea-gift', target => '/products/tea-gift',
        created_at => '2026-11-01T02:00:00Z', max_clicks => 200),
    'CHEN_SOFA' => code_json('CHEN_SOFA', 'chen.customer',
        campaign => 'summer-sofa', target => '/products/sofa-298',
        created_at => '2026-06-12T04:00:00Z',
        expires_at => '2026-08-31T15:59:59Z'),
    'SUN2026' => code_json('SUN2026', 'sun.blocked',
        created_at => '2026-03-15T02:00:00Z', revoked => 1),
    'K7XQ4MZP2H' => code_json('K7XQ4MZP2H', 'lin.fan',
        created_at => '2026-10-02T01:20:00Z'),
);

{
    my ($tmp, $dir) = shop();
    my $before = snapshot($dir);

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                      "$EXAMPLES/codes.jsonl");
    is("$rc|$out", '1|', 'the examples without --hosts: exit 1');
    is($err, "loyaltyctl: $EXAMPLES/codes.jsonl line 2: target host "
             . "\"$MALL\" is not in --hosts; nothing imported\n",
       'the examples without --hosts: line 2, the host');
    is(snapshot($dir), $before, 'the examples without --hosts: unchanged');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                   "$EXAMPLES/codes.jsonl",
                                   '--hosts', $MALL);
    is("$rc|$out|$err", "0|imported 6 codes\n|",
       'the examples with --hosts: 6 codes');
    is(entries($dir, 'codes'), 6, 'mdb_stat: 6 codes');

    for my $code (sort keys %EXAMPLE) {
        is(get_code($dir, $code), $EXAMPLE{$code}, "get code $code");
    }
    is(get_code($dir, 'li-vip-tea'), $EXAMPLE{'LI-VIP-TEA'},
       'a code imported in lower case is found in lower case');
    is(get_code($dir, 'Wang-Mall'), $EXAMPLE{'WANG-MALL'},
       'and in mixed case');
    is(get_code($dir, 'k7xq4mzp2h'), $EXAMPLE{K7XQ4MZP2H},
       'get code k7xq4mzp2h');

    # the bytes, per schema/lmdb-layout.md
    my $raw = raw_db($dir, 'codes');
    is(join(',', sort keys %$raw),
       'CHEN_SOFA,K7XQ4MZP2H,LI-VIP-TEA,SUN2026,WANG-MALL,WANG-NAPPIES',
       'keys are the codes in upper case');
    is(unpack('H*', $raw->{'WANG-MALL'}),
       unpack('H*', code_rec(flags => 0x02, member => 'wang.partner',
                             campaign => 'spring-festival',
                             target => "https://$MALL/shop/wang-partner"
                                       . '?from=share',
                             created => utc(2026, 11, 20, 12),
                             expires => utc(2027, 2, 28, 15, 59, 59))),
       'WANG-MALL: raw code record');
    is(unpack('H*', $raw->{'LI-VIP-TEA'}),
       unpack('H*', code_rec(flags => 0x04, member => 'li.member',
                             campaign => 'tea-gift',
                             target => '/products/tea-gift',
                             created => utc(2026, 11, 1, 2), max => 200)),
       'LI-VIP-TEA: raw code record, max_clicks');
    is(unpack('H*', $raw->{SUN2026}),
       unpack('H*', code_rec(flags => 0x01, member => 'sun.blocked',
                             created => utc(2026, 3, 15, 2))),
       'SUN2026: raw code record, revoked');
    is(unpack('H*', substr $raw->{SUN2026}, 0, 8), '01010b0000000000',
       'SUN2026: version 1, flags 0x01, M 11, C 0, T 0, reserved 0');
    is(length $raw->{K7XQ4MZP2H}, 32 + length 'lin.fan',
       'K7XQ4MZP2H: no campaign, no target');

    # the examples again, stdin, the host in other case, --hosts=
    ($rc, $out, $err) = import_stdin($dir, slurp("$EXAMPLES/codes.jsonl"),
                                     '--hosts=shop.example,MALL.Example.CN');
    is("$rc|$out|$err", "0|imported 6 codes\n|",
       'stdin, --hosts=A,B, hosts compared without regard to case');
    is(entries($dir, 'codes'), 6, 'a re-import replaces, adds nothing');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', '--hosts',
                                   'shop.example', '--hosts', $MALL,
                                   'codes', "$EXAMPLES/codes.jsonl");
    is("$rc|$out|$err", "0|imported 6 codes\n|",
       '--hosts twice, before the kind');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       'verify: the example shop with codes is consistent');
}


# import codes: repeated codes, created_at, members, targets

{
    my ($tmp, $dir) = shop();

    my $t0 = time;
    my ($rc, $out, $err) = import_codes($tmp, $dir, <<'END');
{"code":"abc-12","member":"lin.fan","campaign":"first"}
{"code":"other7","member":"zhou.fan"}
{"code":"ABC-12","member":"li.member","campaign":"second","revoked":false}
{"code":"Abc-12","member":"zhao.member","max_clicks":1,"revoked":true}
END
    my $t1 = time;
    is("$rc|$out|$err", "0|imported 4 codes\n|",
       'a repeated code: every line counted');
    is(entries($dir, 'codes'), 2, 'codes differing in case are one code');
    my $got = get_code($dir, 'abc-12');
    my ($created) = $got =~ /"created_at":"([^"]+)"/;
    is($got, code_json('ABC-12', 'zhao.member', created_at => $created,
                       max_clicks => 1, revoked => 1),
       'the last line wins, in full');
    my $c = unpack 'q<', substr(raw_db($dir, 'codes')->{'ABC-12'}, 8, 8);
    ok($c >= $t0 && $c <= $t1, 'created_at defaults to the import time')
        or diag("$c not in $t0..$t1");

    # bounds that are accepted
    ($rc, $out, $err) = import_codes($tmp, $dir, join "\n",
        '{"code":"' . 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' . '","member":"' . ('m' x 64) . '"}',
        '{"code":"a_b-C9","member":"lin.fan","campaign":"'
            . ('c' x 64) . '"}',
        '{"code":"t1024x","member":"lin.fan","target":"/'
            . ('x' x 1023) . '"}',
        '{"code":"max-99","member":"lin.fan","max_clicks":9223372036854775807,'
            . '"expires_at":"2100-12-31T23:59:59Z",'
            . '"created_at":"2000-01-01T00:00:00Z"}',
        '{"code":"root-1","member":"lin.fan","target":"/"}',
        '{"code":"port-1","member":"lin.fan","target":"https://'
            . $MALL . ':8443/x?y=1#z"}',
        '{"code":"upper1","member":"lin.fan","target":"HTTP://MALL.EXAMPLE.CN"}',
        '{"code":"query1","member":"lin.fan","target":"/p?u=http://evil.com/"}',
        '{"code":"abc","member":"lin.fan","vanity":true}');
    is("$rc|$out|$err", "1||loyaltyctl: $tmp/codes.jsonl line 1: "
       . "unknown member \"" . ('m' x 64) . "\"; nothing imported\n",
       'a member that is not in the store');

    write_file("$tmp/m.jsonl",
               '{"id":"' . ('m' x 64) . '","tier":"basic","stage":"fan"}');
    loyaltyctl('-s', $dir, 'import', 'members', "$tmp/m.jsonl");
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                   "$tmp/codes.jsonl", '--hosts', $MALL);
    is("$rc|$out|$err", "0|imported 9 codes\n|loyaltyctl: "
       . "$tmp/codes.jsonl line 9: warning: vanity code \"ABC\" is easy "
       . "to guess: limit misses with limit_req\n",
       'once the member is in the store, the bounds import; a vanity code '
       . 'of 3 with a warning');
    is(get_code($dir, 'MAX-99'),
       code_json('MAX-99', 'lin.fan', created_at => '2000-01-01T00:00:00Z',
                 expires_at => '2100-12-31T23:59:59Z',
                 max_clicks => '9223372036854775807'),
       'extreme times and max_clicks');
    like(get_code($dir, 'upper1'),
         qr/^\{"code":"UPPER1","member":"lin\.fan",
            "target":"HTTP:\/\/MALL\.EXAMPLE\.CN","created_at":"[^"]+",
            "revoked":false\}\n\z/x,
         'a target is kept as written');
    like(get_code($dir, 'T1024X'), qr/"target":"\/x{1023}"/,
         'a target of 1024 bytes');

    # a member imported earlier in the same store: the store's, not a file's
    my ($tmp2, $d2) = new_store('tiers');
    ($rc, $out, $err) = import_codes($tmp2, $d2,
        qq({"code":"early1","member":"lin.fan"}\n));
    like($err, qr/ line 1: unknown member "lin\.fan"; nothing imported$/,
         'codes before their members: rejected');
    loyaltyctl('-s', $d2, 'import', 'members', "$EXAMPLES/members.jsonl");
    ($rc, $out) = loyaltyctl('-s', $d2, 'import', 'codes',
                             "$tmp2/codes.jsonl");
    is("$rc $out", "0 imported 1 codes\n", 'codes after their members');

    ($rc, $out, $err) = import_codes($tmp2, $d2, "\r\n  \n");
    is("$rc|$out|$err", "0|imported 0 codes\n|", 'only blank lines');
}


# issue 18: a new code must be hard to guess; vanity codes say so, and
# codes already in the store go on

{
    my ($tmp, $dir) = shop();
    my $why = 'is too easy to guess: a new code needs at least 6 '
              . 'characters, 4 of them different, and 2^28 possible codes '
              . 'of its kind (letters alone: 6 characters, digits alone: '
              . '9); or "vanity": true; nothing imported';

    for my $weak (qw(Q7Z abcde 12345678 AAAAAA ABABAB ---___ 1-1-1-)) {
        my ($rc, $out, $err, $file) = import_codes($tmp, $dir,
            qq({"code":"ok-code-7","member":"lin.fan"}\n)
            . qq({"code":"$weak","member":"lin.fan"}\n));
        is("$rc|$out|$err", "1||loyaltyctl: $file line 2: code \"" . uc($weak)
           . "\" $why\n", "weak code $weak: refused, naming the line");
    }
    is(entries($dir, 'codes'), 0, 'weak codes: nothing imported');

    my ($rc, $out, $err) = import_codes($tmp, $dir,
        join '', map { qq({"code":"$_","member":"lin.fan"}\n) }
                     qw(123456789 abcdef a1b2c3 Q7ZK4MPX2R lin-fan));
    is("$rc|$out|$err", "0|imported 5 codes\n|",
       'strong enough: 9 digits, 6 letters, 6 of letters and digits');

    my $file;
    ($rc, $out, $err, $file) = import_codes($tmp, $dir,
        qq({"code":"Q7Z","member":"lin.fan","vanity":true}\n));
    is("$rc|$out|$err", "0|imported 1 codes\n|loyaltyctl: $file line 1: "
       . "warning: vanity code \"Q7Z\" is easy to guess: limit misses with "
       . "limit_req\n", 'a vanity code: imported, with a warning');
    like(get_code($dir, 'q7z'), qr/"vanity":true\}\n\z/,
         'a vanity code says so');

    # a weak code already in the store (from before the rule) goes on
    mdb_put_raw($dir, 'codes', 'OLD' => code_rec(created => utc(2026, 1, 1)));
    ($rc, $out, $err, $file) = import_codes($tmp, $dir,
        qq({"code":"old","member":"lin.fan","revoked":true}\n));
    is("$rc|$out|$err", "0|imported 1 codes\n|loyaltyctl: $file line 1: "
       . "warning: code \"OLD\" is easy to guess; kept, as it is already in "
       . "the store\n", 'a weak code already in the store: updated, warned');
    like(get_code($dir, 'old'), qr/"revoked":true\}\n\z/,
         'the old code is revoked');
}


# import codes: all or nothing

my $GOOD1 = qq({"code":"good-1","member":"lin.fan"}\n);
my $GOOD2 = qq({"code":"WANG-NAPPIES","member":"li.member","revoked":true}\n);
my $GOOD3 = qq({"code":"good-3","member":"zhou.fan","target":"/x"}\n);

my $c = sub { qq({"code":"bad","member":"lin.fan",$_[0]}) };
my $CODE_RULE = '"code" must be 3-32 characters of [A-Za-z0-9_-]';
my $TARGET_RULE = '"target" must be a path on this site ("/...") or an '
    . 'http or https URL with a host name and no user information, at most '
    . '1024 printable ASCII characters';
my $HOST = sub { qq(target host "$_[0]" is not in --hosts) };

my @bad = (
    ['bad JSON', '{"code":', qr/bad JSON: .+/],
    ['an array', '[{"code":"abc","member":"lin.fan"}]',
     'expected a JSON object'],
    ['code 5', '{"code":5,"member":"lin.fan"}', '"code" must be a string'],
    ['code null', '{"code":null,"member":"lin.fan"}',
     '"code" must be a string'],
    ['member 5', '{"code":"abc","member":5}', '"member" must be a string'],
    ['missing code', '{"member":"lin.fan"}', '"code" is required'],
    ['missing member', '{"code":"abc"}', '"member" is required'],
    ['unknown field', $c->('"owner":"lin.fan"'), 'unknown field "owner"'],
    ['a member line', '{"id":"a","tier":"basic","stage":"fan"}',
     'unknown field "id"'],
    ['duplicate key', $c->('"code":"other"'),
     qr/bad JSON: duplicate object key near '"code"'/],
    ['code of 2 characters', '{"code":"ab","member":"lin.fan"}', $CODE_RULE],
    ['empty code', '{"code":"","member":"lin.fan"}', $CODE_RULE],
    ['code of 33 characters',
     '{"code":"' . ('c' x 33) . '","member":"lin.fan"}', $CODE_RULE],
    ['code of 10 KB',
     '{"code":"' . ('K' x 10240) . '","member":"lin.fan"}', $CODE_RULE],
    ['code with a space', '{"code":"ab c","member":"lin.fan"}', $CODE_RULE],
    ['code with a dot', '{"code":"ab.c","member":"lin.fan"}', $CODE_RULE],
    ['code with a slash', '{"code":"ab/c","member":"lin.fan"}', $CODE_RULE],
    ['code with a plus', '{"code":"ab+c","member":"lin.fan"}', $CODE_RULE],
    ['code with a NUL', '{"code":"abc\u0000","member":"lin.fan"}',
     qr/bad JSON: \\u0000 is not allowed .*/],
    ['code with a newline', '{"code":"abc\n","member":"lin.fan"}',
     $CODE_RULE],
    ['code in UTF-8', qq({"code":"\xc3\xbcber","member":"lin.fan"}),
     $CODE_RULE],
    ['code with a fullwidth letter',
     qq({"code":"AB\xef\xbc\xa3","member":"lin.fan"}), $CODE_RULE],
    ['invalid UTF-8 in a code', qq({"code":"ab\xff\xfe","member":"lin.fan"}),
     qr/bad JSON: unable to decode byte 0xff near .*/],
    ['invalid UTF-8 in a target', $c->(qq("target":"/\xc3")),
     qr/bad JSON: unable to decode byte 0xc3 near .*/],
    ['unknown member', '{"code":"abc","member":"ghost"}',
     'unknown member "ghost"'],
    ['member with a space', '{"code":"abc","member":"a b"}',
     '"member" must be 1-64 characters of [A-Za-z0-9_.-]'],
    ['member of 65 characters',
     '{"code":"abc","member":"' . ('m' x 65) . '"}',
     '"member" must be 1-64 characters of [A-Za-z0-9_.-]'],
    ['campaign with a space', $c->('"campaign":"a b"'),
     '"campaign" must be 1-64 characters of [A-Za-z0-9_.-]'],
    ['empty campaign', $c->('"campaign":""'),
     '"campaign" must be 1-64 characters of [A-Za-z0-9_.-]'],
    ['campaign of 65 characters', $c->('"campaign":"' . ('c' x 65) . '"'),
     '"campaign" must be 1-64 characters of [A-Za-z0-9_.-]'],
    ['campaign 7', $c->('"campaign":7'), '"campaign" must be a string'],
    ['off-site target', $c->('"target":"https://evil.com/x"'),
     $HOST->('evil.com')],
    ['off-site target with a port', $c->('"target":"http://evil.com:80"'),
     $HOST->('evil.com')],
    ['a host that ends like an allowed one',
     $c->('"target":"https://evil' . $MALL . '/"'),
     $HOST->("evil$MALL")],
    ['a host that starts like an allowed one',
     $c->('"target":"https://' . $MALL . '.evil.com/"'),
     $HOST->("$MALL.evil.com")],
    ['target //evil.com', $c->('"target":"//evil.com"'), $TARGET_RULE],
    ['target ///evil.com', $c->('"target":"///evil.com"'), $TARGET_RULE],
    ['target /\\evil.com', $c->('"target":"/\\\\evil.com"'), $TARGET_RULE],
    ['target \\\\evil.com', $c->('"target":"\\\\\\\\evil.com"'),
     $TARGET_RULE],
    ['target with user information',
     $c->('"target":"http://shop.example@evil.com"'), $TARGET_RULE],
    ['target with user information and an allowed host',
     $c->('"target":"https://evil.com@' . $MALL . '/"'), $TARGET_RULE],
    ['target with a backslash in the URL',
     $c->('"target":"https://' . $MALL . '\\\\@evil.com/"'), $TARGET_RULE],
    ['target javascript:', $c->('"target":"javascript:alert(1)"'),
     $TARGET_RULE],
    ['target data:', $c->('"target":"data:text/html,x"'), $TARGET_RULE],
    ['target ftp://', $c->('"target":"ftp://' . $MALL . '/"'),
     $TARGET_RULE],
    ['target without a slash', $c->('"target":"products/1"'), $TARGET_RULE],
    ['target http:/host', $c->('"target":"http:/' . $MALL . '"'),
     $TARGET_RULE],
    ['target with a tab', $c->('"target":"/a\tb"'), $TARGET_RULE],
    ['target with a space', $c->('"target":"/a b"'), $TARGET_RULE],
    ['target with a line break', $c->('"target":"/a\r\nLocation: x"'),
     $TARGET_RULE],
    ['target IPv6 literal', $c->('"target":"http://[::1]/"'), $TARGET_RULE],
    ['target port 0', $c->('"target":"http://' . $MALL . ':0/"'),
     $TARGET_RULE],
    ['target port 65536', $c->('"target":"http://' . $MALL . ':65536/"'),
     $TARGET_RULE],
    ['target with an empty host', $c->('"target":"https:///x"'),
     $TARGET_RULE],
    ['target in UTF-8', $c->(qq("target":"/\xe4\xbc\x9a\xe5\x91\x98")),
     $TARGET_RULE],
    ['empty target', $c->('"target":""'), $TARGET_RULE],
    ['target of 1025 bytes', $c->('"target":"/' . ('x' x 1024) . '"'),
     $TARGET_RULE],
    ['created_at 2026-02-29', $c->('"created_at":"2026-02-29T00:00:00Z"'),
     '"created_at" must be an RFC 3339 date-time'],
    ['created_at a number', $c->('"created_at":1700000000'),
     '"created_at" must be a string'],
    ['expires_at without an offset',
     $c->('"expires_at":"2026-12-01T00:00:00"'),
     '"expires_at" must be an RFC 3339 date-time'],
    ['expires_at past year 9999',
     $c->('"expires_at":"9999-12-31T23:59:59-01:00"'),
     '"expires_at" must be an RFC 3339 date-time'],
    ['expires_at past 2100',
     $c->('"expires_at":"2101-01-01T00:00:00Z"'),
     '"expires_at" must be between 2000-01-01T00:00:00Z and '
     . '2100-12-31T23:59:59Z'],
    ['created_at in year 0',
     $c->('"created_at":"0000-01-01T00:00:00Z"'),
     '"created_at" must be between 2000-01-01T00:00:00Z and '
     . '2100-12-31T23:59:59Z'],
    ['max_clicks 0', $c->('"max_clicks":0'),
     '"max_clicks" must be between 1 and 9223372036854775807'],
    ['max_clicks -1', $c->('"max_clicks":-1'),
     '"max_clicks" must be between 1 and 9223372036854775807'],
    ['max_clicks 1.5', $c->('"max_clicks":1.5'),
     '"max_clicks" must be an integer'],
    ['max_clicks "5"', $c->('"max_clicks":"5"'),
     '"max_clicks" must be an integer'],
    ['max_clicks 2^63', $c->('"max_clicks":9223372036854775808'),
     qr/bad JSON: too big integer near '9223372036854775808'/],
    ['revoked "yes"', $c->('"revoked":"yes"'), '"revoked" must be a boolean'],
    ['revoked 1', $c->('"revoked":1'), '"revoked" must be a boolean'],
    ['revoked null', $c->('"revoked":null'), '"revoked" must be a boolean'],
    ['overlong line', $c->('"revoked":true' . (' ' x 65536)),
     'line longer than 65536 bytes'],
);

{
    my ($tmp, $dir) = shop();
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                      "$EXAMPLES/codes.jsonl", '--hosts',
                                      $MALL);
    is($rc, 0, 'all or nothing: the example codes') or diag($err);
    my $before = snapshot($dir);

    for (@bad) {
        my ($name, $line, $reason) = @$_;

        # the bad line is line 4, after a blank line
        my ($rc, $out, $err, $file) = import_codes($tmp, $dir,
            "$GOOD1$GOOD2\n$line\n$GOOD3", '--hosts', "shop.example,$MALL");
        is("$rc|$out", '1|', "$name: exit 1, nothing on stdout");
        my $re = ref $reason ? $reason : qr/\Q$reason\E/;
        like($err,
             qr/\Aloyaltyctl: \Q$file\E line 4: $re; nothing imported\n\z/,
             "$name: line 4 and the reason");
    }
    is(snapshot($dir), $before, 'after every bad file, the store is the same');

    # and stdin, the first line, the last line without a newline
    ($rc, $out, $err) = import_stdin($dir, qq({"code":"x"}\r\n$GOOD1));
    is($err, "loyaltyctl: - line 1: \"member\" is required; nothing "
             . "imported\n", 'stdin: line 1');
    ($rc, $out, $err) = import_stdin($dir,
        $GOOD1 . $GOOD3 . '{"code":"abc","member":"lin.fan","target":"'
        . "https://$MALL/\"}");
    is($err, "loyaltyctl: - line 3: target host \"$MALL\" is not in "
             . "--hosts; nothing imported\n",
       'stdin: the last line, off-site, without --hosts');
    is(snapshot($dir), $before, 'and still unchanged');

    # a long file whose last line is bad
    my $text = join '', map { qq({"code":"bulk-$_","member":"lin.fan"}\n) }
                            1 .. 20_000;
    ($rc, $out, $err) = import_codes($tmp, $dir,
        $text . qq({"code":"bulk-x","member":"nobody"}\n));
    like($err, qr/ line 20001: unknown member "nobody"; nothing imported$/,
         '20,001 lines, the last one bad');
    is(snapshot($dir), $before, '20,001 lines: the store is unchanged');
    ($rc, $out, $err) = import_codes($tmp, $dir, $text);
    is("$rc|$out|$err", "0|imported 20000 codes\n|", '20,000 codes');
    is(entries($dir, 'codes'), 20_006, 'mdb_stat: 20,006 codes');
}


# mint-code

{
    my ($tmp, $dir) = shop();

    my $t0 = time;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan');
    my $t1 = time;
    is($rc, 0, 'mint-code: exit 0');
    is($err, '', 'mint-code: nothing on stderr');
    like($out, qr/\A[$ALPHABET]{10}\n\z/, 'mint-code: 10 characters and a '
         . 'newline') or diag($out);
    chomp(my $code = $out);
    my $got = get_code($dir, lc $code);
    my ($created) = $got =~ /"created_at":"([^"]+)"/;
    is($got, code_json($code, 'lin.fan', created_at => $created),
       'mint-code: the record');
    my $rec = raw_db($dir, 'codes')->{$code};
    my $c = unpack 'q<', substr($rec, 8, 8);
    ok($c >= $t0 && $c <= $t1, 'mint-code: created now');
    is(unpack('H*', $rec),
       unpack('H*', code_rec(member => 'lin.fan', created => $c)),
       'mint-code: the raw record');

    # every option
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', '--campaign',
        'double-11', 'wang.partner', '--target', "https://$MALL/s?x=1",
        '--expires', '30d', '--max-clicks', '500',
        '--hosts', "shop.example,$MALL");
    is("$rc|$err", '0|', 'mint-code with every option, around MEMBER');
    chomp($code = $out);
    $rec = raw_db($dir, 'codes')->{$code};
    my ($cr, $ex) = unpack 'q< q<', substr($rec, 8, 16);
    is($ex - $cr, 30 * 86400, '--expires 30d: 30 days after created_at');
    is(unpack('H*', $rec),
       unpack('H*', code_rec(flags => 0x06, member => 'wang.partner',
                             campaign => 'double-11',
                             target => "https://$MALL/s?x=1",
                             created => $cr, expires => $cr + 30 * 86400,
                             max => 500)),
       'mint-code with every option: the raw record');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'li.member',
        '--target=/products/tea-gift', '--campaign=tea', '--max-clicks=1');
    is("$rc|$err", '0|', 'mint-code --opt=value, a path target');
    chomp($code = $out);
    like(get_code($dir, $code),
         qr/^\{"code":"$code","member":"li\.member","campaign":"tea",
            "target":"\/products\/tea-gift","created_at":"[^"]+",
            "max_clicks":1,"revoked":false\}\n\z/x,
         'mint-code --opt=value: the record');

    my %dur = ('12h' => 43200, '1h30m' => 5400, '90' => 90, '2w' => 1209600,
               '1M' => 2592000, '1y' => 31536000, '1d12h' => 129600);
    for my $d (sort keys %dur) {
        ($rc, $out) = loyaltyctl('-s', $dir, 'mint-code', 'zhou.fan',
                                 '--expires', $d);
        chomp($code = $out);
        my ($cr, $ex) = unpack 'q< q<',
                        substr(raw_db($dir, 'codes')->{$code} // '', 8, 16);
        is("$rc " . (($ex // 0) - ($cr // 0)), "0 $dur{$d}",
           "--expires $d: $dur{$d} seconds");
    }

    my $before = snapshot($dir);

    for my $d ('', '0', '0s', '-1h', '5x', 'h', '1.5h', '1 h', '1h-', '30 d',
               '1m1h', '100000y', '99999999999999999999')
    {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
                                       '--expires', $d);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --expires \"$d\"\n",
           "--expires \"$d\": exit 2");
    }

    for my $n ('0', '-1', '1.5', 'abc', '', '+5', ' 5', '5 ', '0x10',
               '9223372036854775808')
    {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
                                       '--max-clicks', $n);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --max-clicks \"$n\"\n",
           "--max-clicks \"$n\": exit 2");
    }

    for my $v ('a b', '', 'c' x 65, 'a/b', "\xc3\xbc") {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
                                       '--campaign', $v);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --campaign \"$v\"\n",
           "--campaign \"$v\": exit 2");
    }

    for my $t ('//evil.com', '/\\evil.com', 'http://shop.example@evil.com',
               "https://evil.com\@$MALL/", 'javascript:alert(1)', '',
               'products', '/a b', '/' . ('x' x 1024), 'http://[::1]/')
    {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
                                       '--target', $t, '--hosts', $MALL);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --target \"$t\"\n",
           "--target \"$t\": exit 2");
    }

    for my $case (['https://evil.com/x', 'evil.com', []],
                  ["https://$MALL/x", $MALL, []],
                  ["https://$MALL.evil.com/", "$MALL.evil.com", [$MALL]],
                  ['http://evil.com:8080/', 'evil.com', ['shop.example']])
    {
        my ($t, $host, $hosts) = @$case;
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'lin.fan',
            '--target', $t, map { ('--hosts', $_) } @$hosts);
        is("$rc|$out|$err", "1||loyaltyctl: target host \"$host\" is not "
                            . "in --hosts\n",
           "--target $t with --hosts @$hosts: exit 1");
    }

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'ghost');
    is("$rc|$out|$err", "1||loyaltyctl: no member \"ghost\"\n",
       'mint-code for an unknown member: exit 1');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', 'LIN.FAN');
    is("$rc|$out|$err", "1||loyaltyctl: no member \"LIN.FAN\"\n",
       'member ids are not case-insensitive');
    for my $id ('a b', 'm' x 65, '', "\xc3\xbc") {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code', $id);
        is("$rc|$out|$err",
           "1||loyaltyctl: \"$id\" is not a valid member id\n",
           "mint-code \"$id\": exit 1");
    }
    is(snapshot($dir), $before, 'refused mints change nothing');

    my $tmp2 = test_dir();
    ($rc, $out, $err) = loyaltyctl('-s', "$tmp2/none", 'mint-code', 'lin.fan');
    is("$rc|$out", '3|', 'mint-code into a missing store: exit 3');
    ok(!-e "$tmp2/none", 'mint-code does not create a store');
}

# minted codes are unique and use the whole alphabet
{
    my ($tmp, $dir) = shop();
    my (%seen, %chars, $bad);
    my $n = 400;
    for (1 .. $n) {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'mint-code',
                                          'wang.partner', '--campaign',
                                          'bulk');
        $bad++ unless $rc == 0 && $err eq ''
                      && $out =~ /\A[$ALPHABET]{10}\n\z/;
        chomp $out;
        $seen{$out}++;
        $chars{$_}++ for split //, $out;
    }
    is($bad // 0, 0, "$n mints: each prints 10 characters of the alphabet");
    is(scalar(keys %seen), $n, "$n mints: $n different codes");
    is(entries($dir, 'codes'), $n, "$n mints: $n records");
    is(join('', sort keys %chars), $ALPHABET,
       'every character of the alphabet is used, and no other');
    # 4000 characters: about 129 each; below 60 is 6 standard deviations
    my @rare = grep { $chars{$_} < 60 } keys %chars;
    is("@rare", '', 'no character is rare');
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out", '0|', "$n minted codes verify");
}


# a collision is retried: RAND_bytes replaced through LD_PRELOAD by one
# that repeats in every process
SKIP: {
    my $tmp = test_dir();
    write_file("$tmp/rand.c", <<'C');
#include <stdlib.h>

static unsigned  calls;

int
RAND_bytes(unsigned char *buf, int num)
{
    int  i;

    if (getenv("TEST_RAND_FAIL")) {
        return 0;
    }

    for (i = 0; i < num; i++) {
        buf[i] = getenv("TEST_RAND_FIXED") ? 0 : (calls * num + i) % 248;
    }

    calls++;
    return 1;
}
C
    system('cc', '-shared', '-fPIC', '-o', "$tmp/rand.so", "$tmp/rand.c") == 0
        or skip('no C compiler for the RAND_bytes stand-in', 8);

    my ($store_tmp, $dir) = shop();
    local $ENV{LD_PRELOAD} = "$tmp/rand.so";

    # every process draws the same bytes: 0-31, then 32-63, 64-95
    my @got = map { join '|', loyaltyctl('-s', $dir, 'mint-code', 'lin.fan') }
                  1 .. 3;
    is($got[0], "0|23456789AB\n|", 'the first mint takes the first draw');
    is($got[1], "0|3456789ABC\n|", 'a collision: the second draw');
    is($got[2], "0|456789ABCD\n|", 'two collisions: the third draw');
    is(entries($dir, 'codes'), 3, 'three codes, none replaced');

    local $ENV{TEST_RAND_FIXED} = 1;
    is(join('|', loyaltyctl('-s', $dir, 'mint-code', 'zhou.fan')),
       "0|2222222222\n|", 'the same draw every time: the first mint');
    my $before = snapshot($dir);
    is(join('|', loyaltyctl('-s', $dir, 'mint-code', 'zhou.fan')),
       "3||loyaltyctl: 8 codes minted in a row were in use\n",
       'the same draw every time: the second gives up after 8, exit 3');

    local $ENV{TEST_RAND_FAIL} = 1;
    is(join('|', loyaltyctl('-s', $dir, 'mint-code', 'zhou.fan')),
       "3||loyaltyctl: no random bytes to mint a code\n",
       'no random bytes: exit 3');
    is(snapshot($dir), $before, 'neither changed the store');
}


# revoke-code and get code

{
    my ($tmp, $dir) = shop();
    loyaltyctl('-s', $dir, 'import', 'codes', "$EXAMPLES/codes.jsonl",
               '--hosts', $MALL);
    my $raw = raw_db($dir, 'codes');

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', 'li-Vip-tea');
    is("$rc|$out|$err", '0||', 'revoke-code in mixed case: exit 0, silent');
    (my $want = $EXAMPLE{'LI-VIP-TEA'}) =~ s/"revoked":false/"revoked":true/;
    is(get_code($dir, 'LI-VIP-TEA'), $want, 'revoked, nothing else changed');
    my $after = raw_db($dir, 'codes');
    is(unpack('H*', $after->{'LI-VIP-TEA'}),
       unpack('H*', substr($raw->{'LI-VIP-TEA'}, 0, 1) . "\x05"
                    . substr($raw->{'LI-VIP-TEA'}, 2)),
       'the raw record differs in the flags byte only: 0x04 | 0x01');
    delete @$after{'LI-VIP-TEA'};
    delete @$raw{'LI-VIP-TEA'};
    is_deeply($after, $raw, 'the other codes are untouched');

    my $snap = snapshot($dir);
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', 'LI-VIP-TEA');
    is("$rc|$out|$err", '0||', 'revoking twice: exit 0');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', 'sun2026');
    is("$rc|$out|$err", '0||', 'revoking an imported revoked code: exit 0');
    is(snapshot($dir), $snap, 'revoking a revoked code changes nothing');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', 'nope-1');
    is("$rc|$out|$err", "1||loyaltyctl: no code \"nope-1\"\n",
       'revoke-code of an absent code: exit 1');
    for my $code ('ab', 'a b', 'c' x 33, 'ab.c', "\xc3\xbcber", '') {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', $code);
        is("$rc|$out|$err", "1||loyaltyctl: \"$code\" is not a valid code\n",
           "revoke-code \"$code\": exit 1");
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'code', $code);
        is("$rc|$out|$err", "1||loyaltyctl: \"$code\" is not a valid code\n",
           "get code \"$code\": exit 1");
    }
    is(snapshot($dir), $snap, 'absent and invalid codes change nothing');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'code', 'nope-1');
    is("$rc|$out|$err", "1||loyaltyctl: no code \"nope-1\"\n",
       'get code of an absent code: exit 1');

    # a code for another member's id is not a member
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'member', 'SUN2026');
    is($rc, 1, 'a code is not a member id');

    # records that do not decode
    is(mdb_put_raw($dir, 'codes', 'BROKEN' => "\1\0",
                                  'VER2' => code_rec(version => 2)), 0,
       'raw code records loaded');
    for my $code (qw(broken Ver2)) {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'code', $code);
        is("$rc|$out|$err", "1||loyaltyctl: code \"$code\" does not decode\n",
           "get code $code: does not decode");
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'revoke-code', $code);
        is("$rc|$out|$err", "1||loyaltyctl: code \"$code\" does not decode\n",
           "revoke-code $code: does not decode, not rewritten");
    }
    is(unpack('H*', raw_db($dir, 'codes')->{BROKEN}), '0100',
       'the broken record is left as it was');
}


# clicks

my $D20 = day_of(2026, 11, 20);
my $MAXDAY = day_of(9999, 12, 31);
my $BIG = '9223372036854775807';

my @CLICKS = (
    # key, counts
    [clicks_key('WANG-NAPPIES', $D20 + 2), [40, 31, 5, 1, 0, 12]],
    [clicks_key('ABCD', $D20), [1, 1, 0, 0, 0, 1]],
    [clicks_key('ABC', $D20 + 1), [7, 6, 1, 0, 2, 3]],
    [clicks_key('ABC', $D20), [3, 3, 0, 1, 0, 1]],
    [clicks_key('ABC', 0), [1, 0, 0, 0, 0, 0]],
    [clicks_key('ABC', $MAXDAY), [$BIG, $BIG, 0, 0, 0, 0]],
    [clicks_key('WANG-NAPPIES', $D20), [120, 98, 17, 2, 0, 41]],
    [clicks_key('AB_-9', 256), [0, 0, 0, 0, 0, 0]],
);

my %CLICK_LINE = (
    'ABC 0' => clicks_json('ABC', '1970-01-01', 1, 0, 0, 0, 0, 0),
    'ABC 20' => clicks_json('ABC', '2026-11-20', 3, 3, 0, 1, 0, 1),
    'ABC 21' => clicks_json('ABC', '2026-11-21', 7, 6, 1, 0, 2, 3),
    'ABC max' => clicks_json('ABC', '9999-12-31', $BIG, $BIG, 0, 0, 0, 0),
    'ABCD 20' => clicks_json('ABCD', '2026-11-20', 1, 1, 0, 0, 0, 1),
    'AB_-9 256' => clicks_json('AB_-9', '1970-09-14', 0, 0, 0, 0, 0, 0),
    'WANG 20' => clicks_json('WANG-NAPPIES', '2026-11-20', 120, 98, 17, 2, 0,
                             41),
    'WANG 22' => clicks_json('WANG-NAPPIES', '2026-11-22', 40, 31, 5, 1, 0,
                             12),
);

sub clicks_lines {
    return join '', map { $CLICK_LINE{$_} } @_;
}

{
    my ($tmp, $dir) = new_store();

    for my $args ([], ['ABC'], ['--since', '2026-01-01'],
                  ['abc', '--since', '1970-01-01'])
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', @$args);
        is("$rc|$out|$err", '0||', "clicks @$args on an empty store: exit 0, "
           . 'no output');
    }

    is(mdb_put_raw($dir, 'clicks', map { ($_->[0], clicks_rec(@{$_->[1]})) }
                                       @CLICKS),
       0, 'clicks records loaded with mdb_load');
    is(entries($dir, 'clicks'), scalar @CLICKS, 'mdb_stat: every entry');

    # bytewise: "ABC" NUL sorts before "ABCD", and "C" before "_"
    my @all = ('ABC 0', 'ABC 20', 'ABC 21', 'ABC max', 'ABCD 20',
               'AB_-9 256', 'WANG 20', 'WANG 22');
    my %want = (
        '' => [@all],
        'ABC' => ['ABC 0', 'ABC 20', 'ABC 21', 'ABC max'],
        'abc' => ['ABC 0', 'ABC 20', 'ABC 21', 'ABC max'],
        'AbCd' => ['ABCD 20'],
        'ab_-9' => ['AB_-9 256'],
        'wang-nappies' => ['WANG 20', 'WANG 22'],
        'AB' . '_-' => [],
        'ABCDE' => [],
        'AAA' => [],
        'ZZZ' => [],
        '--since 2026-11-21' => ['ABC 21', 'ABC max', 'WANG 22'],
        '--since=2026-11-20' => ['ABC 20', 'ABC 21', 'ABC max', 'ABCD 20',
                                 'WANG 20', 'WANG 22'],
        '--since 1970-01-01' => [@all],
        '--since 1969-12-31' => [@all],
        '--since 0000-01-01' => [@all],
        '--since 1970-01-02' => [grep { $_ ne 'ABC 0' } @all],
        '--since 9999-12-31' => ['ABC max'],
        '--since 2027-01-01' => ['ABC max'],
        'abc --since 2026-11-21' => ['ABC 21', 'ABC max'],
        '--since 2026-11-21 wang-nappies' => ['WANG 22'],
        'WANG-NAPPIES --since 2026-11-23' => [],
        'abcd --since 2026-11-21' => [],
    );
    for my $args (sort keys %want) {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks',
                                          split ' ', $args);
        is("$rc|$out|$err", '0|' . clicks_lines(@{$want{$args}}) . '|',
           "clicks $args");
    }

    for my $since ('2026-13-01', '2026-02-29', '2026-11-1', '20261121',
                   '2026-11-21T00:00:00Z', '', '2026/11/21', 'yesterday',
                   ' 2026-11-21')
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', '--since',
                                          $since);
        is("$rc|$out|$err", "2||loyaltyctl: invalid --since \"$since\"\n",
           "--since \"$since\": exit 2");
    }
    for my $code ('ab', 'a b', 'c' x 33, "\xc3\xbcber") {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', $code);
        is("$rc|$out|$err", "1||loyaltyctl: \"$code\" is not a valid code\n",
           "clicks \"$code\": exit 1");
    }

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'stat');
    like($out,
         qr/^db prices       0\ndb codes        0\ndb clicks       8\n/m,
         'stat: codes and clicks, after prices');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       'verify: clicks without codes are consistent');

    # entries that are not clicks: listed on stderr, the rest printed
    my $ok = clicks_rec((1) x 6);
    my @broken = (
        [clicks_key('BAD-VER', $D20), pack('C x7 Q<6', 2, (1) x 6),
         'record does not decode'],
        [clicks_key('BAD-RES', $D20), pack('C C x6 Q<6', 1, 1, (1) x 6),
         'record does not decode'],
        [clicks_key('BAD-LEN', $D20), "$ok\0", 'record does not decode'],
        [clicks_key('BAD-SHORT', $D20), substr($ok, 0, 55),
         'record does not decode'],
        [clicks_key('BAD-BIG', $D20), clicks_rec(1, 1, 0, 0, 0, ~0),
         'a counter above 2^63-1'],
        [clicks_key('lower', $D20), $ok, 'invalid key'],
        [clicks_key('ABC', $MAXDAY + 1), $ok, 'invalid key'],
        ["ABC\0\0\0\0", $ok, 'invalid key'],
        ["ABC\1\0\0\0\1", $ok, 'invalid key'],
        ["AB\0\0\0\0\1", $ok, 'invalid key'],
        [clicks_key('C' x 33, $D20), $ok, 'invalid key'],
    );
    is(mdb_put_raw($dir, 'clicks', map { @$_[0, 1] } @broken), 0,
       'broken clicks entries loaded');

    # "CODE/YYYY-MM-DD", or the key in hex when it is none
    my @lines = map {
        my ($key, undef, $what) = @$_;
        my $label = $what eq 'invalid key'
                    ? unpack('H*', $key)
                    : substr($key, 0, -5) . '/2026-11-20';
        "clicks/$label: $what\n";
    } sort { $a->[0] cmp $b->[0] } @broken;
    is($lines[0], "clicks/41420000000001: invalid key\n",
       'the first broken key, in hex');
    is($lines[-1], "clicks/6c6f7765720000005129: invalid key\n",
       'the last broken key, in hex');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks');
    is($rc, 1, 'clicks with broken entries: exit 1');
    is($out, clicks_lines(@all), 'clicks with broken entries: the good ones');
    is($err, join('', map { "loyaltyctl: $_" } @lines),
       'clicks with broken entries: each on stderr, in key order');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', 'bad-big');
    is("$rc|$out|$err", "1||loyaltyctl: clicks/BAD-BIG/2026-11-20: a counter "
                        . "above 2^63-1\n", 'clicks of one broken code');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', 'abc');
    is("$rc|$out|$err", "1|" . clicks_lines(@all[0 .. 3])
       . "|loyaltyctl: clicks/41424300002cc0a1: invalid key\n",
       'clicks of a code with a broken day');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is($rc, 1, 'verify: broken clicks: exit 1');
    is($out, join('', @lines), 'verify: each broken clicks entry');
    is($err, "loyaltyctl: 11 problems found\n", 'verify: 11 problems found');
}


# stat and verify with codes

{
    my ($tmp, $dir) = shop();
    loyaltyctl('-s', $dir, 'import', 'codes', "$EXAMPLES/codes.jsonl",
               '--hosts', $MALL);
    mdb_put_raw($dir, 'clicks', clicks_key('WANG-MALL', $D20),
                clicks_rec(9, 8, 1, 0, 0, 2));

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'stat');
    my @dbs = $out =~ /^db (\S+)\s+(\d+)$/mg;
    is("@dbs", 'meta 2 members 7 tiers 4 prices 0 codes 6 clicks 1 '
               . 'ledger 4 events 0 referrals 3 touches 0 due 0 stats 0 '
               . 'attributions 0 changes 0',
       'stat: every database in order, codes and clicks after prices');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'clicks', 'wang-mall');
    is("$rc|$out|$err", '0|' . clicks_json('WANG-MALL', '2026-11-20', 9, 8, 1,
                                           0, 0, 2) . '|',
       'clicks of an example code');

    my $created = utc(2026, 1, 1);
    is(mdb_put_raw($dir, 'codes',
                   'GHOST-CODE' => code_rec(member => 'ghost',
                                            created => $created),
                   'lower' => code_rec(created => $created),
                   'AB' => code_rec(created => $created),
                   'BAD.DOT' => code_rec(created => $created),
                   'VER2' => code_rec(version => 2),
                   'FLAG16' => code_rec(flags => 0x10),
                   'RESVD' => code_rec(reserved => 1),
                   'LONG' => code_rec() . 'x',
                   'SHORT' => substr(code_rec(), 0, 31),
                   'MLEN' => code_rec(member_len => 8),
                   'NOMEMBER' => code_rec(member => ''),
                   'EXP0' => code_rec(expires => 5),
                   'MAX0' => code_rec(flags => 0x04, max => 0),
                   'MAXNOFLAG' => code_rec(max => 3),
                   'FAR' => code_rec(created => 253402300800),
                   'CAMP' => code_rec(campaign => 'a b'),
                   'SLASHES' => code_rec(target => '//evil.com'),
                   'USERINFO' => code_rec(target => 'http://a@evil.com/'),
                   'OFFSITE' => code_rec(member => 'ghost2',
                                         target => 'https://evil.com/')),
       0, 'raw code records loaded');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is($rc, 1, 'verify: broken codes: exit 1');
    is($out, <<'END', 'verify: every code problem, in key order');
codes/AB: invalid code
codes/BAD.DOT: invalid code
codes/CAMP: record does not decode
codes/EXP0: record does not decode
codes/FAR: record does not decode
codes/FLAG16: record does not decode
codes/GHOST-CODE: unknown member "ghost"
codes/LONG: record does not decode
codes/MAX0: record does not decode
codes/MAXNOFLAG: record does not decode
codes/MLEN: record does not decode
codes/NOMEMBER: record does not decode
codes/OFFSITE: unknown member "ghost2"
codes/RESVD: record does not decode
codes/SHORT: record does not decode
codes/SLASHES: record does not decode
codes/USERINFO: record does not decode
codes/VER2: record does not decode
codes/lower: invalid code
END
    is($err, "loyaltyctl: 19 problems found\n", 'verify: 19 problems found');

    # the member arrives: its code is consistent again
    write_file("$tmp/ghost.jsonl",
               qq({"id":"ghost","tier":"basic","stage":"fan"}\n));
    loyaltyctl('-s', $dir, 'import', 'members', "$tmp/ghost.jsonl");
    ($rc, $out) = loyaltyctl('-s', $dir, 'verify');
    unlike($out, qr/GHOST-CODE/,
           'verify: a code whose member arrived is fine');
    is(get_code($dir, 'ghost-code'),
       code_json('GHOST-CODE', 'ghost', created_at => '2026-01-01T00:00:00Z'),
       'a raw record built from the layout document reads back');
}

done_testing();
