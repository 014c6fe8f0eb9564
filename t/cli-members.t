# Members' data under their control, through loyaltyctl: set member (a
# partial update: only the fields named change; types, tiers and referrer
# loops checked; bad names and values refused with the store left byte
# for byte as it was), export (everything held about a member, against
# schema/member-export.schema.json), erase (nothing identifies the member
# afterwards, the accounting stays under a pseudonym, verify is clean) and
# prune (events and acknowledged touches past an age, in transactions of
# 1000 records).  The admin API's PATCH, export and erase are in
# t/admin-members.t.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";
my $EXAMPLES = "$ROOT/schema/examples";
my $json = JSON::PP->new->canonical;

plan skip_all => "$CTL is not built (make)" unless -x $CTL;


# helpers

# the example shop: tiers, members, prices, codes, rules and its events
sub shop {
    my ($tmp, $dir) = new_store(qw(tiers members prices));
    for (['import', 'codes', "$EXAMPLES/codes.jsonl", '--hosts',
          'mall.example.cn'],
         ['import', 'rules', "$EXAMPLES/rules.json"],
         ['apply', "$EXAMPLES/events.jsonl"])
    {
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, @$_);
        die "@$_: $rc $err" if $rc;
    }
    return ($tmp, $dir);
}

# the whole store as mdb_dump prints it, printable bytes as they are
sub snapshot {
    my ($dir) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-p', '-a', $dir);
    return $rc ? "mdb_dump exit $rc" : $out;
}

sub ctl_json {
    my ($dir, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, @args);
    return $rc ? "exit $rc: $err" : $json->decode($out);
}

sub entries {
    my ($dir, $db) = @_;
    my ($rc, $out) = loyaltyctl('-s', $dir, 'stat');
    my ($n) = $out =~ /^db \Q$db\E\s+(\d+)$/m;
    return $n // "no $db in: $out";
}

sub verify_clean {
    my ($dir, $name) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'verify');
    is("$rc|$out|$err", "0||loyaltyctl: store is consistent\n",
       "$name: verify is clean");
}

# the ledger's entries with adjust entries' times (when written) left out
sub entries_of {
    my ($ledger) = @_;
    return $ledger unless ref $ledger;
    return [map { my %e = %$_; $e{at} = 'WRITTEN' if $e{reason} eq 'adjust';
                  \%e } @{$ledger->{entries}}];
}


# set member: only the fields named change

{
    my ($tmp, $dir) = shop();
    my $before = ctl_json($dir, 'get', 'member', 'lin.fan');
    is($before->{birthday}, '11-23', 'lin.fan has a birthday');
    ok($before->{joined_at}, 'and joined_at');

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan',
                                      'stage=customer', 'tier=vip');
    is("$rc|$err", '0|', 'set member: exit 0, silent');
    my $after = $json->decode($out);
    is_deeply($after, { %$before, stage => 'customer', tier => 'vip' },
              'set member prints the member: stage and tier changed, '
              . 'joined_at and birthday kept');
    is_deeply(ctl_json($dir, 'get', 'member', 'lin.fan'), $after,
              'as the store holds it');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan',
                                   'points=120', 'orders=3', 'spend=4500',
                                   'blocked=true', 'birthday=02-29',
                                   'last_order_at=2026-11-30T10:00:00+08:00');
    is($rc, 0, 'integers, a boolean, a birthday and a time: exit 0');
    is_deeply(ctl_json($dir, 'get', 'member', 'lin.fan'),
              { %$after, points => 120, orders => 3, spend => 4500,
                blocked => JSON::PP::true, birthday => '02-29',
                last_order_at => '2026-11-30T02:00:00Z' },
              'each field as given, the time in UTC');
    is_deeply(entries_of(ctl_json($dir, 'get', 'ledger', 'lin.fan')),
              [{ delta => 120, reason => 'adjust', at => 'WRITTEN' }],
              'points: the difference is an adjust entry of the ledger');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan',
                                   'birthday=', 'blocked=false');
    my $m = ctl_json($dir, 'get', 'member', 'lin.fan');
    ok($rc == 0 && !exists $m->{birthday} && !$m->{blocked}
       && $m->{joined_at} eq $before->{joined_at},
       'an empty value removes the birthday, nothing else');

    # a referrer: the downline follows
    ($rc) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan',
                       'referrer=wang.partner');
    is($rc, 0, 'a referrer set');
    ok((grep { $_->{id} eq 'lin.fan' }
        @{ctl_json($dir, 'get', 'referrals', 'wang.partner')->{level1}}),
       "the referrer's downline has the member");
    ($rc) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan', 'referrer=');
    ok($rc == 0 && !(grep { $_->{id} eq 'lin.fan' }
           @{ctl_json($dir, 'get', 'referrals', 'wang.partner')->{level1}}),
       'the referrer removed: out of the downline');
    verify_clean($dir, 'set member');
}


# set member: bad input changes nothing

{
    my ($tmp, $dir) = shop();
    my $before = snapshot($dir);
    my $long = 'x' x 65;

    for my $case (
        [['nobody', 'stage=fan'], 1, qr/^loyaltyctl: no member "nobody"$/],
        [['bad id!', 'stage=fan'], 1, qr/is not a valid member id/],
        [['lin.fan', 'colour=red'], 1,
         qr/: unknown field "colour"; a member has tier, stage, .*; nothing changed$/],
        [['lin.fan', 'id=lin2'], 1, qr/: "id" cannot change; nothing changed$/],
        [['lin.fan', 'orders=many'], 1, qr/: "orders" must be an integer/],
        [['lin.fan', 'points=1.5'], 1, qr/: "points" must be an integer/],
        [['lin.fan', 'blocked=yes'], 1, qr/: "blocked" must be true or false/],
        [['lin.fan', 'stage=vip'], 1, qr/stage/],
        [['lin.fan', 'tier=gold'], 1, qr/unknown tier "gold"/],
        [['lin.fan', 'tier='], 1, qr/"tier" must be 1-32 characters/],
        [['lin.fan', 'points='], 1, qr/"points" must be an integer/],
        [['lin.fan', 'birthday=02-30'], 1, qr/birthday/],
        [['lin.fan', 'joined_at=yesterday'], 1, qr/joined_at/],
        [['lin.fan', 'points=1000000000001'], 1, qr/points/],
        [['lin.fan', 'orders=-1'], 1, qr/orders/],
        [['lin.fan', "referrer=$long"], 1, qr/referrer/],
        [['lin.fan', 'referrer=lin.fan'], 1, qr/referrer|loop/],
        [['li.member', 'referrer=xiao.ming'], 1, qr/loop/],
        [['lin.fan', "birthday=\xff\xfe"], 1, qr/is not UTF-8/],
        [['lin.fan', 'stage'], 2, qr/"stage" is not FIELD=VALUE/],
        [['lin.fan', '=fan'], 2, qr/is not FIELD=VALUE/],
        [['lin.fan', 'stage=fan', 'stage=member'], 2, qr/"stage" given twice/],
        [['lin.fan'], 2, qr/^usage: loyaltyctl -s DIR set member/],
    ) {
        my ($args, $want, $re) = @$case;
        my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'set', 'member', @$args);
        my $name = 'set member ' . join(' ', @$args) =~ s/[^\x20-\x7e]/?/gr;
        is("$rc|$out", "$want|", "$name: exit $want, nothing printed");
        like($err, $re, "$name: says why");
    }

    my ($rc) = loyaltyctl('-s', $dir, 'set', 'tier', 'basic', 'rank=1');
    is($rc, 2, 'set tier: a usage error');
    is(snapshot($dir), $before, 'the store is byte for byte as it was');

    my ($hrc, $help) = loyaltyctl('set', '--help');
    like("$hrc|$help", qr/^0\|usage: loyaltyctl -s DIR set member ID FIELD=VALUE/,
         'set --help');
}


# export: everything about a member, against its schema

{
    my ($tmp, $dir) = shop();
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'export', 'xiao.ming');
    is("$rc|$err", '0|', 'export: exit 0, silent');
    my $doc = eval { $json->decode($out) } // {};
    write_file("$tmp/export.json", $out);
    schema_check("$ROOT/schema/member-export.schema.json", "$tmp/export.json", {
        'no member' => sub { delete $_[0]{member} },
        'an event of no known type' => sub { $_[0]{events}[0]{type} = 'gift' },
        'a stray field' => sub { $_[0]{extra} = 1 },
    });

    is_deeply($doc->{member}, ctl_json($dir, 'get', 'member', 'xiao.ming'),
              'export: the member');
    is_deeply($doc->{ledger}, ctl_json($dir, 'get', 'ledger', 'xiao.ming'),
              'the whole ledger');
    is_deeply($doc->{referrals},
              ctl_json($dir, 'get', 'referrals', 'xiao.ming'),
              'the downline');
    my %events = map { ("$_->{type}/$_->{id}" => $_) } @{$doc->{events}};
    is($events{'order/SO-20261121-0001'}{amount}, 12800,
       "the member's orders, with their amount");
    ok($events{'signup/xiao.ming'} && $events{'follow/xiao.ming'},
       'the signup and the follow');
    my @credited = grep { $_->{referral_level} } @{$doc->{events}};
    ok(@credited, 'orders of others that credited the member as referrer')
        or diag($out);

    my $wang = ctl_json($dir, 'export', 'wang.partner');
    is_deeply([sort map { $_->{code} } @{$wang->{codes}}],
              [sort map { $_->{code} }
               grep { $_->{member} eq 'wang.partner' }
               map { $json->decode($_) }
               split /\n/, slurp("$EXAMPLES/codes.jsonl")],
              "the member's share codes")
        or diag(explain($wang->{codes}));
    ok(!(grep { ref $_->{clicks} ne 'ARRAY' } @{$wang->{codes}}),
       'each with its clicks per day');

    for my $case (['nobody', 1, qr/^loyaltyctl: no member "nobody"$/],
                  ['bad id!', 1, qr/no member/],
                  [('y' x 65), 1, qr/no member/])
    {
        my ($id, $want, $re) = @$case;
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'export', $id);
        is("$rc|$out", "$want|", "export of \"$id\": exit $want");
        like($err, $re, 'says why');
    }
    ($rc) = loyaltyctl('-s', $dir, 'export');
    is($rc, 2, 'export without a member: usage');
}


# erase: nothing identifies the member, the accounting stays

{
    my ($tmp, $dir) = shop();
    my $m = ctl_json($dir, 'get', 'member', 'xiao.ming');
    my $ledger = ctl_json($dir, 'get', 'ledger', 'xiao.ming');
    my $li = ctl_json($dir, 'get', 'ledger', 'li.member');
    my $li_member = ctl_json($dir, 'get', 'member', 'li.member');
    like(snapshot($dir), qr/xiao\.ming/, 'the store names xiao.ming');
    ok(ctl_json($dir, 'get', 'member', 'zhang.wei')->{referrer},
       'whom xiao.ming referred has a referrer');

    my @stats = ('stats', '--by', 'referrer', '--from', '2026-11-01',
                 '--to', '2026-11-30');
    my $stats = ctl_json($dir, @stats);
    ok((grep { $_->{key} eq 'xiao.ming' } @{$stats->{rows} // []}),
       'the conversion counters name xiao.ming as a referrer');
    is(ctl_json($dir, 'export', 'zhang.wei')->{attribution}{referrer},
       'xiao.ming', "and zhang.wei's attribution names them");

    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'erase', 'xiao.ming');
    is("$rc|$err", '0|', 'erase: exit 0, silent');
    my $res = eval { $json->decode($out) } // {};
    like($res->{pseudonym} // '', qr/^erased-[0-9a-f]{24}$/,
         'it names the pseudonym');
    is($res->{erased}, 'xiao.ming', 'and the member erased');
    my $p = $res->{pseudonym} // 'none';

    unlike(snapshot($dir), qr/xiao\.ming/,
           'no database holds the id any more (mdb_dump)');
    like(scalar(ctl_json($dir, 'get', 'member', 'xiao.ming')),
         qr/^exit 1: loyaltyctl: no member "xiao\.ming"/, 'get member: gone');

    my $pm = ctl_json($dir, 'get', 'member', $p);
    is_deeply([@$pm{qw(tier stage orders spend points)}],
              [@$m{qw(tier stage orders spend points)}],
              'the pseudonym keeps tier, stage, orders, spend and points');
    ok($pm->{blocked} && !exists $pm->{referrer} && !exists $pm->{joined_at}
       && !exists $pm->{birthday}, 'blocked, no referrer, joined_at, birthday');
    is_deeply(ctl_json($dir, 'get', 'ledger', $p)->{entries},
              $ledger->{entries}, 'the ledger, entry for entry');
    is_deeply(ctl_json($dir, 'get', 'ledger', 'li.member'), $li,
              "the referrer's ledger is untouched");
    is(ctl_json($dir, 'get', 'member', 'li.member')->{points},
       $li_member->{points}, "and the referrer's points");
    ok(!exists ctl_json($dir, 'get', 'member', 'zhang.wei')->{referrer},
       'whom they referred has no referrer now');
    ok(!(grep { $_->{id} eq 'xiao.ming' }
         @{ctl_json($dir, 'get', 'referrals', 'li.member')->{level1}}),
       "the referrer's downline no longer has them");
    verify_clean($dir, 'erase');

    my $after = ctl_json($dir, @stats);
    is_deeply($after->{totals}, $stats->{totals},
              'the conversion totals are the same');
    my ($row) = grep { $_->{key} eq 'xiao.ming' } @{$stats->{rows}};
    my ($prow) = grep { $_->{key} eq $p } @{$after->{rows} // []};
    is_deeply({ %{$prow // {}}, key => 'xiao.ming' }, $row,
              "the referrer's counters, under the pseudonym");
    is(ctl_json($dir, 'export', 'zhang.wei')->{attribution}{referrer}, $p,
       "zhang.wei's attribution names the pseudonym");

    # what the export of the pseudonym still shows is accounting only
    my $px = ctl_json($dir, 'export', $p);
    ok(ref $px && @{$px->{events}} >= 4, 'the events name the pseudonym')
        or diag(explain($px));

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'erase', 'xiao.ming');
    is("$rc|$out|$err", "1||loyaltyctl: no member \"xiao.ming\"\n",
       'erase again: no member, exit 1');

    # a member with share codes: revoked, kept under the pseudonym
    my $codes_before = entries($dir, 'codes');
    ($rc, $out) = loyaltyctl('-s', $dir, 'erase', 'wang.partner');
    my $wp = eval { $json->decode($out)->{pseudonym} } // 'none';
    my $code = ctl_json($dir, 'get', 'code', 'WANG-NAPPIES');
    is_deeply([$rc, $code->{member}, $code->{revoked}],
              [0, $wp, JSON::PP::true],
              'erase with codes: the codes are revoked, naming the pseudonym');
    is(entries($dir, 'codes'), $codes_before, 'no code deleted');
    unlike(snapshot($dir), qr/wang\.partner/, 'nothing names wang.partner');
    verify_clean($dir, 'erase with codes');

    my $before = snapshot($dir);
    for my $case (['nobody', 1], ['bad id!', 1], ['z' x 65, 1]) {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'erase', $case->[0]);
        is("$rc|$out", "$case->[1]|", "erase \"$case->[0]\": exit 1");
    }
    ($rc) = loyaltyctl('-s', $dir, 'erase');
    is($rc, 2, 'erase without a member: usage');
    ($rc) = loyaltyctl('-s', $dir, 'erase', 'a', 'b');
    is($rc, 2, 'erase of two: usage');
    is(snapshot($dir), $before, 'refused erasures change nothing');
}


# erased, made again by the shop, erased again: one pseudonym, the
# accounting of both added up

{
    my ($tmp, $dir) = shop();
    my ($rc) = loyaltyctl('-s', $dir, 'set', 'member', 'lin.fan',
                          'points=70', 'orders=2', 'spend=5000',
                          'first_order_at=2026-01-05T00:00:00Z',
                          'last_order_at=2026-02-05T00:00:00Z');
    my ($rc1, $out1) = loyaltyctl('-s', $dir, 'erase', 'lin.fan');
    my $p = eval { $json->decode($out1)->{pseudonym} } // 'none';
    write_file("$tmp/again.jsonl",
               '{"id":"lin.fan","tier":"basic","stage":"customer",'
               . '"orders":1,"spend":900,"points":5,'
               . '"first_order_at":"2026-03-01T00:00:00Z",'
               . '"last_order_at":"2026-03-01T00:00:00Z"}' . "\n");
    my ($rc2) = loyaltyctl('-s', $dir, 'import', 'members', "$tmp/again.jsonl");
    my ($rc3, $out3, $err3) = loyaltyctl('-s', $dir, 'erase', 'lin.fan');
    is("$rc $rc1 $rc2 $rc3", '0 0 0 0', 'erase, import, erase again')
        or diag($err3);
    is(eval { $json->decode($out3)->{pseudonym} }, $p, 'the same pseudonym');
    my $pm = ctl_json($dir, 'get', 'member', $p);
    is_deeply([@$pm{qw(orders spend points first_order_at last_order_at)}],
              [3, 5900, 75, '2026-01-05T00:00:00Z', '2026-03-01T00:00:00Z'],
              'orders, spend and points added up; the first and last order');
    is(scalar @{ctl_json($dir, 'get', 'ledger', $p)->{entries}}, 2,
       'both ledgers, one after the other');
    verify_clean($dir, 'erased twice');
}


# the pseudonym is a keyed hash: the same id gives the same one in a store,
# another in another store

{
    my @p;
    for (1 .. 2) {
        my ($tmp, $dir) = shop();
        my ($rc, $out) = loyaltyctl('-s', $dir, 'erase', 'lin.fan');
        push @p, eval { $json->decode($out)->{pseudonym} } // "none $_";
    }
    isnt($p[0], $p[1], 'two stores, two keys: two pseudonyms for one id');
}


# prune: events and acknowledged touches past an age, in bounded steps

{
    my ($tmp, $dir) = new_store(qw(tiers members));
    my $events = '';
    # 2400 actions, one an hour from 2026-01-01: 100 days
    for my $i (0 .. 2399) {
        my ($d, $h) = (int($i / 24), $i % 24);
        my @t = gmtime(1767225600 + $d * 86400 + $h * 3600);
        $events .= $json->encode({
            type => 'action', member => 'lin.fan', kind => 'share',
            id => "ACT-$i",
            at => sprintf('%04d-%02d-%02dT%02d:00:00Z', $t[5] + 1900,
                          $t[4] + 1, $t[3], $t[2]) }) . "\n";
    }
    write_file("$tmp/events.jsonl", $events);
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, 'apply', "$tmp/events.jsonl");
    is($rc, 0, 'prune: 2400 events applied') or diag($err);
    is(entries($dir, 'events'), 2400, '2400 events in the store');
    my $ledger = ctl_json($dir, 'get', 'ledger', 'lin.fan');

    # 2026-04-11: 100 days after 2026-01-01; older than 50 days: the first
    # 50 days' 1200
    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'prune', '--older-than', '50',
                                   '--now', '2026-04-11T00:00:00Z');
    is("$rc|$err", '0|', 'prune: exit 0, silent');
    is_deeply(eval { $json->decode($out) },
              { events => 1200, touches => 0,
                before => '2026-02-20T00:00:00Z' },
              'prune says what it deleted, and before when');
    is(entries($dir, 'events'), 1200, 'the later 1200 stay');
    is_deeply(ctl_json($dir, 'get', 'ledger', 'lin.fan'), $ledger,
              'the ledger is untouched');
    verify_clean($dir, 'prune');

    ($rc, $out) = loyaltyctl('-s', $dir, 'prune', '--older-than', '50',
                             '--now', '2026-04-11T00:00:00Z');
    is_deeply([$rc, eval { $json->decode($out)->{events} }], [0, 0],
              'pruning again deletes nothing');

    # a pruned event is no longer a duplicate: documented
    write_file("$tmp/one.jsonl", (split /\n/, $events)[0] . "\n");
    ($rc, $out) = loyaltyctl('-s', $dir, 'apply', "$tmp/one.jsonl");
    is($out, qq({"events":1,"applied":1,"duplicates":0}\n),
       'a replay of a pruned event is applied again, as documented');

    # a map with no room left: the steps fill it, it grows, and a step
    # that ran out is run again from where it began
    my ($trc, $shrink) = lmdb_tool("$tmp", 'shrink');
    is($trc, 0, 'the shrink helper compiles');
    my ($tmp2, $full) = new_store(qw(tiers members));
    ($rc) = loyaltyctl('-s', $full, 'apply', "$tmp/events.jsonl");
    mkdir "$tmp2/small" or die "$tmp2/small: $!";
    my ($src, $size) = run_out($shrink, $full, "$tmp2/small", 2);
    chomp $size;
    is($src, 0, "a copy whose map has 2 pages free ($size bytes)");
    ($rc, $out, $err) = loyaltyctl('-s', "$tmp2/small", 'prune',
                                   '--older-than', '50',
                                   '--now', '2026-04-11T00:00:00Z');
    is_deeply([$rc, eval { $json->decode($out) }, $err],
              [0, { events => 1200, touches => 0,
                    before => '2026-02-20T00:00:00Z' }, ''],
              'prune in a full map: the same result');
    is(entries("$tmp2/small", 'events'), 1200, 'the same events left');
    my ($src2, $stat) = loyaltyctl('-s', "$tmp2/small", 'stat');
    my ($map) = $stat =~ /^map_size\s+(\d+)/m;
    cmp_ok($map // 0, '>', $size, 'the map grew');
    verify_clean("$tmp2/small", 'prune in a full map');

    my $before = snapshot($dir);
    for my $bad (['--older-than', '0'], ['--older-than', 'ten'],
                 ['--older-than', '36501'], ['--older-than', '-5'],
                 ['--now', 'tomorrow'], ['--older-than'], ['extra'])
    {
        ($rc, $out, $err) = loyaltyctl('-s', $dir, 'prune', @$bad);
        is("$rc|$out", '2|', "prune @$bad: usage error, exit 2");
        ok($err ne '', 'says why');
    }
    is(snapshot($dir), $before, 'refused prunes change nothing');
}


# prune: touches, acknowledged ones only

{
    my ($tmp, $dir) = new_store(qw(tiers members));
    my $lua = "$ROOT/t/cadence/cadences.lua";
    my $ev = join '', map { $json->encode($_) . "\n" }
        { type => 'order', member => 'lin.fan', order_id => 'O-1',
          amount => 60000, at => '2026-03-01T10:00:00Z' },
        { type => 'order', member => 'li.member', order_id => 'O-2',
          amount => 60000, at => '2026-03-02T10:00:00Z' };
    write_file("$tmp/orders.jsonl", $ev);
    my ($rc, $out, $err) = loyaltyctl('-s', $dir, '--lua', $lua, 'apply',
                                      "$tmp/orders.jsonl");
    is($rc, 0, 'orders applied with cadences') or diag($err);
    my $touches = entries($dir, 'touches');
    cmp_ok($touches, '>=', 2, "touches scheduled: $touches");

    my ($lrc, $list) = loyaltyctl('-s', $dir, 'due', '--until',
                                  '2027-01-01T00:00:00Z');
    my @due = map { $json->decode($_) } split /\n/, $list;
    my ($acked) = grep { $_->{member} eq 'lin.fan' } @due;
    ($rc) = loyaltyctl('-s', $dir, 'ack', $acked->{id} // 'none', 'done');
    is($rc, 0, 'one touch acknowledged');

    ($rc, $out, $err) = loyaltyctl('-s', $dir, 'prune', '--older-than', '30',
                                   '--now', '2026-12-01T00:00:00Z');
    my $res = eval { $json->decode($out) } // {};
    is_deeply([$rc, $res->{touches}, $res->{events}], [0, 1, 2],
              'prune: the acknowledged touch and both events');
    is(entries($dir, 'touches'), $touches - 1, 'pending touches stay');
    ($lrc, $list) = loyaltyctl('-s', $dir, 'due', '--until',
                               '2027-01-01T00:00:00Z');
    is(scalar(split /\n/, $list), scalar(@due) - 1,
       'and are still due');
}

done_testing();
