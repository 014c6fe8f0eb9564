# loyaltyctl: usage, init, get, stat, verify and sign-member, run against
# real stores in fresh temporary directories.  Store contents are checked
# through loyaltyctl and, independently, with lmdb-utils (mdb_stat,
# mdb_dump, mdb_load).

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp ();
use JSON::PP ();
use Time::Local qw(timegm);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";


# helpers

sub import_text {
    my ($dir, $kind, $text) = @_;
    my $file = "$dir.$kind." . int(rand 1e9) . '.jsonl';
    write_file($file, $text);
    my @r = loyaltyctl('-s', $dir, 'import', $kind, $file);
    unlink $file;
    return @r;
}

# entries of a sub-database as mdb_stat counts them
sub entries {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_stat', '-s', $db, $dir);
    return $rc == 0 && $out =~ /^\s*Entries: (\d+)$/m ? $1 : "mdb_stat $rc";
}

# key => raw value bytes, as mdb_dump sees them
sub dump_db {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-s', $db, $dir);
    die "mdb_dump -s $db $dir: exit $rc" if $rc;
    my ($data) = $out =~ /^HEADER=END\n(.*)^DATA=END$/ms
        or die "mdb_dump: no data section";
    my @hex = map { s/^ //r } split /\n/, $data;
    my %kv;
    while (@hex) {
        my ($k, $v) = splice @hex, 0, 2;
        $kv{pack 'H*', $k} = pack 'H*', $v;
    }
    return \%kv;
}

# copies a sub-database from one store into another with mdb_dump/mdb_load
sub copy_db {
    my ($from, $to, $db) = @_;
    my ($rc, $dump) = run_out('mdb_dump', '-s', $db, $from);
    die "mdb_dump: $rc" if $rc;
    $dump =~ s/^db_pagesize=.*\n//m;   # mdb_load warns about it
    open my $fh, '|-', 'mdb_load', '-s', $db, $to or die "mdb_load: $!";
    print $fh $dump;
    close $fh;
    return $? >> 8;
}

# a member record v1, as schema/lmdb-layout.md describes it
sub member_rec {
    my (%f) = @_;
    my $tier = $f{tier} // 'basic';
    my $ref = $f{referrer} // '';
    return pack('C C v C C C C q< q< q< q< q< V V',
                $f{version} // 1, $f{stage} // 0, $f{flags} // 0,
                $f{bm} // 0, $f{bd} // 0,
                $f{tier_len} // length $tier, $f{ref_len} // length $ref,
                $f{joined} // 0, $f{first} // 0, $f{last} // 0,
                $f{spend} // 0, $f{points} // 0, $f{orders} // 0,
                $f{reserved} // 0)
           . $tier . $ref;
}

sub tier_rec {
    my (%f) = @_;
    my $label = $f{label} // '';
    return pack('C C v l< v', $f{version} // 1, $f{reserved} // 0,
                $f{discount} // 0, $f{rank} // 0,
                $f{label_len} // length $label) . $label;
}

my $json = JSON::PP->new->canonical;

sub read_jsonl {
    my ($path) = @_;
    return map { $json->decode($_) } grep { /\S/ } split /\n/, slurp($path);
}


# usage

my @commands = qw(init import get stat verify sign-member mint-code
                  revoke-code clicks apply);

{
    my ($rc, $out, $err) = loyaltyctl('--help');
    is($rc, 0, '--help exits 0');
    like($out, qr/\Ausage: loyaltyctl \[-s DIR\] COMMAND \[ARGS\]\n/,
         '--help prints the usage line on stdout');
    is($err, '', '--help prints nothing on stderr');
    for my $cmd (@commands) {
        like($out, qr/^  \Q$cmd\E /m, "--help lists $cmd");
    }
    like($out, qr/exit status: 0 success, 1 rejected input/,
         '--help documents the exit codes');

    my ($rc2, $out2) = loyaltyctl('-h');
    is("$rc2 $out2", "0 $out", '-h is --help');
}

# other kinds of records may be added beside members and tiers
my %help_line = (
    init => qr/\Ausage: loyaltyctl -s DIR init\n/,
    import => qr/\Ausage: loyaltyctl -s DIR import members\|tiers(\|\w+)* FILE\n/,
    get => qr/\Ausage: loyaltyctl -s DIR get member ID\n {7}loyaltyctl -s DIR get tier NAME\n/,
    stat => qr/\Ausage: loyaltyctl -s DIR stat\n/,
    verify => qr/\Ausage: loyaltyctl -s DIR verify\n/,
    'sign-member' =>
        qr/\Ausage: loyaltyctl sign-member ID --keys FILE \[--ttl DURATION\]\n/,
    'mint-code' => qr/\Ausage: loyaltyctl -s DIR mint-code MEMBER /,
    'revoke-code' => qr/\Ausage: loyaltyctl -s DIR revoke-code CODE\n/,
    clicks => qr/\Ausage: loyaltyctl -s DIR clicks \[CODE\] /,
    apply => qr/\Ausage: loyaltyctl -s DIR apply FILE\n/,
);

{
    delete local $ENV{LOYALTY_STORE};
    for my $cmd (@commands) {
        for my $flag (qw(--help -h)) {
            my ($rc, $out, $err) = loyaltyctl($cmd, $flag);
            is($rc, 0, "$cmd $flag exits 0 without a store");
            like($out, $help_line{$cmd}, "$cmd $flag prints its usage");
            is($err, '', "$cmd $flag: nothing on stderr");
        }
    }

    # --help anywhere after the command, even with other arguments
    my ($rc, $out) = loyaltyctl('get', 'member', 'x', '--help');
    is($rc, 0, 'get member x --help exits 0');
    like($out, qr/^usage: loyaltyctl -s DIR get member ID$/m,
         'get member x --help prints the usage');
}

{
    my ($rc, $out, $err) = loyaltyctl();
    is($rc, 2, 'no arguments: exit 2');
    is($out, '', 'no arguments: nothing on stdout');
    like($err, qr/\Ausage: loyaltyctl \[-s DIR\] COMMAND/,
         'no arguments: usage on stderr');

    ($rc, $out, $err) = loyaltyctl('frobnicate');
    is($rc, 2, 'unknown command: exit 2');
    like($err, qr/\Aloyaltyctl: unknown command "frobnicate"\nusage: /,
         'unknown command: named, then usage');

    ($rc, $out, $err) = loyaltyctl('--bogus', 'stat');
    is($rc, 2, 'unknown option: exit 2');
    like($err, qr/^usage: loyaltyctl/m, 'unknown option: usage');

    ($rc, $out, $err) = loyaltyctl('-s');
    is($rc, 2, '-s without a directory: exit 2');
}

{
    delete local $ENV{LOYALTY_STORE};
    my $tmp = test_dir();
    for my $args (['init'], ['stat'], ['verify'], ['get', 'member', 'a'],
                  ['get', 'tier', 'basic'],
                  ['import', 'tiers', "$EXAMPLES/tiers.jsonl"])
    {
        my ($rc, $out, $err) = loyaltyctl(@$args);
        is($rc, 2, "@$args without -s or LOYALTY_STORE: exit 2");
        is($err, "loyaltyctl: no store: use -s DIR or set LOYALTY_STORE\n",
           "@$args without a store: message");
    }
    opendir my $dh, $tmp or die;
    is(scalar(grep { !/^\.\.?$/ } readdir $dh), 0,
       'nothing was created without a store');
}

{
    my $tmp = test_dir();
    my $dir = "$tmp/envstore";
    local $ENV{LOYALTY_STORE} = $dir;

    my ($rc, $out, $err) = loyaltyctl('init');
    is($rc, 0, 'init with LOYALTY_STORE');
    ok(-f "$dir/data.mdb", 'LOYALTY_STORE names the store init creates');

    ($rc, $out, $err) = loyaltyctl('import', 'tiers', "$EXAMPLES/tiers.jsonl");
    is("$rc $out", "0 imported 4 tiers\n", 'import with LOYALTY_STORE');

    ($rc, $out) = loyaltyctl('stat');
    is($rc, 0, 'stat with LOYALTY_STORE');
    like($out, qr/^store           \Q$dir\E\n/, 'stat names the env store');
    like($out, qr/^db tiers        4$/m, 'stat reads the env store');

    # -s wins over the environment
    my ($tmp2, $other) = new_store();
    ($rc, $out) = loyaltyctl('-s', $other, 'stat');
    like($out, qr/^db tiers        0$/m, '-s overrides LOYALTY_STORE');
    ($rc, $out) = loyaltyctl('--store', $other, 'get', 'tier', 'vip');
    is($rc, 1, '--store overrides LOYALTY_STORE');
}

# wrong numbers of arguments
{
    my ($tmp, $dir) = new_store();
    for my $args (['init', 'extra'], ['stat', 'extra'], ['verify', 'x'],
                  ['get'], ['get', 'member'], ['get', 'member', 'a', 'b'],
                  ['get', 'widget', 'x'], ['get', 'members', 'x'],
                  ['import'], ['import', 'members'],
                  ['import', 'widgets', "$EXAMPLES/tiers.jsonl"],
                  ['import', 'tiers', 'a', 'b'])
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, @$args);
        is($rc, 2, "@$args: exit 2");
        like($err, qr/\Ausage: loyaltyctl/, "@$args: usage on stderr");
        is($out, '', "@$args: nothing on stdout");
    }
}


# init

{
    my $tmp = test_dir();
    my $dir = "$tmp/new";
    my $t0 = time;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'init');
    my $t1 = time;
    is("$rc|$out|$err", '0||', 'init: exit 0, silent');
    ok(-d $dir && -f "$dir/data.mdb" && -f "$dir/lock.mdb",
       'init creates the directory with data.mdb and lock.mdb');

    is(entries($dir, 'meta'), 2, 'meta has 2 entries');
    is(entries($dir, 'members'), 0, 'members is empty');
    is(entries($dir, 'tiers'), 0, 'tiers is empty');
    is(entries($dir, 'prices'), 0, 'prices is empty');
    is(entries($dir, 'codes'), 0, 'codes is empty');
    is(entries($dir, 'clicks'), 0, 'clicks is empty');
    is(entries($dir, 'ledger'), 0, 'ledger is empty');
    is(entries($dir, 'events'), 0, 'events is empty');
    is(entries($dir, 'referrals'), 0, 'referrals is empty');

    my $meta = dump_db($dir, 'meta');
    is(join(',', sort keys %$meta), 'created_at,schema_version',
       'meta keys');
    is(unpack('H*', $meta->{schema_version}), '01000000',
       'schema_version is u32 LE 1');
    my $created = unpack 'q<', $meta->{created_at} . '';
    is(length $meta->{created_at}, 8, 'created_at is 8 bytes');
    ok($created >= $t0 && $created <= $t1,
       'created_at is the time of init') or diag("$created $t0 $t1");

    ($rc, $out) = loyaltyctl('-s', $dir, 'stat');
    my @t = gmtime $created;
    my $iso = sprintf '%04d-%02d-%02dT%02d:%02d:%02dZ', $t[5] + 1900,
                      $t[4] + 1, @t[3, 2, 1, 0];
    like($out, qr/^created_at      \Q$iso\E$/m, 'stat prints created_at');
    my ($map) = $out =~ /^map_size        (\d+)$/m;
    ok(defined $map && $map >= 1073741824, 'map_size is at least 1 GiB')
        or diag($out);

    # idempotent: data and creation time stay
    ($rc, $out, $err) =
        loyaltyctl('-s', $dir, 'import', 'tiers', "$EXAMPLES/tiers.jsonl");
    is($rc, 0, 'import tiers');
    my $tiers = dump_db($dir, 'tiers');
    sleep 1;
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'init');
    is("$rc|$out|$err", '0||', 'second init: exit 0, silent');
    is_deeply(dump_db($dir, 'meta'), $meta, 'second init keeps meta');
    is_deeply(dump_db($dir, 'tiers'), $tiers, 'second init keeps the data');
    is(entries($dir, 'tiers'), 4, 'tiers still has 4 entries');
}

{
    my $tmp = test_dir();
    write_file("$tmp/file", "not a store\n");
    my ($rc, $out, $err) = loyaltyctl('-s', "$tmp/file", 'init');
    is($rc, 3, 'init on a regular file: exit 3');
    is($err, "loyaltyctl: store \"$tmp/file\" is not a directory\n",
       'init on a regular file: message');
    is(slurp("$tmp/file"), "not a store\n", 'the file is left alone');

    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/file", 'stat');
    is($rc, 3, 'stat on a regular file: exit 3');
    like($err, qr/is not a directory/, 'stat on a regular file: message');

    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/no/such/dir", 'init');
    is($rc, 3, 'init below a missing directory: exit 3');
    like($err, qr{^loyaltyctl: cannot create store "\Q$tmp\E/no/such/dir": },
         'init below a missing directory: message');

    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/missing", 'stat');
    is($rc, 3, 'stat on a missing store: exit 3');
    like($err, qr/^loyaltyctl: store "\Q$tmp\E\/missing": No such file/,
         'stat on a missing store: message');
    ok(!-e "$tmp/missing", 'stat does not create a store');
}

# an existing directory that is not a store
for my $args (['stat'], ['verify'], ['get', 'member', 'a'],
              ['get', 'tier', 'basic'],
              ['import', 'tiers', "$EXAMPLES/tiers.jsonl"])
{
    my $tmp = test_dir();
    my $dir = "$tmp/empty";
    mkdir $dir or die;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, @$args);
    is($rc, 3, "@$args on an empty directory: exit 3");
    like($err, qr/not initialized/,
         "@$args on an empty directory: says not initialized");
    opendir my $dh, $dir or die;
    my @left = grep { !/^\.\.?$/ } readdir $dh;
    is("@left", '', "@$args on an empty directory leaves it empty");
}

# a store of another schema version
{
    my ($tmp, $dir) = new_store(qw(tiers members));
    is(mdb_put_raw($dir, 'meta', schema_version => pack 'V', 2), 0,
       'meta schema_version patched to 2');
    is(unpack('H*', dump_db($dir, 'meta')->{schema_version}), '02000000',
       'mdb_dump sees version 2');
    my $members = dump_db($dir, 'members');

    for my $args (['init'], ['stat'], ['verify'], ['get', 'member', 'lin.fan'],
                  ['get', 'tier', 'vip'],
                  ['import', 'tiers', "$EXAMPLES/tiers.jsonl"],
                  ['import', 'members', "$EXAMPLES/members.jsonl"])
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, @$args);
        is($rc, 3, "@$args on schema version 2: exit 3");
        is($err, "loyaltyctl: store \"$dir\" has schema version 2, "
                 . "this build reads version 1\n",
           "@$args on schema version 2: message");
        is($out, '', "@$args on schema version 2: nothing on stdout");
    }
    is(unpack('H*', dump_db($dir, 'meta')->{schema_version}), '02000000',
       'init does not rewrite another schema version');
    is_deeply(dump_db($dir, 'members'), $members, 'members untouched');
}


# get

my ($get_tmp, $S) = new_store();
{
    my ($rc, $out, $err) = import_text($S, 'tiers', <<'END');
{"name":"basic","rank":0}
{"label":"VIP","discount_bp":500,"rank":1,"name":"vip"}
{"name":"gold.cn","rank":-3,"label":"金卡会员"}
END
    is("$rc $out", "0 imported 3 tiers\n", 'get fixtures: tiers');

    ($rc, $out, $err) = import_text($S, 'members', <<'END');
{"blocked":true,"birthday":"02-29","points":-40,"spend":123456,"orders":12,"last_order_at":"2024-12-31T23:59:59z","first_order_at":"2024-03-02T00:30:00.75-05:30","joined_at":"2024-03-01T10:00:00+08:00","referrer":"ref-1","stage":"member","tier":"vip","id":"full.1"}
{"stage":"prospect","tier":"basic","id":"min"}
{"id":"ref-1","tier":"gold.cn","stage":"partner","joined_at":"2000-01-01T00:00:00Z","orders":4294967295,"spend":9223372036854775807,"points":-1000000000000,"blocked":false}
{"id":"edge.hi","tier":"basic","stage":"fan","joined_at":"2100-12-31T23:59:59Z","first_order_at":"2100-12-31T23:59:59+01:00"}
{"id":"edge.lo","tier":"basic","stage":"fan","joined_at":"2000-01-01T00:00:00Z","last_order_at":"2016-12-31T23:59:60Z"}
{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","tier":"basic","stage":"customer"}
END
    is("$rc $out $err", "0 imported 6 members\n ", 'get fixtures: members');
}

my %want_get = (
    'member full.1' => '{"id":"full.1","tier":"vip","stage":"member",'
        . '"referrer":"ref-1","joined_at":"2024-03-01T02:00:00Z",'
        . '"first_order_at":"2024-03-02T06:00:00Z",'
        . '"last_order_at":"2024-12-31T23:59:59Z","orders":12,'
        . '"spend":123456,"points":-40,"birthday":"02-29","blocked":true}',
    'member min' => '{"id":"min","tier":"basic","stage":"prospect",'
        . '"orders":0,"spend":0,"points":0,"blocked":false}',
    'member ref-1' => '{"id":"ref-1","tier":"gold.cn","stage":"partner",'
        . '"joined_at":"2000-01-01T00:00:00Z","orders":4294967295,'
        . '"spend":9223372036854775807,"points":-1000000000000,'
        . '"blocked":false}',
    'member edge.hi' => '{"id":"edge.hi","tier":"basic","stage":"fan",'
        . '"joined_at":"2100-12-31T23:59:59Z",'
        . '"first_order_at":"2100-12-31T22:59:59Z",'
        . '"orders":0,"spend":0,"points":0,"blocked":false}',
    'member edge.lo' => '{"id":"edge.lo","tier":"basic","stage":"fan",'
        . '"joined_at":"2000-01-01T00:00:00Z",'
        . '"last_order_at":"2017-01-01T00:00:00Z",'
        . '"orders":0,"spend":0,"points":0,"blocked":false}',
    'member ' . ('A' x 64) => '{"id":"' . ('A' x 64) . '","tier":"basic",'
        . '"stage":"customer","orders":0,"spend":0,"points":0,'
        . '"blocked":false}',
    'tier basic' => '{"name":"basic","rank":0,"discount_bp":0,"label":""}',
    'tier vip' => '{"name":"vip","rank":1,"discount_bp":500,"label":"VIP"}',
    'tier gold.cn' => '{"name":"gold.cn","rank":-3,"discount_bp":0,'
        . '"label":"金卡会员"}',
);

for my $what (sort keys %want_get) {
    my ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', split ' ', $what);
    is($rc, 0, "get $what: exit 0");
    is($out, "$want_get{$what}\n", "get $what: exact JSON");
    is($err, '', "get $what: nothing on stderr");
}

# the bytes behind them, per schema/lmdb-layout.md
{
    my $m = dump_db($S, 'members');
    is(unpack('H*', $m->{'full.1'}),
       unpack('H*', member_rec(stage => 3, flags => 0x1f, bm => 2, bd => 29,
                               tier => 'vip', referrer => 'ref-1',
                               joined => timegm(0, 0, 2, 1, 2, 2024),
                               first => timegm(0, 0, 6, 2, 2, 2024),
                               last => timegm(59, 59, 23, 31, 11, 2024),
                               spend => 123456, points => -40,
                               orders => 12)),
       'full.1: raw member record');
    is(unpack('H*', $m->{min}), '01000000000005' . ('00' x 49) . '6261736963',
       'min: raw member record, 56 + 5 bytes');
    is(length $m->{'ref-1'}, 56 + 7, 'ref-1: 56 + T bytes');
    is(unpack('H*', substr $m->{'ref-1'}, 32, 24),
       'ffffffffffffff7f' . '00f05a2b17ffffff' . 'ffffffff00000000',
       'ref-1: spend, points, orders and reserved at their offsets');
    is(unpack('q<', substr $m->{'ref-1'}, 8, 8), 946684800,
       'ref-1: joined_at, the first second of 2000');

    my $t = dump_db($S, 'tiers');
    is(unpack('H*', $t->{vip}),
       unpack('H*', tier_rec(discount => 500, rank => 1, label => 'VIP')),
       'vip: raw tier record');
    is(unpack('H*', $t->{'gold.cn'}),
       '01000000fdffffff0c00' . unpack('H*', '金卡会员'),
       'gold.cn: raw tier record, rank -3, 12 label bytes');
}

{
    my ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'member', 'nobody');
    is("$rc|$out", '1|', 'get absent member: exit 1, no output');
    is($err, "loyaltyctl: no member \"nobody\"\n", 'get absent member: message');

    ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'tier', 'gold');
    is("$rc|$out", '1|', 'get absent tier: exit 1, no output');
    is($err, "loyaltyctl: no tier \"gold\"\n", 'get absent tier: message');

    # a member id is not a tier name
    ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'tier', 'min');
    is($rc, 1, 'get tier with a member id: exit 1');

    for my $id ('a' x 65, 'a b', '', 'a/b', "\xc3\xa9") {
        ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'member', $id);
        is("$rc|$out", '1|', "get member \"$id\": exit 1");
        like($err, qr/\Aloyaltyctl: "\Q$id\E" is not a valid (member )?\w+\n\z/,
             "get member \"$id\": message");
    }

    ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'tier', 'b' x 33);
    is($rc, 1, 'get tier with 33 characters: exit 1');
    is($err, "loyaltyctl: \"" . ('b' x 33) . "\" is not a valid tier name\n",
       'get tier with 33 characters: message');

    ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', 'widget', 'x');
    is($rc, 2, 'get widget x: exit 2');
    like($err, qr/\Ausage: loyaltyctl -s DIR get member ID/,
         'get widget x: usage');
}

# A time whose UTC falls outside years 0000-9999 has no RFC 3339 form:
# import must refuse it rather than store something that prints wrong.
# Nor may a time leave 2000-01-01T00:00:00Z..2100-12-31T23:59:59Z, even
# when only its offset takes it out (issue 18: a member of year 0).
for my $case (['9999-12-31T23:59:59-01:00', '10000-01-01T00:59:59Z'],
              ['0000-01-01T00:00:00+01:00', '-0001-12-31T23:00:00Z'],
              ['0000-01-01T00:00:00Z', '0000-01-01T00:00:00Z'],
              ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59Z'],
              ['2000-01-01T00:59:59+01:00', '1999-12-31T23:59:59Z'],
              ['2100-12-31T23:59:59-00:01', '2101-01-01T00:00:59Z'])
{
    my ($in, $utc) = @$case;
    my ($tmp, $dir) = new_store();
    import_text($dir, 'tiers', qq({"name":"basic","rank":0}\n));
    my ($rc, $out, $err) = import_text($dir, 'members',
        qq({"id":"t","tier":"basic","stage":"fan","joined_at":"$in"}\n));
    is($rc, 1, "joined_at $in (UTC $utc) is rejected")
        or diag("import said: $out$err");
    like($err, qr/ line 1: "joined_at" /, "joined_at $in: reason");

    ($rc, $out) = loyaltyctl('-s', $dir, 'get', 'member', 't');
    my ($got) = $out =~ /"joined_at":"([^"]*)"/;
    ok($rc != 0 || $got eq $utc,
       "joined_at $in is not printed as another time")
        or diag("get member t printed joined_at $got for $in");
}


# stat

{
    my ($tmp, $dir) = new_store(qw(tiers members));
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'stat');
    is($rc, 0, 'stat: exit 0');
    is($err, '', 'stat: nothing on stderr');
    my @labels = map { /^(db \S+|\S+)/ } split /\n/, $out;
    # later schema versions may add databases after these
    is("@labels[0 .. 11]", 'store schema_version created_at map_size '
                           . 'map_used readers db meta db members db tiers '
                           . 'db prices db codes db clicks',
       'stat: the lines, in order');
    is(scalar(grep { !/^db / } @labels[12 .. $#labels]), 0,
       'stat: only databases follow');
    like($out, qr/\Astore           \Q$dir\E\n/, 'stat: store');
    like($out, qr/^schema_version  1$/m, 'stat: schema_version');
    like($out, qr/^created_at      \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m,
         'stat: created_at');
    like($out, qr/^map_size        1073741824$/m, 'stat: map_size 1 GiB');
    like($out, qr/^map_used        \d+ \(\d+\.\d%\)$/m, 'stat: map_used');
    like($out, qr/^readers         \d+ of 510$/m, 'stat: readers');
    like($out, qr/^db meta         2$/m, 'stat: db meta');
    like($out, qr/^db members      7$/m, 'stat: db members');
    like($out, qr/^db tiers        4$/m, 'stat: db tiers');
    like($out, qr/^db codes        0$/m, 'stat: db codes');
    like($out, qr/^db clicks       0$/m, 'stat: db clicks');
    like($out, qr/^db ledger       4\ndb events       0\ndb referrals    3$/m,
         'stat: the ledger (the members\' points), events, referrals');
    is(entries($dir, 'members') . '/' . entries($dir, 'tiers'), '7/4',
       'mdb_stat agrees');

    import_text($dir, 'members', join '', map {
        qq({"id":"extra$_","tier":"vip","stage":"fan"}\n) } 1 .. 25);
    ($rc, $out) = loyaltyctl('-s', $dir, 'stat');
    like($out, qr/^db members      32$/m, 'stat counts after a new import');
    is(entries($dir, 'members'), 32, 'mdb_stat: 32 members');

    my ($used) = $out =~ /^map_used        (\d+) /m;
    is($used % 4096, 0, 'map_used is whole pages');
}


# verify

{
    my ($tmp, $dir) = new_store();
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       'verify: an empty store is consistent');

    ($tmp, $dir) = new_store(qw(tiers members));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       'verify: the example shop is consistent');

    ($rc, $out, $err) = import_text($dir, 'members',
        qq({"id":"m1","tier":"basic","stage":"fan","referrer":"ghost"}\n));
    is($rc, 0, 'a member with an unknown referrer imports');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is($rc, 1, 'verify: unknown referrer: exit 1');
    is($out, qq(members/m1: unknown referrer "ghost"\n),
       'verify: unknown referrer: the line');
    is($err, "loyaltyctl: 1 problem found\n", 'verify: 1 problem found');

    # the referrer arrives: consistent again
    import_text($dir, 'members', qq({"id":"ghost","tier":"ka","stage":"fan"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out", '0|', 'verify: consistent once the referrer exists');
}

# members copied into a store without their tiers
{
    my ($tmp_a, $sa) = new_store(qw(tiers members));
    my ($tmp_b, $sb) = new_store();
    is(copy_db($sa, $sb, 'members'), 0, 'members copied with mdb_load');
    is(entries($sb, 'members'), 7, 'the copy has 7 members');
    is(entries($sb, 'tiers'), 0, 'and no tiers');

    # without their ledger, the members' points are unaccounted for
    my ($rc0, $out0, $err0) = loyaltyctl('-s', $sb, 'verify');
    like($out0, qr{^members/li\.member: points 2622, but the ledger's 0 entries sum to 0$}m,
         'verify: points without a ledger are a problem');
    is(copy_db($sa, $sb, 'ledger'), 0, 'the ledger copied too');

    my @m = sort { $a->{id} cmp $b->{id} } read_jsonl("$EXAMPLES/members.jsonl");
    my $want = join '', map { qq(members/$_->{id}: unknown tier "$_->{tier}"\n) }
                            @m;
    my ($rc, $out, $err) = loyaltyctl('-s', $sb, 'verify');
    is($rc, 1, 'verify: unknown tiers: exit 1');
    is($out, $want, 'verify: one unknown tier line per member, in key order');
    is($err, "loyaltyctl: 7 problems found\n", 'verify: 7 problems found');

    ($rc, $out) = loyaltyctl('-s', $sb, 'get', 'member', 'li.member');
    is($rc, 0, 'get still prints a member whose tier is gone');

    copy_db($sa, $sb, 'tiers');
    ($rc, $out, $err) = loyaltyctl('-s', $sb, 'verify');
    is("$rc|$out", '0|', 'verify: consistent once the tiers are copied');
}

# records that do not decode, bad keys, self-reference
{
    my ($tmp, $dir) = new_store(qw(tiers));
    my $ok = member_rec(tier => 'basic');
    is(mdb_put_raw($dir, 'members',
                   'bad' => 'xyz',
                   'a b' => $ok,
                   'short' => substr($ok, 0, -1),
                   'long' => "$ok\0",
                   'ver2' => member_rec(version => 2),
                   'stage5' => member_rec(stage => 5),
                   'flag20' => member_rec(flags => 0x20),
                   'resvd' => member_rec(reserved => 1),
                   'notier' => member_rec(tier => ''),
                   'neg' => member_rec(spend => -1),
                   'bday' => member_rec(bm => 2, bd => 3),
                   'selfie' => member_rec(referrer => 'selfie'),
                   'ghostly' => member_rec(referrer => 'ghost'),
                   'nt' => member_rec(tier => 'gold'),
                   'fine' => member_rec(tier => 'vip', referrer => 'nt')),
       0, 'raw member records loaded');
    is(mdb_put_raw($dir, 'tiers',
                   'broken' => "\1\0",
                   'bp' => tier_rec(discount => 10001),
                   'resv' => tier_rec(reserved => 1),
                   'lablen' => tier_rec(label => 'abc', label_len => 4),
                   'a b' => tier_rec()),
       0, 'raw tier records loaded');

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is($rc, 1, 'verify: broken records: exit 1');
    is($out, <<'END', 'verify: every problem, tiers first, in key order');
tiers/a b: invalid name
tiers/bp: record does not decode
tiers/broken: record does not decode
tiers/lablen: record does not decode
tiers/resv: record does not decode
members/a b: invalid id
members/bad: record does not decode
members/bday: record does not decode
members/flag20: record does not decode
members/ghostly: unknown referrer "ghost"
members/long: record does not decode
members/neg: record does not decode
members/notier: record does not decode
members/nt: unknown tier "gold"
members/resvd: record does not decode
members/selfie: refers themselves
members/short: record does not decode
members/stage5: record does not decode
members/ver2: record does not decode
END
    is($err, "loyaltyctl: 19 problems found\n", 'verify: 19 problems found');

    for my $id (qw(bad short stage5)) {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'member', $id);
        is("$rc|$out", '1|', "get member $id: exit 1");
        is($err, "loyaltyctl: member \"$id\" does not decode\n",
           "get member $id: does not decode");
    }
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'tier', 'broken');
    is("$rc|$err", "1|loyaltyctl: tier \"broken\" does not decode\n",
       'get tier broken: does not decode');

    ($rc, $out) = loyaltyctl('-s', $dir, 'get', 'member', 'fine');
    is($out, '{"id":"fine","tier":"vip","stage":"prospect","referrer":"nt",'
             . '"orders":0,"spend":0,"points":0,"blocked":false}' . "\n",
       'a raw record built from the layout document reads back');
}

# A tier label is UTF-8 of at most 64 characters (lmdb-layout.md); verify
# "decodes every record", so a label that breaks this is a problem.
{
    my ($tmp, $dir) = new_store();
    mdb_put_raw($dir, 'tiers',
                'badutf8' => tier_rec(rank => 1, label => "\xff\xfe"),
                'toolong' => tier_rec(label => 'x' x 65));
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is($rc, 1, 'verify: tiers with bad labels: exit 1')
        or diag("verify said: $out$err");
    like($out, qr{^tiers/badutf8: }m, 'verify: label that is not UTF-8');
    like($out, qr{^tiers/toolong: }m, 'verify: label of 65 characters');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'tier', 'badutf8');
    ok($rc != 0 || $out =~ /"label":/,
       'get tier with a non-UTF-8 label does not silently drop the label')
        or diag("exit $rc, printed $out");
}


# sign-member

my $KT = test_dir();
my $KEYS = "$KT/loyalty.keys";
write_file($KEYS, "k1 $TEST_KEYS{k1}\nk0 $TEST_KEYS{k0}\n", 0600);

sub sign_ok {
    my ($name, $id, $ttl, $kid, @args) = @_;
    my $t0 = time;
    my ($rc, $out, $err) = loyaltyctl(@args);
    my $t1 = time;
    is($rc, 0, "$name: exit 0") or diag($err);
    is($err, '', "$name: nothing on stderr");
    like($out, qr/^\Q$id\E~\d+~\Q$kid\E~[A-Za-z0-9_-]{43}\n\z/,
         "$name: ID~EXP~KID~MAC");
    chomp $out;
    my (undef, $exp) = split /~/, $out;
    $exp //= 0;
    ok($exp >= $t0 + $ttl && $exp <= $t1 + $ttl,
       "$name: expires in $ttl s") or diag("exp $exp, now $t0..$t1");
    is($out, member_cookie($id, $exp, $kid, $TEST_KEYS{$kid}),
       "$name: the harness computes the same MAC");
}

{
    delete local $ENV{LOYALTY_STORE};
    my %ttl = ('1h' => 3600, '30m' => 1800, '1d' => 86400, '45' => 45,
               '90s' => 90, '1h30m' => 5400, '2w' => 14 * 86400,
               '1M' => 30 * 86400, '1y' => 365 * 86400);
    for my $t (sort keys %ttl) {
        sign_ok("--ttl $t", 'alice', $ttl{$t}, 'k1',
                'sign-member', 'alice', '--keys', $KEYS, '--ttl', $t);
    }
    sign_ok('default ttl', 'alice', 30 * 86400, 'k1',
            'sign-member', 'alice', '--keys', $KEYS);
    sign_ok('options before the id', 'bob.b', 3600, 'k1',
            'sign-member', '--ttl', '1h', '--keys', $KEYS, 'bob.b');
    sign_ok('options around the id', 'c_3-x', 1800, 'k1',
            'sign-member', '--keys', $KEYS, 'c_3-x', '--ttl', '30m');
    sign_ok('--keys=FILE --ttl=D', 'dora', 60, 'k1',
            'sign-member', "--keys=$KEYS", '--ttl=1m', 'dora');
    sign_ok('64-character id', 'z' x 64, 86400, 'k1',
            'sign-member', 'z' x 64, '--keys', $KEYS, '--ttl', '1d');
    sign_ok('-s is accepted and ignored', 'erin', 3600, 'k1',
            '-s', "$KT/no-store", 'sign-member', 'erin', '--keys', $KEYS,
            '--ttl', '1h');

    my $k0first = "$KT/k0first.keys";
    write_file($k0first,
               "# rotated\n\nk0 $TEST_KEYS{k0}\n  k1\t$TEST_KEYS{k1}  \n");
    sign_ok('the first key signs', 'alice', 3600, 'k0',
            'sign-member', 'alice', '--keys', $k0first, '--ttl', '1h');

    my $crlf = "$KT/crlf.keys";
    write_file($crlf, "# dos\r\n\r\nk1 $TEST_KEYS{k1}\r\n");
    sign_ok('a CRLF keys file', 'alice', 3600, 'k1',
            'sign-member', 'alice', '--keys', $crlf, '--ttl', '1h');

    # secrets of 32 and 128 bytes; MAC checked with the harness
    for my $len (32, 128) {
        my $hex = join '', map { sprintf '%02x', ($_ * 7 + 3) % 256 } 1 .. $len;
        my $f = "$KT/len$len.keys";
        write_file($f, "big-key_$len $hex\n");
        my ($rc, $out) = loyaltyctl('sign-member', 'alice', '--keys', $f);
        chomp $out;
        my (undef, $exp) = split /~/, $out;
        is($out, member_cookie('alice', $exp // 0, "big-key_$len", $hex),
           "a secret of $len bytes signs");
    }

    for my $t ('5x', '0', '-1h', '', 'h', '1h-', '1.5h', '1 h', '0s') {
        my ($rc, $out, $err) =
            loyaltyctl('sign-member', 'alice', '--keys', $KEYS, '--ttl', $t);
        is("$rc|$out", '2|', "--ttl \"$t\": exit 2, no cookie");
        is($err, "loyaltyctl: invalid --ttl \"$t\"\n", "--ttl \"$t\": message");
    }

    # the module reads at most 12 expiry digits; a longer one is a cookie
    # that can never verify, so sign-member must not print it
    {
        my ($rc, $out, $err) = loyaltyctl('sign-member', 'alice', '--keys',
                                          $KEYS, '--ttl', '100000y');
        my (undef, $exp) = split /~/, $out;
        ok($rc == 2 || ($rc == 0 && length($exp // '') <= 12),
           '--ttl 100000y: refused, or an expiry the module can read')
            or diag("exit $rc, printed $out");
    }

    for my $args (['alice'], ['--keys', $KEYS], ['alice', 'bob', '--keys', $KEYS],
                  ['alice', '--keys'], ['alice', '--keys', $KEYS, '--ttl'],
                  ['alice', '--keys', $KEYS, '--frob'])
    {
        my ($rc, $out, $err) = loyaltyctl('sign-member', @$args);
        is("$rc|$out", '2|', "sign-member @$args: exit 2");
        like($err, qr/usage: loyaltyctl sign-member ID --keys FILE/,
             "sign-member @$args: usage");
    }

    for my $id ('a' x 65, 'a b', '', 'a~b', 'ü') {
        my ($rc, $out, $err) =
            loyaltyctl('sign-member', $id, '--keys', $KEYS);
        is("$rc|$out", '1|', "sign-member \"$id\": exit 1");
        is($err, "loyaltyctl: \"$id\" is not a valid member id\n",
           "sign-member \"$id\": message");
    }

    my $k1 = $TEST_KEYS{k1};
    my @bad_keys = (
        ['missing file', undef,
         qq(cannot open "$KT/bad.keys": No such file or directory)],
        ['empty file', '', 'no keys'],
        ['comments only', "# nothing\n\n   \n", 'no keys'],
        ['short secret', "# c\nk1 " . ('ab' x 31) . "\n",
         'line 2: secret must be 32 to 128 bytes written as hex'],
        ['long secret', 'k1 ' . ('ab' x 129) . "\n",
         'line 1: secret must be 32 to 128 bytes written as hex'],
        ['odd hex', "k1 ${k1}a\n",
         'line 1: secret must be 32 to 128 bytes written as hex'],
        ['not hex', 'k1 ' . ('zz' x 32) . "\n",
         'line 1: secret must be 32 to 128 bytes written as hex'],
        ['bad kid', "k0 $TEST_KEYS{k0}\n\nk.1 $k1\n",
         'line 3: key id must be 1-16 characters of [A-Za-z0-9_-]'],
        ['17-character kid', ('k' x 17) . " $k1\n",
         'line 1: key id must be 1-16 characters of [A-Za-z0-9_-]'],
        ['duplicate kid', "k1 $k1\n# again\nk1 $TEST_KEYS{k0}\n",
         'line 3: duplicate key id "k1"'],
        ['kid alone', "k1\n", 'line 1: expected "KID SECRET_HEX"'],
        ['extra field', "k1 $k1 extra\n", 'line 1: expected "KID SECRET_HEX"'],
        ['17 keys', join('', map { "key$_ $k1\n" } 1 .. 17),
         'line 17: more than 16 keys'],
    );
    for (@bad_keys) {
        my ($name, $text, $reason) = @$_;
        unlink "$KT/bad.keys";
        write_file("$KT/bad.keys", $text, 0600) if defined $text;
        my ($rc, $out, $err) =
            loyaltyctl('sign-member', 'alice', '--keys', "$KT/bad.keys");
        is("$rc|$out", '1|', "keys file, $name: exit 1, no cookie");
        is($err, "loyaltyctl: keys: $reason\n", "keys file, $name: reason");
    }
}

done_testing();
