#!/usr/bin/perl
# The member cache under event writes: how many reads after a batch of
# events are still answered from the cache.  One nginx (the test harness's)
# with 1,000 members cached, then ten rounds of a batch of ten orders
# (random members) through the admin API and 100 reads of random members.
# Counts, from the debug log, the reads answered from the cache and those
# whose member was read again.  Deterministic (srand), not timed: it runs
# on a loaded machine as well.  LOYALTY_MODULE and LOYALTY_CTL point it at
# another build.
#
#   perl bench/cache-writes.pl

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Loyalty::Harness;
use POSIX ();

my $N = 1000;
my $store = "[tiers]\n{\"name\":\"silver\",\"rank\":1}\n[members]\n"
    . join('', map { qq({"id":"m$_","tier":"silver","stage":"fan","points":1}\n) }
                   1 .. $N);
my $h = start_nginx(log_level => 'debug', store => $store,
    http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n",
    config => "location /admin/ { %%ADMIN%% }\n"
              . "location / { return 200 \"\$loyalty_tier\"; }\n");

my @cookies = map { sign_member("m$_", 3600) } 1 .. $N;
srand(7);
http_request($h, 'GET', '/', { Cookie => "loyalty_member=$_" }) for @cookies;

my $at = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 60));
my $order = 0;

for my $round (1 .. 10) {
    my @events = map {
        $order++;
        sprintf '{"type":"order","member":"m%d","order_id":"o%d",'
                . '"amount":100,"at":"%s"}', 1 + int(rand($N)), $order, $at
    } 1 .. 10;
    my ($status) = admin_request($h, 'POST', '/admin/events',
                                 '[' . join(',', @events) . ']');
    die "events: $status\n" unless $status == 200;
    http_request($h, 'GET', '/',
                 { Cookie => 'loyalty_member=' . $cookies[int(rand($N))] })
        for 1 .. 100;
}

stop_nginx($h);

my $log = error_log_text($h);
my $hits = () = $log =~ /member cookie for "[^"]*" cached$/mg;
my $rereads = () = $log =~ /cached, member changed/g;
print "reads after writes: 1000; from the cache $hits, member read again "
      . "$rereads\n";
