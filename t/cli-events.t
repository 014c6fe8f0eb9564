# loyaltyctl import rules, apply, get rules, get ledger, get referrals:
# the whole journey from the domain, idempotent retries, refunds,
# forward-only stages, bad and oversized events, unknown members and SKUs,
# events out of time order, and balances that equal their ledgers after
# random batches.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Open3 qw(open3);
use JSON::PP ();
use List::Util qw(sum0);
use Symbol qw(gensym);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $EXAMPLES = "$ROOT/schema/examples";
my $json = JSON::PP->new->canonical;


# helpers

my $nfile = 0;

# (exit, stdout, stderr) of apply on the text, written to a file
sub apply_text {
    my ($tmp, $dir, $text) = @_;
    my $file = "$tmp/events-" . $nfile++ . '.jsonl';
    write_file($file, $text);
    return loyaltyctl('-s', $dir, 'apply', $file);
}

sub events { join '', map { $json->encode($_) . "\n" } @_ }

sub get_json {
    my ($dir, @what) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', @what);
    return $rc ? "exit $rc: $err" : $json->decode($out);
}

sub member { get_json($_[0], 'member', $_[1]) }

sub ledger_sum {
    my ($dir, $id) = @_;
    my $l = get_json($dir, 'ledger', $id);
    return ref $l ? sum0(map { $_->{delta} } @{$l->{entries}}) : $l;
}

sub shop {
    my ($tmp, $dir) = new_store(qw(tiers members));
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'codes',
                                      "$EXAMPLES/codes.jsonl", '--hosts',
                                      'mall.example.cn');
    die "codes: $err" if $rc;
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'rules',
                                   "$EXAMPLES/rules.json");
    die "rules: $err" if $rc;
    return ($tmp, $dir);
}

my $T = '2026-11-21T10:00:00+08:00';


# import rules, get rules

{
    my ($tmp, $dir) = new_store(qw(tiers));

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'rules');
    is("$rc|$out|$err", "1||loyaltyctl: the store has no rules\n",
       'get rules: none yet');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'rules',
                                   "$EXAMPLES/rules.json");
    is("$rc|$out|$err", "0|imported rules\n|", 'import rules');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'get', 'rules');
    my $doc = $json->decode(slurp("$EXAMPLES/rules.json"));
    is($rc, 0, 'get rules');
    is_deeply($json->decode($out), $doc, 'get rules: the document');
    like($out, qr/\A\{"description":"[^\n]*\}\n\z/,
         'one line, keys sorted');

    my $good = $out;
    my @bad = (
        ['{"version":1', qr/: bad JSON: .* at line 1 column \d+; nothing/],
        ['[]', qr/: expected a JSON object; nothing imported/],
        [$json->encode({%$doc, signup_tier => 'gold'}),
         qr/: signup_tier: unknown tier "gold"; nothing imported/],
        [$json->encode({%$doc, upgrades => [{tier => 'ka', spend => 5},
                                            {tier => 'vip', spend => 5}]}),
         qr/: upgrades\[1\]: "spend" must be above/],
        [$json->encode({%$doc, version => 2}), qr/"version" must be 1/],
        [$json->encode({%$doc, colour => 1}), qr/unknown field "colour"/],
        [$json->encode({%$doc, lifecycle => {at_risk => 9, dormant => 9,
                                             lost => 10}}),
         qr/lifecycle: at_risk < dormant < lost days must hold/],
        ['{"version":1,"version":1}', qr/bad JSON: duplicate object key/],
    );
    for my $case (@bad) {
        write_file("$tmp/bad.json", $case->[0]);
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'rules',
                                       "$tmp/bad.json");
        is($rc, 1, "import rules rejects " . substr($case->[0], 0, 40));
        like($err, $case->[1], '... saying why');
    }
    (undef, $out) = loyaltyctl('-s', $dir, 'get', 'rules');
    is($out, $good, 'rejected rules leave the old ones');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'rules',
                                   "$tmp/missing.json");
    is($rc, 1, 'import rules: a missing file');
    ($rc) = loyaltyctl('-s', $dir, 'import', 'rules');
    is($rc, 2, 'import rules without a file: usage');
}


# the whole journey: a visitor clicks li.member's share code, signs up,
# buys a 128 pack, then 100 packs; li.member was referred by wang.partner

my ($jtmp, $J) = shop();
my $before_li = member($J, 'li.member');
my $before_wang = member($J, 'wang.partner');

my $journey = events(
    {type => 'signup', member => 'mei', at => $T, ref_code => 'LI-VIP-tea'},
    {type => 'order', member => 'mei', order_id => 'SO-1', amount => 12800,
     items => [{sku => 'nappies-128', qty => 1}],
     at => '2026-11-21T11:00:00+08:00'},
    {type => 'order', member => 'mei', order_id => 'SO-2', amount => 1280000,
     items => [{sku => 'nappies-128', qty => 100}],
     at => '2026-11-25T09:00:00+08:00'},
);

{
    my ($rc, $out, $err) = apply_text($jtmp, $J, '');
    is("$rc|$out", qq(0|{"events":0,"applied":0,"duplicates":0}\n),
       'apply: an empty file');

    my @lines = split /\n/, $journey;

    ($rc, $out, $err) = apply_text($jtmp, $J, "$lines[0]\n");
    is("$rc|$out|$err", qq(0|{"events":1,"applied":1,"duplicates":0}\n|),
       'the visitor signs up by the share code');
    my $mei = member($J, 'mei');
    is($mei->{stage}, 'fan', 'mei: fan');
    is($mei->{referrer}, 'li.member', 'mei: referred by li.member for life');
    is($mei->{tier}, 'basic', 'mei: the signup tier');
    is($mei->{joined_at}, '2026-11-21T02:00:00Z', 'mei: joined_at');

    ($rc, $out) = apply_text($jtmp, $J, "$lines[1]\n");
    is("$rc|$out", qq(0|{"events":1,"applied":1,"duplicates":0}\n),
       'mei buys a 128 pack');
    $mei = member($J, 'mei');
    is($mei->{stage}, 'member', 'mei: member by the membership SKU');
    is($mei->{tier}, 'vip', 'mei: the member tier');
    is("$mei->{orders} $mei->{spend} $mei->{points}", '1 12800 128',
       'mei: 1 order, 128.00, 128 points');

    ($rc, $out) = apply_text($jtmp, $J, "$lines[2]\n");
    is($rc, 0, 'mei buys 100 packs');
    $mei = member($J, 'mei');
    is($mei->{stage}, 'partner', 'mei: partner');
    is($mei->{tier}, 'partner', 'mei: the partner tier');
    is("$mei->{orders} $mei->{spend} $mei->{points}", '2 1292800 12928',
       'mei: 2 orders, points for both');
    is($mei->{first_order_at}, '2026-11-21T03:00:00Z', 'first_order_at');
    is($mei->{last_order_at}, '2026-11-25T01:00:00Z', 'last_order_at');

    my $li = member($J, 'li.member');
    is($li->{points}, $before_li->{points} + 500, 'li.member: +500, level 1');
    my $wang = member($J, 'wang.partner');
    is($wang->{points}, $before_wang->{points} + 200,
       'wang.partner: +200, level 2');

    is_deeply(get_json($J, 'ledger', 'li.member'),
              {member => 'li.member', balance => $li->{points},
               entries => [{delta => 2622, reason => 'adjust',
                            at => get_json($J, 'ledger', 'li.member')
                                  ->{entries}[0]{at}},
                           {delta => 500, reason => 'referral_l1',
                            event => 'SO-1', at => '2026-11-21T03:00:00Z'}]},
              "li.member's ledger: the import's balance, then level 1");
    is_deeply(get_json($J, 'ledger', 'wang.partner')->{entries}[-1],
              {delta => 200, reason => 'referral_l2', event => 'SO-1',
               at => '2026-11-21T03:00:00Z'},
              "wang.partner's ledger ends with level 2");
    is_deeply(get_json($J, 'ledger', 'mei'),
              {member => 'mei', balance => 12928,
               entries => [{delta => 128, reason => 'order', event => 'SO-1',
                            at => '2026-11-21T03:00:00Z'},
                           {delta => 12800, reason => 'order',
                            event => 'SO-2', at => '2026-11-25T01:00:00Z'}]},
              "mei's ledger");
    is_deeply(get_json($J, 'ledger', 'mei', '--limit', '1')->{entries},
              [{delta => 12800, reason => 'order', event => 'SO-2',
                at => '2026-11-25T01:00:00Z'}], 'get ledger --limit 1');

    is_deeply(get_json($J, 'referrals', 'li.member'),
              {member => 'li.member',
               level1 => [{id => 'chen.customer', stage => 'customer'},
                          {id => 'mei', stage => 'partner'}],
               level2 => []}, "li.member's downline: mei, a partner");
    is_deeply(get_json($J, 'referrals', 'wang.partner'),
              {member => 'wang.partner',
               level1 => [{id => 'li.member', stage => 'member'},
                          {id => 'zhou.fan', stage => 'fan'}],
               level2 => [{id => 'chen.customer', stage => 'customer',
                           via => 'li.member'},
                          {id => 'mei', stage => 'partner',
                           via => 'li.member'}]},
              "wang.partner's downline: mei at level 2, via li.member");

    for my $id (qw(mei li.member wang.partner)) {
        is(ledger_sum($J, $id), member($J, $id)->{points},
           "$id: balance == sum of the ledger");
    }

    # retried, whole: nothing changes
    my $snap = join '', map { loyaltyctl('-s', $J, 'get', 'member', $_) }
                            qw(mei li.member wang.partner);
    ($rc, $out) = apply_text($jtmp, $J, $journey);
    is("$rc|$out", qq(0|{"events":3,"applied":0,"duplicates":3}\n),
       'the journey again: 3 duplicates');
    is(join('', map { loyaltyctl('-s', $J, 'get', 'member', $_) }
                    qw(mei li.member wang.partner)),
       $snap, 'a retry changes no one');
    is(scalar @{get_json($J, 'ledger', 'mei')->{entries}}, 2,
       'and writes no ledger entry');

    # as a JSON array, from stdin
    my $err_fh = gensym;
    my $pid = open3(my $in, my $o, $err_fh, $CTL, '-s', $J, 'apply', '-');
    print $in '[' . join(',', @lines) . ']';
    close $in;
    $out = do { local $/; <$o> };
    waitpid $pid, 0;
    is(($? >> 8) . "|$out", qq(0|{"events":3,"applied":0,"duplicates":3}\n),
       'a JSON array on stdin');
}


# refunds

{
    my ($rc, $out, $err) = apply_text($jtmp, $J, events(
        {type => 'refund', refund_id => 'RF-1', order_id => 'SO-1',
         amount => 6400}));
    is("$rc|$out", qq(0|{"events":1,"applied":1,"duplicates":0}\n),
       'half of SO-1 refunded');
    my $mei = member($J, 'mei');
    is("$mei->{spend} $mei->{points}", '1286400 12864',
       'mei: spend and points less half of SO-1');
    is("$mei->{stage} $mei->{tier}", 'partner partner',
       'stage and tier stay');
    is(member($J, 'li.member')->{points}, $before_li->{points} + 250,
       'li.member: half the level-1 points back');
    is(member($J, 'wang.partner')->{points}, $before_wang->{points} + 100,
       'wang.partner: half the level-2 points back');

    ($rc, $out, $err) = apply_text($jtmp, $J, events(
        {type => 'refund', refund_id => 'RF-2', order_id => 'SO-1',
         amount => 6401},
        {type => 'refund', refund_id => 'RF-3', order_id => 'SO-404',
         amount => 1},
        {type => 'refund', refund_id => 'RF-4', order_id => 'SO-2',
         amount => 0}));
    is($rc, 1, 'bad refunds: exit 1');
    is($out, '{"events":3,"errors":['
             . '{"index":0,"error":"refund of 6401 exceeds the 6400 left to '
             . 'refund of order \"SO-1\""},'
             . '{"index":1,"error":"unknown order \"SO-404\""},'
             . '{"index":2,"error":"\"amount\" must be between 1 and '
             . '1000000000000"}]}' . "\n", 'each bad refund, by index');
    like($err, qr/: 3 of 3 events are invalid; nothing applied\n\z/,
         'stderr sums it up');

    ($rc, $out) = apply_text($jtmp, $J, events(
        {type => 'refund', refund_id => 'RF-2', order_id => 'SO-1',
         amount => 6400, at => '2026-11-30T00:00:00Z'}));
    is($rc, 0, 'the rest of SO-1');
    is(member($J, 'li.member')->{points}, $before_li->{points},
       'li.member: all level-1 points back');
    is(member($J, 'mei')->{points}, 12800, 'mei: SO-2 points only');
    is_deeply(get_json($J, 'ledger', 'mei')->{entries}[-1],
              {delta => -64, reason => 'refund', event => 'RF-2',
               at => '2026-11-30T00:00:00Z'}, 'the refund in the ledger');
    for my $id (qw(mei li.member wang.partner)) {
        is(ledger_sum($J, $id), member($J, $id)->{points},
           "$id: balance == sum of the ledger after refunds");
    }
}


# bad events: nothing is applied, every one is named

{
    my $snap = `mdb_dump -a '$J'`;
    my $big = 'x' x 100000;
    my ($rc, $out, $err) = apply_text($jtmp, $J,
        events({type => 'follow', member => 'new.fan'})
        . "{\"type\":\"order\"\n"
        . events({type => 'order', member => 'nobody', order_id => 'X1',
                  amount => 1, at => $T},
                 {type => 'order', member => 'mei', order_id => 'X2',
                  amount => '100', at => $T},
                 {type => 'order', member => 'mei', order_id => 'X3',
                  amount => 1.5, at => $T},
                 {type => 'order', member => 'mei', order_id => 'X4',
                  amount => -1, at => $T},
                 {type => 'order', member => 'mei', order_id => $big,
                  amount => 1, at => $T},
                 {type => 'action', member => 'mei', kind => 'share',
                  id => 'A1'},
                 {type => 'order', member => 'mei', order_id => 'X5',
                  amount => 1, at => $T, items => [{sku => 'a', qty => 0}]},
                 {type => 'visit', member => 'mei'},
                 [1, 2],
                 {type => 'order', member => 'mei', order_id => 'X6',
                  amount => 1, at => '2026-11-21'}));
    is($rc, 1, 'bad events: exit 1');
    my $res = $json->decode($out);
    is($res->{events}, 12, '12 events');
    is(join(',', map { $_->{index} } @{$res->{errors}}),
       '1,2,3,4,5,6,7,8,9,10,11', 'every bad one, the good one not');
    like($res->{errors}[0]{error}, qr/^bad JSON: /, 'bad JSON');
    is($res->{errors}[1]{error}, 'unknown member "nobody"', 'unknown member');
    is($res->{errors}[2]{error}, '"amount" must be an integer', 'a string');
    is($res->{errors}[3]{error}, '"amount" must be an integer', 'a fraction');
    like($res->{errors}[4]{error}, qr/"amount" must be between 0/,
         'a negative amount');
    like($res->{errors}[5]{error}, qr/"order_id" must be 1-64 characters/,
         'a 100 KB id');
    is($res->{errors}[6]{error}, '"at" is required', 'an action needs at');
    like($res->{errors}[7]{error}, qr/^items\[0\]: "qty" must be between 1/,
         'a zero quantity');
    like($res->{errors}[8]{error}, qr/^"type" must be one of /,
         'an unknown type');
    is($res->{errors}[9]{error}, 'expected a JSON object', 'an array');
    like($res->{errors}[10]{error}, qr/"at" must be an RFC 3339/, 'a date');
    is(`mdb_dump -a '$J'`, $snap, 'the store is unchanged, byte for byte');

    ($rc, $out, $err) = apply_text($jtmp, $J, "[{\"type\":\"follow\"");
    is($rc, 1, 'a broken array: exit 1');
    like($out, qr/\A\{"events":0,"errors":\[\{"error":"bad JSON: /,
         'an error without an index');
}


# unknown SKUs, out of time order, forward-only stages

{
    my ($rc, $out) = apply_text($jtmp, $J, events(
        {type => 'order', member => 'zhou.fan', order_id => 'Z2',
         amount => 300, items => [{sku => 'never-heard-of'}],
         at => '2026-12-10T00:00:00Z'},
        {type => 'order', member => 'zhou.fan', order_id => 'Z1',
         amount => 200, items => [{sku => 'nappies-128', qty => 99}],
         at => '2026-12-01T00:00:00Z'}));
    is($rc, 0, 'unknown SKUs are no error');
    my $z = member($J, 'zhou.fan');
    is("$z->{stage} $z->{tier}", 'member vip',
       '99 packs: member by the SKU, not partner');
    is("$z->{first_order_at} $z->{last_order_at}",
       '2026-12-01T00:00:00Z 2026-12-10T00:00:00Z',
       'out of time order: first the earliest, last the latest');
    is(member($J, 'wang.partner')->{points}, $before_wang->{points} + 500,
       "zhou.fan's first order: level 1 for wang.partner (SO-1's level 2 "
       . 'was all refunded)');

    ($rc, $out) = apply_text($jtmp, $J, events(
        {type => 'follow', member => 'zhou.fan'},
        {type => 'signup', member => 'zhou.fan', ref_code => 'CHEN_SOFA'},
        {type => 'refund', refund_id => 'ZR', order_id => 'Z1',
         amount => 200}));
    is($rc, 0, 'a follow, a signup by another code, a refund');
    $z = member($J, 'zhou.fan');
    is("$z->{stage} $z->{tier} $z->{referrer}",
       'member vip wang.partner',
       'stages, tiers and referrers do not move back');
}


# random batches: every balance is its ledger's sum

{
    my ($tmp, $dir) = shop();
    srand(5);
    my @ids = (qw(lin.fan li.member wang.partner zhao.member), map { "p$_" }
               1 .. 8);
    my @orders;
    for my $batch (1 .. 15) {
        my @ev;
        for my $i (1 .. 40) {
            my $id = $ids[rand @ids];
            my $r = rand;
            if ($r < 0.2) {
                push @ev, {type => 'signup', member => $id,
                           ref_code => (qw(WANG-NAPPIES li-vip-tea K7XQ4MZP2H
                                           CHEN_SOFA))[rand 4]};
            } elsif ($r < 0.6) {
                my $o = "o$batch-$i";
                push @ev, {type => 'order', member => $id, order_id => $o,
                           amount => int(rand 200000),
                           items => [{sku => 'nappies-128',
                                      qty => 1 + int(rand 120)}],
                           at => sprintf('2026-10-%02dT12:00:00Z',
                                         1 + int(rand 30))};
                push @orders, $o;
            } elsif ($r < 0.8 && @orders) {
                push @ev, {type => 'refund', refund_id => "r$batch-$i",
                           order_id => $orders[rand @orders],
                           amount => 1 + int(rand 3000)};
            } else {
                push @ev, {type => 'action', member => $id,
                           kind => (qw(share invite group_buy assist
                                       review))[rand 5],
                           id => "a$batch-$i",
                           at => '2026-10-15T00:00:00Z'};
            }
        }
        # drop what the store refuses, as a shop fixing its batch would
        for (1 .. 40) {
            my ($rc, $out) = apply_text($tmp, $dir, events(@ev));
            last if $rc == 0;
            my %bad = map { $_->{index} => 1 }
                      @{$json->decode($out)->{errors}};
            @ev = @ev[grep { !$bad{$_} } 0 .. $#ev];
        }
    }
    my @wrong = grep {
        my $m = member($dir, $_);
        ref $m && ledger_sum($dir, $_) != $m->{points}
    } @ids;
    is("@wrong", '', 'after random batches every balance equals its ledger');
    my $entries = sum0(map { my $l = get_json($dir, 'ledger', $_);
                             ref $l ? scalar @{$l->{entries}} : 0 } @ids);
    ok($entries > 100, "$entries ledger entries were written");
}


# usage and exit codes

{
    my ($rc, $out, $err) = loyaltyctl('apply', '--help');
    is($rc, 0, 'apply --help');
    like($out, qr/\Ausage: loyaltyctl -s DIR apply FILE\n/, 'its usage');
    ($rc) = loyaltyctl('-s', $J, 'apply');
    is($rc, 2, 'apply without a file: usage');
    ($rc) = loyaltyctl('-s', $J, 'apply', 'a', 'b');
    is($rc, 2, 'apply with two files: usage');
    ($rc, $out, $err) = loyaltyctl('-s', $J, 'apply', "$jtmp/none.jsonl");
    is($rc, 1, 'apply: a missing file');
    ($rc, $out, $err) = loyaltyctl('-s', "$jtmp/nostore", 'apply',
                                   "$EXAMPLES/events.jsonl");
    is($rc, 3, 'apply: no store');

    ($rc, $out, $err) = loyaltyctl('-s', $J, 'get', 'ledger', 'ghost');
    is("$rc|$err", "1|loyaltyctl: no member \"ghost\"\n", 'no such ledger');
    ($rc, $out, $err) = loyaltyctl('-s', $J, 'get', 'referrals', 'a/b');
    is($rc, 1, 'get referrals of a bad id');
    ($rc) = loyaltyctl('-s', $J, 'get', 'ledger', 'mei', '--limit', '0');
    is($rc, 2, '--limit 0: usage');
    ($rc) = loyaltyctl('-s', $J, 'get', 'ledger');
    is($rc, 2, 'get ledger without a member: usage');
    ($rc) = loyaltyctl('-s', $J, 'get', 'rules', 'x');
    is($rc, 2, 'get rules takes nothing more');

    ($rc, $out, $err) = loyaltyctl('-s', $J, 'stat');
    like($out, qr/^db ledger\s+\d+\ndb events\s+\d+\ndb referrals\s+\d+$/m,
         'stat counts the new databases');
}


# the examples apply, and the module's view agrees

{
    my ($tmp, $dir) = shop();
    my ($rc, $out) = loyaltyctl('-s', $dir, 'apply', "$EXAMPLES/events.jsonl");
    is("$rc|$out", qq(0|{"events":9,"applied":9,"duplicates":0}\n),
       'examples/events.jsonl applies to the example shop');
    is(member($dir, 'zhang.wei')->{referrer}, 'xiao.ming',
       'a named referrer is kept over a later code');
    my ($v) = loyaltyctl('-s', $dir, 'verify');
    is($v, 0, 'verify: the store is consistent after events');
}


# issue 18, section 6: times out of 2000..2100, ids reused with other
# data, referrer loops in an import, points at the ends of int64, and a
# deleted member who leaves nothing behind

{
    my ($tmp, $dir) = shop();
    my $WINDOW = '"at" must be between 2000-01-01T00:00:00Z and '
                 . '2100-12-31T23:59:59Z';
    my $snap = `mdb_dump -a '$dir'`;
    my ($rc, $out, $err) = apply_text($tmp, $dir, events(
        {type => 'signup', member => 'y0', at => '0000-01-01T00:00:00Z'},
        {type => 'order', member => 'li.member', order_id => 'Y-1',
         amount => 1, at => '9999-12-31T23:59:59Z'},
        {type => 'refund', refund_id => 'Y-R', order_id => 'Y-1', amount => 1,
         at => '1999-12-31T23:59:59Z'}));
    my $W = $json->encode($WINDOW);
    is("$rc|$out", qq(1|{"events":3,"errors":[{"index":0,"error":$W},)
       . qq({"index":1,"error":$W},{"index":2,"error":$W}]}\n),
       'times of year 0, 9999 and 1999: every line refused, naming "at"');
    is(`mdb_dump -a '$dir'`, $snap, 'nothing written');

    my %o = (type => 'order', member => 'li.member', order_id => 'C-1',
             amount => 10000, at => $T);
    my %r = (type => 'refund', refund_id => 'CR-1', order_id => 'C-1',
             amount => 100);
    ($rc, $out) = apply_text($tmp, $dir, events(\%o, \%r));
    is("$rc|$out", qq(0|{"events":2,"applied":2,"duplicates":0}\n),
       'an order and a refund');
    ($rc, $out) = apply_text($tmp, $dir, events(\%o, \%r));
    is("$rc|$out", qq(0|{"events":2,"applied":0,"duplicates":2}\n),
       'replayed exactly: duplicates');
    $snap = `mdb_dump -a '$dir'`;
    ($rc, $out, $err) = apply_text($tmp, $dir, events(
        {%o, member => 'wang.partner'}, {%o, amount => 9999},
        {%r, amount => 101}, {%r, order_id => 'C-2'}));
    is($rc, 1, 'conflicts: exit 1');
    is($out, '{"events":4,"errors":['
       . '{"index":0,"error":"order_id \"C-1\" was applied with member '
       . '\"li.member\", not \"wang.partner\"","conflict":{"field":"member",'
       . '"stored":"li.member","given":"wang.partner"}},'
       . '{"index":1,"error":"order_id \"C-1\" was applied with amount '
       . '10000, not 9999","conflict":{"field":"amount","stored":10000,'
       . '"given":9999}},'
       . '{"index":2,"error":"refund_id \"CR-1\" was applied with amount '
       . '100, not 101","conflict":{"field":"amount","stored":100,'
       . '"given":101}},'
       . '{"index":3,"error":"refund_id \"CR-1\" was applied with order_id '
       . '\"C-1\", not \"C-2\"","conflict":{"field":"order_id",'
       . '"stored":"C-1","given":"C-2"}}]}' . "\n",
       'each conflict: the field, stored and given');
    like($err, qr/: 4 of 4 events conflict with events applied before; nothing applied\n\z/,
         'stderr sums it up');
    is(`mdb_dump -a '$dir'`, $snap, 'nothing written');

    # referrer loops in an import, of two, three, and across files
    write_file("$tmp/loop2.jsonl",
               qq({"id":"lp.a","tier":"basic","stage":"fan","referrer":"lp.b"}\n)
               . qq({"id":"lp.b","tier":"basic","stage":"fan","referrer":"lp.a"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/loop2.jsonl");
    is("$rc|$err", qq(1|loyaltyctl: $tmp/loop2.jsonl line 2: referrer "lp.a" )
       . qq(would make a loop: lp.b -> lp.a -> lp.b; nothing imported\n),
       'import: a refers b, b refers a');
    write_file("$tmp/loop3.jsonl",
               qq({"id":"lp.a","tier":"basic","stage":"fan","referrer":"lp.b"}\n)
               . qq({"id":"lp.b","tier":"basic","stage":"fan","referrer":"lp.c"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/loop3.jsonl");
    is("$rc|$out", "0|imported 2 members\n", 'a refers b, b refers c');
    write_file("$tmp/loop3b.jsonl",
               qq({"id":"lp.c","tier":"basic","stage":"fan","referrer":"lp.a"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/loop3b.jsonl");
    is("$rc|$err", qq(1|loyaltyctl: $tmp/loop3b.jsonl line 1: referrer "lp.a" )
       . qq(would make a loop: lp.c -> lp.a -> lp.b -> lp.c; nothing imported\n),
       'a later import: c refers a, a loop of three');
    write_file("$tmp/loop3b.jsonl",
               qq({"id":"lp.c","tier":"basic","stage":"fan"}\n));
    ($rc, $out) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/loop3b.jsonl");
    is("$rc|$out", "0|imported 1 members\n", 'c without a referrer');

    # points: bounded on import, checked in events
    write_file("$tmp/pts.jsonl",
               qq({"id":"rich","tier":"basic","stage":"fan","points":-9223372036854775808}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/pts.jsonl");
    like("$rc|$err", qr/^1\|.* line 1: "points" must be between -1000000000000 and 1000000000000; nothing imported\n\z/,
         'import: points INT64_MIN refused');
    write_file("$tmp/pts.jsonl",
               qq({"id":"rich","tier":"basic","stage":"fan","points":1000000000000}\n));
    ($rc, $out) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/pts.jsonl");
    is("$rc|$out", "0|imported 1 members\n", 'the highest balance');
    ($rc, $out) = apply_text($tmp, $dir, events(
        {type => 'action', member => 'rich', kind => 'share', id => 'P-1', at => $T}));
    is("$rc|$out", '1|{"events":1,"errors":[{"index":0,"error":"the points of '
       . '\"rich\" would leave -1000000000000..1000000000000"}]}' . "\n",
       'an action past it: refused');

    # delete: codes, clicks, ledger, downline links and referrals go
    ($rc, $out) = apply_text($tmp, $dir, events(
        {type => 'signup', member => 'kid', ref_code => 'LI-VIP-TEA', at => $T},
        {type => 'order', member => 'kid', order_id => 'K-1', amount => 12800,
         at => $T}));
    is($rc, 0, 'kid signs up with li.member\'s code and orders');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'delete', 'member', 'li.member');
    is("$rc|$out|$err", "0|deleted member li.member\n|", 'delete member li.member');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       'verify: clean after the delete');
    ($rc) = loyaltyctl('-s', $dir, 'get', 'code', 'LI-VIP-TEA');
    is($rc, 1, 'li.member\'s code is gone');
    is(member($dir, 'kid')->{referrer}, undef, 'kid has no referrer now');
    is(join(' ', grep { /^(li\.member|kid)$/ } map { $_->{id} }
                 map { @{get_json($dir, 'referrals', 'wang.partner')->{$_}} }
                 qw(level1 level2)), '',
       'wang.partner\'s downline lists neither li.member nor kid');
    write_file("$tmp/li.jsonl", qq({"id":"li.member","tier":"basic","stage":"fan"}\n));
    loyaltyctl('-s', $dir, 'import', 'members', "$tmp/li.jsonl");
    is_deeply(get_json($dir, 'ledger', 'li.member'),
              {member => 'li.member', balance => 0, entries => []},
              'li.member made again: no ledger inherited');
    is_deeply(get_json($dir, 'referrals', 'li.member'),
              {member => 'li.member', level1 => [], level2 => []},
              'nor a downline');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out", "0|", 'verify: still clean');
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'delete', 'member', 'nobody');
    is("$rc|$err", qq(1|loyaltyctl: no member "nobody"\n), 'delete of no one: exit 1');
    ($rc) = loyaltyctl('-s', $dir, 'delete', 'nobody');
    is($rc, 2, 'delete without "member": usage');
}


done_testing();
