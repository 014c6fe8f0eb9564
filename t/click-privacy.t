# What unique-click counting keeps about a visitor: neither the address nor
# the User-Agent, in the click zone, the store or the error log; the zone's
# visitor tags are keyed by a secret made with the zone, so that the same
# visitor gets other tags in another run (an unkeyed hash would give the
# same ones, and could be matched against guessed addresses).

use lib 't/lib';
use Loyalty::Harness;

use Time::HiRes qw(sleep time);

no warnings 'portable';     # 64-bit addresses and words

# the zone is read through the master's /proc/PID/mem
plan(skip_all => 'reads the memory of an nginx master run as root')
    if $> != 0;

my $ZONE = 1100 * 1024;     # a size no other mapping has

my $HTTP = <<"END";
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1100k;
loyalty_click_flush 1s;
END

my $CONFIG = <<'END';
location /s/ {
    loyalty_share;
}
END

my $STORE = <<'END';
[tiers]
{"name":"gold","rank":3}
[members]
{"id":"alice","tier":"gold","stage":"member"}
{"id":"carol-7f3e","tier":"gold","stage":"fan"}
[codes]
{"code":"ALICE1","member":"alice","target":"/p/a"}
END

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) PrivacyProbe/9.9 visitor-ua-4f1c';

# the same three visitors each run: two anonymous, one member
sub clicks {
    my ($h) = @_;
    my $member = 'loyalty_member=' . sign_member('carol-7f3e', '1h');
    my @st = map { (http_request($h, 'GET', '/s/ALICE1', $_))[0] // 'none' }
             { 'User-Agent' => $UA },
             { 'User-Agent' => "$UA other" },
             { 'User-Agent' => $UA, Cookie => $member };
    return "@st";
}

# the store's unique clicks of ALICE1, once flushed (up to 5 s)
sub unique_clicks {
    my ($h, $want) = @_;
    my $deadline = time + 5;
    my $n;
    while (1) {
        my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'clicks');
        $n = 0;
        $n += $1 for $out =~ /"code":"ALICE1".*?"unique":(\d+)/g;
        return $n if $n >= $want || time > $deadline;
        sleep 0.1;
    }
}

# the click zone's bytes, read from the master's mapping of it
sub zone_bytes {
    my ($h) = @_;
    my $pid = $h->{master};
    open my $maps, '<', "/proc/$pid/maps" or die "maps: $!";
    my @zone = grep { $_->[1] - $_->[0] == $ZONE }
               map { /^([0-9a-f]+)-([0-9a-f]+) rw-s / ? [hex $1, hex $2] : () }
               <$maps>;
    return undef unless @zone == 1;
    open my $mem, '<:raw', "/proc/$pid/mem" or die "mem: $!";
    sysseek $mem, $zone[0][0], 0 or die "seek: $!";
    my $buf = '';
    sysread($mem, $buf, $ZONE) == $ZONE or die "read: $!";
    return $buf;
}

# the zone's recent-visitor words of these minutes: their tags
sub visitor_tags {
    my ($zone, $from, $to) = @_;
    my %tags;
    for my $w (unpack 'Q<*', $zone) {
        next unless $w >> 63;
        my $min = $w & 0xffffff;
        next unless grep { $min == ($_ & 0xffffff) } $from .. $to;
        $tags{$w & ~0xffffff} = 1;
    }
    return \%tags;
}

my @tags;

for my $run (1, 2) {
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $STORE);
    my $from = int(time / 60) - 1;

    is(clicks($h), '302 302 302', "run $run: three visitors clicked");
    is(unique_clicks($h, 3), 3,
       "run $run: three unique clicks counted and flushed");

    my $zone = zone_bytes($h);
    ok(defined $zone, "run $run: the click zone's memory found");
    $zone //= '';

    # the zone holds the code: the bytes read are the zone's
    like($zone, qr/ALICE1/, "run $run: the zone holds the code");
    unlike($zone, qr/PrivacyProbe|visitor-ua-4f1c/,
           "run $run: the zone holds no User-Agent");
    unlike($zone, qr/127\.0\.0\.1/, "run $run: the zone holds no address");
    unlike($zone, qr/carol-7f3e/, "run $run: the zone holds no member id");

    my $t = visitor_tags($zone, $from, int(time / 60) + 1);
    is(scalar keys %$t, 3, "run $run: three visitor tags in the zone");
    push @tags, $t;

    # the store: the day's counts per code, nothing of the visitor
    my ($rc, $dump) = run_out('mdb_dump', '-a', '-p', $h->{store});
    like($dump, qr/ALICE1/, "run $run: mdb_dump shows the code's counts");
    unlike($dump, qr/PrivacyProbe|visitor-ua-4f1c/,
           "run $run: the store holds no User-Agent");
    unlike($dump, qr/127\.0\.0\.1/, "run $run: the store holds no address");

    unlike(error_log_text($h), qr/PrivacyProbe|visitor-ua-4f1c/,
           "run $run: the error log holds no User-Agent");

    stop_checked($h, "run $run");
}

# the same visitors, another zone: other tags
my @same = grep { $tags[1]{$_} } keys %{$tags[0]};
is(scalar @same, 0, 'the same visitors get other tags with a new zone');

done_testing();
