# The cluster directives without a cluster: loyalty_nats and its company
# refuse bad values at nginx -t, naming the directive; nginx starts and
# serves reads with loyalty_nats set and no NATS anywhere (a write then
# answers 503); loyaltyctl's NATS commands refuse bad arguments.  Fast:
# no nats-server here (t/nats.t runs the cluster).

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->canonical;

run_blocks();


# loyaltyctl: usage errors and replicas
{
    my $tmp = test_dir();
    my $store = "$tmp/s";
    loyaltyctl('-s', $store, 'init');

    my @cases = (
        [['follow'], 2, 'follow without --nats'],
        [['follow', '--nats', 'nats://127.0.0.1:1', '--stream', 'a.b'], 2,
         'follow with a stream name NATS does not allow'],
        [['follow', '--nats', 'nats://127.0.0.1:1', '--edge', ''], 2,
         'follow with an empty edge'],
        [['follow', '--nats', 'nats://127.0.0.1:1', '--batch', '0'], 2,
         'follow with --batch 0'],
        [['follow', '--nats', 'nats://127.0.0.1:1', '--replicas', '9'], 2,
         'follow with --replicas 9'],
        [['follow', '--nats', 'nats://127.0.0.1:1', 'extra'], 2,
         'follow with an extra argument'],
        [['checksum', 'extra'], 2, 'checksum with an argument'],
        [['bootstrap'], 2, 'bootstrap without --from'],
        [['import', 'nope', '/dev/null', '--nats', 'nats://127.0.0.1:1'], 2,
         'import --nats of an unknown kind'],
        [['import', 'members', '/dev/null', '--nats', 'nats://127.0.0.1:1',
          '--hosts', 'a.com'], 2, 'import --nats members with --hosts'],
        [['prune', '--nats'], 2, 'prune --nats without a URL'],
        [['prune', '--nats', 'nats://127.0.0.1:1', '--stream', 'a.b'], 2,
         'prune --nats with a stream name NATS does not allow'],
        [['prune', '--nats', 'nats://127.0.0.1:1', '--older-than', '0'], 2,
         'prune --nats with --older-than 0'],
        [['prune', '--stream', 'LOYALTY'], 2,
         'prune with a NATS option but no --nats'],
    );
    for my $case (@cases) {
        my ($args, $want, $what) = @$case;
        my ($rc) = loyaltyctl('-s', $store, @$args);
        is($rc, $want, "$what: exit $want");
    }

    my ($rc, $out, $err) = loyaltyctl('-s', $store, 'follow', '--nats',
                                      'nats://127.0.0.1:1', '--once');
    like("$rc $err", qr/^3 loyaltyctl: NATS: nats:\/\/127\.0\.0\.1:1: .*No server available/,
         'follow --once without NATS: exit 3, saying so');

    ($rc, $out, $err) = loyaltyctl('prune', '--nats', 'nats://127.0.0.1:1');
    like("$rc $out $err", qr/^3  loyaltyctl: NATS: nats:\/\/127\.0\.0\.1:1: .*No server available/,
         'prune --nats without NATS: exit 3, saying so, nothing published');

    # the daemon waits for NATS, and a TERM stops it meanwhile
    my $ctl = $ENV{LOYALTY_CTL} // 'build/loyaltyctl';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', "$tmp/follow.log";
        { exec $ctl, '-s', $store, 'follow', '--nats', 'nats://127.0.0.1:1' };
        POSIX::_exit(127);
    }
    sleep 1;
    kill 'TERM', $pid;
    my $t = time;
    my $gone;
    while (time - $t < 5) {
        $gone = waitpid($pid, POSIX::WNOHANG()) == $pid and last;
        sleep 0.05;
    }
    ok($gone && $? == 0, 'follow waiting for NATS stops on TERM, exit 0');
    kill 'KILL', $pid unless $gone;

    ($rc, $out, $err) = loyaltyctl('-s', $store, 'checksum');
    like("$rc $out", qr/^0 \{"stream":null,"seq":0,"checksum":"[0-9a-f]{64}"\}\n\z/,
         'checksum of a store that follows no stream (a follower that '
         . 'never reached NATS did not mark it)');
    my $sum = $JSON->decode($out)->{checksum};

    # the same content in another store: the same checksum
    loyaltyctl('-s', "$tmp/t", 'init');
    ($rc, $out) = loyaltyctl('-s', "$tmp/t", 'checksum');
    is($JSON->decode($out)->{checksum}, $sum,
       'two empty stores, made at other times: one checksum');

    write_file("$tmp/tiers.jsonl", qq({"name":"gold","rank":1}\n));
    loyaltyctl('-s', "$tmp/t", 'import', 'tiers', "$tmp/tiers.jsonl");
    ($rc, $out) = loyaltyctl('-s', "$tmp/t", 'checksum');
    isnt($JSON->decode($out)->{checksum}, $sum,
         'a tier more: another checksum');

    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/copy", 'bootstrap', '--from',
                                   "$tmp/t");
    is($rc, 0, 'bootstrap from a store') or diag($err);
    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/copy", 'bootstrap', '--from',
                                   "$tmp/t");
    like("$rc $err", qr/^3 loyaltyctl: bootstrap from .*the directory must be empty/,
         'bootstrap into a store that is there: refused');
    ($rc, $out, $err) = loyaltyctl('-s', "$tmp/x", 'bootstrap', '--from',
                                   "$tmp/none");
    is($rc, 3, 'bootstrap from no store: exit 3');
}

done_testing();

__DATA__

=== TEST 1: loyalty_nats needs a nats:// or tls:// URL
--- http_config
loyalty_store %%STORE%%;
loyalty_nats http://127.0.0.1:4222;
--- config_error
"loyalty_nats": "http://127.0.0.1:4222" is not a nats:// or tls:// URL, or one more than 16


=== TEST 2: an empty URL between commas
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:4222,,nats://127.0.0.1:4223;
--- config_error
"loyalty_nats": "" is not a nats:// or tls:// URL


=== TEST 3: loyalty_nats twice
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:4222;
loyalty_nats nats://127.0.0.1:4223;
--- config_error
"loyalty_nats" directive is duplicate


=== TEST 4: a stream name NATS does not allow
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:4222;
loyalty_stream LOY.ALTY;
--- config_error
"loyalty_stream" must be 1-64 characters of [A-Za-z0-9_-], not "LOY.ALTY"


=== TEST 5: an edge id with a space
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:4222;
loyalty_edge "edge one";
--- config_error
"loyalty_edge" must be 1-64 characters of [A-Za-z0-9_-], not "edge one"


=== TEST 6: a timeout out of range
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:4222;
loyalty_nats_timeout 2m;
--- config_error
"loyalty_nats_timeout" must be 100ms to 60s


=== TEST 7: the company of loyalty_nats without it
--- http_config
loyalty_store %%STORE%%;
loyalty_stream LOYALTY;
--- config_error
"loyalty_nats_creds", "loyalty_stream", "loyalty_edge" and "loyalty_nats_timeout" require "loyalty_nats"


=== TEST 8: loyalty_nats without a store
--- http_config
loyalty_nats nats://127.0.0.1:4222;
--- config_error
"loyalty_nats" requires "loyalty_store": the edge's replica


=== TEST 9: no NATS anywhere: nginx starts, reads are served
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_nats nats://127.0.0.1:1 tls://127.0.0.1:2;
loyalty_nats_timeout 500ms;
--- store
[tiers]
{"name":"gold","rank":1}
[members]
{"id":"alice","tier":"gold","stage":"member"}
--- config
location / {
    return 200 "[$loyalty_member][$loyalty_tier]\n";
}
--- request
GET /
--- more_headers
Cookie: loyalty_member=%%SIGN(alice,1h)%%
--- response_body
[alice][gold]


=== TEST 10: no NATS anywhere: a write answers 503 with a JSON error
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:1;
loyalty_nats_timeout 500ms;
--- store
[tiers]
{"name":"gold","rank":1}
--- config
location /admin/ {
    %%ADMIN%%
}
--- request
PUT /admin/members/bob
--- more_headers
Authorization: Bearer %%ADMIN_TOKEN%%
--- request_body
{"tier":"gold","stage":"fan"}
--- error_code: 503
--- response_body
{"error":"NATS is unreachable"}
--- error_log
loyalty_admin: the store "%%STORE%%": NATS is unreachable; the admin write is refused


=== TEST 11: a refused write is refused before NATS is asked
--- http_config
loyalty_store %%STORE%%;
loyalty_nats nats://127.0.0.1:1;
loyalty_nats_timeout 500ms;
--- config
location /admin/ {
    %%ADMIN%%
}
--- request
PUT /admin/members/bob
--- more_headers
Authorization: Bearer %%ADMIN_TOKEN%%
--- request_body
{"tier":"nope","stage":"fan"}
--- error_code: 422
