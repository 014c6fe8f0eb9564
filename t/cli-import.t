# loyaltyctl import: counts, replacement, all-or-nothing rejection with
# the line and the reason, line endings, stdin, a large file.  The store
# is checked through loyaltyctl and, byte for byte, with mdb_dump.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp ();
use IPC::Open3 qw(open3);
use Symbol qw(gensym);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $EXAMPLES = "$ROOT/schema/examples";


# helpers

# writes the text to FILE next to the store and imports it
sub import_file {
    my ($tmp, $dir, $kind, $text, $name) = @_;
    my $file = "$tmp/" . ($name // "in-$kind.jsonl");
    write_file($file, $text);
    return (loyaltyctl('-s', $dir, 'import', $kind, $file), $file);
}

# imports from a pipe on stdin ("-")
sub import_stdin {
    my ($dir, $kind, $text) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $CTL, '-s', $dir, 'import',
                    $kind, '-');
    binmode $in;
    print $in $text;
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

sub entries {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_stat', '-s', $db, $dir);
    return $rc == 0 && $out =~ /^\s*Entries: (\d+)$/m ? $1 : "mdb_stat $rc";
}

# the data part of mdb_dump: every key and value, in hex
sub dump_data {
    my ($dir, $db) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-s', $db, $dir);
    die "mdb_dump -s $db: exit $rc" if $rc;
    my ($data) = $out =~ /^HEADER=END\n(.*)^DATA=END$/ms
        or die "mdb_dump: no data";
    return $data;
}

# every database, keys and values in hex, and its entries, in two
# commands; the map size is left out, as an import may grow the map
sub snapshot {
    my ($dir) = @_;
    my ($rc, $dump) = run_out('mdb_dump', '-a', $dir);
    die "mdb_dump -a: exit $rc" if $rc;
    $dump =~ s/^mapsize=.*\n//mg;
    my ($rc2, $stat) = run_out('mdb_stat', '-a', $dir);
    die "mdb_stat -a: exit $rc2" if $rc2;
    my @counts = $stat =~ /^Status of (.+)\n(?:  .*\n)*?  Entries: (\d+)$/mg;
    return "$dump\nentries @counts";
}

sub get {
    my ($dir, $kind, $id) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', $kind, $id);
    return $rc ? "exit $rc: $err" : $out;
}

sub member_json {
    my ($id, $tier, $stage, %f) = @_;
    return qq({"id":"$id","tier":"$tier","stage":"$stage","orders":)
           . ($f{orders} // 0) . ',"spend":' . ($f{spend} // 0)
           . ',"points":' . ($f{points} // 0) . ',"blocked":'
           . ($f{blocked} ? 'true' : 'false') . "}\n";
}


# counts, repeated ids, replacement

{
    my ($tmp, $dir) = new_store();

    my ($rc, $out, $err) =
        loyaltyctl('-s', $dir, 'import', 'tiers', "$EXAMPLES/tiers.jsonl");
    is("$rc|$out|$err", "0|imported 4 tiers\n|", 'import tiers: count');
    is(entries($dir, 'tiers'), 4, 'mdb_stat: 4 tiers');

    ($rc, $out, $err) =
        loyaltyctl('-s', $dir, 'import', 'members', "$EXAMPLES/members.jsonl");
    is("$rc|$out|$err", "0|imported 7 members\n|", 'import members: count');
    is(entries($dir, 'members'), 7, 'mdb_stat: 7 members');

    # the later line wins
    ($rc, $out, $err) = import_file($tmp, $dir, 'members', <<'END');
{"id":"dup","tier":"basic","stage":"fan","points":1}
{"id":"other","tier":"vip","stage":"member"}
{"id":"dup","tier":"ka","stage":"customer","points":2}
END
    is("$rc|$out|$err", "0|imported 3 members\n|",
       'a repeated id: every line is counted');
    is(get($dir, 'member', 'dup'),
       member_json('dup', 'ka', 'customer', points => 2),
       'a repeated id: the later line wins');
    is(entries($dir, 'members'), 9, 'a repeated id is stored once');

    # re-import replaces
    ($rc, $out) = import_file($tmp, $dir, 'members',
        qq({"id":"lin.fan","tier":"vip","stage":"member","spend":5}\n));
    is("$rc $out", "0 imported 1 members\n", 're-import a member');
    is(get($dir, 'member', 'lin.fan'),
       member_json('lin.fan', 'vip', 'member', spend => 5),
       're-import replaces the whole record (old birthday gone)');
    is(entries($dir, 'members'), 9, 're-import adds no entry');

    ($rc, $out) = import_file($tmp, $dir, 'tiers',
        qq({"name":"vip","rank":7,"label":"Very"}\n));
    is("$rc $out", "0 imported 1 tiers\n", 're-import a tier');
    is(get($dir, 'tier', 'vip'),
       qq({"name":"vip","rank":7,"discount_bp":0,"label":"Very"}\n),
       're-import replaces the tier');
    is(entries($dir, 'tiers'), 4, 'still 4 tiers');

    # sorted input around keys already stored, then reversed input
    my ($tmp2, $d2) = new_store('tiers');
    import_file($tmp2, $d2, 'members', join '',
                map { qq({"id":"k$_","tier":"basic","stage":"fan","orders":1}\n) }
                    qw(2 4 6));
    ($rc, $out) = import_file($tmp2, $d2, 'members', join '',
        map { qq({"id":"k$_","tier":"vip","stage":"member","orders":2}\n) }
            qw(1 3 4 5 7));
    is("$rc $out", "0 imported 5 members\n", 'sorted import between keys');
    ($rc, $out) = import_file($tmp2, $d2, 'members', join '',
        map { qq({"id":"k$_","tier":"ka","stage":"partner","orders":3}\n) }
            qw(9 8 0));
    is("$rc $out", "0 imported 3 members\n", 'reversed import');
    is(entries($d2, 'members'), 10, 'k0-k9 stored');
    my %want = (map({ ($_ => [basic => 'fan', 1]) } 2, 6),
                map({ ($_ => [vip => 'member', 2]) } 1, 3, 4, 5, 7),
                map({ ($_ => [ka => 'partner', 3]) } 0, 8, 9));
    my $all = join '', map { get($d2, 'member', "k$_") } 0 .. 9;
    is($all, join('', map { member_json("k$_", $want{$_}[0], $want{$_}[1],
                                        orders => $want{$_}[2]) } 0 .. 9),
       'every key holds its latest record');

    ($rc, $out, $err) = import_file($tmp2, $d2, 'members', '');
    is("$rc|$out|$err", "0|imported 0 members\n|", 'an empty file');
    is(entries($d2, 'members'), 10, 'an empty file changes nothing');
}


# all or nothing

my $GOOD1 = qq({"id":"new.1","tier":"basic","stage":"fan"}\n);
my $GOOD2 = qq({"id":"lin.fan","tier":"ka","stage":"partner","points":9}\n);
my $GOOD3 = qq({"id":"new.3","tier":"vip","stage":"member"}\n);
my $TGOOD1 = qq({"name":"new1","rank":5}\n);
my $TGOOD2 = qq({"name":"vip","rank":9,"label":"changed"}\n);
my $TGOOD3 = qq({"name":"new3","rank":6}\n);

my $m = sub { qq({"id":"bad","tier":"basic","stage":"fan",$_[0]}) };
my $t = sub { qq({"name":"bad","rank":1,$_[0]}) };

my @bad = (
    [members => 'bad JSON', '{"id":', qr/bad JSON: .+/],
    [members => 'top-level array', '[{"id":"a","tier":"basic","stage":"fan"}]',
     'expected a JSON object'],
    [members => 'a bare string', '"lin.fan"', qr/bad JSON: .+/],
    [members => 'orders "3"', $m->('"orders":"3"'), '"orders" must be an integer'],
    [members => 'spend 1.5', $m->('"spend":1.5'), '"spend" must be an integer'],
    [members => 'blocked "yes"', $m->('"blocked":"yes"'),
     '"blocked" must be a boolean'],
    [members => 'blocked null', $m->('"blocked":null'),
     '"blocked" must be a boolean'],
    [members => 'tier 5', '{"id":"bad","tier":5,"stage":"fan"}',
     '"tier" must be a string'],
    [members => 'unknown field', $m->('"colour":"red"'),
     'unknown field "colour"'],
    [members => 'unknown tier', '{"id":"bad","tier":"gold","stage":"fan"}',
     'unknown tier "gold"'],
    [members => 'missing stage', '{"id":"bad","tier":"basic"}',
     '"stage" is required'],
    [members => 'missing id', '{"tier":"basic","stage":"fan"}',
     '"id" is required'],
    [members => 'bad stage', '{"id":"bad","tier":"basic","stage":"vip"}',
     '"stage" must be one of prospect, fan, customer, member, partner'],
    [members => 'id of 65 characters',
     '{"id":"' . ('x' x 65) . '","tier":"basic","stage":"fan"}',
     '"id" must be 1-64 characters of [A-Za-z0-9_.-]'],
    [members => 'id with a space', '{"id":"a b","tier":"basic","stage":"fan"}',
     '"id" must be 1-64 characters of [A-Za-z0-9_.-]'],
    [members => 'empty id', '{"id":"","tier":"basic","stage":"fan"}',
     '"id" must be 1-64 characters of [A-Za-z0-9_.-]'],
    [members => 'tier of 33 characters',
     '{"id":"bad","tier":"' . ('t' x 33) . '","stage":"fan"}',
     '"tier" must be 1-32 characters of [A-Za-z0-9_.-], and not "public"'],
    [members => 'invalid UTF-8 in a string', $m->(qq("referrer":"ab\xff\xfe")),
     qr/bad JSON: unable to decode byte 0xff near .*/],
    [members => 'truncated UTF-8 in a key', qq({"id":"bad","tier":"basic","stage":"fan","\xc3":1}),
     qr/bad JSON: unable to decode byte 0xc3 near .*/],
    [members => 'bad referrer', $m->('"referrer":"a/b"'),
     '"referrer" must be a member id'],
    [members => 'overlong line',
     $m->('"points":1' . (' ' x 65536)), 'line longer than 65536 bytes'],
    [members => 'negative spend', $m->('"spend":-1'),
     '"spend" must be between 0 and 9223372036854775807'],
    [members => 'negative orders', $m->('"orders":-1'),
     '"orders" must be between 0 and 4294967295'],
    [members => 'orders 4294967296', $m->('"orders":4294967296'),
     '"orders" must be between 0 and 4294967295'],
    [members => 'integer overflow', $m->('"points":99999999999999999999'),
     qr/bad JSON: too big integer near '99999999999999999999'/],
    [members => 'self-referrer', $m->('"referrer":"bad"'),
     'a member cannot be their own referrer'],
    [members => 'birthday 02-30', $m->('"birthday":"02-30"'),
     '"birthday" must be MM-DD'],
    [members => 'birthday 2-3', $m->('"birthday":"2-3"'),
     '"birthday" must be MM-DD'],
    [members => 'time 2024-13-01', $m->('"joined_at":"2024-13-01T00:00:00Z"'),
     '"joined_at" must be an RFC 3339 date-time'],
    [members => 'time 2023-02-29',
     $m->('"first_order_at":"2023-02-29T00:00:00Z"'),
     '"first_order_at" must be an RFC 3339 date-time'],
    [members => 'time without offset',
     $m->('"last_order_at":"2024-01-01T00:00:00"'),
     '"last_order_at" must be an RFC 3339 date-time'],
    [members => 'duplicate key', $m->('"stage":"member"'),
     qr/bad JSON: duplicate object key near '"stage"'/],
    [tiers => 'label of 65 characters', $t->('"label":"' . ('l' x 65) . '"'),
     '"label" must be at most 64 characters'],
    [tiers => 'label of 65 CJK characters',
     $t->('"label":"' . ("\xe9\x87\x91" x 65) . '"'),
     '"label" must be at most 64 characters'],
    [tiers => 'invalid UTF-8 in a label', $t->(qq("label":"VIP\xff\xfe")),
     qr/bad JSON: unable to decode byte 0xff near .*/],
    [tiers => 'UTF-16 surrogate in a label', $t->(qq("label":"\xed\xa0\x80")),
     qr/bad JSON: unable to decode byte 0xed near .*/],
    [tiers => 'discount_bp 10001', $t->('"discount_bp":10001'),
     '"discount_bp" must be between 0 and 10000'],
    [tiers => 'discount_bp -1', $t->('"discount_bp":-1'),
     '"discount_bp" must be between 0 and 10000'],
    [tiers => 'rank 2147483648', '{"name":"bad","rank":2147483648}',
     '"rank" must be between -2147483648 and 2147483647'],
    [tiers => 'rank 1.25', '{"name":"bad","rank":1.25}',
     '"rank" must be an integer'],
    [tiers => 'missing rank', '{"name":"bad"}', '"rank" is required'],
    [tiers => 'name of 33 characters', '{"name":"' . ('n' x 33) . '","rank":1}',
     '"name" must be 1-32 characters of [A-Za-z0-9_.-], and not "public"'],
    [tiers => 'the reserved name public', '{"name":"public","rank":9}',
     '"name" must be 1-32 characters of [A-Za-z0-9_.-], and not "public"'],
    [tiers => 'name with a slash', '{"name":"a/b","rank":1}',
     '"name" must be 1-32 characters of [A-Za-z0-9_.-], and not "public"'],
    [tiers => 'a member line', '{"id":"a","tier":"basic","stage":"fan"}',
     'unknown field "id"'],
);

{
    my ($tmp, $dir) = new_store(qw(tiers members));
    my $before = snapshot($dir);

    for (@bad) {
        my ($kind, $name, $line, $reason) = @$_;
        my @good = $kind eq 'members' ? ($GOOD1, $GOOD2, $GOOD3)
                                      : ($TGOOD1, $TGOOD2, $TGOOD3);

        # the bad line is line 4, after a blank line
        my $text = "$good[0]$good[1]\n$line\n$good[2]";
        my ($rc, $out, $err, $file) =
            import_file($tmp, $dir, $kind, $text, 'bad.jsonl');
        is($rc, 1, "$kind, $name: exit 1");
        is($out, '', "$kind, $name: nothing on stdout");
        my $re = ref $reason ? $reason : qr/\Q$reason\E/;
        like($err, qr/\Aloyaltyctl: \Q$file\E line 4: $re; nothing imported\n\z/,
             "$kind, $name: line 4 and the reason");
        is(snapshot($dir), $before, "$kind, $name: the store is unchanged");
    }

    # first line, last line without a newline, stdin
    my ($rc, $out, $err, $file) = import_file($tmp, $dir, 'members',
        qq({"id":"bad","tier":"gold","stage":"fan"}\n$GOOD1));
    like($err, qr/ line 1: unknown tier "gold"; nothing imported$/,
         'a bad first line is line 1');
    ($rc, $out, $err) = import_file($tmp, $dir, 'members',
        "$GOOD1$GOOD2" . '{"id":"bad","tier":"basic","stage":"x"}');
    like($err, qr/ line 3: "stage" must be one of/,
         'a bad last line without a newline');
    # GOOD1, two blank CRLF lines, GOOD3, the bad line 5
    ($rc, $out, $err) = import_stdin($dir, 'members',
        "$GOOD1\r\n\r\n$GOOD3" . '{"id":"bad","tier":"basic"}' . "\r\n");
    is("$rc|$out", '1|', 'stdin: a bad line: exit 1');
    is($err, "loyaltyctl: - line 5: \"stage\" is required; nothing imported\n",
       'stdin: the line and the reason');
    is(snapshot($dir), $before, 'after all of those, the store is unchanged');
}

# a long file that fails at its end leaves nothing behind
{
    my ($tmp, $dir) = new_store('tiers');
    my $before = snapshot($dir);
    my $text = join '', map {
        qq({"id":"bulk$_","tier":"basic","stage":"fan","points":$_}\n) }
        1 .. 100_000;
    my ($rc, $out, $err, $file) = import_file($tmp, $dir, 'members',
        $text . qq({"id":"bulk0","tier":"basic","stage":"fan","spend":-5}\n));
    is($rc, 1, '100,001 lines, the last one bad: exit 1');
    like($err, qr/ line 100001: "spend" must be between 0 and /,
         '100,001 lines: the line number');
    is(entries($dir, 'members'), 0, '100,001 lines: no member stored');
    is(snapshot($dir), $before, '100,001 lines: the store is unchanged');
}


# line endings, blank lines, boundaries, stdin, missing files

{
    my ($tmp, $dir) = new_store('tiers');

    my ($rc, $out, $err) = import_file($tmp, $dir, 'members',
        "\r\n"
        . qq({"id":"crlf.1","tier":"basic","stage":"fan","birthday":"12-24"}\r\n)
        . "   \t \r\n\n"
        . qq(  {"id":"crlf.2","tier":"vip","stage":"member"}  \r\n)
        . qq(\t{"id":"crlf.3","tier":"ka","stage":"customer","orders":3}));
    is("$rc|$out|$err", "0|imported 3 members\n|",
       'CRLF, blank and blank-looking lines, no final newline');
    is(get($dir, 'member', 'crlf.1'),
       '{"id":"crlf.1","tier":"basic","stage":"fan","orders":0,"spend":0,'
       . '"points":0,"birthday":"12-24","blocked":false}' . "\n",
       'CRLF: the record has no stray CR');
    is(get($dir, 'member', 'crlf.3'),
       member_json('crlf.3', 'ka', 'customer', orders => 3),
       'the last line without a newline is imported');
    is(entries($dir, 'members'), 3, 'mdb_stat: 3 members');

    ($rc, $out, $err) = import_file($tmp, $dir, 'tiers', "\n\n  \n");
    is("$rc|$out|$err", "0|imported 0 tiers\n|", 'only blank lines');

    # a line of exactly 65536 bytes is accepted, 65537 is not
    my $head = '{"id":"wide","tier":"basic","stage":"fan"';
    my $line = $head . (' ' x (65536 - length($head) - 1)) . '}';
    is(length $line, 65536, 'a line of 65536 bytes');
    ($rc, $out, $err) = import_file($tmp, $dir, 'members', "$line\n");
    is("$rc|$out|$err", "0|imported 1 members\n|", '65536 bytes: accepted');
    ($rc, $out, $err) = import_file($tmp, $dir, 'members', " $line\n");
    like($err, qr/ line 1: line longer than 65536 bytes; nothing imported$/,
         '65537 bytes: rejected');

    # stdin through a pipe
    ($rc, $out, $err) = import_stdin($dir, 'members',
        qq({"id":"pipe.1","tier":"basic","stage":"fan"}\n)
        . qq({"id":"pipe.2","tier":"partner","stage":"partner","blocked":true}\n));
    is("$rc|$out|$err", "0|imported 2 members\n|", 'stdin via "-"');
    is(get($dir, 'member', 'pipe.2'),
       member_json('pipe.2', 'partner', 'partner', blocked => 1),
       'stdin: the record is stored');
    ($rc, $out, $err) = import_stdin($dir, 'tiers', '');
    is("$rc|$out", "0|imported 0 tiers\n", 'stdin: empty input');

    # stdin through a shell redirect
    write_file("$tmp/redir.jsonl",
               qq({"name":"redir","rank":3,"discount_bp":250}\n));
    my $cmd = "'$CTL' -s '$dir' import tiers - < '$tmp/redir.jsonl'";
    $out = `$cmd 2>&1`;
    is("$? $out", "0 imported 1 tiers\n", 'stdin via a shell redirect');
    is(get($dir, 'tier', 'redir'),
       qq({"name":"redir","rank":3,"discount_bp":250,"label":""}\n),
       'stdin via a shell redirect: stored');

    my $before = snapshot($dir);
    ($rc, $out, $err) =
        loyaltyctl('-s', $dir, 'import', 'members', "$tmp/no-such.jsonl");
    is("$rc|$out", '1|', 'a missing file: exit 1');
    is($err, "loyaltyctl: cannot open \"$tmp/no-such.jsonl\": "
             . "No such file or directory\n", 'a missing file: message');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'members', $tmp);
    is($rc, 1, 'a directory as the file: exit 1');
    is(snapshot($dir), $before, 'missing files change nothing');

    ($rc, $out, $err) =
        loyaltyctl('-s', "$tmp/nostore", 'import', 'tiers',
                   "$EXAMPLES/tiers.jsonl");
    is($rc, 3, 'import into a missing store: exit 3');
    ok(!-e "$tmp/nostore", 'import does not create a store');

    # members need their tiers first
    my ($tmp2, $d2) = new_store();
    ($rc, $out, $err) =
        loyaltyctl('-s', $d2, 'import', 'members', "$EXAMPLES/members.jsonl");
    is($rc, 1, 'members before tiers: exit 1');
    like($err, qr/ line 1: unknown tier "basic"; nothing imported$/,
         'members before tiers: the first unknown tier');
    is(entries($d2, 'members'), 0, 'members before tiers: none stored');
}


# a large import

{
    my ($tmp, $dir) = new_store('tiers');
    my ($rc, $out) = loyaltyctl('-s', $dir, 'stat');
    my ($map) = $out =~ /^map_size\s+(\d+)$/m;
    ok(($map // 0) >= 1073741824, 'map_size after init is at least 1 GiB');

    my @tiers = qw(basic vip ka partner);
    my @stages = qw(prospect fan customer member partner);
    my $line = sub {
        my ($i) = @_;
        return sprintf '{"id":"u%06d","tier":"%s","stage":"%s","orders":%d,'
                       . '"spend":%d,"points":%d%s}',
                       $i, $tiers[$i % 4], $stages[$i % 5], $i % 1000,
                       $i * 100, 50_000 - $i,
                       $i % 7 ? '' : ',"blocked":true';
    };
    my $text = join '', map { $line->($_) . "\n" } 1 .. 200_000;

    my $err;
    ($rc, $out, $err) = import_file($tmp, $dir, 'members', $text);
    is("$rc|$out|$err", "0|imported 200000 members\n|",
       '200,000 members imported');

    ($rc, $out) = loyaltyctl('-s', $dir, 'stat');
    like($out, qr/^db members      200000$/m, 'stat: 200000 members');
    is(entries($dir, 'members'), 200000, 'mdb_stat: 200000 entries');
    ($map) = $out =~ /^map_size\s+(\d+)$/m;
    ok(($map // 0) >= 1073741824, 'map_size still at least 1 GiB');

    for my $i (1, 77_777, 200_000) {
        my $id = sprintf 'u%06d', $i;
        is(get($dir, 'member', $id),
           member_json($id, $tiers[$i % 4], $stages[$i % 5],
                       orders => $i % 1000, spend => $i * 100,
                       points => 50_000 - $i, blocked => !($i % 7)),
           "spot check $id");
    }

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out", '0|', '200,000 members: verify finds nothing');
}

done_testing();
