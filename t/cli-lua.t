# loyaltyctl --lua FILE lua-check: the script loaded in the sandbox nginx
# uses, with its budget and memory cap; the hooks it returns, and the
# reasons a script does not load, with the file and the line.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $json = JSON::PP->new->canonical;

my $tmp = test_dir();
my $DIR = "$tmp";

write_file("$DIR/good.lua", <<'LUA');
-- a hook of each kind, the project's library and a module of our own
local money = require "loyalty.money"
local tag = require "lib.tag"
return {
  price = function(ctx) return nil end,
  event = function(ev) return nil end,
  notes = "not a hook",
}
LUA
mkdir "$DIR/lib" or die "mkdir: $!";
write_file("$DIR/lib/tag.lua", "return function(s) return '[' .. s .. ']' end\n");
write_file("$DIR/none.lua", "return {}\n");
write_file("$DIR/syntax.lua",
           "-- a comment\nreturn { price = function(ctx) return ctx.price - end }\n");
write_file("$DIR/forever.lua", "local n = 0\nwhile true do n = n + 1 end\nreturn {}\n");
write_file("$DIR/slow.lua", "for i = 1, 200000 do end\nreturn {}\n");
write_file("$DIR/big.lua", "local s = string.rep(\"x\", 2^24)\nreturn {}\n");
write_file("$DIR/number.lua", "return 42\n");
write_file("$DIR/price5.lua", "return { price = 5 }\n");
write_file("$DIR/bytecode.lua", "\x1bLJ\x02\x00return {}\n");
write_file("$DIR/escape.lua", "return { x = os.execute, y = io }\n");
write_file("$DIR/unsafe.lua", "os.execute('true')\nreturn {}\n");
write_file("$DIR/req_missing.lua", "local m = require \"sub.none\"\nreturn {}\n");
write_file("$DIR/store_now.lua",
           "local store = require \"loyalty.store\"\nlocal m = store.member(\"alice\")\nreturn {}\n");


# (exit, decoded stdout or the text, stderr)
sub check {
    my (@args) = @_;
    my ($rc, $out, $err) = loyaltyctl(@args, 'lua-check');
    my $doc = $rc == 0 ? eval { $json->decode($out) } // $out : $out;
    return ($rc, $doc, $err);
}


# a script that loads

{
    my ($rc, $doc, $err) = check('--lua', "$DIR/good.lua");
    is($rc, 0, 'good: exit 0');
    my $notes = 'unknown key "notes" in the script\'s table: it is not read '
                . '(the keys read are price, click, event and cadences)';
    is_deeply($doc, { file => "$DIR/good.lua", hooks => ['price', 'event'],
                      warnings => [$notes] },
              'good: the file and its hooks, in hook order; its other key '
              . 'warned');
    is($err, "loyaltyctl: --lua \"$DIR/good.lua\": warning: $notes\n",
       'good: the warning on stderr');

    ($rc, $doc) = check('--lua', "$DIR/none.lua");
    is($rc, 0, 'no hooks: exit 0');
    is_deeply($doc, { file => "$DIR/none.lua", hooks => [], warnings => [] },
              'no hooks: an empty list');

    # a relative file: modules are looked for beside it
    my ($rc2, $out) = run_out("cd $DIR && $CTL --lua "
                              . "good.lua lua-check 2>&1");
    is($rc2, 0, 'relative: exit 0');
    like($out, qr/\A\Qloyaltyctl: --lua "good.lua": warning: $notes\E\n\{"file":"good\.lua","hooks":\["price","event"\],"warnings":\[[^\]]*\]\}\n\z/,
         'relative: the file as given, lib/tag.lua found beside it');

    # no store is needed, and LOYALTY_STORE is not looked at
    local $ENV{LOYALTY_STORE} = "$DIR/no-such-store";
    ($rc, $doc) = check('--lua', "$DIR/good.lua");
    is($rc, 0, 'no store needed');
}


# scripts that do not load: exit 1, the reason on stderr

my @bad = (
    [ 'syntax error', 'syntax.lua',
      qr/\Aloyaltyctl: --lua "\Q$DIR\E\/syntax\.lua": \Q$DIR\E\/syntax\.lua:2: unexpected symbol near 'end'\n\z/ ],
    [ 'runaway loop at load', 'forever.lua',
      qr/\Aloyaltyctl: --lua "\Q$DIR\E\/forever\.lua": \Q$DIR\E\/forever\.lua:2: the budget of 100000 instructions is spent\n\z/ ],
    [ 'budget spent at load', 'slow.lua',
      qr/\Q$DIR\E\/slow\.lua:1: the budget of 100000 instructions is spent\n\z/ ],
    [ 'missing file', 'missing.lua',
      qr/\Aloyaltyctl: --lua "\Q$DIR\E\/missing\.lua": cannot open "\Q$DIR\E\/missing\.lua": No such file or directory\n\z/ ],
    [ 'a directory', 'lib', qr/"\Q$DIR\E\/lib" is not a file\n\z/ ],
    [ 'not a table', 'number.lua',
      qr/: the script must return a table of hooks, not number\n\z/ ],
    [ 'a hook that is not a function', 'price5.lua',
      qr/: the hook "price" must be a function, not number\n\z/ ],
    [ 'bytecode', 'bytecode.lua',
      qr/: \Q$DIR\E\/bytecode\.lua: bytecode is not loaded\n\z/ ],
    [ 'os.execute is not there', 'unsafe.lua',
      qr/: \Q$DIR\E\/unsafe\.lua:1: attempt to call field 'execute' \(a nil value\)\n\z/ ],
    [ 'a missing module', 'req_missing.lua',
      qr/: \Q$DIR\E\/req_missing\.lua:1: module "sub.none": cannot open "\Q$DIR\E\/sub\/none\.lua"/ ],
    [ 'the store is not read at load', 'store_now.lua',
      qr/: \Q$DIR\E\/store_now\.lua:2: the store is only read during a hook\n\z/ ],
);

for my $case (@bad) {
    my ($what, $file, $want) = @$case;
    my ($rc, $out, $err) = loyaltyctl('--lua', "$DIR/$file", 'lua-check');
    is($rc, 1, "$what: exit 1");
    is($out, '', "$what: nothing on stdout");
    like($err, $want, "$what: the reason");
}

{
    # the sandbox's globals hold nothing from outside it
    my ($rc, $doc) = check('--lua', "$DIR/escape.lua");
    is($rc, 0, 'escape: loads');
    is_deeply($doc->{hooks}, [], 'escape: no hooks');
}


# the budget and the memory cap are options

{
    my ($rc, $doc) = check('--lua-budget', '1000000', '--lua', "$DIR/slow.lua");
    is($rc, 0, '--lua-budget: a larger budget lets slow.lua load');

    my ($out, $err);
    ($rc, $out, $err) = loyaltyctl('--lua-budget', '5000', '--lua',
                                   "$DIR/forever.lua", 'lua-check');
    like($err, qr/forever\.lua:2: the budget of 5000 instructions is spent/,
         '--lua-budget: the message names the budget');

    ($rc, $out, $err) = loyaltyctl('--lua', "$DIR/big.lua", 'lua-check');
    is($rc, 1, 'memory: a 16 MiB string is over the default 16m');
    like($err, qr/: not enough memory\n\z/, 'memory: the reason');

    ($rc, $doc) = check('--lua-memory', '64m', '--lua', "$DIR/big.lua");
    is($rc, 0, '--lua-memory 64m: the string fits');

    for my $bad (['--lua-budget', '999'], ['--lua-budget', '100000001'],
                 ['--lua-time', '0'], ['--lua-time', '60001'],
                 ['--lua-time', '61s'], ['--lua-time', '5m'],
                 ['--lua-time', ''], ['--lua-time', '-5'],
                 ['--lua-budget', 'x'], ['--lua-budget', '5k'],
                 ['--lua-memory', '1000k'], ['--lua-memory', '16g'],
                 ['--lua-memory', '-1m'], ['--lua-memory', ''])
    {
        ($rc, $out, $err) = loyaltyctl(@$bad, '--lua', "$DIR/good.lua",
                                       'lua-check');
        is($rc, 2, "@$bad: exit 2");
        like($err, qr/\Aloyaltyctl: invalid \Q$bad->[0]\E "\Q$bad->[1]\E"/,
             "@$bad: named");
    }

    ($rc, $doc) = check('--lua-memory', '1m', '--lua-budget', '1000',
                        '--lua', "$DIR/none.lua");
    is($rc, 0, 'the smallest limits');
}


# the budget holds for every path (issue 18): the project's library, whose
# closures were JIT-compiled, where the count hook does not fire; patterns
# and other C functions, one instruction each to the hook; and the time.
# Each script must stop on its budget, and soon: these took seconds to
# forever before.

use Time::HiRes ();

my $NEST = <<'LUA';
local cadence = require "loyalty.cadence"
-- 150^4 calls of a library closure, all inside the library's loops
local function rep(f, n)
  local t = {}
  for i = 1, n do t[i] = f end
  return cadence.all(unpack(t))
end
local T = cadence.stage_at_least("member")
local all = rep(rep(rep(rep(T, 150), 150), 150), 150)
LUA

# [name, script body, options, the message]
my $SPENT = 'the budget of 100000 instructions is spent';
my @ESCAPES = (
    [ 'nested library closures: cadence.all', "$NEST all({ stage = 'partner' })",
      [], qr/: loyalty\.\w+:\d+: \Q$SPENT\E\n\z/ ],
    [ 'nested library closures: stage_at_least',
      "$NEST local s = T for i = 1, 4 do s = rep(s, 150) end s({ stage = 'member' })",
      [], qr/: loyalty\.\w+:\d+: \Q$SPENT\E\n\z/ ],
    [ 'the click hook\'s pattern on a 2,012-byte User-Agent',
      'local ua = "Mozilla/5.0 " .. ("a "):rep(1000)' . "\n"
      . 'local a, b = ua:match("(.-)%s+(.-)%s+MicroMessenger")',
      [], qr/escape\.lua:2: \Q$SPENT\E\n\z/ ],
    [ 'find .-.-.-b in 400 characters', 'local x = ("a"):rep(400):find(".-.-.-b")',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'find .-.-.-b in 800 characters', 'local x = ("a"):rep(800):find(".-.-.-b")',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'match anchored', 'local x = ("a"):rep(3000):match("^(.-)%s*(.-)$x")',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'gsub blowup', 'local x = ("a"):rep(2000):gsub(".-.-b", "x")',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'gmatch blowup', 'for x in ("a"):rep(2000):gmatch(".-.-b") do end',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'gsub with a function, looping', 'local x = ("abc"):gsub("%w", function() while true do end end)',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'a long plain find, again and again',
      'local s, p = ("a"):rep(4e6), ("a"):rep(2e6) .. "b"' . "\n"
      . 'while true do s:find(p, 1, true) end',
      [], qr/escape\.lua:2: the budget of (100000 instructions|50 ms) is spent\n\z/ ],
    [ 'pcall around the budget error',
      'local s = ("a"):rep(400)' . "\n"
      . 'for i = 1, 1e9 do pcall(string.find, s, ".-.-.-b") end',
      [], qr/escape\.lua:2: \Q$SPENT\E\n\z/ ],
    [ 'xpcall around the budget error',
      'while true do xpcall(function() ("a"):rep(400):find(".-.-.-b") end, function(e) return e end) end',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'table.sort with a looping comparator',
      'table.sort({ 5, 3, 1, 4, 2 }, function(a, b) while true do end end)',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'tostring with a looping __tostring',
      'tostring(setmetatable({}, { __tostring = function() while true do end end }))',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'string.format of a looping __tostring',
      'string.format("%s", setmetatable({}, { __tostring = function() while true do end end }))',
      [], qr/escape\.lua:1: \Q$SPENT\E\n\z/ ],
    [ 'string.rep of a huge string', 'local s = string.rep("abc", 1e9, ",")',
      [], qr/: not enough memory\n\z/ ],
    [ 'a big string.rep, again and again (one interned string)',
      'while true do local s = ("x"):rep(8e6) end',
      [], qr/escape\.lua:1: the budget of (100000 instructions|50 ms) is spent\n\z/ ],
    [ 'loadstring of a loop', 'loadstring("while true do end")()',
      [], qr/": \(load\):1: \Q$SPENT\E\n\z/ ],
    # with an instruction budget and a time that would let these run for
    # minutes, only the charges of C functions stop them
    [ 'table.concat of a million empty strings, again and again',
      'local t = { ("x"):rep(7999):byte(1, -1) }' . "\n"
      . 'for i = 1, 7 do for j = 1, #t do t[#t + 1] = t[j] end end' . "\n"
      . 'for i = 1, #t do t[i] = "" end while true do table.concat(t) end',
      [ '--lua-budget', '100000000', '--lua-time', '60s' ],
      qr/escape\.lua:3: the budget of 100000000 instructions is spent\n\z/ ],
    [ 'table.sort of a large table, again and again',
      'local t = {} for i = 1, 300000 do t[i] = -i end' . "\n"
      . 'while true do table.sort(t) end',
      [ '--lua-budget', '100000000', '--lua-time', '60s' ],
      qr/escape\.lua:2: the budget of 100000000 instructions is spent\n\z/ ],
    [ 'table.insert at the front of a large table',
      'local t = {} for i = 1, 300000 do t[i] = i end' . "\n"
      . 'while true do table.insert(t, 1, 0) t[#t] = nil end',
      [ '--lua-budget', '100000000', '--lua-time', '60s' ],
      qr/escape\.lua:2: the budget of 100000000 instructions is spent\n\z/ ],
    [ 'table.maxn of a large table',
      'local t = {} for i = 1, 300000 do t[i] = i end' . "\n"
      . 'while true do table.maxn(t) end',
      [ '--lua-budget', '100000000', '--lua-time', '60s' ],
      qr/escape\.lua:2: the budget of 100000000 instructions is spent\n\z/ ],
    # the time: a budget of instructions that would take seconds
    [ 'the time', 'while true do end',
      [ '--lua-budget', '100000000', '--lua-time', '20ms' ],
      qr/escape\.lua:1: the budget of 20 ms is spent\n\z/ ],
    [ 'the time, in a library loop', "$NEST all({ stage = 'partner' })",
      [ '--lua-budget', '100000000', '--lua-time', '100ms' ],
      qr/: loyalty\.\w+:\d+: the budget of 100 ms is spent\n\z/ ],
);

for my $case (@ESCAPES) {
    my ($what, $lua, $opts, $want) = @$case;
    write_file("$DIR/escape.lua", "$lua\nreturn {}\n");
    my $t0 = Time::HiRes::time();
    my ($rc, $out, $err) = loyaltyctl(@$opts, '--lua', "$DIR/escape.lua",
                                      'lua-check');
    my $took = Time::HiRes::time() - $t0;
    is($rc, 1, "escape: $what: stopped, exit 1");
    like($err, $want, "escape: $what: the reason and place");
    cmp_ok($took, '<', 10, "escape: $what: in under 10 s");
}

{
    # what the budget leaves alone still works: patterns, sorting
    write_file("$DIR/fine.lua", <<'LUA');
local ua = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.1 NetType/WIFI"
assert(ua:match("MicroMessenger/([%d.]+)") == "8.0.1")
assert(select(2, ua:gsub("%u", "")) == 10)
local t = { 3, 1, 2 } table.sort(t) assert(table.concat(t, ",") == "1,2,3")
table.insert(t, 1, 0) assert(table.maxn(t) == 4 and tonumber("12") == 12)
return {}
LUA
    my ($rc, $doc) = check('--lua', "$DIR/fine.lua");
    is($rc, 0, 'patterns, sort, insert, concat, maxn within the budget');
}


# usage

{
    my ($rc, $out, $err) = loyaltyctl('lua-check');
    is($rc, 2, 'no --lua: exit 2');
    is($err, "loyaltyctl: no script: use --lua FILE\n", 'no --lua: said so');

    ($rc, $out, $err) = loyaltyctl('--lua', "$DIR/good.lua", 'lua-check',
                                   'more');
    is($rc, 2, 'an argument: exit 2');
    like($err, qr/\Ausage: loyaltyctl --lua FILE lua-check\n/,
         'an argument: the usage');

    for my $flag (qw(--help -h)) {
        ($rc, $out, $err) = loyaltyctl('lua-check', $flag);
        is($rc, 0, "lua-check $flag: exit 0");
        like($out, qr/\Ausage: loyaltyctl --lua FILE lua-check\n/,
             "lua-check $flag: the usage");
        is($err, '', "lua-check $flag: nothing on stderr");
    }

    ($rc, $out) = loyaltyctl('--help');
    like($out, qr/^  lua-check /m, '--help lists lua-check');
    like($out, qr/^      --lua FILE /m, '--help lists --lua');
    like($out, qr/^      --lua-budget N /m, '--help lists --lua-budget');
    like($out, qr/^      --lua-memory SIZE /m, '--help lists --lua-memory');
    like($out, qr/^      --lua-time TIME /m, '--help lists --lua-time');
}

done_testing();
