# The Lua event hook (loyalty_lua_file, { event = function(ctx) ... }),
# through a real nginx: lua/examples/referral_points.lua end to end
# (actions shared up the referral chain, with their ledger entries);
# then t/lua-events/hooks.lua, whose answer depends on the event's id:
# order and action points replaced, first-order referral points replaced
# (and taken back by a refund), referrers' shares of actions, stages and
# tiers that only go up, loyalty.store reading the write transaction, the
# context a hook is given, bad answers, errors, runaway and memory-hungry
# hooks (the defaults apply, logged once per place, the batch still 200),
# retries and refused batches, loyaltyctl apply (which runs no hooks),
# GET /admin/lua's counts; and two workers hooking concurrently.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::INET;
use JSON::PP ();
use List::Util qw(sum0);
use POSIX ();
use Time::Local qw(timegm);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $HOOKS = "$ROOT/t/lua-events/hooks.lua";
my $REFERRAL = "$ROOT/lua/examples/referral_points.lua";
my $JSON = JSON::PP->new->canonical;

my $TOKEN = $ADMIN_TOKEN;
my $TOKDIR = test_dir();
write_admin_tokens("$TOKDIR/tokens");

my $CONFIG = <<"END";
location /admin/ {
    loyalty_admin;
    loyalty_admin_token $TOKDIR/tokens;
    add_header X-Pid \$pid always;
}
END

sub http_with_lua {
    my ($file) = @_;
    return "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
           . "loyalty_lua_file $file;\n";
}

my $TIERS = "[tiers]\n" . slurp("$EXAMPLES/tiers.jsonl");
my $RULES = "[rules]\n" . slurp("$EXAMPLES/rules.json");

my $AT = '2026-11-21T10:00:00Z';
my $AT_EPOCH = timegm(0, 0, 10, 21, 10, 2026);


# helpers

# (status, body, headers)
sub api {
    my ($h, $method, $path, $body) = @_;
    my ($status, $headers, $text) = eval {
        http_request($h, $method, $path,
                     { Authorization => "Bearer $TOKEN" }, $body);
    };
    return ("error: $@", '', {}) unless defined $headers;
    return ($status // 'none', $text, $headers);
}

# "STATUS BODY" of a batch; events are hashes, or raw JSON text
sub post {
    my ($h, @events) = @_;
    my $body = '[' . join(',', map { ref $_ ? $JSON->encode($_) : $_ }
                                   @events) . ']';
    my ($s, $b) = api($h, 'POST', '/admin/events', $body);
    return "$s $b";
}

sub batch_ok {
    my ($n, $applied, $dup) = @_;
    return qq(200 {"events":$n,"applied":$applied,"duplicates":$dup}\n);
}

sub action {
    my ($member, $kind, $id) = @_;
    return { type => 'action', member => $member, kind => $kind, id => $id,
             at => $AT };
}

sub order {
    my ($member, $id, $amount, @items) = @_;
    return { type => 'order', member => $member, order_id => $id,
             amount => $amount, at => $AT, (@items ? (items => \@items) : ()) };
}

sub ctl_json {
    my ($h, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, @args);
    return $rc ? "exit $rc: $err" : $JSON->decode($out);
}

sub member { ctl_json($_[0], 'get', 'member', $_[1]) }

sub points {
    my $m = member(@_);
    return ref $m ? $m->{points} // 0 : $m;
}

# the member's ledger through the API, without "adjust" entries (written
# at import): "delta reason event" each
sub ledger {
    my ($h, $id) = @_;
    my ($s, $b) = api($h, 'GET', "/admin/members/$id/ledger");
    return "$s $b" if $s ne '200';
    my $l = $JSON->decode($b);
    return [ map { "$_->{delta} $_->{reason} $_->{event}" }
             grep { $_->{reason} ne 'adjust' } @{$l->{entries}} ];
}

sub balanced {
    my ($h, @ids) = @_;
    my @bad;
    for my $id (@ids) {
        my $l = ctl_json($h, 'get', 'ledger', $id);
        my $sum = ref $l ? sum0(map { $_->{delta} } @{$l->{entries}}) : $l;
        my $p = points($h, $id);
        push @bad, "$id: $p points, ledger $sum" if $sum ne $p;
    }
    ok(!@bad, 'balances equal their ledgers: ' . join(' ', @ids))
        or diag(join "\n", @bad);
}

# GET /admin/lua, decoded
sub lua_report {
    my ($h) = @_;
    my ($s, $b) = api($h, 'GET', '/admin/lua');
    return $s eq '200' ? $JSON->decode($b) : { status => $s, body => $b };
}

sub event_counts {
    my $c = lua_report($_[0])->{hooks}{event} // {};
    return join ' ', map { $c->{$_} // '-' } qw(calls errors budget memory);
}

# the error lines of failed event hook calls saying msg (text, or a
# regex)
sub failures {
    my ($h, $msg) = @_;
    my $re = ref $msg ? $msg : qr/\Q$msg\E/;
    # an answer refused is told at the hook's line and the field
    my $at = qr/(?:\S+\.lua:\d+ \((?:field \w+|answer)\): )?/;
    return scalar grep { /\[error\] .*loyalty_lua_file "[^"]*": the event hook failed: $at$re/ }
                  split /\n/, error_log_text($h);
}

# the script's own errors: its place, then the message
my $PLACE = qr/\S*hooks\.lua:\d+: /;

sub no_trouble {
    my ($h, $name) = @_;
    my @bad = grep { /exited on signal|\[alert\]|\[emerg\]|\[crit\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$name: no crash, alert, crit or emerg") or diag(join "\n", @bad);
    is(stop_nginx($h), 'QUIT', "$name: nginx stops gracefully");
}


# lua/examples/referral_points.lua: share 5, invite 20, group_buy 50,
# assist 30, review 10; 20% to the referrer, 10% to theirs, floored.
# chen.customer was referred by li.member, who was by wang.partner.

{
    my $h = start_nginx(http_config => http_with_lua($REFERRAL),
                        config => $CONFIG,
                        store => $TIERS . "[members]\n"
                                 . slurp("$EXAMPLES/members.jsonl") . $RULES);

    my %before = map { $_ => points($h, $_) }
                 qw(chen.customer li.member wang.partner zhou.fan lin.fan);

    my @batch = (
        action('chen.customer', 'group_buy', 'rp-gb1'),
        action('chen.customer', 'share', 'rp-sh1'),
        action('zhou.fan', 'invite', 'rp-inv1'),
        action('wang.partner', 'assist', 'rp-as1'),
        order('chen.customer', 'rp-o1', 29800),
        order('lin.fan', 'rp-o2', 12800, { sku => 'tea-gift' }),
    );
    is(post($h, @batch), batch_ok(6, 6, 0), 'referral_points: a batch');

    my %delta = map { $_ => points($h, $_) - $before{$_} } keys %before;
    is_deeply(\%delta, { 'chen.customer' => 50 + 5 + 298,
                         'li.member' => 10 + 1,
                         'wang.partner' => 5 + 4 + 30,
                         'zhou.fan' => 20,
                         'lin.fan' => 128 },
              'referral_points: the hook\'s points, 20% and 10% floored up '
              . 'the chain; orders keep the rules\' points');

    is_deeply(ledger($h, 'chen.customer'),
              ['50 action rp-gb1', '5 action rp-sh1', '298 order rp-o1'],
              'the member\'s ledger: the actions at the hook\'s points');
    is_deeply(ledger($h, 'li.member'),
              ['10 referral_l1 rp-gb1', '1 referral_l1 rp-sh1'],
              'the referrer\'s ledger: referral_l1 entries of the actions');
    is_deeply(ledger($h, 'wang.partner'),
              ['5 referral_l2 rp-gb1', '4 referral_l1 rp-inv1',
               '30 action rp-as1'],
              'the referrer\'s referrer: referral_l2, nothing for a 0 share;'
              . ' level 1 of zhou.fan; their own assist');
    is_deeply(ledger($h, 'zhou.fan'), ['20 action rp-inv1'],
              'zhou.fan: 20 for an invite');
    balanced($h, keys %before);

    is(event_counts($h), '6 0 0 0', 'GET /admin/lua: 6 event calls, no errors');

    # the same batch again: duplicates, no hook called, nothing doubled
    is(post($h, @batch), batch_ok(6, 0, 6), 'the batch again: duplicates');
    my %again = map { $_ => points($h, $_) - $before{$_} } keys %before;
    is_deeply(\%again, \%delta, 'a retry doubles nothing');
    is(event_counts($h), '6 0 0 0', 'duplicates do not call the hook');

    my $r = lua_report($h);
    is_deeply([sort keys %{$r->{hooks}}], ['event'],
              'GET /admin/lua lists the script\'s one hook');
    is($r->{file}, $REFERRAL, 'and the script');

    ok(error_log_text($h) !~ /\[error\]/, 'referral_points: no errors logged');
    no_trouble($h, 'referral_points');
}


# t/lua-events/hooks.lua: gp referred pa, who referred kid, newbie,
# newbie2, newbie3, newbie4 and bad

my $MEMBERS = <<'END';
[members]
{"id":"gp","tier":"basic","stage":"member","points":1000}
{"id":"pa","tier":"vip","stage":"member","referrer":"gp","orders":3,"spend":30000,"points":2100}
{"id":"kid","tier":"basic","stage":"customer","referrer":"pa","orders":1,"spend":1000}
{"id":"newbie","tier":"basic","stage":"fan","referrer":"pa"}
{"id":"newbie2","tier":"basic","stage":"fan","referrer":"pa"}
{"id":"newbie3","tier":"basic","stage":"fan","referrer":"pa"}
{"id":"newbie4","tier":"basic","stage":"fan","referrer":"pa","joined_at":"2026-01-01T00:00:00Z","birthday":"02-29"}
{"id":"solo","tier":"basic","stage":"fan"}
{"id":"climber","tier":"basic","stage":"customer"}
{"id":"tiered","tier":"basic","stage":"customer"}
{"id":"bad","tier":"basic","stage":"customer","referrer":"pa"}
END

{
    my $h = start_nginx(http_config => http_with_lua($HOOKS),
                        config => $CONFIG,
                        store => $TIERS . $MEMBERS . $RULES);

    # what GET /admin/lua must count, tallied as we go
    my ($calls, $errors, $budget, $memory) = (0, 0, 0, 0);

    # points replaced: orders (the rules give amount / 100) and actions
    # (share 5)
    is(post($h, order('solo', 'pts.1234.o1', 10000),
                order('solo', 'pts.-50.o2', 5000),
                order('solo', 'min.o3', 100),
                order('solo', 'max.o4', 100),
                action('solo', 'share', 'pts.0.a1'),
                action('solo', 'share', 'none.a2'),
                action('solo', 'share', 'empty.a3')),
       batch_ok(7, 7, 0), 'points: a batch');
    $calls += 7;
    is(points($h, 'solo'), 1234 - 50 + 5 + 5,
       'solo: the hook\'s points, 0, nil and {} the defaults');
    is_deeply(ledger($h, 'solo'),
              ['1234 order pts.1234.o1', '-50 order pts.-50.o2',
               '-1000000000000 order min.o3', '1000000000000 order max.o4',
               '5 action none.a2', '5 action empty.a3'],
              'solo\'s ledger: orders at the hook\'s points, +-10^12 '
              . 'allowed (the balance stays within +-10^12), no entry for 0 '
              . 'points');
    is(post($h, order('solo', 'max.o5', 100)),
       qq(422 {"error":"invalid events","errors":[{"index":0,"error":)
       . qq("the points of \\"solo\\" would leave )
       . qq(-1000000000000..1000000000000"}]}\n),
       'a hook\'s points that would take the balance past 10^12: refused');
    $calls += 1;

    # first-order referral points replaced; later orders give none
    is(post($h, order('newbie', 'ref.111.22.o1', 12800,
                      { sku => 'nappies-128', qty => 1 }),
                order('newbie', 'ref.333.44.o2', 100),
                order('newbie2', 'none.o1', 100),
                order('newbie3', 'ref.-.7.o1', 0)),
       batch_ok(4, 4, 0), 'referral points: a batch');
    $calls += 4;
    is(points($h, 'newbie'), 128 + 1, 'newbie: the rules\' order points');
    is_deeply(ledger($h, 'pa'),
              ['111 referral_l1 ref.111.22.o1', '500 referral_l1 none.o1',
               '500 referral_l1 ref.-.7.o1'],
              'pa: 111 for newbie\'s first order, not the rules\' 500; none '
              . 'for the second; the defaults where the hook gave none');
    is_deeply(ledger($h, 'gp'),
              ['22 referral_l2 ref.111.22.o1', '200 referral_l2 none.o1',
               '7 referral_l2 ref.-.7.o1'],
              'gp: 22, not 200; the defaults; referrer2_points alone');
    my $m = member($h, 'newbie');
    is("$m->{stage} $m->{tier}", 'member vip',
       'the rules still make newbie a member by the SKU');

    # a refund takes back what the hook gave
    is(post($h, { type => 'refund', refund_id => 'rf1',
                  order_id => 'ref.111.22.o1', amount => 12800 }),
       batch_ok(1, 1, 0), 'a full refund of newbie\'s first order');
    is(join(' ', map { ledger($h, $_)->[-1] } qw(newbie pa gp)),
       '-128 refund rf1 -111 refund rf1 -22 refund rf1',
       'the refund takes back the hook\'s referral points');

    # actions: the referrers' shares are the hook's to give
    is(post($h, action('kid', 'share', 'all.6.3.1.a1'),
                action('kid', 'share', 'pts.6.a2'),
                action('solo', 'share', 'all.6.3.1.a3')),
       batch_ok(3, 3, 0), 'actions with referrers\' shares');
    $calls += 3;
    is_deeply(ledger($h, 'kid'), ['6 action all.6.3.1.a1', '6 action pts.6.a2'],
              'kid: 6 a share');
    is(ledger($h, 'pa')->[-1], '3 referral_l1 all.6.3.1.a1',
       'pa: referrer_points as referral_l1, nothing for pts.6.a2');
    is(ledger($h, 'gp')->[-1], '1 referral_l2 all.6.3.1.a1',
       'gp: referrer2_points as referral_l2');
    is(points($h, 'solo'), 1194 + 6, 'a member without referrers: their '
       . 'points only');
    balanced($h, qw(solo newbie newbie2 newbie3 pa gp kid));

    # loyalty.store reads the write transaction: pa's order earlier in the
    # same batch is seen, though not committed yet
    my $pa = member($h, 'pa');
    my $kid = points($h, 'kid');
    is(post($h, order('pa', 'pts.0.peek-pre', 100),
                action('kid', 'share', 'peek.a1'),
                action('kid', 'share', 'ghost.a2')),
       batch_ok(3, 3, 0), 'loyalty.store: a batch');
    $calls += 3;
    is(points($h, 'kid') - $kid, $pa->{orders} + 1 + 11,
       'the hook read pa\'s orders with the batch\'s order counted, and '
       . 'nil for unknown members');
    is(points($h, 'pa') - $pa->{points}, $pa->{points} % 1000,
       'and pa\'s points, as the write transaction had them');

    # stages only go up
    my @stages = (['stage.member.a1', 'member'], ['stage.fan.a2', 'member'],
                  ['stage.prospect.a3', 'member'],
                  ['stage.customer.a4', 'member'],
                  ['stage.partner.a5', 'partner'],
                  ['stage.member.a6', 'partner']);
    for (@stages) {
        my ($id, $want) = @$_;
        post($h, action('climber', 'share', $id));
        $calls++;
        is(member($h, 'climber')->{stage}, $want, "stage: after $id, $want");
    }
    is(member($h, 'climber')->{tier}, 'partner',
       'a partner by the hook has the rules\' tier for partners');
    is(points($h, 'climber'), 3 * @stages,
       'every stage answer was accepted: 3 points each, not the default 5');
    is(post($h, order('climber', 'stage.customer.o1', 100)), batch_ok(1, 1, 0),
       'an order of a partner asking for customer');
    $calls++;
    is(member($h, 'climber')->{stage}, 'partner', 'orders do not move it '
       . 'back either');

    # tiers only go up, to one that exists
    my @tiers = (['tier.ka.a1', 'ka'], ['tier.vip.a2', 'ka'],
                 ['tier.gold.a3', 'ka'], ['tier.basic.a4', 'ka'],
                 ['tier.partner.a5', 'partner'], ['tier.ka.a6', 'partner']);
    for (@tiers) {
        my ($id, $want) = @$_;
        post($h, action('tiered', 'share', $id));
        $calls++;
        is(member($h, 'tiered')->{tier}, $want, "tier: after $id, $want");
    }
    is(points($h, 'tiered'), 4 * @tiers,
       'every tier answer was accepted (an unknown tier is ignored): 4 '
       . 'points each');

    # bad answers: the defaults (share 5, nothing for pa), logged once per
    # place in the script
    my @bad = qw(notable str frac huge nan strpts boss numstage badtier
                 longtier partial boom);
    my $pa_points = points($h, 'pa');
    for my $round (1, 2) {
        is(post($h, map { action('bad', 'share', "$_.r$round") } @bad),
           batch_ok(scalar @bad, scalar @bad, 0),
           "bad answers, round $round: the batch is applied");
        $calls += @bad;
        $errors += @bad;
        is(points($h, 'bad'), 5 * @bad * $round,
           "round $round: the rules' points for every event");
    }
    is(points($h, 'pa'), $pa_points,
       'no referrer points from a failed call (partial answers are not kept)');
    my %once = (
        'the event hook returned an answer that is not a table or nil' => 1,
        'the event hook returned points that is not a whole number within 10^12' => 1,
        'the event hook returned referrer_points that is not a whole number '
        . 'within 10^12' => 1,
        'the event hook returned a stage that is not one of prospect, fan, '
        . 'customer, member, partner' => 1,
        'the event hook returned a tier that is not a tier name' => 1,
    );
    for my $msg (sort keys %once) {
        is(failures($h, $msg), 1, "logged once: $msg");
    }
    is(failures($h, $PLACE), 1, 'the script\'s own error: logged once')
        or diag(error_log_text($h));
    like(error_log_text($h), qr/the event hook failed: ${PLACE}boom; it is skipped/,
         'with its place and message');
    is(event_counts($h), "$calls $errors 0 0",
       'GET /admin/lua: calls and errors counted');

    # runaway and memory-hungry hooks
    my $solo = points($h, 'solo');
    my ($s, $b) = api($h, 'POST', '/admin/events',
                      $JSON->encode([action('solo', 'share', 'loop.a1')]));
    is("$s $b", batch_ok(1, 1, 0), 'while true do end: 200, applied');
    is(points($h, 'solo') - $solo, 5, 'with the defaults');
    is(failures($h, $PLACE), 2, 'logged');
    like(error_log_text($h), qr/the event hook failed: ${PLACE}the budget of 100000 instructions is spent/,
         'saying the budget is spent');
    is(post($h, action('solo', 'share', 'pts.8.after-loop')),
       batch_ok(1, 1, 0), 'the next batch');
    is(points($h, 'solo') - $solo, 5 + 8, 'is hooked again');
    is(post($h, action('solo', 'share', 'pcallloop.a1')), batch_ok(1, 1, 0),
       'a runaway loop inside pcall');
    is(points($h, 'solo') - $solo, 5 + 8 + 5, 'cannot pcall its way on');
    $calls += 3;
    $errors += 2;
    $budget += 2;

    is(post($h, action('solo', 'share', 'hog.a1')), batch_ok(1, 1, 0),
       'a hook asking for 64 MB');
    is(points($h, 'solo') - $solo, 5 + 8 + 5 + 5, 'the defaults');
    like(error_log_text($h), qr/the event hook failed: .*not enough memory/,
         'logged: not enough memory');
    is(post($h, action('solo', 'share', 'pts.9.after-hog')), batch_ok(1, 1, 0),
       'the next batch');
    is(points($h, 'solo') - $solo, 5 + 8 + 5 + 5 + 9, 'is hooked again');
    $calls += 2;
    $errors += 1;
    $memory += 1;
    is(event_counts($h), "$calls $errors $budget $memory",
       'GET /admin/lua: budget and memory failures counted');

    # a retry calls no hook and changes nothing
    $solo = points($h, 'solo');
    is(post($h, order('solo', 'pts.1234.o1', 10000),
                action('solo', 'share', 'pts.8.after-loop')),
       batch_ok(2, 0, 2), 'a retry: duplicates');
    is(points($h, 'solo'), $solo, 'points not doubled');
    is(event_counts($h), "$calls $errors $budget $memory",
       'no hook called for duplicates');

    # a refused batch keeps nothing a hook said
    is(post($h, action('solo', 'share', 'pts.500.refused'),
                order('nobody.here', 'pts.1.o9', 100)),
       qq(422 {"error":"invalid events","errors":[{"index":1,"error":)
       . qq("unknown member \\"nobody.here\\""}]}\n),
       'a batch with an unknown member is refused');
    $calls += 1;
    is(points($h, 'solo'), $solo, 'the hooked event before it is not kept');
    is(post($h, action('solo', 'share', 'pts.500.refused')),
       batch_ok(1, 1, 0), 'alone, it applies');
    $calls += 1;
    is(points($h, 'solo') - $solo, 500, 'with the hook\'s points');

    # loyaltyctl apply runs no hooks
    my $dir = test_dir();
    write_file("$dir/ev.jsonl",
               $JSON->encode(action('solo', 'share', 'pts.99.ctl')) . "\n");
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'apply',
                                      "$dir/ev.jsonl");
    is("$rc $out$err", qq(0 {"events":1,"applied":1,"duplicates":0}\n),
       'loyaltyctl apply of a hooked id');
    is(ledger($h, 'solo')->[-1], '5 action pts.99.ctl',
       'the rules\' points: loyaltyctl runs no hook');
    is(event_counts($h), "$calls $errors $budget $memory",
       'and nginx\'s hook was not called');

    # the context: the hook raises it as its error, so the log shows it
    is(post($h, order('newbie4', 'echo.o1', 25600,
                      { sku => 'nappies-128', qty => 2 }, { sku => 'tea' }),
                order('newbie4', 'echo.o2', 999),
                action('kid', 'invite', 'echo.a1'),
                action('solo', 'review', 'echo.a2')),
       batch_ok(4, 4, 0), 'echo: a batch');
    $calls += 4;
    $errors += 4;
    my $log = error_log_text($h);
    my %ctx = map { /the event hook failed: ctx (\{.*\}); it is skipped/
                    ? do { my $c = $1; $c =~ /\bid=(echo\.\w+)/; ($1 => $c) }
                    : () } split /\n/, $log;
    my $joined = timegm(0, 0, 0, 1, 0, 2026);
    is($ctx{'echo.o1'},
       "{amount=25600 at=$AT_EPOCH first=true id=echo.o1 "
       . 'items={1={qty=2 sku=nappies-128} 2={qty=1 sku=tea}} '
       . "member={birthday=02-29 blocked=false id=newbie4 joined_at=$joined "
       . 'orders=0 points=0 rank=0 referrer=pa spend=0 stage=fan tier=basic} '
       . 'now=NOW points=256 referrer=pa referrer2=gp type=order}',
       'the context of a first order');
    like($ctx{'echo.o2'} // '',
         qr/^\{amount=999 at=$AT_EPOCH first=false id=echo.o2 items=\{\} member=\{birthday=02-29 blocked=false first_order_at=$AT_EPOCH id=newbie4 joined_at=$joined last_order_at=$AT_EPOCH orders=1 points=256 rank=1 referrer=pa spend=25600 stage=member tier=vip\} now=NOW points=9 referrer=pa referrer2=gp type=order\}$/,
         'the second order: first false, the member as the first left them');
    like($ctx{'echo.a1'} // '',
         qr/^\{at=$AT_EPOCH first=false id=echo\.a1 kind=invite member=\{blocked=false id=kid orders=1 points=\d+ rank=0 referrer=pa spend=1000 stage=customer tier=basic\} now=NOW points=20 referrer=pa referrer2=gp type=action\}$/,
         'the context of an action: kind, no amount or items');
    like($ctx{'echo.a2'} // '',
         qr/^\{at=$AT_EPOCH first=false id=echo\.a2 kind=review member=\{(?!.*referrer).*id=solo.*\} now=NOW points=10 type=action\}$/,
         'no referrers for a member without');
    is(points($h, 'newbie4'), 256 + 9, 'echoed events: the defaults');

    # an item's qty written as 3.0 is an integer to the event checks
    is(post($h, '{"type":"order","member":"newbie4","order_id":"echo.o3",'
                . qq("amount":300,"at":"$AT","items":[{"sku":"tea","qty":3.0}]})),
       batch_ok(1, 1, 0), 'an order with "qty":3.0');
    $calls += 1;
    $errors += 1;
    ($ctx{'echo.o3'}) = error_log_text($h)
        =~ /the event hook failed: ctx (\{[^\n]*id=echo\.o3[^\n]*\}); it is skipped/;
    like($ctx{'echo.o3'} // '', qr/items=\{1=\{qty=3 sku=tea\}\}/,
         'the hook sees qty 3');

    my $r = lua_report($h);
    is_deeply($r, { file => $HOOKS, budget => 100000, time => 50,
                    memory => 16777216,
                    hooks => { event => { calls => $calls, errors => $errors,
                                          budget => $budget,
                                          memory => $memory } } },
              'GET /admin/lua: the whole report')
        or diag($JSON->encode($r));

    balanced($h, qw(solo newbie newbie2 newbie3 newbie4 pa gp kid climber
                    tiered bad));
    ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, 'verify');
    is($rc, 0, 'loyaltyctl verify finds nothing wrong') or diag("$out$err");
    no_trouble($h, 'hooks.lua');
}


# two workers, four clients at once: each worker's write VM hooks its
# batches; the counts are the workers' together; each worker logs a
# failing place once

{
    my $N = 8;
    my $port2 = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp')->sockport;
    my $h = start_nginx(http_config => http_with_lua($HOOKS), workers => 2,
                        config => $CONFIG
                                  . "listen 127.0.0.1:$port2 reuseport;\n",
                        store => $TIERS . "[members]\n"
                                 . qq({"id":"top","tier":"basic","stage":"fan"}\n)
                                 . join('', map { qq({"id":"w$_","tier":"basic","stage":"fan","referrer":"top"}\n) }
                                            0 .. $N - 1)
                                 . $RULES);

    my $dir = test_dir();
    my @pids;
    for my $c (0 .. 3) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $out = '';
            for my $b (0 .. 9) {
                my $m = 'w' . (($c * 10 + $b) % $N);
                my ($s, $body, $hdr) = api({ port => $port2 }, 'POST',
                    '/admin/events', $JSON->encode([
                        action($m, 'share', "all.7.2.0.c$c-b$b"),
                        action($m, 'share', "boom.c$c-b$b")]));
                $out .= join(' ', $s, $hdr->{'x-pid'} // '-',
                             $body =~ s/\s+//gr) . "\n";
            }
            write_file("$dir/$c", $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;

    my (%pids, @bad);
    for my $c (0 .. 3) {
        for (split /\n/, eval { slurp("$dir/$c") } // '') {
            my ($s, $pid, $body) = split ' ';
            $pids{$pid}++;
            push @bad, $_ if $s ne '200'
                             || $body ne '{"events":2,"applied":2,"duplicates":0}';
        }
    }
    is(sum0(values %pids), 40, '40 batches answered');
    is(scalar(@bad), 0, 'every batch applied') or diag(join "\n", @bad[0 .. 4]);
    cmp_ok(scalar(grep { $_ ne '-' } keys %pids), '>=', 2, 'by both workers')
        or diag(join ' ', %pids);

    # each member: 5 batches of 7 + 5 (the failed call's default); their
    # referrer 2 for each of the 40
    my @wrong;
    for my $i (0 .. $N - 1) {
        my $p = points($h, "w$i");
        push @wrong, "w$i: $p" if $p ne 5 * (7 + 5);
    }
    is(scalar(@wrong), 0, 'every member\'s points: the hook\'s, from either '
       . 'worker') or diag(join "\n", @wrong);
    is(points($h, 'top'), 40 * 2, 'the referrer: 2 for each of 40 actions');
    balanced($h, 'top', map { "w$_" } 0 .. $N - 1);

    is(event_counts($h), '80 40 0 0', 'GET /admin/lua: both workers\' calls');

    my %logged;
    for (split /\n/, error_log_text($h)) {
        $logged{$1}++ if /\[error\] (\d+)#\d+: .*the event hook failed: .*boom/;
    }
    is_deeply([sort keys %logged], [sort grep { $_ ne '-' } keys %pids],
              'each worker logged the failing place');
    is(scalar(grep { $_ != 1 } values %logged), 0, 'once')
        or diag(join ' ', %logged);

    no_trouble($h, 'two workers');
}


done_testing();
