# Members' data through the admin API of a real nginx: PATCH of a member
# (only the fields of the body change; 400 for a bad field or value, 404
# for an unknown member, 409 for a referrer loop, 403 for a read token;
# refused changes leave the store byte for byte as it was), GET .../export
# (valid against schema/member-export.schema.json), and POST .../erase
# (the member's cookie finds no member afterwards, their share code is
# revoked and its click counts kept, the accounting stays under the
# pseudonym, loyaltyctl verify is clean).  No signal, [alert] or [crit] in
# error.log.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $JSON = JSON::PP->new->canonical;

my $HTTP = <<'END';
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_click_zone clicks 1m;
loyalty_click_flush 1s;
END

my $CONFIG = <<'END';
location /admin/ {
    %%ADMIN%%
}

location /s/ {
    loyalty_share;
}

location / {
    return 200 "[$loyalty_member][$loyalty_stage][$loyalty_tier][$loyalty_points]\n";
}
END

my $STORE = example_store(qw(tiers members))
          . "[codes]\n"
          . qq({"code":"LI-TEA","member":"li.member","target":"/tea"}\n)
          . example_store('rules');


# (status, decoded body or raw text) of an admin request, with the write
# token or the one given
sub api {
    my ($h, $method, $path, $body, $token) = @_;
    my %hdr = (Authorization => 'Bearer ' . ($token // $ADMIN_TOKEN));
    $hdr{'Content-Type'} = 'application/json' if defined $body;
    my ($status, $headers, $text) =
        eval { http_request($h, $method, $path, \%hdr, $body) };
    return ('none', $@) unless defined $status;
    my $doc = eval { $JSON->decode($text) };
    return ($status, $doc // $text, $headers);
}

sub snapshot {
    my ($h) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-p', '-a', $h->{store});
    return $rc ? "mdb_dump exit $rc" : $out;
}

sub ctl_json {
    my ($h, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, @args);
    return $rc ? "exit $rc: $err" : $JSON->decode($out);
}

sub as_member {
    my ($h, $id) = @_;
    my ($status, $headers, $body) = http_request($h, 'GET', '/',
        { Cookie => 'loyalty_member=' . sign_member($id, '1h') });
    return "$status $body";
}

sub no_trouble {
    my ($h, $name) = @_;
    my @bad = grep { /signal|\[alert\]|\[emerg\]|\[crit\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$name: no signal, alert, crit or emerg in error.log")
        or diag(join "\n", @bad);
}


my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                    store => $STORE);


# PATCH: only the fields named change

{
    my $before = ctl_json($h, 'get', 'member', 'lin.fan');
    my ($status, $doc) = api($h, 'PATCH', '/admin/members/lin.fan',
                             '{"stage":"customer","points":30}');
    is($status, 200, 'PATCH: 200');
    is_deeply($doc, { %$before, stage => 'customer', points => 30 },
              'the member after the change: joined_at and birthday kept');
    is_deeply(ctl_json($h, 'get', 'member', 'lin.fan'), $doc,
              'as the store holds it');
    is(as_member($h, 'lin.fan'), "200 [lin.fan][customer][basic][30]\n",
       'the next request sees it');

    ($status, $doc) = api($h, 'PATCH', '/admin/members/lin.fan',
                          '{"birthday":null,"referrer":"wang.partner"}');
    ok($status == 200 && !exists $doc->{birthday}
       && $doc->{referrer} eq 'wang.partner'
       && $doc->{joined_at} eq $before->{joined_at},
       'null removes the birthday; a referrer set');
}


# PATCH: refused, the store unchanged

{
    my $before = snapshot($h);

    for my $case (
        ['nobody', '{"stage":"fan"}', 404, 'no such record'],
        ['lin.fan', '{"colour":"red"}', 400, qr/^unknown field "colour"/],
        ['lin.fan', '{"id":"lin2"}', 400, '"id" cannot change'],
        ['lin.fan', '{"orders":"many"}', 400, '"orders" must be an integer'],
        ['lin.fan', '{"orders":1.5}', 400, '"orders" must be an integer'],
        ['lin.fan', '{"blocked":"yes"}', 400, '"blocked" must be true or false'],
        ['lin.fan', '{"tier":null}', 400, '"tier" cannot be removed'],
        ['lin.fan', '{"points":null}', 400, '"points" cannot be removed'],
        ['lin.fan', '{"tier":"gold"}', 400, qr/unknown tier "gold"/],
        ['lin.fan', '{"birthday":"02-30"}', 400, qr/birthday/],
        ['lin.fan', '{"referrer":"' . ('r' x 65) . '"}', 400, qr/referrer/],
        ['lin.fan', '{"stage":"' . ('s' x 5000) . '"}', 400, qr/stage/],
        ['lin.fan', '{}', 400, 'no field to change'],
        ['lin.fan', '[]', 400, 'the changes must be a JSON object'],
        ['lin.fan', '{"stage":', 400, qr/./],
        ['lin.fan', '{"stage":"fan","stage":"member"}', 400, qr/duplicate/],
        ['li.member', '{"referrer":"chen.customer"}', 409, qr/loop/],
    ) {
        my ($id, $body, $want, $why) = @$case;
        my ($status, $doc) = api($h, 'PATCH', "/admin/members/$id", $body);
        my $name = "PATCH $id " . substr($body, 0, 40);
        is($status, $want, "$name: $want");
        my $error = ref $doc ? $doc->{error} // '' : "not JSON: $doc";
        ref $why ? like($error, $why, "$name: says why")
                 : is($error, $why, "$name: says why");
    }

    my ($status) = api($h, 'PATCH', '/admin/members/lin.fan',
                       '{"stage":"member"}', $ADMIN_READ_TOKEN);
    is($status, 403, 'PATCH with a read token: 403');

    ($status) = api($h, 'PATCH', '/admin/members/lin.fan', undef);
    is($status, 400, 'PATCH without a body: 400');

    is(snapshot($h), $before, 'refused changes leave the store as it was');

    my (undef, undef, $headers) = api($h, 'POST', '/admin/members/lin.fan',
                                      '{}');
    like($headers->{allow} // $headers->{Allow} // '', qr/\bPATCH\b/,
         '405 names PATCH among the methods allowed');
}


# export

{
    my ($status, $doc) = api($h, 'GET', '/admin/members/li.member/export',
                             undef, $ADMIN_READ_TOKEN);
    is($status, 200, 'export with a read token: 200');
    my $dir = test_dir();
    write_file("$dir/export.json", $JSON->encode($doc));
    schema_check("$ROOT/schema/member-export.schema.json",
                 "$dir/export.json",
                 { 'no ledger' => sub { delete $_[0]{ledger} } });
    is_deeply($doc, ctl_json($h, 'export', 'li.member'),
              "the same as loyaltyctl's");
    is_deeply([map { $_->{code} } @{$doc->{codes} // []}], ['LI-TEA'],
              'with the share code');

    ($status) = api($h, 'GET', '/admin/members/nobody/export');
    is($status, 404, 'export of an unknown member: 404');
    ($status) = api($h, 'POST', '/admin/members/li.member/export', '{}');
    is($status, 405, 'POST export: 405');
}


# erase

{
    # clicks on the member's code, flushed to the store
    for (1 .. 3) {
        http_request($h, 'GET', '/s/LI-TEA', {
            'User-Agent' => 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0',
            'X-Forwarded-For' => "10.0.0.$_" });
    }
    my $clicks;
    my $deadline = time + 10;
    while (time < $deadline) {
        my ($rc, $out) = loyaltyctl('-s', $h->{store}, 'clicks', 'LI-TEA');
        $clicks = $out;
        last if $out =~ /"total":3/;
        sleep 0.2;
    }
    like($clicks, qr/"total":3/, 'three clicks on the code in the store');

    like(as_member($h, 'li.member'), qr/^200 \[li\.member\]\[member\]/,
         "before: the member's cookie finds the member");
    my $m = ctl_json($h, 'get', 'member', 'li.member');
    my $ledger = ctl_json($h, 'get', 'ledger', 'li.member');

    my ($status, $doc) = api($h, 'POST', '/admin/members/li.member/erase',
                             undef, $ADMIN_READ_TOKEN);
    is($status, 403, 'erase with a read token: 403');
    ($status) = api($h, 'GET', '/admin/members/li.member/erase');
    is($status, 405, 'GET erase: 405');
    ($status, $doc) = api($h, 'POST', '/admin/members/nobody/erase');
    is($status, 404, 'erase of an unknown member: 404');

    ($status, $doc) = api($h, 'POST', '/admin/members/li.member/erase');
    is($status, 200, 'erase: 200');
    my $p = ref $doc ? $doc->{pseudonym} // 'none' : 'none';
    like($p, qr/^erased-[0-9a-f]{24}$/, 'it names the pseudonym');

    my ($as, undef, $anon) = http_request($h, 'GET', '/', {});
    is(as_member($h, 'li.member'), "$as $anon",
       "the member's cookie finds no member from then on: as anonymous");
    is($anon, "[][prospect][][]\n", 'an anonymous visitor, a prospect');
    unlike(snapshot($h), qr/li\.member/, 'nothing in the store names them');
    my $code = ctl_json($h, 'get', 'code', 'LI-TEA');
    ok(ref $code && $code->{revoked} && $code->{member} eq $p,
       'the share code is revoked, naming the pseudonym');
    my ($rc, $after) = loyaltyctl('-s', $h->{store}, 'clicks', 'LI-TEA');
    is($after, $clicks, 'its click counts are kept');
    my $pm = ctl_json($h, 'get', 'member', $p);
    is_deeply([@$pm{qw(orders spend points)}], [@$m{qw(orders spend points)}],
              'orders, spend and points under the pseudonym');
    is_deeply(ctl_json($h, 'get', 'ledger', $p)->{entries},
              $ledger->{entries}, 'and the ledger');
    my ($vrc, $vout, $verr) = loyaltyctl('-s', $h->{store}, 'verify');
    is("$vrc|$vout|$verr", "0||loyaltyctl: store is consistent\n",
       'verify is clean');

    ($status, $doc) = api($h, 'POST', '/admin/members/li.member/erase');
    is($status, 404, 'erased twice: 404');

    my ($s2, $headers, $text) = http_request($h, 'GET', '/s/LI-TEA', {});
    isnt($s2, 'none', 'the revoked code still answers');
}

no_trouble($h, 'members');
stop_nginx($h);

done_testing();
