#!/usr/bin/perl
# Generates the benchmark data set into OUTDIR:
#   tiers.jsonl      tier records for `loyaltyctl import tiers`
#   members.jsonl    N member records for `loyaltyctl import members`
#   members.tsv      id \t tier \t stage, loaded by the OpenResty case
#   members.mdbdump  N records in mdb_dump format with the same keys and
#                    values of BENCH_VALUE_BYTES, the raw-LMDB import baseline
#                    (not written with BENCH_MDBDUMP=0: bench/scale)
#   keys.txt         signing key for loyalty_keys
#   cookies.tsv      cookie \t id \t tier \t stage for random unblocked members
#   codes.jsonl      BENCH_CODES share codes for `loyaltyctl import codes`
#   refs.tsv         BENCH_REF_REQUESTS referral requests, one a line:
#                    code \t attribution cookie or "-" \t expected
#                    $loyalty_ref_status \t $loyalty_referrer \t
#                    $loyalty_referrer2 ("-" for none)
#   rules.json       the rules document for `loyaltyctl import rules`: the
#                    example shop's numbers on the bench tiers, for the
#                    cases that post events
#
# Everything except the cookie expiry and the attribution cookies' click
# times is a pure function of the seed, so two runs with the same settings
# benchmark the same data.
#
# usage: gen-data.pl OUTDIR   (settings from BENCH_* environment variables)

use strict;
use warnings;
use Digest::SHA qw(hmac_sha256 sha256_hex);
use MIME::Base64 qw(encode_base64url);
use Time::Local qw(timegm);

my $out = shift or die "usage: $0 OUTDIR\n";
my $n        = $ENV{BENCH_MEMBERS}     // 1_000_000;
my $ncookies = $ENV{BENCH_COOKIES}     // 10_000;
my $seed     = $ENV{BENCH_SEED}        // 42;
my $vbytes   = $ENV{BENCH_VALUE_BYTES} // 64;
my $ttl      = $ENV{BENCH_COOKIE_TTL}  // 7 * 86400;
my $ncodes   = $ENV{BENCH_CODES}        // 10_000;
my $nrefs    = $ENV{BENCH_REF_REQUESTS} // 20_000;
my $mdbdump  = $ENV{BENCH_MDBDUMP}      // 1;

# ids are "m" and 7 digits, 8 from the 10,000,000th member on (bench/scale)
die "BENCH_MEMBERS must be 1..99999999\n" unless $n >= 1 && $n <= 99_999_999;
die "BENCH_CODES must be 1..1000000\n" unless $ncodes >= 1 && $ncodes <= 1e6;
die "BENCH_REF_REQUESTS must be 2 or more\n" unless $nrefs >= 2;
srand($seed);

my @tiers = (
    [ fan     => 0, 0,    'Fan' ],
    [ silver  => 1, 500,  'Silver' ],
    [ gold    => 2, 1000, 'Gold' ],
    [ partner => 3, 2000, 'Partner' ],
);
my @stages = qw(prospect fan customer member partner);

# Cumulative stage mix of a consumer brand: most sign-ups never buy, a few
# percent are resellers.
my @stage_cdf = ([0.30, 0], [0.55, 1], [0.80, 2], [0.97, 3], [1.00, 4]);

# Dates are drawn as whole days plus seconds; day strings are formatted once.
my $day0  = timegm(0, 0, 0, 1, 0, 2019);
my $ndays = int((timegm(0, 0, 0, 30, 6, 2025) - $day0) / 86400);
my @daystr;
for my $d (0 .. $ndays + 400) {
    my @t = gmtime($day0 + $d * 86400);
    $daystr[$d] = sprintf '%04d-%02d-%02d', $t[5] + 1900, $t[4] + 1, $t[3];
}
sub stamp {
    my ($day, $sec) = @_;
    return sprintf '%sT%02d:%02d:%02dZ', $daystr[$day],
        int($sec / 3600), int($sec / 60) % 60, $sec % 60;
}

sub wopen { open my $fh, '>', "$out/$_[0]" or die "$out/$_[0]: $!\n"; $fh }

my $tf = wopen('tiers.jsonl');
printf $tf qq({"name":"%s","rank":%d,"discount_bp":%d,"label":"%s"}\n), @$_
    for @tiers;
close $tf or die;

my $jf = wopen('members.jsonl');
my $sf = wopen('members.tsv');
my $df;
if ($mdbdump) {
    $df = wopen('members.mdbdump');
    # mapsize: mdb_load's default 10 MiB map cannot hold a million records.
    print $df "VERSION=3\nformat=bytevalue\ntype=btree\n",
              "mapsize=", 4 << 30, "\nmaxreaders=126\n",
              "HEADER=END\n";
}

# tier, stage and blocked per member, packed one byte each, for cookie picks;
# the referrer's number (0: none), packed in 32 bits, for the share codes
my ($tier_of, $stage_of, $blocked_of, $referrer_of) = ('', '', '', '');

for my $i (1 .. $n) {
    my $id = sprintf 'm%07d', $i;

    my $r = rand;
    my $stage = 0;
    $stage++ while $r > $stage_cdf[$stage][0];
    my ($tier, $orders);
    if ($stage <= 1) {                 # prospect, fan: no orders yet
        ($tier, $orders) = (0, 0);
    } elsif ($stage == 2) {            # customer
        ($tier, $orders) = (rand() < 0.8 ? 0 : 1, 1 + int(rand 3));
    } elsif ($stage == 3) {            # member
        ($tier, $orders) = (rand() < 0.6 ? 1 : 2, 2 + int(rand(rand 40)));
    } else {                           # partner
        ($tier, $orders) = (3, 5 + int(rand(rand 200)));
    }
    my $blocked = rand() < 0.005 ? 1 : 0;

    my $jd = int(rand $ndays);
    my $rec = sprintf '{"id":"%s","tier":"%s","stage":"%s","joined_at":"%s"',
        $id, $tiers[$tier][0], $stages[$stage], stamp($jd, int rand 86400);
    my ($fd, $ld) = (0, 0);
    if ($orders) {
        $fd = $jd + int(rand 30);
        $ld = $fd + ($orders > 1 ? int(rand 365) : 0);
        $rec .= sprintf ',"first_order_at":"%s","last_order_at":"%s"',
            stamp($fd, int rand 86400), stamp($ld, int rand 86400);
    }
    my $spend  = $orders * (1500 + int(rand 12000));
    my $points = int($spend / 100) + ($stage >= 1 ? int(rand 50) : 0);
    my $bday   = sprintf '%02d-%02d', 1 + int(rand 12), 1 + int(rand 28);
    $rec .= sprintf ',"orders":%d,"spend":%d,"points":%d,"birthday":"%s"'
                  . ',"blocked":%s',
        $orders, $spend, $points, $bday, $blocked ? 'true' : 'false';
    my $ref = '';
    if ($i > 1 && rand() < 0.2) {
        my $r = 1 + int(rand($i - 1));
        $ref = sprintf 'm%07d', $r;
        $rec .= qq(,"referrer":"$ref");
        vec($referrer_of, $i, 32) = $r;
    }
    print $jf $rec, "}\n";
    print $sf "$id\t$tiers[$tier][0]\t$stages[$stage]\n";

    # A plausible packed record: fixed-width numbers, short strings, padded.
    if ($mdbdump) {
        my $val = pack 'C C C N N N N N N A5 A8', $tier, $stage, $blocked,
            $day0 + $jd * 86400,
            map({ $orders ? $day0 + $_ * 86400 : 0 } $fd, $ld),
            $orders, $spend, $points, $bday, $ref;
        $val = substr($val . ("\0" x $vbytes), 0, $vbytes);
        print $df ' ', unpack('H*', $id), "\n ", unpack('H*', $val), "\n";
    }

    vec($tier_of, $i, 8) = $tier;
    vec($stage_of, $i, 8) = $stage;
    vec($blocked_of, $i, 8) = $blocked;
}
if ($mdbdump) {
    print $df "DATA=END\n";
    close $df or die "$out: $!\n";
}
close $_ or die "$out: $!\n" for $jf, $sf;

# Bench key: derived from the seed so configs and cookies stay reproducible.
my $kid    = 'bench1';
my $secret = sha256_hex("nginx-loyalty bench key $seed");
my $kf = wopen('keys.txt');
print $kf "$kid $secret\n";
close $kf or die;
chmod 0600, "$out/keys.txt";    # nginx warns about world-readable keys

# Blocked members are skipped: a real site would not hand them a cookie and
# the module need not resolve them.
my $exp = time + $ttl;
my $key = pack 'H*', $secret;
my $cf = wopen('cookies.tsv');
my %seen;
my $want = $ncookies;
my $unblocked = $n - ($blocked_of =~ tr/\x01//);
$want = $unblocked if $want > $unblocked;
while (keys %seen < $want) {
    my $i = 1 + int(rand $n);
    next if $seen{$i} || vec($blocked_of, $i, 8);
    $seen{$i} = 1;
    my $id  = sprintf 'm%07d', $i;
    my $mac = encode_base64url(hmac_sha256("member~$id~$exp~$kid", $key));
    printf $cf "%s~%s~%s~%s\t%s\t%s\t%s\n", $id, $exp, $kid, $mac, $id,
        $tiers[vec($tier_of, $i, 8)][0], $stages[vec($stage_of, $i, 8)];
}
close $cf or die;

# Share codes.  Their owners are random unblocked members who were referred
# themselves, so that $loyalty_referrer2 is never empty and every response
# of the "ref" case carries the same headers as "refbare" (add_header drops
# an empty value).  Where the data set has no such member, any unblocked
# member owns codes.  Codes are 8 characters of an alphabet without 0/O and
# 1/I, drawn after everything above so that adding them changed neither
# members nor cookies.
# (loops, not a grep over 1 .. $n, which would build a list of every
# member first: tens of millions of scalars at bench/scale's sizes)
my @owners;
for my $i (1 .. $n) {
    push @owners, $i if !vec($blocked_of, $i, 8) && vec($referrer_of, $i, 32);
}
unless (@owners) {
    for my $i (1 .. $n) { push @owners, $i unless vec($blocked_of, $i, 8) }
}
die "no unblocked member to own share codes\n" unless @owners;

my @alphabet = split //, 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
my $of = wopen('codes.jsonl');
my (@codes, %taken);
while (@codes < $ncodes) {
    my $code = join '', map { $alphabet[int rand @alphabet] } 1 .. 8;
    my %seen = map { $_ => 1 } split //, $code;
    # the import's rules for a code's strength: 4 distinct characters,
    # and digits alone are too few codes to walk (10^8 < 2^28)
    next if keys %seen < 4 || $code =~ /^[0-9]+$/;
    next if $taken{$code}++;
    my $owner = $owners[int rand @owners];
    push @codes, [ $code, $owner ];
    printf $of qq({"code":"%s","member":"m%07d","campaign":"bench"}\n),
        $code, $owner;
}
close $of or die;

# Referral requests: every one clicks a random code; every other one comes
# from a returning visitor whose attribution cookie (a random code,
# clicked 1 to 72 hours ago, well inside the 30-day window) the module
# keeps under first-touch.  The rest are new visitors and get a cookie.
my $now = time;
my $rf = wopen('refs.tsv');
for my $k (1 .. $nrefs) {
    my $click = $codes[int rand @codes];
    my ($cookie, $status, $owner) = ('-', 'new', $click->[1]);
    if ($k % 2 == 0) {
        my $had = $codes[int rand @codes];
        my $at  = $now - 3600 - int(rand(71 * 3600));
        my $id  = sprintf 'm%07d', $had->[1];
        # CODE~AT~KID~MAC, the code's owner bound into the MAC
        # (docs/attribution-cookie.md)
        my $mac = encode_base64url(
            hmac_sha256("ref2~$had->[0]~$at~$kid~$id", $key));
        ($cookie, $status, $owner) =
            ("$had->[0]~$at~$kid~$mac", 'kept', $had->[1]);
    }
    my $r2 = vec($referrer_of, $owner, 32);
    printf $rf "%s\t%s\t%s\tm%07d\t%s\n", $click->[0], $cookie, $status,
        $owner, $r2 ? sprintf('m%07d', $r2) : '-';
}
close $rf or die;

# The rules the event cases import: schema/examples/rules.json's numbers on
# the bench's tiers (fan, silver, gold, partner).  No randomness: it changes
# nothing above.  The event generators (bench/wrk/events.lua) buy "pack-128",
# the SKU that makes a member, in one order out of five.
my $rules = <<'JSON';
{
  "version": 1,
  "description": "nginx-loyalty bench: the example shop's rules on the bench tiers.",
  "signup_tier": "fan",
  "member": {
    "spend": 50000,
    "skus": [ { "sku": "pack-128" } ],
    "tier": "silver"
  },
  "partner": {
    "spend": 2000000,
    "skus": [ { "sku": "pack-128", "qty": 100 } ],
    "tier": "partner"
  },
  "upgrades": [
    { "tier": "silver", "spend": 100000 },
    { "tier": "gold", "spend": 500000 }
  ],
  "points": {
    "spend_per_point": 100,
    "actions": {
      "share": 5, "invite": 20, "group_buy": 30, "assist": 50, "review": 10
    },
    "referral": { "level1": 500, "level2": 200 }
  },
  "lifecycle": { "at_risk": 60, "dormant": 120, "lost": 365 },
  "rfm": {
    "recency": [30, 60, 90, 180],
    "frequency": [2, 4, 8, 16],
    "monetary": [12800, 50000, 200000, 1000000]
  },
  "segments": [
    { "name": "A1", "r": 5, "f": 5, "m": 5 },
    { "name": "A2", "r": 4, "f": 4, "m": 5 },
    { "name": "B1", "r": 5, "f": 4, "m": 4 },
    { "name": "B2", "r": 4, "f": 3, "m": 4 },
    { "name": "C1", "r": 5, "f": 2, "m": 2 },
    { "name": "C2", "r": 4, "f": 2, "m": 2 },
    { "name": "D1", "r": 2, "f": 2, "m": 1 },
    { "name": "D2" }
  ]
}
JSON
my $ruf = wopen('rules.json');
print $ruf $rules;
close $ruf or die;
