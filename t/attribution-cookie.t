# The attribution cookie's test vectors (docs/attribution-cookie-vectors.json,
# made and checked against the C code by build/unit/ref_vectors.t): the
# file against its schema, then a few vectors against the live module,
# whose verdict is the last word: a vector cookie for a code in the store
# is kept with the code's owner as the referrer; one whose code belongs to
# another member now, or whose MAC is bad, is not; an old-form one is kept
# and replaced by the vector's reissued cookie.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $VECTORS = "$ROOT/docs/attribution-cookie-vectors.json";
my $SCHEMA = "$ROOT/schema/attribution-cookie-vectors.schema.json";

my $json = JSON::PP->new->utf8->canonical;
my $doc = $json->decode(slurp($VECTORS));


# the vectors file and its schema

# the file is valid, and the schema can reject
schema_check($SCHEMA, $VECTORS, {
    'an unknown reason' => sub { $_[0]{invalid}[0]{reason} = 'stale' },
    'a referrer in a new-form cookie' =>
        sub { $_[0]{valid}[0]{cookie} =~ s/~/~alice~/ },
    'a MAC input without the referrer' =>
        sub { $_[0]{valid}[0]{mac_input} =~ s/~[^~]+\z// },
    'a limit changed' => sub { $_[0]{limits}{clock_skew} = 600 },
    'a field more' => sub { $_[0]{legacy}[0]{extra} = 1 },
});

my %reasons = map { $_->{reason} => 1 } @{$doc->{invalid}};
is(join(',', sort keys %reasons),
   'bad-mac,expired,future,malformed,other-referrer,oversized,unknown-kid',
   'invalid vectors of every reason');


# the live module, with the vectors' keys file; the vectors' clicks are
# of 2023, so the window is ten years, but for /w30/

sub vector {
    my ($kind, $re) = @_;
    my ($v) = grep { $_->{name} =~ $re } @{$doc->{$kind}};
    die "no $kind vector like $re" unless $v;
    return $v;
}

my $mine = vector('valid', qr/^a minted code of alice's/);
my $k0 = vector('valid', qr/^the same signed with k0/);
my $phone = vector('valid', qr/phone number/);
my $old = vector('legacy', qr/signed with k0/);
my $bad = vector('invalid', qr/^the click time moved a day on/);

my $h = start_nginx(
    keys => $doc->{keys_file},
    store => "[tiers]\n{\"name\":\"gold\",\"rank\":1}\n[members]\n"
             . join('', map { "{\"id\":\"$_\",\"tier\":\"gold\","
                              . "\"stage\":\"member\"}\n" }
                        qw(alice bob 13800138000))
             . "[codes]\n"
             . "{\"code\":\"$mine->{code}\",\"member\":\"alice\"}\n"
             # given to bob since the vector's click
             . "{\"code\":\"$phone->{code}\",\"member\":\"bob\"}\n",
    http_config => "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n"
                   . "loyalty_ref_window 3650d;\n",
    config => 'location / { return 200 '
              . '"[$loyalty_ref_status][$loyalty_ref_code][$loyalty_referrer]\n"; }'
              . "\nlocation /w30/ { loyalty_ref_window 30d; return 200 "
              . '"[$loyalty_ref_status][$loyalty_ref_code][$loyalty_referrer]\n"; }');

sub seen {
    my ($cookie, $uri) = @_;
    my ($status, $hdr, $body) = http_request($h, 'GET', $uri // '/',
        { 'User-Agent' => 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0',
          Cookie => "loyalty_ref=$cookie" });
    my ($set) = map { /^loyalty_ref=([^;]*);/ } @{$hdr->{'set-cookie'} || []};
    return (($status // 'none') . " " . ($body // ''), $set);
}

my ($seen, $set) = seen($mine->{cookie});
is($seen, "200 [kept][$mine->{code}][alice]\n",
   "a vector cookie is kept for the code's owner: $mine->{name}");
ok(!defined $set, 'a new-form cookie is not sent again');

is((seen($k0->{cookie}))[0], "200 [kept][$k0->{code}][alice]\n",
   "kept: $k0->{name}");

is((seen($phone->{cookie}))[0], "200 [none][][]\n",
   'refused once its code is another member\'s (other-referrer)');

is((seen($bad->{cookie}))[0], "200 [none][][]\n",
   "refused (bad-mac): $bad->{name}");

is((seen($mine->{cookie}, '/w30/'))[0], "200 [none][][]\n",
   'refused past a window of 30 days (expired): the window is nginx\'s');

($seen, $set) = seen($old->{cookie});
is($seen, "200 [kept][$old->{code}][alice]\n", "old form kept: $old->{name}");
is($set, $old->{reissued}, 'and replaced by the vector\'s reissued cookie');

stop_checked($h, 'attribution vectors against nginx');

done_testing();
