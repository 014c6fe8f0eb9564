# schema/*.schema.json against the examples, against the output of
# loyaltyctl get and loyaltyctl clicks, and against loyaltyctl import:
# what one rejects, the other must reject too.  Validation is Debian's
# python3-jsonschema, Draft 2020-12, with format assertions on.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();


my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $SCHEMA = "$ROOT/schema";
my $PYTHON = '/usr/bin/python3';

if (system($PYTHON, '-c', 'import jsonschema') != 0) {
    plan(skip_all => "$PYTHON with jsonschema (python3-jsonschema) needed");
}

my $TMP = test_dir(name => 'schema');

# python3 validate.py SCHEMA [FILE.jsonl]: checks the schema itself
# (prints "schema ok"), then every line of the file; prints "N: reason"
# for each invalid line, then "checked N"; exits 1 if any line is
# invalid, 2 if the schema is.
my $VALIDATOR = "$TMP/validate.py";
write_file($VALIDATOR, <<'PY');
import datetime, json, re, sys
import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

with open(sys.argv[1], encoding='utf-8') as f:
    schema = json.load(f)
try:
    Draft202012Validator.check_schema(schema)
except jsonschema.SchemaError as e:
    print('schema: %s' % e.message)
    sys.exit(2)

fc = FormatChecker()

# python3-jsonschema checks date-time only when rfc3339-validator is
# installed, which Debian does not pull in: RFC 3339 section 5.6 here
if 'date-time' not in fc.checkers:
    RFC3339 = re.compile(r'(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)'
                         r'(\.\d+)?([Zz]|[+-](\d\d):(\d\d))')

    @fc.checks('date-time', raises=ValueError)
    def date_time(s):
        if not isinstance(s, str):
            return True
        m = RFC3339.fullmatch(s)
        if not m:
            return False
        y, mo, d, h, mi, sec = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
        # year 0000 is valid and, like 2000, a leap year
        datetime.date(y or 2000, mo, d)
        if m.group(9) and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
            return False
        return h <= 23 and mi <= 59 and sec <= 60

v = Draft202012Validator(schema, format_checker=fc)
print('schema ok')

if len(sys.argv) < 3:
    sys.exit(0)

def no_duplicates(pairs):
    obj = {}
    for k, val in pairs:
        if k in obj:
            raise ValueError('duplicate key %r' % k)
        obj[k] = val
    return obj

def no_constants(name):
    raise ValueError('%s is not JSON' % name)

bad = 0
checked = 0
with open(sys.argv[2], 'rb') as f:
    data = f.read()
for n, raw in enumerate(data.split(b'\n'), 1):
    if not raw.strip():
        continue
    checked += 1
    try:
        obj = json.loads(raw.decode('utf-8'), object_pairs_hook=no_duplicates,
                         parse_constant=no_constants)
    except ValueError as e:
        print('%d: not JSON: %s' % (n, e))
        bad += 1
        continue
    errors = sorted(v.iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        print('%d: %s' % (n, errors[0].message))
        bad += 1
print('checked %d' % checked)
sys.exit(1 if bad else 0)
PY


# helpers

my $nfile = 0;

# (exit, stdout without the "schema ok" line) of the validator over the
# lines; every call checks the schema first
sub validate {
    my ($kind, @lines) = @_;
    my $file = "$TMP/lines-" . $nfile++ . '.jsonl';
    write_file($file, join '', map { "$_\n" } @lines);
    open my $fh, '-|', $PYTHON, $VALIDATOR, "$SCHEMA/$kind.schema.json",
                       $file or die "$PYTHON: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8;
    $out =~ s/\Aschema ok\n// or return ($rc || -1, $out);
    return ($rc, $out);
}

# the numbers of the lines the validator rejects
sub invalid_lines {
    my ($out) = @_;
    return join ',', $out =~ /^(\d+): /mg;
}

sub import_lines {
    my ($dir, $kind, @lines) = @_;
    my $file = "$TMP/import-" . $nfile++ . '.jsonl';
    write_file($file, join '', map { "$_\n" } @lines);
    return loyaltyctl('-s', $dir, 'import', $kind, $file);
}

sub slurp_lines {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!";
    return grep { /\S/ } map { s/\r?\n\z//r } <$fh>;
}

my $json = JSON::PP->new;


# the schemas are valid Draft 2020-12 schemas

my @schemas = map { m{/([^/]+)\.schema\.json\z} } glob "$SCHEMA/*.schema.json";
ok((grep { $_ eq 'member' } @schemas) && (grep { $_ eq 'tier' } @schemas),
   "schema/ holds member and tier schemas (@schemas)");

for my $kind (@schemas) {
    open my $fh, '-|', $PYTHON, $VALIDATOR, "$SCHEMA/$kind.schema.json"
        or die;
    my $out = do { local $/; <$fh> };
    close $fh;
    is(($? >> 8) . " $out", "0 schema ok\n",
       "$kind.schema.json is a valid Draft 2020-12 schema");
    my $s = $json->decode(do { local $/; open my $fh, '<:raw',
                               "$SCHEMA/$kind.schema.json" or die; <$fh> });
    is($s->{'$schema'}, 'https://json-schema.org/draft/2020-12/schema',
       "$kind.schema.json declares Draft 2020-12");
}

{
    # the check can fail
    write_file("$TMP/broken.schema.json", '{"type": 5}');
    open my $fh, '-|', $PYTHON, $VALIDATOR, "$TMP/broken.schema.json" or die;
    my $out = do { local $/; <$fh> };
    close $fh;
    is($? >> 8, 2, 'a broken schema fails check_schema');
}


# the examples

# every examples/KINDs.jsonl against KIND.schema.json
my %examples = map { m{/(\w+)s\.jsonl\z} ? ($1 => $_) : () }
               glob "$SCHEMA/examples/*.jsonl";
my %example_lines = map { $_ => [slurp_lines($examples{$_})] } keys %examples;
ok($examples{member} && $examples{tier}, 'members and tiers examples exist');

for my $kind (sort keys %examples) {
    my $n = @{$example_lines{$kind}};
    ok($n > 0 && -f "$SCHEMA/$kind.schema.json",
       "examples/${kind}s.jsonl has lines and a schema");
    my ($rc, $out) = validate($kind, @{$example_lines{$kind}});
    is("$rc $out", "0 checked $n\n", "every line of ${kind}s.jsonl is valid");
}

{
    # and the validator does reject: members are not tiers
    my $n = @{$example_lines{member}};
    my ($rc, $out) = validate('tier', @{$example_lines{member}});
    is($rc, 1, 'members against the tier schema: invalid');
    is(invalid_lines($out), join(',', 1 .. $n), 'every member line rejected');
}


# loyaltyctl get prints valid records, which import again unchanged

my ($store_tmp, $S) = new_store();
{
    my ($rc, $out, $err) = loyaltyctl('-s', $S, 'import', 'tiers',
                                      $examples{tier});
    is($rc, 0, 'examples: tiers imported') or diag($err);
    ($rc, $out, $err) = loyaltyctl('-s', $S, 'import', 'members',
                                   $examples{member});
    is($rc, 0, 'examples: members imported') or diag($err);
}

my %got;
for my $kind (qw(member tier)) {
    my $key = $kind eq 'member' ? 'id' : 'name';
    my @ids = map { $json->decode($_)->{$key} } @{$example_lines{$kind}};
    for my $id (@ids) {
        my ($rc, $out, $err) = loyaltyctl('-s', $S, 'get', $kind, $id);
        is($rc, 0, "get $kind $id") or diag($err);
        like($out, qr/\A\{[^\n]*\}\n\z/, "get $kind $id: one line");
        chomp $out;
        push @{$got{$kind}}, $out;
    }
    my $n = @ids;
    my ($rc, $out) = validate($kind, @{$got{$kind}});
    is("$rc $out", "0 checked $n\n",
       "get $kind output is valid for every example");
}

{
    my ($tmp, $dir) = new_store();
    my ($rc, $out) = import_lines($dir, 'tiers', @{$got{tier}});
    is($rc, 0, 'get tier output imports');
    ($rc, $out) = import_lines($dir, 'members', @{$got{member}});
    is($rc, 0, 'get member output imports');
    for my $kind (qw(member tier)) {
        my @again = map {
            my $key = $kind eq 'member' ? 'id' : 'name';
            my (undef, $o) = loyaltyctl('-s', $dir, 'get', $kind,
                                        $json->decode($_)->{$key});
            chomp $o;
            $o;
        } @{$got{$kind}};
        is_deeply(\@again, $got{$kind}, "get $kind output round-trips");
    }
}


# schema and code agree

my $m = sub { qq({"id":"m","tier":"basic","stage":"fan",$_[0]}) };
my $t = sub { qq({"name":"t","rank":1,$_[0]}) };

my @bad_members = (
    $m->('"colour":"red"'),
    '{"id":"' . ('x' x 65) . '","tier":"basic","stage":"fan"}',
    '{"id":"a b","tier":"basic","stage":"fan"}',
    '{"id":"","tier":"basic","stage":"fan"}',
    qq({"id":"\xc3\xbc","tier":"basic","stage":"fan"}),
    '{"id":"a/b","tier":"basic","stage":"fan"}',
    '{"id":5,"tier":"basic","stage":"fan"}',
    '{"id":"m","tier":"' . ('b' x 33) . '","stage":"fan"}',
    '{"id":"m","tier":"ba sic","stage":"fan"}',
    '{"id":"m","tier":5,"stage":"fan"}',
    '{"id":"m","tier":"basic","stage":"vip"}',
    '{"id":"m","tier":"basic","stage":"Fan"}',
    '{"id":"m","tier":"basic","stage":null}',
    '{"tier":"basic","stage":"fan"}',
    '{"id":"m","stage":"fan"}',
    '{"id":"m","tier":"basic"}',
    $m->('"referrer":"a/b"'),
    $m->('"referrer":""'),
    $m->('"referrer":"' . ('r' x 65) . '"'),
    $m->('"orders":"3"'),
    $m->('"orders":-1'),
    $m->('"orders":4294967296'),
    $m->('"orders":1.5'),
    $m->('"spend":-1'),
    $m->('"spend":9223372036854775808'),
    $m->('"spend":1.5'),
    $m->('"points":9223372036854775808'),
    $m->('"points":9223372036854775807'),
    $m->('"points":-9223372036854775808'),
    $m->('"points":1000000000001'),
    $m->('"points":-1000000000001'),
    $m->('"joined_at":"0000-01-01T00:00:00Z"'),
    $m->('"joined_at":"1999-12-31T23:59:59Z"'),
    $m->('"last_order_at":"2101-01-01T00:00:00Z"'),
    $m->('"first_order_at":"9999-12-31T23:59:59Z"'),
    $m->('"points":-9223372036854775809'),
    $m->('"points":99999999999999999999'),
    $m->('"points":"1"'),
    $m->('"blocked":"yes"'),
    $m->('"blocked":null'),
    $m->('"blocked":1'),
    $m->('"birthday":"13-01"'),
    $m->('"birthday":"00-10"'),
    $m->('"birthday":"1-01"'),
    $m->('"birthday":"01-32"'),
    $m->('"birthday":"01-00"'),
    $m->('"birthday":"0101"'),
    $m->('"birthday":1231'),
    $m->('"joined_at":"2024-03-01 10:00:00Z"'),
    $m->('"joined_at":"2024-03-01T10:00:00"'),
    $m->('"joined_at":"2024-03-01T10:00Z"'),
    $m->('"joined_at":"2024-13-01T00:00:00Z"'),
    $m->('"joined_at":"2024-02-30T00:00:00Z"'),
    $m->('"joined_at":"2023-02-29T00:00:00Z"'),
    $m->('"first_order_at":"2024-03-01T24:00:00Z"'),
    $m->('"first_order_at":"2024-03-01T10:60:00Z"'),
    $m->('"last_order_at":"2024-03-01T10:00:00+0800"'),
    $m->('"last_order_at":"2024-03-01T10:00:00+24:00"'),
    $m->('"last_order_at":"2024-03-01T10:00:00.Z"'),
    $m->('"last_order_at":1709287200'),
    '[{"id":"m","tier":"basic","stage":"fan"}]',
    '"m"',
    $m->('"stage":"member"'),
);

my @bad_tiers = (
    $t->('"label":"' . ('l' x 65) . '"'),
    $t->('"label":"' . ("\xe9\x87\x91" x 65) . '"'),
    $t->('"label":"' . ("\xf0\x9f\x98\x80" x 65) . '"'),
    $t->('"label":"' . ('\ud83d\ude00' x 65) . '"'),
    $t->('"label":5'),
    $t->('"label":null'),
    '{"name":"' . ('n' x 33) . '","rank":1}',
    '{"name":"a b","rank":1}',
    '{"name":"","rank":1}',
    '{"name":"a/b","rank":1}',
    '{"name":1,"rank":1}',
    '{"name":"t","rank":2147483648}',
    '{"name":"t","rank":-2147483649}',
    '{"name":"t","rank":"1"}',
    '{"name":"t","rank":1.5}',
    '{"name":"t","rank":null}',
    $t->('"discount_bp":10001'),
    $t->('"discount_bp":-1'),
    $t->('"discount_bp":"5"'),
    $t->('"discount_bp":0.5'),
    '{"rank":1}',
    '{"name":"t"}',
    $t->('"colour":"gold"'),
    $t->('"name":"u"'),
    '[]',
);

my $TIER32 = 'T' x 32;

my @good_members = (
    '{"id":"' . ('i' x 64) . '","tier":"basic","stage":"fan"}',
    '{"id":"a.b_c-D9","tier":"' . $TIER32 . '","stage":"prospect"}',
    $m->('"birthday":"02-29"'),
    $m->('"birthday":"12-31","blocked":false'),
    $m->('"birthday":"01-01","blocked":true'),
    $m->('"joined_at":"2024-03-01T10:00:00.123456+08:00"'),
    $m->('"joined_at":"2024-03-01t10:00:00z"'),
    $m->('"first_order_at":"2024-02-29T23:59:59-00:00",'
         . '"last_order_at":"2024-03-01T00:00:00+23:59"'),
    $m->('"points":-1'),
    $m->('"points":-1000000000000'),
    $m->('"points":1000000000000,"spend":9223372036854775807'),
    $m->('"joined_at":"2000-01-01T00:00:00Z",'
         . '"last_order_at":"2100-12-31T23:59:59Z"'),
    $m->('"orders":4294967295'),
    $m->('"orders":0,"spend":0,"points":0'),
    '{"blocked":true,"birthday":"07-04","points":-5,"spend":100,"orders":2,'
    . '"last_order_at":"2024-06-01T12:00:00Z",'
    . '"first_order_at":"2024-05-01T12:00:00+02:00",'
    . '"joined_at":"2024-04-01T12:00:00.5-03:30","referrer":"ref.1",'
    . '"stage":"partner","tier":"vip","id":"all.fields"}',
    '{"id":"m2","tier":"ka","stage":"customer","referrer":"' . ('r' x 64) . '"}',
    '{"id":"m3","tier":"partner","stage":"member"}',
);

my @good_tiers = (
    '{"name":"cjk","rank":1,"label":"' . ("\xe9\x87\x91" x 64) . '"}',
    '{"name":"emoji","rank":2,"label":"' . ("\xf0\x9f\x98\x80" x 64) . '"}',
    '{"name":"escaped","rank":3,"label":"' . ('\u91d1' x 64) . '"}',
    '{"name":"ascii","rank":4,"label":"' . ('a' x 64) . '"}',
    '{"name":"empty","rank":5,"label":""}',
    '{"name":"low","rank":-2147483648,"discount_bp":0}',
    '{"name":"high","rank":2147483647,"discount_bp":10000}',
    '{"name":"' . $TIER32 . '","rank":0}',
    '{"name":"a.b_c-D","rank":0,"label":"quote \" and \\\\ and \\n"}',
);

# one store holds the tiers the member lines name
my ($agree_tmp, $A) = new_store();
{
    my ($rc, $out, $err) = import_lines($A, 'tiers',
        map({ qq({"name":"$_","rank":0}) } qw(basic vip ka partner)),
        qq({"name":"$TIER32","rank":9}));
    is($rc, 0, 'agreement store: tiers') or diag($err);
}

for my $case ([member => \@bad_members], [tier => \@bad_tiers]) {
    my ($kind, $lines) = @$case;
    my $n = @$lines;

    my ($rc, $out) = validate($kind, @$lines);
    is($rc, 1, "$n bad $kind lines: the schema rejects");
    is(invalid_lines($out), join(',', 1 .. $n),
       "$n bad $kind lines: the schema rejects every one")
        or diag($out);

    my @accepted;
    for my $i (0 .. $#$lines) {
        my ($rc, $out, $err) = import_lines($A, "${kind}s", $lines->[$i]);
        push @accepted, $i + 1 unless $rc == 1 && $err =~ / line 1: /;
    }
    is("@accepted", '', "$n bad $kind lines: loyaltyctl import rejects "
                        . 'every one, naming line 1');
}

{
    my ($rc, $out, $err) = loyaltyctl('-s', $A, 'stat');
    like($out, qr/^db members      0$/m, 'no bad member line was stored');
    like($out, qr/^db tiers        5$/m, 'no bad tier line was stored');
}

for my $case ([tier => \@good_tiers], [member => \@good_members]) {
    my ($kind, $lines) = @$case;
    my $n = @$lines;

    my ($rc, $out) = validate($kind, @$lines);
    is("$rc $out", "0 checked $n\n", "$n good $kind lines: the schema accepts")
        or diag($out);

    my $err;
    ($rc, $out, $err) = import_lines($A, "${kind}s", @$lines);
    is("$rc $out$err", "0 imported $n ${kind}s\n",
       "$n good $kind lines: loyaltyctl import accepts");

    # and prints them back as valid records
    my $key = $kind eq 'member' ? 'id' : 'name';
    my @printed;
    for (@$lines) {
        my $id = $json->decode($_)->{$key};
        my (undef, $o) = loyaltyctl('-s', $A, 'get', $kind, $id);
        chomp $o;
        push @printed, $o;
    }
    ($rc, $out) = validate($kind, @printed);
    is("$rc $out", "0 checked $n\n",
       "$n good $kind lines: get prints valid records") or diag($out);
}

{
    # what the code normalizes, the schema must still accept
    my (undef, $o) = loyaltyctl('-s', $A, 'get', 'member', 'all.fields');
    is($o, '{"id":"all.fields","tier":"vip","stage":"partner",'
           . '"referrer":"ref.1","joined_at":"2024-04-01T15:30:00Z",'
           . '"first_order_at":"2024-05-01T10:00:00Z",'
           . '"last_order_at":"2024-06-01T12:00:00Z","orders":2,"spend":100,'
           . '"points":-5,"birthday":"07-04","blocked":true}' . "\n",
       'get member all.fields: normalized');
    (undef, $o) = loyaltyctl('-s', $A, 'get', 'tier', 'escaped');
    is($o, '{"name":"escaped","rank":3,"discount_bp":0,"label":"'
           . ("\xe9\x87\x91" x 64) . '"}' . "\n",
       'get tier escaped: \u escapes come back as UTF-8');
}

# Edges where a schema could drift from the code: impossible birthdays,
# integral reals, NUL inside a string.
{
    my %cases = (member => [$m->('"birthday":"02-30"'),
                            $m->('"birthday":"04-31"'),
                            $m->('"orders":1.0')],
                 tier => [$t->('"label":"a\u0000b"')]);

    for my $kind (sort keys %cases) {
        my $lines = $cases{$kind};
        my (undef, $out) = validate($kind, @$lines);
        my %invalid = map { $_ => 1 } split /,/, invalid_lines($out);
        for my $i (0 .. $#$lines) {
            my ($rc) = import_lines($A, "${kind}s", $lines->[$i]);
            is($invalid{$i + 1} ? 'rejects' : 'accepts',
               $rc == 0 ? 'accepts' : 'rejects',
               "schema and loyaltyctl agree on $lines->[$i]");
        }
    }
}


# share codes and their click counts

my $MALL = 'mall.example.cn';
my $LABEL63 = 'l' x 63;
my $HOST253 = join('.', ('h' x 63) x 3) . '.' . ('h' x 61);
my @HOSTS = ('--hosts', join ',', $MALL, 'a.example', '1.2.3.4',
                                  "$LABEL63.example", $HOST253);

# imports lines as codes, with the hosts above
sub import_codes {
    my ($dir, @lines) = @_;
    my $file = "$TMP/import-" . $nfile++ . '.jsonl';
    write_file($file, join '', map { "$_\n" } @lines);
    return loyaltyctl('-s', $dir, 'import', 'codes', $file, @HOSTS);
}

# a store with the example tiers, members and codes
my ($codes_tmp, $CS) = new_store();
{
    my @r = (loyaltyctl('-s', $CS, 'import', 'tiers', $examples{tier}),
             loyaltyctl('-s', $CS, 'import', 'members', $examples{member}),
             loyaltyctl('-s', $CS, 'import', 'codes', $examples{code},
                        '--hosts', $MALL));
    is(join(' ', @r[0, 3, 6]), '0 0 0', 'codes store: tiers, members, codes')
        or diag("@r");
}

{
    my @codes = map { $json->decode($_)->{code} } @{$example_lines{code}};
    my @printed = map {
        my ($rc, $out) = loyaltyctl('-s', $CS, 'get', 'code', $_);
        chomp $out;
        $out;
    } @codes;
    my $n = @codes;
    my ($rc, $out) = validate('code', @printed);
    is("$rc $out", "0 checked $n\n", 'get code output is valid for every '
       . 'example');
    is(scalar(grep { /\A\{"code":"[A-Z0-9_-]+",/ } @printed), $n,
       'get code prints the code in upper case');

    # and imports again unchanged
    my ($tmp, $dir) = new_store();
    loyaltyctl('-s', $dir, 'import', 'tiers', $examples{tier});
    loyaltyctl('-s', $dir, 'import', 'members', $examples{member});
    my $err;
    ($rc, $out, $err) = import_codes($dir, @printed);
    is("$rc $out$err", "0 imported $n codes\n", 'get code output imports');
    my @again = map {
        my (undef, $o) = loyaltyctl('-s', $dir, 'get', 'code', $_);
        chomp $o;
        $o;
    } @codes;
    is_deeply(\@again, \@printed, 'get code output round-trips');
}

{
    my $day = 20777;    # 2026-11-20
    is(mdb_put_raw($CS, 'clicks',
                   'WANG-MALL' . "\0" . pack('N', $day),
                   pack('C x7 Q<6', 1, 120, 98, 17, 2, 0, 41),
                   'WANG-MALL' . "\0" . pack('N', $day + 1),
                   pack('C x7 Q<6', 1, 0, 0, 0, 0, 0, 0),
                   'SUN2026' . "\0" . pack('N', 0),
                   pack('C x7 Q<6', 1, 5, 5, 0, 0, 5, 0),
                   'LI-VIP-TEA' . "\0" . pack('N', 2932896),
                   pack('C x7 Q<6', 1, ('9223372036854775807') x 6)),
       0, 'clicks records loaded with mdb_load');

    my ($rc, $out, $err) = loyaltyctl('-s', $CS, 'clicks');
    my @lines = split /\n/, $out;
    is("$rc " . scalar(@lines), '0 4', 'clicks: 4 lines') or diag($err);
    my $n = @lines;
    my $vout;
    ($rc, $vout) = validate('clicks', @lines);
    is("$rc $vout", "0 checked 4\n", 'clicks output is valid');
    is($lines[0], '{"code":"LI-VIP-TEA","day":"9999-12-31",'
       . '"total":9223372036854775807,"unique":9223372036854775807,'
       . '"bot":9223372036854775807,"self":9223372036854775807,'
       . '"rejected":9223372036854775807,"attributed":9223372036854775807}',
       'clicks: the largest counters and the last day');

    ($rc, $out) = loyaltyctl('-s', $CS, 'clicks', 'wang-mall', '--since',
                             '2026-11-21');
    ($rc, $vout) = validate('clicks', split /\n/, $out);
    is("$rc $vout", "0 checked 1\n", 'clicks CODE --since output is valid');

    # and the validator does reject
    my $k = sub { qq({"code":"ABC","day":"2026-11-20",$_[0]}) };
    my $all = '"unique":1,"bot":0,"self":0,"rejected":0,"attributed":0';
    my @bad_clicks = (
        $k->('"total":-1,' . $all),
        $k->('"total":1.5,' . $all),
        $k->('"total":"1",' . $all),
        $k->('"total":9223372036854775808,' . $all),
        $k->($all),
        $k->('"total":1,"extra":1,' . $all),
        qq({"code":"abc","day":"2026-11-20","total":1,$all}),
        qq({"code":"AB","day":"2026-11-20","total":1,$all}),
        qq({"code":"A.C","day":"2026-11-20","total":1,$all}),
        qq({"code":"ABC","day":"1969-12-31","total":1,$all}),
        qq({"code":"ABC","day":"2026-02-30","total":1,$all}),
        qq({"code":"ABC","day":"2026-11-20T00:00:00Z","total":1,$all}),
        qq({"code":"ABC","day":20777,"total":1,$all}),
        qq({"day":"2026-11-20","total":1,$all}),
        '[]',
    );
    ($rc, $vout) = validate('clicks', @bad_clicks);
    is(invalid_lines($vout), join(',', 1 .. @bad_clicks),
       'the clicks schema rejects every bad line') or diag($vout);

    # the code schema is not the member schema, nor the clicks one
    ($rc, $vout) = validate('code', @lines);
    is(invalid_lines($vout), '1,2,3,4', 'clicks lines are not codes');
    ($rc, $vout) = validate('member', @{$example_lines{code}});
    is(invalid_lines($vout), join(',', 1 .. @{$example_lines{code}}),
       'codes are not members');
}

my $cd = sub { qq({"code":"abc","vanity":true,"member":"lin.fan",$_[0]}) };

my @bad_codes = (
    $cd->('"colour":"red"'),
    $cd->('"created_at":"0000-01-01T00:00:00Z"'),
    $cd->('"expires_at":"9999-12-31T23:59:59Z"'),
    $cd->('"created_at":"1999-12-31T23:59:59Z"'),
    $cd->('"expires_at":"2101-01-01T00:00:00Z"'),
    '{"code":"ab","member":"lin.fan"}',
    '{"code":"","member":"lin.fan"}',
    '{"code":"' . ('c' x 33) . '","member":"lin.fan"}',
    '{"code":"' . ('K' x 10240) . '","member":"lin.fan"}',
    '{"code":"a b","member":"lin.fan"}',
    '{"code":"a.b.c","member":"lin.fan"}',
    '{"code":"a/bc","member":"lin.fan"}',
    qq({"code":"\xc3\xbcber","member":"lin.fan"}),
    '{"code":"abc\u0000","member":"lin.fan"}',
    '{"code":5,"member":"lin.fan"}',
    '{"code":null,"member":"lin.fan"}',
    '{"member":"lin.fan"}',
    '{"code":"abc"}',
    '{"code":"abc","member":"a b"}',
    '{"code":"abc","member":""}',
    '{"code":"abc","member":"' . ('m' x 65) . '"}',
    '{"code":"abc","member":7}',
    $cd->('"campaign":""'),
    $cd->('"campaign":"a b"'),
    $cd->('"campaign":"' . ('c' x 65) . '"'),
    $cd->('"campaign":5'),
    $cd->('"target":""'),
    $cd->('"target":"//evil.com"'),
    $cd->('"target":"///x"'),
    $cd->('"target":"/\\\\evil.com"'),
    $cd->('"target":"\\\\\\\\evil.com"'),
    $cd->('"target":"http://shop.example@evil.com"'),
    $cd->('"target":"https://a.example@a.example/"'),
    $cd->('"target":"javascript:alert(1)"'),
    $cd->('"target":"ftp://a.example/"'),
    $cd->('"target":"products/1"'),
    $cd->('"target":"http:/a.example"'),
    $cd->('"target":"https:///x"'),
    $cd->('"target":"https://"'),
    $cd->('"target":"http://[::1]/"'),
    $cd->('"target":"http://a.example:0/"'),
    $cd->('"target":"http://a.example:65536/"'),
    $cd->('"target":"http://a.example:/"'),
    $cd->('"target":"http://a.example:80a/"'),
    $cd->('"target":"http://-a.example/"'),
    $cd->('"target":"http://a-.example/"'),
    $cd->('"target":"http://a..example/"'),
    $cd->('"target":"http://.a.example/"'),
    $cd->('"target":"http://a.example./"'),
    $cd->('"target":"http://a_b.example/"'),
    $cd->('"target":"http://' . ('l' x 64) . '.example/"'),
    $cd->('"target":"http://h' . $HOST253 . '/"'),
    $cd->('"target":"/a b"'),
    $cd->('"target":"/a\tb"'),
    $cd->('"target":"/a\u007f"'),
    $cd->(qq("target":"/\xe4\xbc\x9a")),
    $cd->('"target":"/' . ('x' x 1024) . '"'),
    $cd->('"target":7'),
    $cd->('"created_at":"2026-02-29T00:00:00Z"'),
    $cd->('"created_at":"2026-11-20 10:00:00Z"'),
    $cd->('"created_at":1700000000'),
    $cd->('"expires_at":"2026-11-20T10:00:00"'),
    $cd->('"expires_at":"2026-11-20T24:00:00Z"'),
    $cd->('"max_clicks":0'),
    $cd->('"max_clicks":-1'),
    $cd->('"max_clicks":1.5'),
    $cd->('"max_clicks":"5"'),
    $cd->('"max_clicks":9223372036854775808'),
    $cd->('"revoked":"yes"'),
    $cd->('"revoked":1'),
    $cd->('"revoked":null'),
    $cd->('"code":"abd"'),
    '["abc"]',
);

my @good_codes = (
    '{"code":"abc","vanity":true,"member":"lin.fan"}',
    '{"code":"' . ('Z' x 32) . '","vanity":true,"member":"wang.partner"}',
    '{"code":"a_B-9","vanity":true,"member":"li.member","campaign":"' . ('c' x 64) . '"}',
    '{"code":"t-root","member":"lin.fan","target":"/"}',
    '{"code":"t-path","member":"lin.fan","target":"/p?u=http://evil.com/#x"}',
    '{"code":"t-long","member":"lin.fan","target":"/' . ('x' x 1023) . '"}',
    '{"code":"t-url","vanity":true,"member":"lin.fan","target":"https://' . $MALL . '"}',
    '{"code":"t-case","member":"lin.fan","target":"HtTpS://MALL.Example.CN/"}',
    '{"code":"t-port","member":"lin.fan","target":"http://a.example:65535/x"}',
    '{"code":"t-port0","member":"lin.fan","target":"http://a.example:00080"}',
    '{"code":"t-query","member":"lin.fan","target":"http://a.example?x=1"}',
    '{"code":"t-frag","member":"lin.fan","target":"http://a.example#top"}',
    '{"code":"t-label","member":"lin.fan","target":"http://' . $LABEL63
        . '.example/"}',
    '{"code":"t-host","member":"lin.fan","target":"http://' . $HOST253
        . '/"}',
    '{"code":"t-odd","vanity":true,"member":"lin.fan",'
    . '"target":"/a!$&()*+,;=:@~[]{}|^`\'\"<>%"}',
    '{"code":"all","vanity":true,"member":"zhao.member","campaign":"double-11",'
    . '"target":"/products/tea-gift",'
    . '"created_at":"2026-11-01T10:00:00.5+08:00",'
    . '"expires_at":"2026-11-11T23:59:59-05:00","max_clicks":1,'
    . '"revoked":true}',
    '{"code":"times","vanity":true,"member":"lin.fan","created_at":"2000-01-01T00:00:00Z",'
    . '"expires_at":"2100-12-31T23:59:59Z","max_clicks":9223372036854775807,'
    . '"revoked":false}',
);

{
    my $n = @bad_codes;
    my ($rc, $out) = validate('code', @bad_codes);
    is(invalid_lines($out), join(',', 1 .. $n),
       "$n bad code lines: the schema rejects every one") or diag($out);

    my $before = `mdb_dump -s codes '$CS'`;
    my @accepted;
    for my $i (0 .. $#bad_codes) {
        my ($rc, $out, $err) = import_codes($CS, $bad_codes[$i]);
        push @accepted, $i + 1 unless $rc == 1 && $err =~ / line 1: /;
    }
    is("@accepted", '', "$n bad code lines: loyaltyctl import rejects every "
                        . 'one, naming line 1');
    is(`mdb_dump -s codes '$CS'`, $before, 'no bad code line was stored');

    $n = @good_codes;
    ($rc, $out) = validate('code', @good_codes);
    is("$rc $out", "0 checked $n\n", "$n good code lines: the schema accepts")
        or diag($out);
    my $err;
    ($rc, $out, $err) = import_codes($CS, @good_codes);
    # vanity codes come with a warning each
    is("$rc $out" . ($err =~ s/^loyaltyctl: \S+ line \d+: warning: .*\n//mgr),
       "0 imported $n codes\n",
       "$n good code lines: loyaltyctl import accepts");

    my @printed = map {
        my (undef, $o) = loyaltyctl('-s', $CS, 'get', 'code',
                                    $json->decode($_)->{code});
        chomp $o;
        $o;
    } @good_codes;
    ($rc, $out) = validate('code', @printed);
    is("$rc $out", "0 checked $n\n", "$n good code lines: get prints valid "
       . 'records') or diag($out);

    my (undef, $o) = loyaltyctl('-s', $CS, 'get', 'code', 'all');
    is($o, '{"code":"ALL","member":"zhao.member","campaign":"double-11",'
           . '"target":"/products/tea-gift",'
           . '"created_at":"2026-11-01T02:00:00Z",'
           . '"expires_at":"2026-11-12T04:59:59Z","max_clicks":1,'
           . '"revoked":true,"vanity":true}' . "\n",
       'get code all: normalized, and valid above');

    # what the schema cannot know: members and --hosts
    ($rc, $out) = validate('code', '{"code":"abc","vanity":true,"member":"ghost"}',
                           $cd->('"target":"https://evil.com/"'));
    is("$rc $out", "0 checked 2\n",
       'an unknown member and an off-site host are valid JSON records');
    ($rc, $out, $err) = import_codes($CS, '{"code":"abc","vanity":true,"member":"ghost"}');
    like($err, qr/ line 1: unknown member "ghost"/, 'import checks members');
    ($rc, $out, $err) = import_codes($CS,
                                     $cd->('"target":"https://evil.com/"'));
    like($err, qr/ line 1: target host "evil\.com" is not in --hosts/,
         'import checks hosts');
}

# edges where the schema could drift from the code
{
    my @edges = (
        $cd->('"max_clicks":1.0'),
        $cd->('"max_clicks":1e3'),
        $cd->('"target":"http://a.example:65535"'),
        $cd->('"target":"http://a.example:99999"'),
        $cd->('"target":"http://a.example:000000"'),
        $cd->('"target":"http://1.2.3.4/"'),
        $cd->('"target":"http://a.example%2F@b/"'),
        $cd->('"target":"/%2F%2Fevil.com"'),
        $cd->('"target":"/\u0000"'),
        $cd->('"target":"http://a.example\\\\"'),
        $cd->('"target":"HTTPS://A.EXAMPLE"'),
        $cd->('"campaign":"a.b"'),
        $cd->('"code":"abc-"'),
        '{"code":"---","vanity":true,"member":"lin.fan"}',
        '{"code":"___","vanity":true,"member":"lin.fan"}',
    );
    my (undef, $out) = validate('code', @edges);
    my %invalid = map { $_ => 1 } split /,/, invalid_lines($out);
    for my $i (0 .. $#edges) {
        my ($rc) = import_codes($CS, $edges[$i]);
        is($invalid{$i + 1} ? 'rejects' : 'accepts',
           $rc == 0 ? 'accepts' : 'rejects',
           "schema and loyaltyctl agree on $edges[$i]");
    }
}

# rules, events, batch results, ledgers and downlines

my ($ev_tmp, $EV) = new_store();
{
    my @r = (loyaltyctl('-s', $EV, 'import', 'tiers', $examples{tier}),
             loyaltyctl('-s', $EV, 'import', 'members', $examples{member}),
             loyaltyctl('-s', $EV, 'import', 'codes', $examples{code},
                        '--hosts', $MALL));
    is(join(' ', @r[0, 3, 6]), '0 0 0', 'events store: tiers, members, codes')
        or diag("@r");
}

my $rules_text = do { open my $fh, '<:raw', "$SCHEMA/examples/rules.json"
                          or die; local $/; <$fh> };
my $rules = $json->decode($rules_text);
my $rules_line = JSON::PP->new->canonical->encode($rules);

{
    my ($rc, $out) = validate('rules', $rules_line);
    is("$rc $out", "0 checked 1\n", 'examples/rules.json is valid');

    my $err;
    ($rc, $out, $err) = loyaltyctl('-s', $EV, 'import', 'rules',
                                   "$SCHEMA/examples/rules.json");
    is("$rc $out$err", "0 imported rules\n", 'examples/rules.json imports');

    ($rc, $out) = loyaltyctl('-s', $EV, 'get', 'rules');
    chomp $out;
    my $vout;
    ($rc, $vout) = validate('rules', $out);
    is("$rc $vout", "0 checked 1\n", 'get rules output is valid');
    is($out, $rules_line, 'get rules prints the document, keys sorted');

    ($rc, $out) = loyaltyctl('-s', $EV, 'apply', $examples{event});
    chomp $out;
    ($rc, $vout) = validate('batch', $out);
    is("$rc $vout", "0 checked 1\n", 'apply output is valid');

    my @ids = qw(xiao.ming zhang.wei li.member wang.partner lin.fan);
    for my $kind (qw(ledger referrals)) {
        my @printed = map {
            my ($rc, $o) = loyaltyctl('-s', $EV, 'get', $kind, $_);
            chomp $o;
            $o;
        } @ids;
        ($rc, $vout) = validate($kind, @printed);
        is("$rc $vout", "0 checked 5\n", "get $kind output is valid");
    }
    my (undef, $o) = loyaltyctl('-s', $EV, 'get', 'ledger', 'li.member');
    like($o, qr/"reason":"adjust"/, 'the ledgers checked hold adjust entries');
    like($o, qr/"reason":"refund"/, '... and refunds');
    (undef, $o) = loyaltyctl('-s', $EV, 'get', 'referrals', 'li.member');
    like($o, qr/"level2":\[\{/, 'the downlines checked have level 2');

    ($rc, $out) = loyaltyctl('-s', $EV, 'apply', $examples{event});
    chomp $out;
    ($rc, $vout) = validate('batch', $out);
    is("$rc $vout", "0 checked 1\n", 'apply output with duplicates is valid');

    write_file("$TMP/bad-events.jsonl",
               qq({"type":"order"}\nnot json\n{"type":"follow","member":"m"}\n));
    ($rc, $out) = loyaltyctl('-s', $EV, 'apply', "$TMP/bad-events.jsonl");
    chomp $out;
    ($rc, $vout) = validate('batch', $out);
    is("$rc $vout", "0 checked 1\n", 'apply output with errors is valid');
    write_file("$TMP/bad-events.json", '[{');
    ($rc, $out) = loyaltyctl('-s', $EV, 'apply', "$TMP/bad-events.json");
    chomp $out;
    ($rc, $vout) = validate('batch', $out);
    is("$rc $vout", "0 checked 1\n",
       'apply output for a body that is not JSON is valid');

    # the validator rejects what is not one of them
    ($rc, $vout) = validate('ledger', $out, $rules_line);
    is(invalid_lines($vout), '1,2', 'errors and rules are not ledgers');
    ($rc, $vout) = validate('event', $rules_line, @{$example_lines{member}});
    is(invalid_lines($vout), join(',', 1 .. 1 + @{$example_lines{member}}),
       'rules and members are not events');
    ($rc, $vout) = validate('referrals',
        '{"member":"a","level1":[{"id":"b","stage":"vip"}],"level2":[]}',
        '{"member":"a","level1":[],"level2":[{"id":"b","stage":"fan"}]}',
        '{"member":"a","level1":[]}');
    is(invalid_lines($vout), '1,2,3', 'bad downlines rejected');
    ($rc, $vout) = validate('ledger',
        '{"member":"a","balance":0,"entries":[{"delta":1,"reason":"adjust",'
        . '"event":"x","at":"2026-01-01T00:00:00Z"}]}',
        '{"member":"a","balance":0,"entries":[{"delta":1,"reason":"order",'
        . '"at":"2026-01-01T00:00:00Z"}]}',
        '{"member":"a","balance":0,"entries":[{"delta":1,"reason":"bonus",'
        . '"event":"x","at":"2026-01-01T00:00:00Z"}]}',
        '{"member":"a","balance":1.5,"entries":[]}');
    is(invalid_lines($vout), '1,2,3,4', 'bad ledgers rejected');
}

# bad events: the schema and apply both reject each

my $ev = sub { my %e = (type => 'order', member => 'li.member',
                        order_id => 'SCH-1', amount => 100,
                        at => '2026-11-21T10:00:00Z', @_);
               delete $e{$_} for grep { !defined $e{$_} } keys %e;
               JSON::PP->new->canonical->encode(\%e) };

my @bad_events = (
    $ev->(type => 'visit'),
    $ev->(type => undef),
    $ev->(type => 5),
    $ev->(colour => 'red'),
    $ev->(member => undef),
    $ev->(member => 'a b'),
    $ev->(member => 'm' x 65),
    $ev->(member => ''),
    $ev->(order_id => undef),
    $ev->(order_id => 'o/1'),
    $ev->(amount => undef),
    $ev->(amount => -1),
    $ev->(amount => '100'),
    $ev->(amount => 1.5),
    $ev->(amount => 1000000000001),
    $ev->(at => '0000-01-01T00:00:00Z'),
    $ev->(at => '9999-12-31T23:59:59Z'),
    $ev->(at => '1999-12-31T23:59:59Z'),
    $ev->(at => '2101-01-01T00:00:00Z'),
    $ev->(type => 'refund', member => undef, refund_id => 'R1',
          amount => 1000000000001),
    $ev->(at => undef),
    $ev->(at => '2026-11-21'),
    $ev->(at => '2026-11-21T25:00:00Z'),
    $ev->(at => 1700000000),
    $ev->(items => {}),
    $ev->(items => [{}]),
    $ev->(items => [{sku => 'a', qty => 0}]),
    $ev->(items => [{sku => 'a', qty => 1000001}]),
    $ev->(items => [{sku => 'a b'}]),
    $ev->(items => [{sku => 'a', price => 1}]),
    $ev->(items => [map { {sku => 'a'} } 1 .. 257]),
    $ev->(ref_code => 'ab'),
    $ev->(ref_code => 'a.bc'),
    $ev->(ref_code => 'c' x 33),
    $ev->(referrer => 'wang.partner'),
    $ev->(type => 'refund', member => undef, refund_id => 'R1',
          items => []),
    $ev->(type => 'refund', member => undef, order_id => undef,
          refund_id => 'R1'),
    $ev->(type => 'refund', member => undef, refund_id => 'R1', amount => 0),
    $ev->(type => 'refund', refund_id => 'R1'),
    $ev->(type => 'action', order_id => undef, kind => 'share'),
    $ev->(type => 'action', order_id => undef, id => 'A1', kind => 'like'),
    $ev->(type => 'action', order_id => undef, id => 'A1', kind => 'share',
          at => undef),
    $ev->(type => 'action', order_id => undef, id => 'A1', kind => 'share',
          amount => undef, items => []),
    $ev->(type => 'signup', order_id => undef, amount => undef, at => undef,
          referrer => 'wang.partner', ref_code => 'WANG-MALL'),
    $ev->(type => 'signup', order_id => undef),
    $ev->(type => 'follow', order_id => undef, amount => undef, at => undef,
          referrer => 'wang.partner'),
    '["order"]',
    '"order"',
);

my @good_events = (
    $ev->(),
    $ev->(order_id => 'SCH-2', amount => 0, items => []),
    $ev->(order_id => 'SCH-3', amount => 1000000000000,
          items => [map { {sku => "s$_", qty => 1000000} } 1 .. 256],
          at => '2026-11-21T10:00:00.5+08:00'),
    $ev->(order_id => 'SCH-4', ref_code => 'unknown-code'),
    $ev->(order_id => 'SCH-5', amount => 1.0),
    $ev->(type => 'refund', member => undef, refund_id => 'SCH-R1',
          order_id => 'SCH-1', amount => 1, at => undef),
    $ev->(type => 'action', order_id => undef, amount => undef,
          id => 'SCH-A1', kind => 'group_buy'),
    $ev->(type => 'signup', member => 'new.one', order_id => undef,
          amount => undef, at => undef, referrer => 'wang.partner'),
    $ev->(type => 'follow', member => 'new.two', order_id => undef,
          amount => undef, ref_code => 'wang-mall'),
);

{
    my $n = @bad_events;
    my ($rc, $out) = validate('event', @bad_events);
    is(invalid_lines($out), join(',', 1 .. $n),
       "$n bad events: the schema rejects every one") or diag($out);

    my $before = `mdb_dump -a '$EV'`;
    my @accepted;
    for my $i (0 .. $#bad_events) {
        write_file("$TMP/one.jsonl", "$bad_events[$i]\n");
        my ($rc, $out) = loyaltyctl('-s', $EV, 'apply', "$TMP/one.jsonl");
        push @accepted, $i + 1 unless $rc == 1 && $out =~ /"index":0/;
    }
    is("@accepted", '', "$n bad events: apply rejects every one, at index 0");
    is(`mdb_dump -a '$EV'`, $before, 'no bad event changed the store');

    $n = @good_events;
    ($rc, $out) = validate('event', @good_events);
    is("$rc $out", "0 checked $n\n", "$n good events: the schema accepts")
        or diag($out);
    write_file("$TMP/good.jsonl", join '', map { "$_\n" } @good_events);
    my $err;
    ($rc, $out, $err) = loyaltyctl('-s', $EV, 'apply', "$TMP/good.jsonl");
    is("$rc $out$err", qq(0 {"events":$n,"applied":$n,"duplicates":0}\n),
       "$n good events: apply accepts");
}

# bad rules: the schema and import both reject each

{
    my $with = sub {
        my ($path, $value) = @_;
        my $doc = $json->decode($rules_text);
        my @keys = split /\./, $path;
        my $last = pop @keys;
        my $p = $doc;
        $p = ref $p eq 'ARRAY' ? $p->[$_] : $p->{$_} for @keys;
        if (ref $p eq 'ARRAY') {
            defined $value ? ($p->[$last] = $value) : splice @$p, $last, 1;
        } else {
            defined $value ? ($p->{$last} = $value) : delete $p->{$last};
        }
        return JSON::PP->new->canonical->encode($doc);
    };
    my @bad_rules = (
        $with->('version', 2),
        $with->('version', undef),
        $with->('colour', 1),
        $with->('signup_tier', 'public'),
        $with->('signup_tier', undef),
        $with->('member', undef),
        $with->('member.spend', 0),
        $with->('member.skus.0.qty', 0),
        $with->('member.skus.0.sku', 'a b'),
        $with->('member.skus.0.price', 1),
        $with->('partner.tier', ''),
        $with->('upgrades.0.spend', undef),
        $with->('upgrades.0.tier', 7),
        $with->('points.spend_per_point', 0),
        $with->('points.actions.like', 1),
        $with->('points.actions.share', -1),
        $with->('points.referral.level1', 1000000000001),
        $with->('points.referral.level3', 1),
        $with->('lifecycle.at_risk', 0),
        $with->('lifecycle.lost', undef),
        $with->('lifecycle.dormant', 36501),
        $with->('rfm.recency', [1, 2, 3]),
        $with->('rfm.frequency', [0, 1, 2, 3]),
        $with->('rfm.monetary', [1, 2, 3, '4']),
        $with->('rfm.other', [1, 2, 3, 4]),
        $with->('segments.0.name', 'A.1'),
        $with->('segments.0.name', 'x' x 17),
        $with->('segments.0.r', 6),
        $with->('segments.0.f', 0),
        $with->('segments.0.colour', 'red'),
        $with->('segments', {}),
        $with->('segments', [map { {name => "s$_"} } 1 .. 65]),
        '[]',
    );
    my $n = @bad_rules;
    my ($rc, $out) = validate('rules', @bad_rules);
    is(invalid_lines($out), join(',', 1 .. $n),
       "$n bad rules: the schema rejects every one") or diag($out);

    my @accepted;
    for my $i (0 .. $#bad_rules) {
        write_file("$TMP/rules.json", $bad_rules[$i]);
        my ($rc) = loyaltyctl('-s', $EV, 'import', 'rules', "$TMP/rules.json");
        push @accepted, $i + 1 unless $rc == 1;
    }
    is("@accepted", '', "$n bad rules: import rejects every one");
    my (undef, $o) = loyaltyctl('-s', $EV, 'get', 'rules');
    is($o, "$rules_line\n", 'the stored rules are unchanged');

    # what the schema cannot say, import does
    my @semantic = (
        $with->('signup_tier', 'gold'),
        $with->('upgrades.1.spend', 100000),
        $with->('lifecycle.at_risk', 120),
        $with->('rfm.recency', [30, 30, 90, 180]),
        $with->('segments.1.name', 'A1'),
    );
    ($rc, $out) = validate('rules', @semantic);
    is("$rc $out", "0 checked 5\n",
       'unknown tiers, order and uniqueness: beyond the schema');
    @accepted = ();
    for my $i (0 .. $#semantic) {
        write_file("$TMP/rules.json", $semantic[$i]);
        my ($rc) = loyaltyctl('-s', $EV, 'import', 'rules', "$TMP/rules.json");
        push @accepted, $i + 1 unless $rc == 1;
    }
    is("@accepted", '', 'import rejects them');

    my @good = (
        $with->('upgrades', undef),
        $with->('points', {}),
        $with->('segments', []),
        $with->('member', {}),
        $with->('description', undef),
        $with->('rfm.recency', [0, 1, 2, 36500]),
    );
    ($rc, $out) = validate('rules', @good);
    is("$rc $out", "0 checked 6\n", 'good variants: the schema accepts');
    @accepted = ();
    for my $i (0 .. $#good) {
        write_file("$TMP/rules.json", $good[$i]);
        my ($rc) = loyaltyctl('-s', $EV, 'import', 'rules', "$TMP/rules.json");
        push @accepted, $i + 1 if $rc == 0;
    }
    is("@accepted", '1 2 3 4 5 6', 'import accepts them');
}


# ---------------------------------------------------------------------------
# Lua hooks: the price API's qty and promo, and GET .../lua
# (schema/price-api.schema.json and schema/lua.schema.json against a real
# nginx running lua/examples/buy5get1.lua)
# ---------------------------------------------------------------------------

{
    my $auth = admin_auth('read');
    my $store = join '', map { "[$_->[0]]\n" . slurp("$SCHEMA/examples/$_->[1]") }
                             [tiers => 'tiers.jsonl'], [members => 'members.jsonl'],
                             [prices => 'prices.jsonl'];
    my $config = <<"END";
location /prices { loyalty_price_api; }
location /admin/ { %%ADMIN%% }
END
    my $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_lua_file $ROOT/lua/examples/buy5get1.lua;\n",
                        store => $store, config => $config);

    # li.member is a member: 6 pay for 5
    my ($status, undef, $body) = http_request($h, 'GET',
        '/prices?sku=nappies-128:6,nappies-128:7,sofa-298,tea-gift:2,nosuch:3',
        { Cookie => 'loyalty_member=' . sign_member('li.member', '1h') });
    is($status, 200, 'lua: the price API with buy5get1.lua');
    chomp(my $line = $body // '');
    my ($rc, $out) = validate('price-api', $line);
    is("$rc $out", "0 checked 1\n",
       'a price API response with qty and promo is valid') or diag($line);
    my $doc = eval { $json->decode($line) } // {};
    my ($six) = grep { ($_->{qty} // 0) == 6 } @{$doc->{items} || []};
    is(join(' ', map { $six->{$_} // '-' } qw(sku qty promo)),
       'nappies-128 6 Buy 5 get 1', '... and holds them: 6 nappies, a promo');

    # what the schema must refuse in a priced item
    my $item = sub {
        my %it = (sku => 'nappies-128', qty => 6, retail => 76800,
                  price => 60800, saved => 16000, label => 'VIP',
                  promo => 'Buy 5 get 1', @_);
        delete $it{$_} for grep { !defined $it{$_} } keys %it;
        return JSON::PP->new->canonical->utf8->encode(
            { tier => 'vip', currency => 'CNY', items => [\%it] });
    };
    my @bad = ($item->(qty => 0), $item->(qty => 1001), $item->(qty => 1.5),
               $item->(qty => '6'), $item->(qty => -1), $item->(promo => ''),
               $item->(promo => 'p' x 65), $item->(promo => 5),
               $item->(promo => JSON::PP::true), $item->(offer => 'x'));
    ($rc, $out) = validate('price-api', @bad);
    is(invalid_lines($out), join(',', 1 .. @bad),
       'price-api: bad qty and promo rejected') or diag($out);
    my @good = ($item->(), $item->(qty => undef, promo => undef),
                $item->(qty => 1), $item->(qty => 1000),
                $item->(promo => 'p' x 64),
                $item->(promo => "\x{91d1}" x 21 . 'x'));
    ($rc, $out) = validate('price-api', @good);
    is("$rc $out", '0 checked ' . @good . "\n",
       'price-api: lines with and without qty and promo accepted')
        or diag($out);

    # GET /admin/lua, after the price hook was called
    ($status, undef, $body) = http_request($h, 'GET', '/admin/lua', $auth);
    is($status, 200, 'GET /admin/lua');
    chomp($line = $body // '');
    ($rc, $out) = validate('lua', $line);
    is("$rc $out", "0 checked 1\n", 'its answer is valid') or diag($line);
    $doc = eval { $json->decode($line) } // {};
    ok(($doc->{hooks}{price}{calls} // 0) > 0 && !$doc->{hooks}{event},
       '... and counts the price hook\'s calls') or diag($line);
    my $with_lua = $line;
    stop_nginx($h);

    # without loyalty_lua_file
    $h = start_nginx(http_config => "loyalty_store %%STORE%%;\n"
                                    . "loyalty_keys %%KEYS%%;\n",
                     store => $store, config => $config);
    ($status, undef, $body) = http_request($h, 'GET', '/admin/lua', $auth);
    chomp($line = $body // '');
    is($status, 200, 'GET /admin/lua without a script');
    ($rc, $out) = validate('lua', $line);
    is("$rc $out", "0 checked 1\n", 'its answer is valid') or diag($line);
    like($line, qr/"file":null/, '... and says there is no script');
    stop_nginx($h);

    # what the schema must refuse
    my $r = $json->decode($with_lua);
    my $with = sub {
        my ($edit) = @_;
        my $d = $json->decode($with_lua);
        $edit->($d);
        return JSON::PP->new->canonical->encode($d);
    };
    my $c = { calls => 3, errors => 1, budget => 0, memory => 1 };
    my @bad_lua = (
        $with->(sub { $_[0]{colour} = 'red' }),
        $with->(sub { $_[0]{hooks}{foo} = {%$c} }),
        $with->(sub { $_[0]{hooks}{event} = {%$c, calls => -1} }),
        $with->(sub { $_[0]{hooks}{event} = {%$c, errors => 1.5} }),
        $with->(sub { $_[0]{hooks}{event} = {%$c, memory => '1'} }),
        $with->(sub { $_[0]{hooks}{event} = {%$c, extra => 1} }),
        $with->(sub { my %x = %$c; delete $x{errors};
                      $_[0]{hooks}{click} = \%x }),
        $with->(sub { $_[0]{file} = 5 }),
        $with->(sub { $_[0]{file} = '' }),
        $with->(sub { delete $_[0]{budget} }),
        $with->(sub { delete $_[0]{hooks} }),
        $with->(sub { $_[0]{budget} = 999 }),
        $with->(sub { delete $_[0]{time} }),
        $with->(sub { $_[0]{time} = 0 }),
        $with->(sub { $_[0]{time} = 60001 }),
        '{"hooks":{"event":{"calls":0,"errors":0,"budget":0,"memory":0}},'
        . '"file":null}',
        '{"hooks":{},"file":null,"budget":100000}',
        '{"hooks":{}}',
        '[]',
    );
    ($rc, $out) = validate('lua', @bad_lua);
    is(invalid_lines($out), join(',', 1 .. @bad_lua),
       'lua: bad reports rejected') or diag($out);
    my @good_lua = (
        $with->(sub { $_[0]{hooks} = { map { $_ => {%$c} }
                                           qw(price click event) } }),
        $with->(sub { $_[0]{hooks} = {} }),
        '{"hooks":{},"file":null}',
    );
    ($rc, $out) = validate('lua', @good_lua);
    is("$rc $out", '0 checked ' . @good_lua . "\n",
       'lua: reports with every hook, and none, accepted') or diag($out);
}


done_testing();
