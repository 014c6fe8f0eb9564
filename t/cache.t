# The verified-cookie cache: hits only for the very same cookie from the
# same store snapshot; expiry checked on every hit; loyalty_member_cache.

use lib 't/lib';
use Loyalty::Harness;
use Time::HiRes qw(sleep);
use POSIX ();
use Cwd ();

my $STORE = <<'END';
[tiers]
{"name":"silver","rank":1}
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"silver","stage":"fan","points":5}
END

my $CONFIG = <<'END';
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_tier_rank][$loyalty_stage][$loyalty_points]\n";
}
END

sub get {
    my ($h, $cookie) = @_;
    my ($status, undef, $body) = http_request($h, 'GET', '/',
        { Cookie => "loyalty_member=$cookie" });
    return $body;
}

sub hits {
    my ($h) = @_;
    my @hits = error_log_text($h) =~ /loyalty: member cookie for "[^"]*" cached$/mg;
    return scalar @hits;
}

# cookies verified before whose member was read again after a write
sub rereads {
    my ($h) = @_;
    my @r = error_log_text($h) =~ /member cookie for "[^"]*" cached, member changed/g;
    return scalar @r;
}

# what the store says of a member now, through a cookie never cached
sub get_uncached {
    my ($h, $id) = @_;
    return get($h, sign_member($id, 3000 + int(rand(500))));
}

sub import_members {
    my ($h, $line) = @_;
    my $file = "$h->{prefix}/m.jsonl";
    open my $fh, '>', $file or die;
    print $fh "$line\n";
    close $fh;
    return (loyaltyctl('-s', $h->{store}, 'import', 'members', $file))[0];
}

my $h = start_nginx(log_level => 'debug', store => $STORE,
                    http_config => "loyalty_store %%STORE%%;\n"
                                   . "loyalty_keys %%KEYS%%;\n",
                    config => $CONFIG);

my $alice = sign_member('alice', 3600);
is(get($h, $alice), "[valid][alice][silver][1][fan][5]\n", 'first request');
is(hits($h), 0, 'verified and looked up, not cached yet');
is(get($h, $alice), "[valid][alice][silver][1][fan][5]\n", 'second request');
is(hits($h), 1, 'answered from the cache');

(my $forged = $alice) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
is(get($h, $forged), "[invalid][][][][prospect][]\n",
   'a forged variant of a cached cookie is invalid');
is(hits($h), 1, 'and was not a hit');

my $other = sign_member('alice', 7200);
is(get($h, $other), "[valid][alice][silver][1][fan][5]\n",
   'another cookie of the same member');
is(hits($h), 1, 'is verified on its own');

is(import_members($h, '{"id":"alice","tier":"gold","stage":"member",'
                      . '"points":9}'), 0, 'alice changes');
is(get($h, $alice), "[valid][alice][gold][3][member][9]\n",
   'the next request sees it: a write retires the cache');
is(rereads($h), 1, 'the member read again, the cookie not verified again');

my $ghost = sign_member('ghost', 3600);
is(get($h, $ghost), "[unknown][][][][prospect][]\n", 'a stranger');
is(get($h, $ghost), "[unknown][][][][prospect][]\n", 'still a stranger');
my $before = hits($h);
is(import_members($h, '{"id":"ghost","tier":"silver","stage":"fan"}'), 0,
   'the stranger joins');
is(get($h, $ghost), "[valid][ghost][silver][1][fan][0]\n",
   'and is known on the next request');
is(hits($h), $before, 'which was not answered from the cache');

my $short = sign_member('alice', 2);
is(get($h, $short), "[valid][alice][gold][3][member][9]\n",
   'a cookie about to expire');
is(get($h, $short), "[valid][alice][gold][3][member][9]\n", 'cached');
sleep 3.2;
is(get($h, $short), "[expired][][][][prospect][]\n",
   'expires while cached: expiry is checked on every hit');
like(error_log_text($h), qr/\[info\].*expired member cookie for "alice"/,
     'and is logged as expired');

stop_nginx($h);
unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
       'no crash');


# A batch of events retires the members it changed, and them alone; any
# other write (loyaltyctl's import here) retires every entry.

{
    my $h = start_nginx(log_level => 'debug', store => <<'END',
[tiers]
{"name":"silver","rank":1}
[members]
{"id":"alice","tier":"silver","stage":"fan","points":5}
{"id":"bob","tier":"silver","stage":"fan","points":1}
END
        http_config => "loyalty_store %%STORE%%;\n"
                       . "loyalty_keys %%KEYS%%;\n",
        config => "location /admin/ { %%ADMIN%% }\n" . $CONFIG);

    my $a = sign_member('alice', 3600);
    my $b = sign_member('bob', 3600);
    get($h, $_) for $a, $b, $a, $b;
    is(hits($h), 2, 'events: alice and bob cached');

    my $at = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 60));
    my ($status, undef, $body) = admin_request($h, 'POST', '/admin/events',
        qq([{"type":"order","member":"alice","order_id":"o1",)
        . qq("amount":1000,"at":"$at"}]));
    is($status, 200, 'events: an order of alice') or diag($body);

    my $seen = get($h, $a);
    isnt($seen, "[valid][alice][silver][1][fan][5]\n",
         'events: alice\'s change is seen at once');
    is($seen, get_uncached($h, 'alice'), 'events: as the store has it');
    is(rereads($h), 1, 'events: alice read again');
    my $before = hits($h);
    is(get($h, $b), "[valid][bob][silver][1][fan][1]\n", 'events: bob');
    is(hits($h), $before + 1, 'events: bob still answered from the cache');
    is(rereads($h), 1, 'events: and not read again');
    like(error_log_text($h), qr/loyalty: snapshot \d+ changed 1 members/,
         'events: the snapshot changed one member');

    is(import_members($h, '{"id":"carol","tier":"silver","stage":"fan"}'),
       0, 'loyaltyctl: carol imported');
    is(get($h, $b), "[valid][bob][silver][1][fan][1]\n", 'loyaltyctl: bob');
    is(rereads($h), 2, 'loyaltyctl: a write that lists nothing retires '
                       . 'every member');

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
           'events: no crash');
}


# nginx on a store of ann, whose birthday is 29 Feb, and bob
sub birthday_nginx {
    my ($http) = @_;
    return start_nginx(log_level => 'debug', store => <<'END',
[tiers]
{"name":"basic","rank":0}
[members]
{"id":"ann","tier":"basic","stage":"member","birthday":"02-29"}
{"id":"bob","tier":"basic","stage":"fan"}
END
        http_config => "loyalty_store %%STORE%%;\n"
                       . "loyalty_keys %%KEYS%%;\n" . $http,
        config => $CONFIG);
}

# ann's birthday touch scheduled by loyaltyctl as of 27 Feb 2026, long
# due now: (exit status, stderr)
sub schedule_birthday {
    my ($h, $lua) = @_;
    my ($rc, undef, $err) = loyaltyctl('-s', $h->{store}, '--lua', $lua,
                                       'sweep', '--now',
                                       '2026-02-27T12:00:00Z');
    return ($rc, $err);
}

# The cadence sweep in nginx retires the members it rewarded, and them
# alone: a birthday touch scheduled by loyaltyctl as of 27 Feb 2026 is
# long due, and nginx's first sweep (a second after start) credits it.

{
    my $lua = Cwd::abs_path('t/cadence/cadences.lua');
    my $h = birthday_nginx("loyalty_lua_file $lua;\n"
                           . "loyalty_cadence_sweep 1h;\n");

    my ($rc, $err) = schedule_birthday($h, $lua);
    is($rc, 0, 'sweep: the birthday scheduled by loyaltyctl') or diag($err);

    my $a = sign_member('ann', 3600);
    my $b = sign_member('bob', 3600);
    get($h, $_) for $a, $b, $a;
    my $first = get($h, $b);
    my $swept = qr/loyalty_cadence_sweep: \d+ members, .* 1 rewards credited/;
    my $early = error_log_text($h) =~ $swept;

    ok(_poll_log($h, $swept), 'sweep: nginx credited the reward');

    SKIP: {
        skip 'sweep: nginx swept before the members were cached', 5
            if $early;
        is($first, "[valid][bob][basic][0][fan][0]\n", 'sweep: bob cached');
        my ($hits, $rereads) = (hits($h), rereads($h));
        is(get($h, $a), "[valid][ann][basic][0][member][10]\n",
           'sweep: ann\'s reward seen at once');
        is(rereads($h), $rereads + 1, 'sweep: ann read again');
        is(get($h, $b), "[valid][bob][basic][0][fan][0]\n", 'sweep: bob');
        is(hits($h), $hits + 1, 'sweep: bob still answered from the cache');
    }

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
           'sweep: no crash');
}

# loyaltyctl's sweep seals its steps the same way: the member it rewarded
# is read again, and the others stay answered from the cache.

{
    my $lua = Cwd::abs_path('t/cadence/cadences.lua');
    my $h = birthday_nginx('');

    my ($rc, $err) = schedule_birthday($h, $lua);
    is($rc, 0, 'cli sweep: the birthday scheduled') or diag($err);

    my $a = sign_member('ann', 3600);
    my $b = sign_member('bob', 3600);
    get($h, $_) for $a, $b, $a, $b;
    my ($hits, $rereads) = (hits($h), rereads($h));

    ($rc, my $out, $err) = loyaltyctl('-s', $h->{store}, '--lua', $lua,
                                      'sweep');
    is($rc, 0, 'cli sweep: the reward credited') or diag($err);
    like($out, qr/"rewards":1,/, 'cli sweep: says so') or diag($err);

    is(get($h, $a), "[valid][ann][basic][0][member][10]\n",
       'cli sweep: ann\'s reward seen at once');
    is(rereads($h), $rereads + 1, 'cli sweep: ann read again');
    is(get($h, $b), "[valid][bob][basic][0][fan][0]\n", 'cli sweep: bob');
    is(hits($h), $hits + 1,
       'cli sweep: bob still answered from the cache');

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
           'cli sweep: no crash');
}

# A cadence reward credited inside a batch of events (the referrer thanked
# with 200 points when the member they referred first orders) is noted
# with the batch's members: the referrer's cached entry is retired too.

{
    my $lua = Cwd::abs_path('t/cadence/cadences.lua');
    my $h = start_nginx(log_level => 'debug', store => <<'END',
[tiers]
{"name":"basic","rank":0}
[members]
{"id":"ann","tier":"basic","stage":"member"}
{"id":"bob","tier":"basic","stage":"fan","referrer":"ann"}
{"id":"cy","tier":"basic","stage":"fan"}
END
        http_config => "loyalty_store %%STORE%%;\n"
                       . "loyalty_keys %%KEYS%%;\n"
                       . "loyalty_lua_file $lua;\n",
        config => "location /admin/ { %%ADMIN%% }\n" . $CONFIG);

    my $a = sign_member('ann', 3600);
    my $c = sign_member('cy', 3600);
    get($h, $_) for $a, $c, $a, $c;
    is(hits($h), 2, 'reward: ann and cy cached');

    my $at = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 60));
    my ($status, undef, $body) = admin_request($h, 'POST', '/admin/events',
        qq([{"type":"order","member":"bob","order_id":"b1",)
        . qq("amount":70000,"at":"$at"}]));
    is($status, 200, 'reward: bob\'s first order') or diag($body);

    is(get($h, $a), get_uncached($h, 'ann'),
       'reward: ann as the store has her');
    like(get($h, $a), qr/\]\[200\]\n\z/, 'reward: with the 200 points');
    my $before = hits($h);
    is(get($h, $c), "[valid][cy][basic][0][fan][0]\n", 'reward: cy');
    is(hits($h), $before + 1, 'reward: cy still answered from the cache');

    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
           'reward: no crash');
}

# the error log matches re within 10 s
sub _poll_log {
    my ($h, $re) = @_;
    for (1 .. 100) {
        return 1 if error_log_text($h) =~ $re;
        sleep 0.1;
    }
    return 0;
}


# loyalty_member_cache 8: one set of eight ways.  Eight cookies (of one
# member, each with its own expiry, so each its own entry) are all
# answered from the cache on their second visit, wherever their hashes
# fall; a ninth takes the place of one of them.

{
    my $h = start_nginx(log_level => 'debug', store => $STORE,
                        http_config => "loyalty_store %%STORE%%;\n"
                                       . "loyalty_keys %%KEYS%%;\n"
                                       . "loyalty_member_cache 8;\n",
                        config => $CONFIG);
    my @c = map { sign_member('alice', 3600 + $_) } 0 .. 8;
    get($h, $_) for @c[0 .. 7];
    is(hits($h), 0, 'eight ways: eight cookies verified');
    is(get($h, $_), "[valid][alice][silver][1][fan][5]\n",
       "eight ways: cookie $_ again") for @c[0 .. 7];
    is(hits($h), 8, 'eight ways: all eight answered from the cache');
    get($h, $c[8]) for 1 .. 2;
    is(hits($h), 9, 'eight ways: a ninth cached in place of one');
    # the ninth replaced one way, the first (replacement goes in turn):
    # the other seven, visited before it, are all still there
    my $before = hits($h);
    get($h, $_) for reverse @c[0 .. 7];
    is(hits($h), $before + 7, 'eight ways: the other seven still cached');
    stop_nginx($h);
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]|exited on signal/,
           'eight ways: no crash');
}


# loyalty_member_cache 0: every request verifies and looks up

$h = start_nginx(log_level => 'debug', store => $STORE,
                 http_config => "loyalty_store %%STORE%%;\n"
                                . "loyalty_keys %%KEYS%%;\n"
                                . "loyalty_member_cache 0;\n",
                 config => $CONFIG);
is(get($h, $alice), "[valid][alice][silver][1][fan][5]\n", 'no cache: valid');
is(get($h, $alice), "[valid][alice][silver][1][fan][5]\n", 'again');
is(hits($h), 0, 'never from a cache');
stop_nginx($h);

run_blocks();
done_testing();

__DATA__

=== TEST 1: loyalty_member_cache must be a number
--- http_config
loyalty_member_cache many;
--- config_error
"loyalty_member_cache" directive invalid number


=== TEST 2: loyalty_member_cache has a bound
--- http_config
loyalty_member_cache 2000000;
--- config_error
value must be between 0 and 1048576


=== TEST 3: loyalty_member_cache belongs to http
--- config
loyalty_member_cache 10;
--- config_error
"loyalty_member_cache" directive is not allowed here
