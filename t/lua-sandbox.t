# Lua hooks: the sandbox (what a script may not reach, at load time and
# inside a hook), the budget of instructions and time and the memory cap
# (a runaway call stops, is logged and counted, and the VM serves the next
# call), whatever the call runs: the project's library, Lua patterns and
# other C functions (issue 18); and the configurations nginx -t refuses.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $JSON = JSON::PP->new->canonical;
my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";
my $PRICE = "location /price { loyalty_price_api; }\n"
          . "location /admin/ { %%ADMIN%% }\n";

# scripts written here must be readable by the workers (www-data)
my $DIR = test_dir();
chmod 0755, "$DIR" or die "chmod $DIR: $!";


# What a script must not reach: [name, Lua statement, the error it raises].
# Each is tried as a script's second line, and in a hook.
my $BC = '"\27LJ\2\0"';    # the start of LuaJIT bytecode
my @FORBIDDEN = (
    [ io         => 'local f = io.open("/etc/passwd")',
      q{attempt to index global 'io' (a nil value)} ],
    [ io_popen   => 'io.popen("id")',
      q{attempt to index global 'io' (a nil value)} ],
    [ os_execute => 'os.execute("id")',
      q{attempt to call field 'execute' (a nil value)} ],
    [ os_exit    => 'os.exit(1)',
      q{attempt to call field 'exit' (a nil value)} ],
    [ os_getenv  => 'os.getenv("HOME")',
      q{attempt to call field 'getenv' (a nil value)} ],
    [ os_remove  => 'os.remove("/tmp/x")',
      q{attempt to call field 'remove' (a nil value)} ],
    [ loadfile   => 'loadfile("/etc/passwd")',
      q{attempt to call global 'loadfile' (a nil value)} ],
    [ dofile     => 'dofile("/etc/passwd")',
      q{attempt to call global 'dofile' (a nil value)} ],
    [ load_bc    => "local f, e = load($BC) assert(f == nil, 'loaded') error(e)",
      q{bytecode is not loaded} ],
    [ loadstring_bc => "local f, e = loadstring($BC) assert(f == nil, 'loaded') error(e)",
      q{bytecode is not loaded} ],
    [ load_reader => 'load(function() return nil end)',
      q{bad argument #1 to 'load' (string expected, got function)} ],
    [ package    => 'local p = package.loaded',
      q{attempt to index global 'package' (a nil value)} ],
    [ require_os => 'require "os"', q{module "os": cannot open} ],
    [ require_io => 'require "io"', q{module "io": cannot open} ],
    [ require_ffi => 'require "ffi"', q{module "ffi": cannot open} ],
    [ require_jit => 'require "jit"', q{module "jit": cannot open} ],
    [ require_debug => 'require "debug"', q{module "debug": cannot open} ],
    [ require_up => 'require "../x"', q{module name "../x" is not allowed} ],
    [ require_abs => 'require "/etc/passwd"',
      q{module name "/etc/passwd" is not allowed: only letters, digits, "_" and "."} ],
    [ require_lib => 'require "loyalty.os"',
      q{module "loyalty.os" not found in the loyalty library} ],
    [ string_dump => 'string.dump(function() end)',
      q{attempt to call field 'dump' (a nil value)} ],
    [ method_dump => '("x").dump(function() end)',
      q{attempt to call field 'dump' (a nil value)} ],
    [ getfenv    => 'getfenv(1)',
      q{attempt to call global 'getfenv' (a nil value)} ],
    [ setfenv    => 'setfenv(1, {})',
      q{attempt to call global 'setfenv' (a nil value)} ],
    [ string_mt  => 'setmetatable(getmetatable(""), {})',
      q{bad argument #1 to 'setmetatable' (table expected, got boolean)} ],
    [ string_index => 'getmetatable("").__index.dump = 1',
      q{attempt to index a boolean value} ],
    [ debug      => 'debug.getinfo(1)',
      q{attempt to index global 'debug' (a nil value)} ],
    [ ffi        => 'ffi.C.exit(1)',
      q{attempt to index global 'ffi' (a nil value)} ],
    [ jit        => 'jit.on()',
      q{attempt to index global 'jit' (a nil value)} ],
    [ collectgarbage => 'collectgarbage("stop")',
      q{attempt to call global 'collectgarbage' (a nil value)} ],
    [ coroutine  => 'coroutine.wrap(print)',
      q{attempt to index global 'coroutine' (a nil value)} ],
    [ print      => 'print("x")',
      q{attempt to call global 'print' (a nil value)} ],
    [ newproxy   => 'newproxy(true)',
      q{attempt to call global 'newproxy' (a nil value)} ],
    [ module     => 'module("x")',
      q{attempt to call global 'module' (a nil value)} ],
);


# at load time: nginx -t fails, naming the file and the line

my @blocks;

for (@FORBIDDEN) {
    my ($name, $lua, $msg) = @$_;
    my $file = "$DIR/load_$name.lua";
    write_file($file, "local x = 1\n$lua\nreturn {}\n", 0644);
    push @blocks, <<"END";
=== at load time: $name
--- http_config
loyalty_lua_file $file;
--- config_error
loyalty_lua_file "$file": $file:2: @{[ $msg =~ /^bytecode/ ? '' : $msg ]}
END
    # the bytecode message is checked in the hook below: it follows the
    # name of the chunk, not the place
}


# in a hook: the error logged with its place, the price unchanged, and
# the hook goes on working

{
    my $file = "$DIR/hook.lua";
    my $lua = "local CASES = {}\n";
    my (%line, $n);
    $n = 1;
    for (@FORBIDDEN) {
        my ($name, $stmt) = @$_;
        $lua .= "CASES[\"$name\"] = function() $stmt end\n";
        $line{$name} = ++$n;
    }
    $lua .= <<'END';
return {
  price = function(ctx)
    local f = CASES[ctx.sku]
    if f then f() return 1, "escaped" end
    return ctx.price * ctx.qty - 1, "ok"
  end,
}
END
    write_file($file, $lua, 0644);

    my $store = "[prices]\n{\"sku\":\"ok\",\"retail\":1000}\n"
              . join '', map { "{\"sku\":\"$_->[0]\",\"retail\":1000}\n" }
                             @FORBIDDEN;
    my $h = start_nginx(http_config => "$HTTP\nloyalty_lua_file $file;\n",
                        config => $PRICE, store => $store);

    for (@FORBIDDEN) {
        my ($name, undef, $msg) = @$_;
        my (undef, undef, $body) = http_request($h, 'GET', "/price?sku=$name");
        like($body, qr/"price":1000,"saved":0,"label":""\}/,
             "in a hook: $name: the price is unchanged");
        my $log = error_log_text($h);
        ok(index($log, "the price hook failed: $file:$line{$name}: ") >= 0
           && $log =~ /the price hook failed: \Q$file:$line{$name}: \E[^\n]*\Q$msg\E/,
           "in a hook: $name: logged with its place: $msg");
        (undef, undef, $body) = http_request($h, 'GET', '/price?sku=ok');
        like($body, qr/"price":999,.*"promo":"ok"/,
             "in a hook: $name: the next call works");
    }

    my $doc = $JSON->decode((http_request($h, 'GET', '/admin/lua',
                                          admin_auth('read')))[2]);
    is_deeply($doc->{hooks}{price},
              { calls => 2 * @FORBIDDEN, errors => scalar @FORBIDDEN,
                budget => 0, memory => 0 },
              'in a hook: every forbidden thing counted as an error');
    stop_checked($h, 'in a hook');
}


# the budget and the memory cap: every runaway stops, is logged and
# counted, the worker lives, and the next call works

my $BUDGET_FILE = "$ROOT/t/lua/budget.lua";
my $BUDGET_STORE = "[prices]\n" . join '', map { "{\"sku\":\"$_\",\"retail\":1000}\n" }
    qw(ok loop hot recurse pcall xpcall loaded rep double grow concat hog);

sub runaway {
    my ($h, $sku, $want, $what) = @_;
    my (undef, undef, $body) = http_request($h, 'GET', "/price?sku=$sku");
    like($body, qr/"price":1000,"saved":0,"label":""\}/,
         "$what: $sku stopped, the price unchanged");
    like(error_log_text($h), $want, "$what: $sku logged");
    (undef, undef, $body) = http_request($h, 'GET', '/price?sku=ok');
    like($body, qr/"price":999,.*"promo":"ok"/, "$what: $sku: the next call works");
}

sub place {
    my ($line, $msg) = @_;
    return qr/\[error\].*the price hook failed: \Q$BUDGET_FILE:$line: $msg\E; it is skipped/;
}

{
    my $h = start_nginx(http_config => "$HTTP\nloyalty_lua_file $BUDGET_FILE;\n",
                        config => $PRICE, store => $BUDGET_STORE);
    my $spent = 'the budget of 100000 instructions is spent';
    my $what = 'default budget';

    runaway($h, 'loop', place(5, $spent), $what);
    runaway($h, 'hot', place(6, $spent), $what);
    runaway($h, 'recurse',
            qr/the price hook failed: \Q$BUDGET_FILE\E:7: (\Q$spent\E|stack overflow)/,
            $what);
    runaway($h, 'pcall', place(8, $spent), $what);
    runaway($h, 'loaded',
            qr/the price hook failed: \(load\):1: \Q$spent\E|the price hook failed: =\(load\):1: \Q$spent\E/,
            $what);
    runaway($h, 'rep',
            qr/\[error\].*the price hook failed: not enough memory; it is skipped/,
            'memory cap');
    runaway($h, 'double', qr/the price hook failed: not enough memory/,
            'memory cap');

    # the recursion ends on the budget or on LuaJIT's stack limit
    my $deep = error_log_text($h) =~ /budget\.lua:7: the budget/ ? 1 : 0;
    my $doc = $JSON->decode((http_request($h, 'GET', '/admin/lua',
                                          admin_auth('read')))[2]);
    is_deeply($doc->{hooks}{price},
              { calls => 14, errors => 7, budget => 4 + $deep, memory => 2 },
              'default budget: 7 runaways counted, on the budget, on memory');
    is($doc->{budget}, 100000, 'the default budget: 100000');
    is($doc->{memory}, 16 * 1024 * 1024, 'the default memory: 16m');
    stop_checked($h, 'default budget');
}

# xpcall's message handler runs when the budget hook raises its error: it
# must not run on unbudgeted.  On its own nginx, with a short wait: a
# worker stuck in it is killed so as not to hold up the rest.
{
    my $h = start_nginx(http_config => "$HTTP\nloyalty_lua_file $BUDGET_FILE;\n",
                        config => $PRICE, store => $BUDGET_STORE);
    my $body = eval {
        local $SIG{ALRM} = sub { die "no answer in 5 s\n" };
        alarm 5;
        my (undef, undef, $b) = http_request($h, 'GET', '/price?sku=xpcall');
        alarm 0;
        $b;
    } // $@;
    alarm 0;
    like($body, qr/"price":1000,"saved":0,"label":""\}/,
         'budget: xpcall with a looping message handler stopped');
    if ($body =~ /^no answer/) {
        kill 'KILL', workers_of($h);
        stop_nginx($h);
    } else {
        like(error_log_text($h),
             qr/the price hook failed: \Q$BUDGET_FILE\E:9: .*(budget of 100000 instructions is spent|error in error handling)/,
             'budget: xpcall: logged');
        like((http_request($h, 'GET', '/price?sku=ok'))[2],
             qr/"price":999,.*"promo":"ok"/, 'budget: xpcall: the next call works');
        stop_checked($h, 'xpcall');
    }
}

# the pids of a server's workers (which can be gone by the time they are read)
sub workers_of {
    my ($h) = @_;
    my @kids;
    for (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $_ or next;    # gone meanwhile
        my ($pid, $ppid) = (<$fh> // '') =~ /^(\d+) \(.*\) \S (\d+) /s or next;
        push @kids, $pid if $ppid == $h->{master};
    }
    return @kids;
}

{
    my $h = start_nginx(http_config => "$HTTP\nloyalty_lua_file $BUDGET_FILE;\n"
                                       . "loyalty_lua_budget 50000000;\n"
                                       . "loyalty_lua_time 10s;\n"
                                       . "loyalty_lua_memory 4m;\n",
                        config => $PRICE, store => $BUDGET_STORE);
    my $what = 'budget 5e7, memory 4m';

    runaway($h, 'grow', qr/the price hook failed: not enough memory/, $what);
    runaway($h, 'concat', qr/the price hook failed: not enough memory/, $what);
    runaway($h, 'loop',
            place(5, 'the budget of 50000000 instructions is spent'), $what);

    my $doc = $JSON->decode((http_request($h, 'GET', '/admin/lua',
                                          admin_auth('read')))[2]);
    is($doc->{budget}, 50000000, "$what: the budget reported");
    is($doc->{memory}, 4 * 1024 * 1024, "$what: the memory reported");
    is_deeply($doc->{hooks}{price},
              { calls => 6, errors => 3, budget => 1, memory => 2 },
              "$what: counted");

    # a script that keeps its VM nearly full is not called any more: the
    # hook keeps 128k more at every call, 40 calls would keep 5m
    my @priced = map {
        (http_request($h, 'GET', '/price?sku=hog'))[2] =~ /"price":(\d+)/
    } 1 .. 40;
    is(join(',', @priced[0 .. 4]), '999,999,999,999,999',
       'a hook that keeps 128k more at every call: the first calls work');
    is(join(',', @priced[35 .. 39]), '1000,1000,1000,1000,1000',
       'the last ones are not made, or fail');
    my $body;
    (undef, undef, $body) = http_request($h, 'GET', '/price?sku=ok');
    like($body, qr/"price":1000,"saved":0,"label":""\}/,
         'nor for the next request');
    like(error_log_text($h),
         qr/\[error\].*the price hook failed: the script keeps its VM's memory nearly full: not called/,
         'and that is logged');
    stop_checked($h, 'budget 5e7, memory 4m');
}


# the budget holds for every path (issue 18): the project's library, once
# JIT-compiled, where the count hook does not fire; Lua patterns and other
# C functions, one instruction each to the hook.  Each runaway is stopped,
# logged once with its place and counted on the budget, the request gets
# its answer without the hook, and a request waiting on the same worker
# (or a write waiting on LMDB's writer lock) is not held up.  The bounds
# are generous: before, these took 4 s, 15 s or forever.

use Time::HiRes ();

# (seconds, body) of a request
sub timed {
    my ($h, $method, $uri, $hdr, $body) = @_;
    my $t0 = Time::HiRes::time();
    my (undef, undef, $b) = http_request($h, $method, $uri, $hdr, $body);
    return (Time::HiRes::time() - $t0, $b);
}

# the request in a child, and $then in the parent meanwhile: the parent's
# (seconds, body), and the child's body
sub meanwhile {
    my ($h, $method, $uri, $body, $then, $hdr) = @_;
    my $dir = test_dir();
    my $out = "$dir/child";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my (undef, undef, $b) = eval { http_request($h, $method, $uri,
                                                    $hdr // {}, $body) };
        write_file($out, $b // "no answer: $@");
        POSIX::_exit(0);
    }
    Time::HiRes::sleep(0.2);    # the child's request is under way
    my @mine = $then->();
    waitpid $pid, 0;
    return (@mine, eval { slurp($out) } // '');
}

{
    use POSIX ();

    my $ESCAPE = "$ROOT/t/lua/escape.lua";
    my @LOOPS = qw(nest find400 find800 gsub gmatch pcall sort tostring reps
                   concat);
    my $EX = "$ROOT/schema/examples";
    my $store = "[tiers]\n" . slurp("$EX/tiers.jsonl")
              . "[members]\n"
              . qq({"id":"m1","tier":"basic","stage":"fan"}\n)
              . qq({"id":"carol","tier":"basic","stage":"partner"}\n)
              . "[codes]\n" . qq({"code":"WX1","member":"carol","vanity":true}\n)
              . "[rules]\n" . slurp("$EX/rules.json")
              . "[prices]\n" . join('', map { qq({"sku":"$_","retail":1000}\n) }
                                            'ok', 'rep', @LOOPS);
    my $h = start_nginx(
        http_config => "$HTTP\nloyalty_lua_file $ESCAPE;\n"
                       . "loyalty_click_zone clicks 1m;\n"
                       . "loyalty_click_flush 1s;\n",
        config => $PRICE . 'location / { return 200 '
                  . '"[$loyalty_ref_status][$loyalty_ref_campaign]\n"; }'
                  . "\n",
        store => $store);
    my $what = 'escape';

    # the price hook built of library closures, with a request for the
    # same single worker waiting behind it
    my ($took, $body, $child) = meanwhile($h, 'GET', '/price?sku=nest', undef,
        sub { timed($h, 'GET', '/price?sku=ok') });
    like($child, qr/"price":1000,"saved":0,"label":""\}/,
         "$what: nest: stopped, the price without the hook");
    like($body, qr/"price":999,.*"promo":"ok"/,
         "$what: nest: the request behind it answered");
    cmp_ok($took, '<', 3, "$what: nest: the request behind it in under 3 s");
    like(error_log_text($h),
         qr/\[error\].*the price hook failed: loyalty\.\w+:\d+: the budget of 100000 instructions is spent; it is skipped/,
         "$what: nest: logged with its place in the library");

    for my $sku (grep { $_ ne 'nest' } @LOOPS) {
        ($took, $body) = timed($h, 'GET', "/price?sku=$sku");
        like($body, qr/"price":1000,"saved":0,"label":""\}/,
             "$what: $sku: stopped, the price without the hook");
        cmp_ok($took, '<', 3, "$what: $sku: in under 3 s");
        like((http_request($h, 'GET', '/price?sku=ok'))[2],
             qr/"price":999,.*"promo":"ok"/, "$what: $sku: the next call works");
    }

    ($took, $body) = timed($h, 'GET', "/price?sku=rep");
    like($body, qr/"price":1000,"saved":0,"label":""\}/,
         "$what: rep: the price without the hook");

    my $log = error_log_text($h);
    my @places = $log =~ /the price hook failed: \Q$ESCAPE\E:(\d+): the budget of (?:100000 instructions|50 ms) is spent/g;
    is(scalar(@places), @LOOPS - 1,
       "$what: each of the others logged once with its place");
    like($log, qr/the price hook failed: not enough memory/,
         "$what: string.rep of a huge string: memory");

    # the click hook's pattern on a 2,012-byte WeChat-less User-Agent,
    # with a request waiting behind it
    my $ua = 'Mozilla/5.0 ' . ('a ' x 1000);
    my $t0 = Time::HiRes::time();
    my (undef, undef, $clicked) = http_request($h, 'GET', '/?ref=WX1',
                                               { 'User-Agent' => $ua });
    $took = Time::HiRes::time() - $t0;
    like($clicked, qr/^\[new\]\[\]/,
         "$what: click: stopped, the click attributed without a campaign");
    cmp_ok($took, '<', 3, "$what: click: in under 3 s");
    (undef, undef, $clicked) = http_request($h, 'GET', '/?ref=WX1',
        { 'User-Agent' => 'Mozilla/5.0 (iPhone) AppleWebKit MicroMessenger/8.0' });
    like($clicked, qr/^\[new\]\[wechat\]/, "$what: click: the next call works");
    like(error_log_text($h),
         qr/\[error\].*the click hook failed: \Q$ESCAPE\E:\d+: the budget of (100000 instructions|50 ms) is spent/,
         "$what: click: logged with its place");

    # the event hook built of library closures holds LMDB's writer lock
    # while it runs: a write behind it must not wait for it
    my $ev = sub {
        '[{"type":"action","member":"m1","kind":"share","id":"' . $_[0]
        . '","at":"2026-11-21T10:00:00Z"}]'
    };
    my $posted;
    ($took, $posted, $child) = meanwhile($h, 'POST', '/admin/events',
        $ev->('nest.1'),
        sub { timed($h, 'POST', '/admin/events', admin_auth(),
                    $ev->('plain.1')) },
        admin_auth());
    like($posted, qr/"applied":1/, "$what: event: the write behind it applied");
    cmp_ok($took, '<', 3, "$what: event: the write behind it in under 3 s");
    like($child, qr/"applied":1/,
         "$what: event: the runaway's event applied without the hook");
    like(error_log_text($h),
         qr/\[error\].*the event hook failed: loyalty\.\w+:\d+: the budget of 100000 instructions is spent/,
         "$what: event: logged with its place");
    my $m1 = $JSON->decode((http_request($h, 'GET', '/admin/members/m1',
                                         admin_auth('read')))[2]);
    is($m1->{points}, 3 + 5, "$what: event: the hook's 3 points and the "
       . "rules' 5 for the stopped call");

    my $doc = $JSON->decode((http_request($h, 'GET', '/admin/lua',
                                          admin_auth('read')))[2]);
    is_deeply($doc->{hooks}{price},
              { calls => 2 * @LOOPS + 1, errors => @LOOPS + 1,
                budget => scalar @LOOPS, memory => 1 },
              "$what: GET .../lua: every runaway price hook on the budget");
    is($doc->{hooks}{click}{budget}, 1, "$what: GET .../lua: the click's");
    is($doc->{hooks}{event}{budget}, 1, "$what: GET .../lua: the event's");
    is($doc->{time}, 50, "$what: GET .../lua: the time, 50 ms by default");
    stop_checked($h, $what);
}


# A price hook's read transaction is begun only if it reads the store.
# One that reads it after a write committed under the request (the price
# cache answered from the snapshot before) has the answer made again, all
# of it from the snapshot the hook read: the price and the hook's label
# agree.
{
    my $h = start_nginx(http_config => "$HTTP\nloyalty_lua_file "
                                       . "$ROOT/t/lua/snapshot.lua;\n"
                                       . "loyalty_lua_budget 100000000;\n"
                                       . "loyalty_lua_time 10s;\n",
                        config => $PRICE,
                        store => "[prices]\n{\"sku\":\"tea\",\"retail\":1000}\n");
    my $what = 'a snapshot begun by the hook';
    my (undef, undef, $body) = http_request($h, 'GET', '/price?sku=tea:1');
    like($body, qr/"price":999,"saved":1,"label":"","promo":"retail 1000"/,
         "$what: the price cached, the hook's read agrees");

    my $file = "$DIR/tea.jsonl";
    write_file($file, "{\"sku\":\"tea\",\"retail\":2000}\n", 0644);
    my ($rc, $child);
    ($rc, $child) = meanwhile($h, 'GET', '/price?sku=tea:2', undef,
        sub { (loyaltyctl('-s', $h->{store}, 'import', 'prices', $file))[0] });
    is($rc, 0, "$what: a price written while the hook waits");
    like($child, qr/"retail":4000,"price":3999,"saved":1,"label":"","promo":"retail 2000"/,
         "$what: the answer made again from the hook's snapshot");
    unlike(error_log_text($h), qr/\[error\]/, "$what: no errors");
    stop_checked($h, $what);
}


# nginx -t refuses scripts that do not load, and bad limits

write_file("$DIR/syntax.lua", "-- a comment\nreturn { price = function(ctx) return ctx.price - end }\n", 0644);
write_file("$DIR/number.lua", "return 42\n", 0644);
write_file("$DIR/nothing.lua", "local x = 1\n", 0644);
write_file("$DIR/price5.lua", "return { price = 5 }\n", 0644);
write_file("$DIR/click_str.lua", "return { price = function() end, click = \"yes\" }\n", 0644);
write_file("$DIR/event_tbl.lua", "return { event = {} }\n", 0644);
write_file("$DIR/forever.lua", "local n = 0\nwhile true do n = n + 1 end\nreturn {}\n", 0644);
write_file("$DIR/slow.lua", "for i = 1, 200000 do end\nreturn {}\n", 0644);
write_file("$DIR/big.lua", "local s = string.rep(\"x\", 2^30)\nreturn {}\n", 0644);
write_file("$DIR/raise.lua", "\n\nerror(\"not today\")\n", 0644);
write_file("$DIR/raise_tbl.lua", "error({})\n", 0644);
write_file("$DIR/bytecode.lua", "\x1bLJ\x02\x00return {}\n", 0644);
write_file("$DIR/req_bad.lua", "local m = require \"badmod\"\nreturn {}\n", 0644);
write_file("$DIR/badmod.lua", "local x = \nreturn {}\n", 0644);
write_file("$DIR/req_missing.lua", "local m = require \"sub.none\"\nreturn {}\n", 0644);
write_file("$DIR/store_now.lua", "local store = require \"loyalty.store\"\nlocal m = store.member(\"alice\")\nreturn {}\n", 0644);
write_file("$DIR/ok.lua", "return { price = function() end }\n", 0644);

push @blocks, <<"END";
=== the store is read only during a hook, not at configuration
--- http_config
loyalty_lua_file $DIR/store_now.lua;
--- config_error
loyalty_lua_file "$DIR/store_now.lua": $DIR/store_now.lua:2: the store is only read during a hook


=== a syntax error: the file and the line
--- http_config
loyalty_lua_file $DIR/syntax.lua;
--- config_error
loyalty_lua_file "$DIR/syntax.lua": $DIR/syntax.lua:2: unexpected symbol near 'end'


=== a missing file
--- http_config
loyalty_lua_file $DIR/missing.lua;
--- config_error
loyalty_lua_file "$DIR/missing.lua": cannot open "$DIR/missing.lua": No such file or directory


=== a directory
--- http_config
loyalty_lua_file $DIR;
--- config_error
is not a file


=== a relative path is taken from the configuration's directory
--- http_config
loyalty_lua_file hooks/missing.lua;
--- config_error
loyalty_lua_file "%%PREFIX%%/conf/hooks/missing.lua": cannot open


=== a script that returns a number
--- http_config
loyalty_lua_file $DIR/number.lua;
--- config_error
loyalty_lua_file "$DIR/number.lua": the script must return a table of hooks, not number


=== a script that returns nothing
--- http_config
loyalty_lua_file $DIR/nothing.lua;
--- config_error
the script must return a table of hooks, not nil


=== the price hook is 5
--- http_config
loyalty_lua_file $DIR/price5.lua;
--- config_error
loyalty_lua_file "$DIR/price5.lua": the hook "price" must be a function, not number


=== the click hook is a string
--- http_config
loyalty_lua_file $DIR/click_str.lua;
--- config_error
the hook "click" must be a function, not string


=== the event hook is a table
--- http_config
loyalty_lua_file $DIR/event_tbl.lua;
--- config_error
the hook "event" must be a function, not table


=== a script that runs forever at configuration: the budget
--- http_config
loyalty_lua_file $DIR/forever.lua;
--- config_error
loyalty_lua_file "$DIR/forever.lua": $DIR/forever.lua:2: the budget of 100000 instructions is spent


=== the budget applies at configuration: 200000 iterations do not fit 100000
--- http_config
loyalty_lua_file $DIR/slow.lua;
--- config_error
$DIR/slow.lua:1: the budget of 100000 instructions is spent


=== and fit a budget of 10000000
--- http_config
loyalty_store %%STORE%%;
loyalty_lua_file $DIR/slow.lua;
loyalty_lua_budget 10000000;
--- config
location /admin/ { %%ADMIN%% }
--- request
GET /admin/lua
--- more_headers
Authorization: Bearer %%ADMIN_READ_TOKEN%%
--- response_body
{"hooks":{},"file":"$DIR/slow.lua","budget":10000000,"time":50,"memory":16777216}


=== the memory cap applies at configuration
--- http_config
loyalty_lua_file $DIR/big.lua;
--- config_error
loyalty_lua_file "$DIR/big.lua": not enough memory


=== an error raised at configuration
--- http_config
loyalty_lua_file $DIR/raise.lua;
--- config_error
loyalty_lua_file "$DIR/raise.lua": $DIR/raise.lua:3: not today


=== an error that is not a string
--- http_config
loyalty_lua_file $DIR/raise_tbl.lua;
--- config_error
loyalty_lua_file "$DIR/raise_tbl.lua": the script raised an error that is not a string


=== a bytecode file
--- http_config
loyalty_lua_file $DIR/bytecode.lua;
--- config_error
loyalty_lua_file "$DIR/bytecode.lua": $DIR/bytecode.lua: bytecode is not loaded


=== a required module with a syntax error: its file and line
--- http_config
loyalty_lua_file $DIR/req_bad.lua;
--- config_error
$DIR/badmod.lua:2: unexpected symbol near 'return'


=== a required module that is not there: dots are directories
--- http_config
loyalty_lua_file $DIR/req_missing.lua;
--- config_error
module "sub.none": cannot open "$DIR/sub/none.lua": No such file or directory


=== loyalty_lua_budget 10 is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_budget 10;
--- config_error
"loyalty_lua_budget" must be 1000 to 100000000


=== loyalty_lua_budget 999 is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_budget 999;
--- config_error
"loyalty_lua_budget" must be 1000 to 100000000


=== loyalty_lua_budget 100000001 is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_budget 100000001;
--- config_error
"loyalty_lua_budget" must be 1000 to 100000000


=== loyalty_lua_time 0 is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_time 0;
--- config_error
"loyalty_lua_time" must be 1ms to 60s


=== loyalty_lua_time 61s is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_time 61s;
--- config_error
"loyalty_lua_time" must be 1ms to 60s


=== loyalty_lua_time 5x is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_time 5x;
--- config_error
invalid value


=== a script that runs forever at configuration, within loyalty_lua_time
--- http_config
loyalty_lua_file $DIR/forever.lua;
loyalty_lua_budget 100000000;
loyalty_lua_time 10ms;
--- config_error
loyalty_lua_file "$DIR/forever.lua": $DIR/forever.lua:2: the budget of 10 ms is spent


=== loyalty_lua_memory 100k is refused
--- http_config
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_memory 100k;
--- config_error
"loyalty_lua_memory" must be at least 1m


=== the smallest limits load
--- http_config
loyalty_store %%STORE%%;
loyalty_lua_file $DIR/ok.lua;
loyalty_lua_budget 1000;
loyalty_lua_time 1ms;
loyalty_lua_memory 1m;
--- config
location /admin/ { %%ADMIN%% }
--- request
GET /admin/lua
--- more_headers
Authorization: Bearer %%ADMIN_READ_TOKEN%%
--- response_body
{"hooks":{"price":{"calls":0,"errors":0,"budget":0,"memory":0}},"file":"$DIR/ok.lua","budget":1000,"time":1,"memory":1048576}
END

spec_string(join "\n\n", @blocks);
run_blocks();
done_testing();
