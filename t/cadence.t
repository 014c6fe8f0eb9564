# Reward cadences end to end: loyaltyctl --lua sweep with --now time
# travel (birthdays and 29 February, a silence of 90 days, a year's end),
# conditions that fail or run away, apply scheduling order cadences in
# the event's transaction with the reward exactly once, due, ack and
# cadence-stats (validated against their schemas), bad declarations and
# bad arguments; then nginx: events through the admin API, GET .../due
# claiming for a lease, POST .../due/ack, their bad inputs, and
# loyalty_cadence_sweep finding today's birthday by itself.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Open2 qw(open2);
use JSON::PP ();
use POSIX qw(strftime);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $SCRIPT = "$ROOT/t/cadence/cadences.lua";
my $EXAMPLE = "$ROOT/lua/examples/cadences.lua";
my $JSON = JSON::PP->new->canonical;
my $PYTHON = '/usr/bin/python3';

my $TIERS = qq({"name":"basic","rank":0,"discount_bp":0,"label":"Basic"}\n);
my $MEMBERS = join '', map { "$_\n" }
    '{"id":"ann","tier":"basic","stage":"member","birthday":"02-29",'
        . '"last_order_at":"2026-01-10T15:00:00Z","orders":1,"spend":100}',
    '{"id":"bob","tier":"basic","stage":"fan","referrer":"ann"}',
    '{"id":"err1","tier":"basic","stage":"fan","birthday":"02-28"}',
    '{"id":"loop1","tier":"basic","stage":"fan","birthday":"02-28"}';


sub ctl {
    my ($dir, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, @args);
    return ($rc, $out, $err);
}

# one line of JSON output, decoded; or "exit N: stderr"
sub ctl_json {
    my ($rc, $out, $err) = ctl(@_);
    return "exit $rc: $err" if $rc;
    return $JSON->decode($out);
}

sub due_ids {
    my ($dir, $until) = @_;
    my ($rc, $out, $err) = ctl($dir, 'due', '--until', $until);
    return "exit $rc: $err" if $rc;
    return join ' ', map { $JSON->decode($_)->{id} } split /\n/, $out;
}

sub points {
    my $m = ctl_json($_[0], 'get', 'member', $_[1]);
    return ref $m ? $m->{points} // 0 : $m;
}

# validates text (JSON, or JSON Lines) against a schema: "" or the errors
sub invalid {
    my ($schema, $text) = @_;
    my $dir = test_dir();
    write_file("$dir/doc", $text);
    my ($rc, $out, $err) = (0, '', '');
    my $pid = open(my $fh, '-|', $PYTHON, '-c', <<'PY', "$ROOT/schema/$schema", "$dir/doc");
import json, sys
from jsonschema import Draft202012Validator
v = Draft202012Validator(json.load(open(sys.argv[1])))
for n, line in enumerate(open(sys.argv[2]), 1):
    if line.strip():
        for e in v.iter_errors(json.loads(line)):
            print('%d: %s' % (n, e.message))
PY
    local $/;
    $out = <$fh> // '';
    close $fh;
    return $? ? "python failed: $out" : $out;
}

sub sweep {
    my ($dir, $now, @more) = @_;
    return ctl_json($dir, '--lua', $SCRIPT, @more, 'sweep', '--now', $now);
}


# loyaltyctl: sweeps with time travel

my ($TMP, $dir) = new_store();
write_file("$TMP/tiers.jsonl", $TIERS);
write_file("$TMP/members.jsonl", $MEMBERS);
is((ctl($dir, 'import', 'tiers', "$TMP/tiers.jsonl"))[0], 0, 'tiers');
is((ctl($dir, 'import', 'members', "$TMP/members.jsonl"))[0], 0, 'members');

{
    my ($rc, $out, $err) = ctl($dir, '--lua', $SCRIPT, 'sweep', '--now',
                               '2026-02-26T12:00:00Z');
    is($rc, 0, 'sweep on 26 Feb 2026') or diag($err);
    my $r = $JSON->decode($out);
    is($r->{scheduled}, 0, 'nothing two days ahead');
    is($r->{members}, 4, 'every member looked at');

    ($rc, $out, $err) = ctl($dir, '--lua', $SCRIPT, 'sweep', '--now',
                            '2026-02-27T12:00:00Z');
    $r = $JSON->decode($out);
    is($r->{scheduled}, 1, '27 Feb: one birthday scheduled');
    is($r->{failed}, 2, 'the conditions of err1 and loop1 failed');
    like($err, qr/cadences\.lua:\d+: no greeting for err1/,
         'the error, with its place in the script');
    like($err, qr/budget of 100000 instructions is spent/,
         'the runaway condition, stopped by the budget');
    is(due_ids($dir, '2026-02-28T09:00:00Z'), 'bday:ann:2026',
       '29 Feb is 28 Feb in 2026; err1 and loop1 got nothing');

    $r = sweep($dir, '2026-02-28T10:00:00Z');
    is($r->{scheduled}, 0, 'the next sweep schedules nothing twice');
    is($r->{rewards}, 1, 'and credits the reward that fell due');
    is(points($dir, 'ann'), 10, 'ann: 10 points');
    $r = sweep($dir, '2026-03-01T10:00:00Z');
    is(points($dir, 'ann'), 10, 'exactly once');

    my ($rc2, $list) = ctl($dir, 'due', '--until', '2026-03-01T00:00:00Z');
    is(invalid('due.schema.json', $list), '', 'due: valid JSON Lines');
    my $t = $JSON->decode((split /\n/, $list)[0]);
    is_deeply([@$t{qw(id cadence member period touch trigger due_at note
                      reward rewarded)}],
              ['bday:ann:2026', 'bday', 'ann', '2026', 'message', 'birthday',
               '2026-02-28T09:00:00Z', 'Happy birthday', 10, JSON::PP::true],
              'due: the touch as scheduled');

    $r = sweep($dir, '2026-04-09T14:00:00Z');
    is(due_ids($dir, '2026-04-11T00:00:00Z'), 'bday:ann:2026',
       '89 days after the last order: no "we miss you" yet');
    $r = sweep($dir, '2026-04-09T15:00:00Z');
    is(due_ids($dir, '2026-04-11T00:00:00Z'),
       'bday:ann:2026 miss:ann:2026-01-10',
       'a day before 90 days: scheduled, due 10 Apr 15:00');

    $r = sweep($dir, '2026-12-31T12:00:00Z');
    like(due_ids($dir, '2027-01-01T00:00:00Z'), qr/ newyear:ann:2027-01-01$/,
         'over the year\'s end: 1 Jan 2027 for the member');
    unlike(due_ids($dir, '2027-01-01T00:00:00Z'), qr/newyear:bob/,
           'not for a fan (the condition)');

    $r = sweep($dir, '2028-02-28T09:00:00Z');
    like(due_ids($dir, '2028-03-01T00:00:00Z'), qr/bday:ann:2028/,
         'in 2028 on 29 Feb');
    my ($rc3, $l2) = ctl($dir, 'due', '--until', '2028-03-01T00:00:00Z');
    like($l2, qr/"id":"bday:ann:2028"[^\n]*"due_at":"2028-02-29T09:00:00Z"/,
         'due 29 Feb 2028');
}

# apply: order cadences in the event's transaction

{
    my $orders = $JSON->encode([
        { type => 'order', member => 'bob', order_id => 'o1',
          amount => 60000, at => '2026-05-01T10:00:00Z' },
        { type => 'order', member => 'bob', order_id => 'o2',
          amount => 100, at => '2026-05-02T10:00:00Z' },
    ]);
    write_file("$TMP/orders.json", $orders);
    my $before = points($dir, 'ann');

    my $r = ctl_json($dir, '--lua', $SCRIPT, 'apply', "$TMP/orders.json");
    is($r->{applied}, 2, 'apply --lua: two orders');
    my $ids = due_ids($dir, '2026-05-09T00:00:00Z');
    like($ids, qr/\bthanks:ann:bob\b/, 'the referrer is thanked');
    like($ids, qr/\bwelcome:bob:o1\b/, 'the new customer followed up');
    like($ids, qr/\bcall7:bob:o1\b/, 'a call 7 days after 600.00');
    unlike($ids, qr/call7:bob:o2/, 'none after 1.00');
    is(points($dir, 'ann') - $before, 200,
       'the referrer\'s reward, due at once, credited with the order');

    $r = ctl_json($dir, '--lua', $SCRIPT, 'apply', "$TMP/orders.json");
    is($r->{duplicates}, 2, 'the orders again: duplicates');
    is(points($dir, 'ann') - $before, 200, 'nothing twice');

    my $led = ctl_json($dir, 'get', 'ledger', 'ann');
    is_deeply([ map { "$_->{reason} $_->{event} $_->{delta}" }
                grep { $_->{reason} eq 'cadence' } @{$led->{entries}} ],
              ['cadence bday 10', 'cadence thanks 200'],
              'the ledger: reason cadence, the cadence\'s name');
    is((ctl($dir, 'verify'))[0], 0, 'verify: balances match the ledgers');
}

# ack and cadence-stats

{
    my $r = ctl_json($dir, 'ack', 'bday:ann:2026', 'done', '--by', 'li');
    is($r->{status}, 'acked', 'ack done by li');
    $r = ctl_json($dir, 'ack', 'bday:ann:2026', 'done', '--by', 'li');
    is($r->{status}, 'already', 'the same again: already');
    my ($rc, $out, $err) = ctl($dir, 'ack', 'bday:ann:2026', 'failed');
    is($rc, 1, 'another outcome: exit 1');
    like($err, qr/another outcome/, 'and why');
    ($rc, $out, $err) = ctl($dir, 'ack', 'bday:ann:1999', 'done');
    is($rc, 1, 'an unknown touch: exit 1');
    ($rc, $out, $err) = ctl($dir, 'ack', 'bday:ann:2026', 'maybe');
    like($err, qr/"outcome" must be/, 'a bad outcome: said so');
    ($rc, $out, $err) = ctl($dir, 'ack', 'miss:ann:2026-01-10', 'skipped',
                            '--by', 'not a name');
    like($err, qr/"by" must be/, 'a bad staff id: said so');
    ok(ctl_json($dir, 'ack', 'miss:ann:2026-01-10', 'skipped', '--by', 'wu')
       ->{status} eq 'acked', 'wu skipped one');

    ($rc, $out, $err) = ctl($dir, 'cadence-stats', '--since', '2026-01-01');
    is($rc, 0, 'cadence-stats');
    is(invalid('cadence-stats.schema.json', $out), '', 'valid');
    my $s = $JSON->decode($out);
    is_deeply($s->{cadences}{bday},
              { scheduled => 2, pending => 1, done => 1, skipped => 0,
                failed => 0, points => 10 }, 'per cadence');
    is_deeply($s->{staff},
              { li => { done => 1, skipped => 0, failed => 0 },
                wu => { done => 0, skipped => 1, failed => 0 } },
              'per member of staff');
    $s = ctl_json($dir, 'cadence-stats', '--since', '2028-01-01');
    is_deeply([sort keys %{$s->{cadences}}], ['bday'],
              '--since: only touches due since');

    for my $bad (['--since', '2026-13-01'], ['--since', 'yesterday']) {
        ($rc) = ctl($dir, 'cadence-stats', @$bad);
        is($rc, 2, "cadence-stats @$bad: usage error");
    }
    ($rc) = ctl($dir, '--lua', $SCRIPT, 'sweep', '--now', 'tomorrow');
    is($rc, 2, 'sweep --now tomorrow: usage error');
    ($rc) = ctl($dir, 'due', '--limit', '0');
    is($rc, 2, 'due --limit 0: usage error');
}

# the example declares every cadence of the handbook and loads

{
    my $r = ctl_json($dir, '--lua', $EXAMPLE, 'sweep', '--now',
                     '2026-12-20T12:00:00Z');
    ok(ref $r && $r->{failed} == 0, 'lua/examples/cadences.lua sweeps')
        or diag(explain $r);
    like(due_ids($dir, '2026-12-22T00:00:00Z'),
         qr/holiday_greeting:ann:2026-12-21/, 'a season\'s greeting');
}

# bad declarations: refused with the cadence and the reason

{
    my $tmp = test_dir();
    my %bad = (
        'unknown field' => [ '{ name = "a", trigger = "order", touch = "call", dayz = 3 }',
                             qr/cadence 1 \(a\): unknown field "dayz"/ ],
        'bad trigger' => [ '{ name = "a", trigger = "someday", touch = "call" }',
                           qr/"trigger" must be one of/ ],
        'bad touch' => [ '{ name = "a", trigger = "order", touch = "fax" }',
                         qr/"touch" must be one of/ ],
        'when not a function' => [ '{ name = "a", trigger = "order", touch = "call", when = true }',
                                   qr/"when" must be a function/ ],
        'inactive without days' => [ '{ name = "a", trigger = "inactive", touch = "call" }',
                                     qr/needs "days" of silence/ ],
        'a bad date' => [ '{ name = "a", trigger = "calendar", touch = "call", dates = { "02-30" } }',
                          qr/"dates" must be a list/ ],
        'days out of range' => [ '{ name = "a", trigger = "order", touch = "call", days = -1 }',
                                 qr/"days" must be 0 to 3660/ ],
        'a bad name' => [ '{ name = "a b", trigger = "order", touch = "call" }',
                          qr/"name" must be 1-32 characters/ ],
        'twice the same name' => [ '{ name = "a", trigger = "order", touch = "call" }, { name = "a", trigger = "order", touch = "gift" }',
                                   qr/cadence 2 \(a\): a cadence of this name/ ],
        'not a table' => [ '"order"', qr/cadence 1 is not a table/ ],
        'a helper misused' => [ 'require("loyalty.cadence").inactive { name = "a", touch = "call" }',
                                qr/cadence\.inactive: needs days of silence/ ],
    );
    for my $what (sort keys %bad) {
        my ($decl, $re) = @{$bad{$what}};
        write_file("$tmp/bad.lua", "return { cadences = { $decl } }\n");
        my ($rc, $out, $err) = ctl($dir, '--lua', "$tmp/bad.lua", 'sweep');
        is($rc, 1, "$what: refused");
        like($err, $re, "$what: said why");
    }
    write_file("$tmp/bad.lua", "return { cadences = 7 }\n");
    my ($rc, $out, $err) = ctl($dir, '--lua', "$tmp/bad.lua", 'sweep');
    like($err, qr/"cadences" must be a list/, 'cadences not a list');
}


# nginx: the admin API and loyalty_cadence_sweep

my $TOKEN = $ADMIN_TOKEN;
my $TOKDIR = test_dir();
write_admin_tokens("$TOKDIR/tokens");

my $today = strftime('%m-%d', gmtime);
my $year = strftime('%Y', gmtime);

my $h = start_nginx(
    http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
                   . "loyalty_lua_file $SCRIPT;\n"
                   . "loyalty_cadence_sweep 1s;\n",
    config => "location /admin/ {\n    loyalty_admin;\n"
              . "    loyalty_admin_token $TOKDIR/tokens;\n}\n",
    store => "[tiers]\n${TIERS}[members]\n$MEMBERS"
             . qq({"id":"today","tier":"basic","stage":"fan","birthday":"$today"}\n));

sub api {
    my ($method, $path, $body) = @_;
    my ($status, $headers, $text) = eval {
        http_request($h, $method, $path,
                     { Authorization => "Bearer $TOKEN" }, $body);
    };
    return ("error: $@", '') unless defined $headers;
    return ($status, $text);
}

{
    my ($s, $b) = api('POST', '/admin/events', $JSON->encode([
        { type => 'order', member => 'bob', order_id => 'n1',
          amount => 70000,
          at => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime) } ]));
    is($s, 200, 'an order through the admin API') or diag($b);

    my $until = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 8 * 86400));
    ($s, $b) = api('GET', "/admin/due?until=$until&touch=message,call");
    is($s, 200, 'GET /admin/due');
    is(invalid('due.schema.json', $b), '', 'valid');
    my $due = $JSON->decode($b)->{due};
    my %got = map { $_->{id} => $_ } @$due;
    ok($got{'thanks:ann:bob'} && $got{'welcome:bob:n1'}
       && $got{'call7:bob:n1'}, 'the order\'s touches, claimed')
        or diag($b);
    ok($got{'thanks:ann:bob'}{lease_until}, 'with a lease');

    ($s, $b) = api('GET', "/admin/due?until=$until");
    my @again = grep { $_->{id} =~ /bob/ } @{$JSON->decode($b)->{due}};
    is(scalar @again, 0, 'claimed touches are hidden from the next caller');

    ($s, $b) = api('POST', '/admin/due/ack',
                   '{"id":"thanks:ann:bob","outcome":"done","by":"li"}');
    is("$s $b", qq(200 {"id":"thanks:ann:bob","status":"acked"}\n),
       'ack');
    ($s, $b) = api('POST', '/admin/due/ack',
                   '{"id":"thanks:ann:bob","outcome":"done","by":"li"}');
    like("$s $b", qr/^200 .*"already"/, 'ack again: already');
    ($s, $b) = api('POST', '/admin/due/ack',
                   '{"id":"thanks:ann:bob","outcome":"failed"}');
    is($s, 409, 'another outcome: 409');
    ($s, $b) = api('POST', '/admin/due/ack',
                   '{"id":"thanks:ann:nobody","outcome":"done"}');
    is($s, 404, 'an unknown touch: 404');
    # found by t/fuzz/fuzz_due.c: an LMDB error (an empty key), a 500
    ($s, $b) = api('POST', '/admin/due/ack', '{"id":"","outcome":"done"}');
    is($s, 404, 'an empty id: 404');
    ($s, $b) = api('POST', '/admin/due/ack',
                   '[{"id":"","outcome":"done"},'
                   . '{"id":"thanks:ann:bob","outcome":"done"}]');
    is("$s $b", qq(200 {"results":[{"id":"","status":"unknown","error":)
                . qq("no touch has this id"},{"id":"thanks:ann:bob",)
                . qq("status":"already"}]}\n),
       'an empty id in an array: unknown, and the others answered');
    ($s, $b) = api('POST', '/admin/due/ack', '{"id":');
    is($s, 400, 'bad JSON: 400');
    ($s, $b) = api('POST', '/admin/due/ack',
                   '{"id":"welcome:bob:n1","outcome":"done","extra":1}');
    is($s, 422, 'an unknown field: 422');
    like($b, qr/unknown field/, 'said so');
    ($s, $b) = api('POST', '/admin/due/ack', '{"id":5,"outcome":"done"}');
    is($s, 422, 'an id that is not a string: 422');
    ($s, $b) = api('POST', '/admin/due/ack', '"done"');
    is($s, 400, 'a body that is not an object or array: 400');
    ($s, $b) = api('POST', '/admin/due/ack', '[]');
    is($s, 422, 'an empty array: 422');
    ($s, $b) = api('POST', '/admin/due/ack', $JSON->encode([
        { id => 'welcome:bob:n1', outcome => 'skipped', by => 'wu' },
        { id => 'nope:bob:n1', outcome => 'done' } ]));
    is($s, 200, 'an array of acknowledgements');
    is(invalid('due-ack.schema.json', $b), '', 'valid');
    is_deeply([ map { $_->{status} } @{$JSON->decode($b)->{results}} ],
              ['acked', 'unknown'], 'each on its own');

    for my $q ('limit=0', 'limit=1001', 'limit=x', 'until=tomorrow',
               'touch=fax', 'touch=call,', 'lease=1s', 'lease=2d')
    {
        ($s, $b) = api('GET', "/admin/due?$q");
        is($s, 400, "GET /admin/due?$q: 400");
    }
    ($s, $b) = api('POST', '/admin/due', '{}');
    is($s, 405, 'POST /admin/due: 405');
    ($s, $b) = api('GET', '/admin/due/ack');
    is($s, 405, 'GET /admin/due/ack: 405');

    # the sweep runs in a worker every second: today's birthday appears
    my $found;
    for (1 .. 50) {
        $found = grep { /"id":"bday:today:$year"/ }
                 split /\n/, (ctl($h->{store}, 'due', '--until',
                                  strftime('%Y-%m-%dT23:59:59Z', gmtime)))[1];
        last if $found;
        select(undef, undef, undef, 0.1);
    }
    ok($found, 'loyalty_cadence_sweep scheduled today\'s birthday');
    like(error_log_text($h), qr/loyalty_lua_file .*no greeting for err1|loyalty_cadence_sweep: \d+ members/,
         'the sweep logged');
    my @once = grep { /"id":"bday:today:$year"/ }
               split /\n/, (ctl($h->{store}, 'due', '--until',
                                strftime('%Y-%m-%dT23:59:59Z', gmtime)))[1];
    is(scalar @once, 1, 'once, however many sweeps ran');

    is((ctl($h->{store}, 'verify'))[0], 0, 'verify after it all');

    # a reload with a bad declaration keeps the old configuration
    my $tmp = test_dir();
    write_file("$tmp/bad.lua",
               "return { cadences = { { name = 'x', trigger = 'when', "
               . "touch = 'call' } } }\n");
    ok(!reload_nginx($h, http_config =>
                     "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
                     . "loyalty_lua_file $tmp/bad.lua;\n"),
       'a reload with a bad cadence is refused');
    like(error_log_text($h), qr/\[emerg\].*cadence 1 \(x\): "trigger" must be/,
         'and says why');
    ($s, $b) = api('GET', '/admin/due?limit=1');
    is($s, 200, 'the old configuration still answers');

    stop_checked($h, 'cadences', 1);
}


# the sweep's steps are the store writer's: their thread runs as
# SCHED_BATCH while it steps (seen while a step waits on LMDB's writer
# lock, held from outside), and as before once the sweep is over

{
    my ($rc) = lmdb_tool($TOKDIR, 'hold');
    is($rc, 0, 'the hold helper compiles');

    my $h = start_nginx(
        http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
                       . "loyalty_lua_file $SCRIPT;\n"
                       . "loyalty_cadence_sweep 1s;\n",
        store => "[tiers]\n${TIERS}[members]\n"
                 . join('', grep { /"(ann|bob)"/ } split /^/, $MEMBERS));

    my $swept = sub { scalar(() = error_log_text($h)
                             =~ /loyalty_cadence_sweep: \d+ members/g) };
    my $counts = sub {
        my %n;
        $n{$_}++ for values %{thread_policies($h)};
        return join ', ', map { "$_: $n{$_}" } sort keys %n;
    };
    my $until = sub {
        my ($cond) = @_;
        for (1 .. 250) {
            return 1 if $cond->();
            select(undef, undef, undef, 0.02);
        }
        return 0;
    };

    # a request answered: the worker has started its thread pool
    my ($s) = http_request($h, 'GET', '/');
    ok(defined $s, 'sweep: the worker answers');
    my $all = scalar keys %{thread_policies($h)};
    cmp_ok($all, '>', 1, "sweep: the worker has its thread pool ($all threads)");

    my $holder = open2(my $from, my $to, "$TOKDIR/hold", $h->{store});
    is(scalar(<$from> // ''), "locked\n", 'sweep: the writer lock is held');

    ok($until->(sub { $counts->() ne "0: $all" }), 'sweep: a step is posted');
    my $before = $swept->();
    my $during = thread_policies($h);
    is($counts->(), '0: ' . ($all - 1) . ', 3: 1',
       'sweep: the stepping thread is SCHED_BATCH, no other');
    is(join(',', map { $during->{$_} } grep { m{^(\d+)/\1$} } keys %$during),
       '0', "sweep: the worker's main thread is not");

    close $to;
    waitpid $holder, 0;

    ok($until->(sub { $swept->() > $before }), 'sweep: the sweep ends');
    is($counts->(), "0: $all", 'sweep: every thread SCHED_OTHER after');
    unlike(error_log_text($h), qr/store writer's thread cannot/, 'sweep: no failure logged');

    stop_checked($h, 'the sweep as SCHED_BATCH', 1);
}

done_testing();
