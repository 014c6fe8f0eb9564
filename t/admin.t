# The admin API end to end, through a real nginx (master root, workers
# www-data): bearer tokens and token files, routes and methods, members,
# codes, prices and rules, the whole journey of the issue (a share code, a
# signup, the 128 pack, 100 packs: stages, tiers, points, ledgers and
# downlines of the buyer, the referrer and the referrer's referrer),
# idempotent retries, refunds, forward-only stages, events out of time
# order, refused batches that leave the store byte for byte as it was
# (compared with mdb_dump), batch and body limits, reads that never wait
# on LMDB's writer lock, and two workers writing concurrently.
# Durability (kill -9, reloads, a full store) is in t/admin-durability.t.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use IPC::Open2 qw(open2);
use JSON::PP ();
use List::Util qw(sum0);
use MIME::Base64 ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EXAMPLES = "$ROOT/schema/examples";
my $JSON = JSON::PP->new->canonical;
my $JSTR = JSON::PP->new->allow_nonref;

my $TOKEN  = 'shop-backend-7f3a9c2e41d8b6a5';
my $TOKEN2 = 'ops:team/token+2~!';

# as an operator would keep it: root's alone, "ID SCOPE TOKEN" lines,
# comments, blank lines, and a line with blanks around and between
my $TOKDIR = test_dir();
write_file("$TOKDIR/tokens", <<"END", 0600);
# admin tokens: the shop's backend
backend write $TOKEN

  # the ops team
\t ops \twrite  $TOKEN2 \t
END

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

my $VARS = '[$loyalty_member][$loyalty_stage][$loyalty_tier]'
         . '[$loyalty_points][$loyalty_referrer][$loyalty_referrer2]'
         . '[$loyalty_lifecycle][$loyalty_segment]';

my $CONFIG = <<'END' =~ s/%%TOKENS%%/$TOKDIR\/tokens/gr =~ s/%%VARS%%/$VARS/r;
location /admin/ {
    loyalty_admin;
    loyalty_admin_token %%TOKENS%%;
    client_max_body_size 1m;
}

location /small/ {
    loyalty_admin;
    loyalty_admin_token %%TOKENS%%;
    loyalty_admin_batch 5;
    client_max_body_size 2k;
}

location /mall/ {
    loyalty_admin;
    loyalty_admin_token %%TOKENS%%;
    loyalty_share_hosts mall.example.cn;
}

location /s/ {
    loyalty_share;
}

location / {
    return 200 "%%VARS%%\n";
}
END

my $TIERS = "[tiers]\n" . slurp("$EXAMPLES/tiers.jsonl");

# two members of the example shop and a share code of the first; their
# points were imported, so each ledger opens with an "adjust" entry
my $SHOP = $TIERS . <<'END';
[members]
{"id":"wang.partner","tier":"partner","stage":"partner","joined_at":"2023-05-20T08:00:00+08:00","orders":41,"spend":1280000,"points":15400}
{"id":"li.member","tier":"vip","stage":"member","referrer":"wang.partner","joined_at":"2025-03-08T14:00:00+08:00","orders":9,"spend":232200,"points":2622}
[codes]
{"code":"li-vip-tea","member":"li.member","target":"/products/tea-gift","created_at":"2026-11-01T10:00:00+08:00"}
END

my $RULES_TEXT = slurp("$EXAMPLES/rules.json");
my $RULES = $JSON->decode($RULES_TEXT);

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
         . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';


# helpers

# (status, body, headers) of a request to the API, with the first token
# unless Authorization is given ('' for none)
sub api {
    my ($h, $method, $path, $body, %hdr) = @_;
    $hdr{Authorization} //= "Bearer $TOKEN";
    delete $hdr{Authorization} if $hdr{Authorization} eq '';
    my ($status, $headers, $text) =
        eval { http_request($h, $method, $path, \%hdr, $body) };
    return ("error: $@", '', {}) unless defined $headers;
    return ($status // 'none', $text, $headers);
}

# "STATUS BODY"
sub call {
    my ($status, $body) = api(@_);
    return "$status $body";
}

# a batch of events as a JSON array
sub post {
    my ($h, @events) = @_;
    return call($h, 'POST', '/admin/events', $JSON->encode(\@events));
}

sub batch_ok {
    my ($n, $applied, $dup) = @_;
    return qq(200 {"events":$n,"applied":$applied,"duplicates":$dup}\n);
}

# the answer to a refused batch: [index, error] pairs, in the server's
# key order
sub refused {
    my @e = map { sprintf '{"index":%d,"error":%s}', $_->[0],
                          $JSTR->encode($_->[1]) } @_;
    return '422 {"error":"invalid events","errors":[' . join(',', @e)
           . "]}\n";
}

sub error_body {
    my ($status, $message) = @_;
    return "$status " . '{"error":' . $JSTR->encode($message) . "}\n";
}

# the whole store, every database, as mdb_dump prints it
sub snapshot {
    my ($h) = @_;
    my ($rc, $out) = run_out('mdb_dump', '-a', $h->{store});
    return $rc ? "mdb_dump exit $rc" : $out;
}

# passes if the store is as snapshot() saw it; else shows what changed,
# keys and values as text where they are
sub same_store {
    my ($h, $before, $name) = @_;
    my $now = snapshot($h);
    return pass($name) if $now eq $before;
    fail($name);
    my (%was, %is);
    for ([\%was, $before], [\%is, $now]) {
        my ($seen, $text) = @$_;
        my ($db, @pair) = ('(main)');
        for (split /\n/, $text) {
            $db = $1 if /^database=(\S+)/;
            next unless /^ ([0-9a-f]*)$/;
            my $hex = $1;
            my $v = pack 'H*', $hex;
            push @pair, $v =~ /[^\x20-\x7e]/ ? "0x$hex" : $v;
            $seen->{"$db: $pair[0] => $pair[1]"}++ if @pair == 2;
            @pair = () if @pair == 2;
        }
    }
    my @gone = grep { ($was{$_} // 0) > ($is{$_} // 0) } sort keys %was;
    my @new = grep { ($is{$_} // 0) > ($was{$_} // 0) } sort keys %is;
    diag(join "\n", (map { "- $_" } @gone), (map { "+ $_" } @new));
}

# loyaltyctl's stdout, or why not
sub ctl {
    my ($h, @args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $h->{store}, @args);
    return $rc ? "exit $rc: $err" : $out;
}

sub ctl_json {
    my $out = ctl(@_);
    return $out =~ /^exit / ? $out : $JSON->decode($out);
}

# a ledger with the times of "adjust" entries (written at import or PUT
# time) left out
sub ledger_of {
    my ($h, $id) = @_;
    my $l = ctl_json($h, 'get', 'ledger', $id);
    return $l unless ref $l;
    for (@{$l->{entries}}) {
        $_->{at} = 'WRITTEN' if $_->{reason} eq 'adjust'
                                && $_->{at} =~ /^\d{4}-\d\d-\d\dT[\d:]{8}Z$/;
    }
    return $l;
}

sub ledger_sum {
    my ($h, $id) = @_;
    my $l = ctl_json($h, 'get', 'ledger', $id);
    return ref $l ? sum0(map { $_->{delta} } @{$l->{entries}}) : $l;
}

# what "/" tells of a member: the variables, for a later request
sub as_member {
    my ($h, $id, %hdr) = @_;
    $hdr{Cookie} = 'loyalty_member=' . sign_member($id, '1h') if $id;
    my ($status, undef, $body) = http_request($h, 'GET', '/', \%hdr);
    return ($status // 'none') . " $body";
}

sub no_trouble {
    my ($h, $name) = @_;
    my @bad = grep { /exited on signal|\[alert\]|\[emerg\]|\[crit\]/ }
              split /\n/, error_log_text($h);
    ok(!@bad, "$name: no crash, alert, crit or emerg")
        or diag(join "\n", @bad);
}

# RFC 3339 times, some days before now: in UTC, and the same instant
# written in China's time
my $NOW = time;
sub utc { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($NOW - $_[0] * 86400)) }
sub cst {
    POSIX::strftime('%Y-%m-%dT%H:%M:%S+08:00',
                    gmtime($NOW - $_[0] * 86400 + 8 * 3600));
}


# the token file: what nginx -t refuses, naming the file and the line

{
    my $dir = test_dir();
    my %files = (
        empty     => '',
        comments  => "# only a comment\n\n   # and another\n",
        short     => "# tokens\n\nshort write 0123456789abcde\n",
        blank     => "a write $TOKEN\nb write has a space 0123\n",
        tab       => "a write $TOKEN\ttab-after-the-token-0123\n",
        control   => "a write control\x01inside-the-token-0123\n",
        long      => 'a write ' . ('x' x 257) . "\n",
        nonascii  => "a write caf\xc3\xa9-token-0123456789\n",
        limits    => 'a read ' . ('a' x 16) . "\nb write " . ('b' x 256)
                     . "\n",
    );
    write_file("$dir/$_", $files{$_}, 0600) for keys %files;

    my %want = (
        missing  => qq(loyalty_admin_token: cannot open "$dir/missing"),
        empty    => qq(loyalty_admin_token: "$dir/empty" has no token),
        comments => qq(loyalty_admin_token: "$dir/comments" has no token),
        short    => qq(loyalty_admin_token: "$dir/short" line 3: a token is 16 to 256 printable characters),
        blank    => qq(loyalty_admin_token: "$dir/blank" line 2: "ID SCOPE TOKEN" expected),
        tab      => qq(loyalty_admin_token: "$dir/tab" line 1: "ID SCOPE TOKEN" expected),
        control  => qq(loyalty_admin_token: "$dir/control" line 1: a token is 16 to 256 printable characters),
        long     => qq(loyalty_admin_token: "$dir/long" line 1: a token is 16 to 256 printable characters),
        nonascii => qq(loyalty_admin_token: "$dir/nonascii" line 1: a token is 16 to 256 printable characters),
    );

    for my $name (sort keys %want) {
        my $h = eval {
            start_nginx(http_config => $HTTP, store => $TIERS, config => <<"END");
location /admin/ { loyalty_admin; loyalty_admin_token $dir/$name; }
END
        };
        stop_nginx($h) if $h;
        ok(!$h, "token file $name: nginx -t fails");
        like($@ // '', qr/\Q$want{$name}\E/, "token file $name: the reason");
    }

    my @other = (
        [ 'loyalty_admin without loyalty_store',
          '', "location /a/ { loyalty_admin; }",
          '"loyalty_admin" requires "loyalty_store"' ],
        [ 'loyalty_admin twice',
          $HTTP, "location /a/ { loyalty_admin; loyalty_admin; }",
          '"loyalty_admin" directive is duplicate' ],
        [ 'loyalty_admin_token twice',
          $HTTP, "location /a/ { loyalty_admin; loyalty_admin_token $dir/limits; loyalty_admin_token $dir/limits; }",
          '"loyalty_admin_token" directive is duplicate' ],
        [ 'a batch of 0',
          $HTTP, "location /a/ { loyalty_admin; loyalty_admin_batch 0; }",
          '"loyalty_admin_batch" must be 1 to 100000' ],
        [ 'a batch over 100000',
          $HTTP, "location /a/ { loyalty_admin; loyalty_admin_batch 100001; }",
          '"loyalty_admin_batch" must be 1 to 100000' ],
    );

    for (@other) {
        my ($name, $http, $config, $want) = @$_;
        my $h = eval {
            start_nginx(http_config => $http, store => $TIERS,
                        config => $config);
        };
        stop_nginx($h) if $h;
        ok(!$h, "$name: nginx -t fails");
        like($@ // '', qr/\Q$want\E/, "$name: the reason");
    }

    # the shortest and the longest token, and a file every user may read
    write_file("$dir/readable", "backend write $TOKEN\n", 0644);
    my $h = start_nginx(http_config => $HTTP, store => $TIERS, config => <<"END");
location /a/ { loyalty_admin; loyalty_admin_token $dir/limits; }
location /b/ { loyalty_admin; loyalty_admin_token $dir/readable; }
END
    is(call($h, 'GET', '/a/rules', undef, Authorization => 'Bearer ' . ('a' x 16)),
       error_body(404, 'no such record'), 'a token of 16 characters');
    is(call($h, 'GET', '/a/rules', undef, Authorization => 'Bearer ' . ('b' x 256)),
       error_body(404, 'no such record'), 'a token of 256 characters');
    is(call($h, 'GET', '/a/rules', undef, Authorization => 'Bearer ' . ('b' x 255)),
       error_body(401, 'a valid bearer token is required'),
       'a token of 255 characters that is not in the file');
    is(call($h, 'GET', '/b/rules'), error_body(404, 'no such record'),
       'a token from a file every user may read');
    like(error_log_text($h),
         qr/\[warn\].*tokens file "\Q$dir\E\/readable" is readable by every user/,
         'a file every user may read is warned of');
    unlike(error_log_text($h), qr/tokens file "\Q$dir\E\/limits" is readable/,
           'a file only root reads is not');
    no_trouble($h, 'token files');
    stop_nginx($h);
}


# bearer tokens: 401 with WWW-Authenticate, JSON and no-store, before
# anything is read or written

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP);
    my $before = snapshot($h);
    my $signup = $JSON->encode([{ type => 'signup', member => 'intruder' }]);

    my $same_length = $TOKEN =~ s/.$/x/r;
    my @refused = (
        [ 'no Authorization header', '' ],
        [ 'the Basic scheme', 'Basic ' . MIME::Base64::encode_base64("admin:$TOKEN", '') ],
        [ 'another scheme with the token', "Token $TOKEN" ],
        [ 'the token alone', $TOKEN ],
        [ 'Bearer without a token', 'Bearer' ],
        [ 'Bearer and a blank', 'Bearer ' ],
        [ 'a wrong token of the same length', "Bearer $same_length" ],
        [ 'the token less its last character', 'Bearer ' . substr($TOKEN, 0, -1) ],
        [ 'the token and one more character', "Bearer ${TOKEN}x" ],
        [ 'the two tokens together', "Bearer $TOKEN$TOKEN2" ],
        [ 'a token of 300 characters', 'Bearer ' . ('t' x 300) ],
        [ 'a comment of the file', "Bearer # admin tokens: the shop's backend" ],
        [ 'the token in other case', 'Bearer ' . uc $TOKEN ],
    );

    for (@refused) {
        my ($name, $auth) = @$_;
        my ($status, $body, $hdr) =
            api($h, 'POST', '/admin/events', $signup, Authorization => $auth);
        is("$status $body", error_body(401, 'a valid bearer token is required'),
           "401: $name");
        is(join('|', $hdr->{'www-authenticate'} // '-',
                     $hdr->{'cache-control'} // '-',
                     $hdr->{'content-type'} // '-'),
           'Bearer|no-store|application/json', "401: $name: headers");
    }

    for my $req (['GET', '/admin/members/li.member'],
                 ['GET', '/admin/rules'],
                 ['PUT', '/admin/members/intruder', '{"tier":"basic","stage":"fan"}'],
                 ['DELETE', '/admin/members/li.member'],
                 ['GET', '/admin/no/such/thing'])
    {
        my ($m, $p, $b) = @$req;
        is(call($h, $m, $p, $b, Authorization => "Bearer $same_length"),
           error_body(401, 'a valid bearer token is required'),
           "401 before anything else: $m $p");
    }

    same_store($h, $before, 'refused requests change nothing in the store');
    like(error_log_text($h),
         qr/\[info\].*loyalty: admin request without a valid token/,
         'refusals are logged at info');

    is(call($h, 'POST', '/admin/events', $signup), batch_ok(1, 1, 0),
       'the first token of the file');
    is(call($h, 'POST', '/admin/events',
            $JSON->encode([{ type => 'signup', member => 'second' }]),
            Authorization => "Bearer $TOKEN2"),
       batch_ok(1, 1, 0), 'the second token, written between blanks');
    is(call($h, 'GET', '/admin/members/second/ledger', undef,
            Authorization => "bearer $TOKEN"),
       qq(200 {"member":"second","balance":0,"entries":[]}\n),
       'the scheme in any case (RFC 9110)');

    no_trouble($h, 'tokens');
    stop_nginx($h);
}


# routes from the end of the path, methods, and what a 404 or 405 must
# not do: read the body and write it

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP);
    # matched from the end of the path: any prefix after the location anywhere after the location: matched from the end
    is(call($h, 'GET', '/admin/v1/shop/members/li.member/referrals'),
       qq(200 {"member":"li.member","level1":[],"level2":[]}\n),
       'a longer path, matched from its end');
    is(call($h, 'GET', '/admin/members/events'),
       error_body(404, 'no such record'), 'a member named "events"');
    is(call($h, 'GET', '/admin/members/a%20b'),
       error_body(404, 'no such record'), 'an id that cannot be one');

    my $before = snapshot($h);
    # each write names a member of its own: "ghost" and a number
    my $signup = qq({"type":"signup","member":"GHOST"}\n);
    my $member = '{"tier":"basic","stage":"fan"}';

    my @cases = (
        [ 'GET', '/admin/', undef, 404, 'no such resource' ],
        [ 'GET', '/admin/nothing', undef, 404, 'no such resource' ],
        [ 'POST', '/admin/nothing', $signup, 404, 'no such resource' ],
        [ 'POST', '/admin/events/', $signup, 404, 'no such resource' ],
        [ 'GET', '/admin/members/li.member/orders', undef, 404, 'no such resource' ],
        [ 'GET', '/admin/members/li.member/', undef, 404, 'no such resource' ],
        [ 'PUT', '/admin/members/', $member, 404, 'no such record' ],
        [ 'PUT', '/admin/members/' . ('g' x 65), $member, 404, 'no such record' ],
        [ 'GET', '/admin/members/' . ('g' x 65), undef, 404, 'no such record' ],
        [ 'GET', '/admin/events', undef, 405, 'method not allowed here' ],
        [ 'PUT', '/admin/events', $signup, 405, 'method not allowed here' ],
        [ 'POST', '/admin/members/GHOST', $member, 405, 'method not allowed here' ],
        # PATCH changes a member's fields (t/admin-members.t): none here
        [ 'PATCH', '/admin/members/GHOST', $member, 404, 'no such record' ],
        [ 'PUT', '/admin/members/li.member/ledger', '{}', 405, 'method not allowed here' ],
        [ 'DELETE', '/admin/members/li.member/referrals', undef, 405, 'method not allowed here' ],
        [ 'DELETE', '/admin/rules', undef, 405, 'method not allowed here' ],
        [ 'POST', '/admin/rules', $RULES_TEXT, 405, 'method not allowed here' ],
        [ 'GET', '/admin/codes/LI-VIP-TEA', undef, 405, 'method not allowed here' ],
        [ 'DELETE', '/admin/codes/LI-VIP-TEA', undef, 405, 'method not allowed here' ],
        [ 'GET', '/admin/prices/tea', undef, 405, 'method not allowed here' ],
    );

    my $n = 0;
    for (@cases) {
        my ($m, $p, $b, $status, $error) = @$_;
        $n++;
        s/GHOST/ghost$n/g for grep { defined } $p, $b;
        my $name = "$m " . (length $p > 40 ? substr($p, 0, 40) . '...' : $p);
        my $logged = length error_log_text($h);
        my ($s, $body, $hdr) = api($h, $m, $p, $b);
        is("$s $body", error_body($status, $error), "$name: $status");
        is($hdr->{'cache-control'} // '-', 'no-store', "$name: no-store");
        if ($status == 405) {
            my %allow = ('/admin/events' => 'POST',
                         '/admin/rules' => 'GET, PUT',
                         '/admin/prices/tea' => 'PUT');
            $allow{$p} //= 'PUT' if $p =~ m{/codes/};
            my $want = $p =~ m{/(ledger|referrals)$} ? 'GET'
                     : $p =~ m{/members/} ? 'GET, PUT, PATCH, DELETE'
                     : $allow{$p};
            is($hdr->{allow} // '-', $want, "$name: Allow: $want");
        }
        same_store($h, $before, "$name: nothing written");
        my @bad = grep { /\[alert\]|\[crit\]|exited on signal/ }
                  split /\n/, substr(error_log_text($h), $logged);
        ok(!@bad, "$name: no alert, no crash") or diag(join "\n", @bad);
        $before = snapshot($h);
    }

    my $logged = length error_log_text($h);
    my ($s, $body, $hdr) = api($h, 'HEAD', '/admin/rules');
    is("$s $body|" . ($hdr->{'content-type'} // '-'),
       "405 |application/json", 'HEAD: 405, no body');
    unlike(substr(error_log_text($h), $logged), qr/\[alert\]|exited on signal/,
           'HEAD: no alert, no crash');

    no_trouble($h, 'routes');
    stop_nginx($h);
}


# members, codes, prices and rules by PUT, GET and DELETE; every refused
# one leaves the store as it was

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP);

    # members
    is(call($h, 'GET', '/admin/members/bob'),
       error_body(404, 'no such record'), 'GET an unknown member');
    is(call($h, 'PUT', '/admin/members/bob',
            '{"tier":"basic","stage":"fan","referrer":"li.member","points":100,"birthday":"02-29"}'),
       qq(200 {"stored":"member"}\n), 'PUT a new member');
    is(call($h, 'GET', '/admin/members/bob'), '200 ' . ctl($h, 'get', 'member', 'bob'),
       'GET answers what loyaltyctl get member prints');
    is_deeply(ctl_json($h, 'get', 'member', 'bob'),
              { id => 'bob', tier => 'basic', stage => 'fan',
                referrer => 'li.member', orders => 0, spend => 0,
                points => 100, birthday => '02-29', blocked => JSON::PP::false },
              'the member as put');
    is(as_member($h, 'bob'), "200 [bob][fan][basic][100][li.member][wang.partner][none][]\n",
       'the next request sees the new member, no reload');

    is(call($h, 'PUT', '/admin/members/bob',
            '{"id":"bob","tier":"vip","stage":"customer","referrer":"wang.partner","points":40}'),
       qq(200 {"stored":"member"}\n), 'PUT replaces the member');
    is(as_member($h, 'bob'), "200 [bob][customer][vip][40][wang.partner][][none][]\n",
       'the next request sees the replacement');
    is_deeply(ledger_of($h, 'bob'),
              { member => 'bob', balance => 40, entries => [
                  { delta => 100, reason => 'adjust', at => 'WRITTEN' },
                  { delta => -60, reason => 'adjust', at => 'WRITTEN' } ] },
              'points set by PUT are adjust entries of the ledger');
    is(call($h, 'GET', '/admin/members/bob/ledger'),
       '200 ' . ctl($h, 'get', 'ledger', 'bob'),
       'GET ledger answers what loyaltyctl get ledger prints');
    is(call($h, 'GET', '/admin/members/li.member/referrals'),
       qq(200 {"member":"li.member","level1":[],"level2":[]}\n),
       'the old referrer no longer lists bob');
    is(call($h, 'GET', '/admin/members/wang.partner/referrals'),
       qq(200 {"member":"wang.partner","level1":[{"id":"bob","stage":"customer"},{"id":"li.member","stage":"member"}],"level2":[]}\n),
       'the new referrer does');

    my $before = snapshot($h);
    my @bad_members = (
        [ '{"tier":"gold","stage":"fan"}', 422, 'unknown tier "gold"' ],
        [ '{"tier":"public","stage":"fan"}', 422,
          '"tier" must be 1-32 characters of [A-Za-z0-9_.-], and not "public"' ],
        [ '{"tier":"basic","stage":"vip"}', 422,
          '"stage" must be one of prospect, fan, customer, member, partner' ],
        [ '{"id":"bobby","tier":"basic","stage":"fan"}', 422,
          'the body\'s "id" is not the one in the URL' ],
        [ '{"tier":"basic","stage":"fan","points":"12"}', 422, '"points" must be an integer' ],
        [ '{"tier":"basic","stage":"fan","referrer":"bob"}', 422,
          'a member cannot be their own referrer' ],
        [ '{"tier":"basic","stage":"fan","nickname":"b"}', 422, 'unknown field "nickname"' ],
        [ '{"tier":"basic","stage":"fan","referrer":"' . ('r' x 10240) . '"}', 422,
          '"referrer" must be a member id' ],
        [ '[{"tier":"basic","stage":"fan"}]', 400, 'the body must be a JSON object' ],
    );
    for (@bad_members) {
        my ($body, $status, $error) = @$_;
        is(call($h, 'PUT', '/admin/members/bob', $body), error_body($status, $error),
           'PUT member refused: ' . substr($body, 0, 60));
    }
    my ($s, $b) = api($h, 'PUT', '/admin/members/bob', '{"tier":"basic",');
    like("$s $b", qr/^400 \{"error":"[^"]+"\}\n\z/, 'PUT member: bad JSON, 400');
    is(call($h, 'PUT', '/admin/members/bob', ''),
       error_body(400, 'the request has no body'), 'PUT member: no body');
    same_store($h, $before, 'refused PUTs changed nothing');

    # delete: the ledger is closed, the downline forgotten
    is(call($h, 'DELETE', '/admin/members/bob'), qq(200 {"deleted":"bob"}\n),
       'DELETE the member');
    is(call($h, 'DELETE', '/admin/members/bob'), error_body(404, 'no such record'),
       'DELETE again: 404');
    is(call($h, 'DELETE', '/admin/members/nobody'), error_body(404, 'no such record'),
       'DELETE a member that never was: 404');
    unlike(error_log_text($h), qr/\[error\].*admin write failed/,
           'a DELETE of no one is no write failure');
    is(call($h, 'GET', '/admin/members/bob'), error_body(404, 'no such record'),
       'GET after DELETE: 404');
    is(call($h, 'GET', '/admin/members/bob/ledger'), error_body(404, 'no such record'),
       'the ledger of a deleted member: 404');
    is(call($h, 'GET', '/admin/members/bob/referrals'), error_body(404, 'no such record'),
       'the referrals of a deleted member: 404');
    is(as_member($h, 'bob'), "200 [][prospect][][][][][none][]\n",
       'the next request no longer knows bob');
    is(call($h, 'GET', '/admin/members/wang.partner/referrals'),
       qq(200 {"member":"wang.partner","level1":[{"id":"li.member","stage":"member"}],"level2":[]}\n),
       'nor does his referrer\'s downline');
    is(call($h, 'PUT', '/admin/members/bob', '{"tier":"basic","stage":"prospect"}'),
       qq(200 {"stored":"member"}\n), 'the same id made again');
    is_deeply(ledger_of($h, 'bob'),
              { member => 'bob', balance => 0, entries => [] },
              'starts from nothing: the old ledger went with the member');

    # codes
    is(call($h, 'PUT', '/admin/codes/tea-gift',
            '{"member":"li.member","campaign":"tea","target":"/products/tea"}'),
       qq(200 {"stored":"code"}\n), 'PUT a code');
    my $code = ctl_json($h, 'get', 'code', 'TEA-GIFT');
    delete $code->{created_at} if ref $code && $code->{created_at} =~ /Z$/;
    is_deeply($code, { code => 'TEA-GIFT', member => 'li.member', campaign => 'tea',
                       target => '/products/tea', revoked => JSON::PP::false },
              'the code is stored in upper case, created now');
    my ($st, $hdr) = http_request($h, 'GET', '/s/tea-gift', { 'User-Agent' => $UA });
    like("$st " . ($hdr->{location} // '-'), qr{^302 (http://localhost:\d+)?/products/tea\z},
       'its short link works at once');

    $before = snapshot($h);
    for (['/admin/codes/MALL1', '{"member":"li.member","target":"https://mall.example.cn/li"}',
          qr/^422 \{"error":"target host \\"mall\.example\.cn\\" is not in [^"]*"\}\n\z/],
         ['/admin/codes/MALL1', '{"member":"li.member","target":"//evil.example/x"}',
          qr/^422 \{"error":"\\"target\\" must be a path on this site.*"\}\n\z/],
         ['/admin/codes/GHOST1', '{"member":"ghost","target":"/x"}',
          qr/^422 \{"error":"unknown member \\"ghost\\""\}\n\z/],
         ['/admin/codes/ab1', '{"code":"AB2","member":"li.member"}',
          qr/^422 \{"error":"the body's \\"code\\" is not the one in the URL"\}\n\z/],
         ['/admin/codes/a', '{"member":"li.member"}',
          qr/^422 \{"error":"\\"a\\" is not a code"\}\n\z/],
         ['/admin/codes/' . ('C' x 33), '{"member":"li.member"}',
          qr/^422 \{"error":"\\"C{33}\\" is not a code"\}\n\z/])
    {
        my ($path, $body, $want) = @$_;
        like(call($h, 'PUT', $path, $body), $want, "PUT code refused: $body");
    }
    same_store($h, $before, 'refused codes changed nothing');
    is(call($h, 'PUT', '/mall/codes/MALL-01',
            '{"code":"mall-01","member":"li.member","target":"https://mall.example.cn/li"}'),
       qq(200 {"stored":"code"}\n),
       'an off-site target on a host of the location\'s loyalty_share_hosts');
    is(ctl_json($h, 'get', 'code', 'mall-01')->{target}, 'https://mall.example.cn/li',
       'stored');

    # issue 18: a new code easy to guess is refused, unless a vanity code
    $before = snapshot($h);
    like(call($h, 'PUT', '/admin/codes/Q7Z', '{"member":"li.member"}'),
         qr/^422 \{"error":"code \\"Q7Z\\" is too easy to guess: a new code needs at least 6 characters.*or \\"vanity\\": true"\}\n\z/,
         'PUT of a 3-character code: refused');
    like(call($h, 'PUT', '/admin/codes/12345678', '{"member":"li.member"}'),
         qr/^422 \{"error":"code \\"12345678\\" is too easy to guess/,
         'PUT of 8 digits: refused');
    same_store($h, $before, 'weak codes changed nothing');
    is(call($h, 'PUT', '/admin/codes/Q7Z', '{"member":"li.member","vanity":true}'),
       qq(200 {"stored":"code","warning":"vanity code \\"Q7Z\\" is easy to guess: limit misses with limit_req"}\n),
       'PUT of a vanity code: stored, with a warning');
    like(error_log_text($h), qr/\[warn\].*loyalty: admin write: vanity code "Q7Z" is easy to guess/,
         'the warning is logged');
    is(ctl_json($h, 'get', 'code', 'q7z')->{vanity}, 1, 'stored as a vanity code');

    # prices and the privilege guard
    is(call($h, 'PUT', '/admin/prices/tea', '{"retail":10000,"tiers":{"vip":9000,"ka":8500}}'),
       qq(200 {"stored":"price"}\n), 'PUT a price');
    is(ctl($h, 'get', 'price', 'tea'),
       qq({"sku":"tea","retail":10000,"tiers":{"vip":9000,"ka":8500}}\n), 'stored');
    $before = snapshot($h);
    for (['{"retail":10000,"tiers":{"vip":9000,"ka":9500}}',
          'sku "tea" breaks the privilege guard: tier "ka" (rank 2) price 9500 is above tier "vip" (rank 1) price 9000'],
         ['{"retail":10000,"tiers":{"vip":10001}}',
          'sku "tea" breaks the privilege guard: tier "vip" price 10001 is above retail 10000'],
         ['{"retail":10000,"tiers":{"gold":9000}}', '"tiers": unknown tier "gold"'],
         ['{"sku":"coffee","retail":10000}', 'the body\'s "sku" is not the one in the URL'])
    {
        my ($body, $error) = @$_;
        is(call($h, 'PUT', '/admin/prices/tea', $body), error_body(422, $error),
           "PUT price refused: $body");
    }
    # a tier discount that the override must not undercut the wrong way:
    # partner (rank 3, 46% off) pays 5400 for sofa unless told otherwise
    is(call($h, 'PUT', '/admin/prices/sofa', '{"retail":10000,"tiers":{"ka":5000}}'),
       error_body(422, 'sku "sofa" breaks the privilege guard: tier "partner" (rank 3) price 5400 is above tier "ka" (rank 2) price 5000'),
       'PUT price refused: the guard counts tier discounts too');
    same_store($h, $before, 'refused prices changed nothing');

    # rules
    is(call($h, 'GET', '/admin/rules'), error_body(404, 'no such record'),
       'GET rules before any');
    $before = snapshot($h);
    my $bad = $JSON->decode($RULES_TEXT);
    $bad->{signup_tier} = 'gold';
    is(call($h, 'PUT', '/admin/rules', $JSON->encode($bad)),
       error_body(422, 'signup_tier: unknown tier "gold"'), 'PUT rules: an unknown tier');
    is(call($h, 'PUT', '/admin/rules', '{"version":1}'),
       error_body(422, '"signup_tier" is required'), 'PUT rules: incomplete');
    is(call($h, 'PUT', '/admin/rules', '[]'),
       error_body(400, 'the body must be a JSON object'), 'PUT rules: an array');
    same_store($h, $before, 'refused rules changed nothing');
    is(call($h, 'PUT', '/admin/rules', $RULES_TEXT), qq(200 {"stored":"rules"}\n),
       'PUT the example rules');
    my ($rs, $rb) = api($h, 'GET', '/admin/rules');
    is("$rs $rb", '200 ' . ctl($h, 'get', 'rules'),
       'GET rules answers what loyaltyctl get rules prints');
    is_deeply(eval { $JSON->decode($rb) }, $RULES, 'the document as put');
    is(call($h, 'PUT', '/admin/rules', $JSON->encode($bad)) =~ s/ .*//sr, '422',
       'bad rules again');
    is(call($h, 'GET', '/admin/rules'), "200 $rb", 'the old rules stay');

    no_trouble($h, 'records');
    stop_nginx($h);
}


# the journey: a visitor clicks li.member's share code, signs up, buys the
# 128 pack (a member), then 100 packs (a partner); li.member referred them,
# wang.partner referred li.member

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP);
    my $P = $RULES->{points};
    my ($L1, $L2, $SPP) = ($P->{referral}{level1}, $P->{referral}{level2},
                           $P->{spend_per_point});
    is_deeply([$L1, $L2, $SPP, $P->{actions}{share}], [500, 200, 100, 5],
              'the example rules\' points, as the numbers below assume');

    is(call($h, 'PUT', '/admin/rules', $RULES_TEXT), qq(200 {"stored":"rules"}\n),
       'rules by PUT');

    # the click: attributed for the window, both levels visible
    my ($st, $hdr) = http_request($h, 'GET', '/s/LI-VIP-TEA', { 'User-Agent' => $UA });
    my ($ref) = join(';', @{$hdr->{'set-cookie'} || []}) =~ /loyalty_ref=([^;]+)/;
    like("$st " . ($hdr->{location} // '-'), qr{^302 (http://localhost:\d+)?/products/tea-gift\z},
         'the short link');
    ok($ref, 'the click attributes the visitor');
    is(as_member($h, undef, Cookie => "loyalty_ref=$ref"),
       "200 [][prospect][][][li.member][wang.partner][none][]\n",
       'an anonymous visitor, referred by li.member');

    # signup with the code, in China's time
    is(post($h, { type => 'signup', member => 'xiao.ming', at => cst(3),
                  ref_code => 'li-vip-tea' }),
       batch_ok(1, 1, 0), 'signup with the share code');
    is(as_member($h, 'xiao.ming'),
       "200 [xiao.ming][fan][basic][0][li.member][wang.partner][none][D3]\n",
       'a fan of the signup tier, li.member\'s for life');

    # the 128 pack: customer, then member by the SKU; vip by the member stage
    is(post($h, { type => 'order', member => 'xiao.ming', order_id => 'SO-1',
                  amount => 12800, at => cst(2),
                  items => [{ sku => 'nappies-128', qty => 1 }] }),
       batch_ok(1, 1, 0), 'the first order: the 128 pack');
    # r: 2 days -> 5; f: 1 order -> 1; m: 12800 -> 2: C3 (r3 f1 m2)
    is(as_member($h, 'xiao.ming'),
       "200 [xiao.ming][member][vip][128][li.member][wang.partner][active][C3]\n",
       'a member, vip, a point per yuan');
    is(as_member($h, 'li.member'),
       '200 [li.member][member][vip][' . (2622 + $L1) . "][wang.partner][][none][D3]\n",
       'the referrer got level-1 points');
    is(as_member($h, 'wang.partner'),
       '200 [wang.partner][partner][partner][' . (15400 + $L2) . "][][][none][D3]\n",
       'the referrer\'s referrer got level-2 points');

    # 100 packs in two lines and a share: partner by the SKU quantity
    is(post($h, { type => 'order', member => 'xiao.ming', order_id => 'SO-2',
                  amount => 1280000, at => utc(1),
                  items => [{ sku => 'nappies-128', qty => 60 },
                            { sku => 'nappies-128', qty => 40 }] },
                { type => 'action', member => 'xiao.ming', kind => 'share',
                  id => 'ACT-1', at => utc(1) }),
       batch_ok(2, 2, 0), 'the second order: 100 packs, and a share');
    # r5; f: 2 orders -> 2; m: 1292800 -> 5: C1 (r5 f2 m2)
    my $xm = 128 + 12800 + 5;
    is(as_member($h, 'xiao.ming'),
       "200 [xiao.ming][partner][partner][$xm][li.member][wang.partner][active][C1]\n",
       'a partner of the partner tier');

    is_deeply(ctl_json($h, 'get', 'member', 'xiao.ming'),
              { id => 'xiao.ming', tier => 'partner', stage => 'partner',
                referrer => 'li.member', joined_at => utc(3),
                first_order_at => utc(2), last_order_at => utc(1),
                orders => 2, spend => 1292800, points => $xm,
                blocked => JSON::PP::false },
              'the buyer\'s record');
    is(call($h, 'GET', '/admin/members/xiao.ming'),
       '200 ' . ctl($h, 'get', 'member', 'xiao.ming'), 'the same through the API');

    is_deeply(ledger_of($h, 'xiao.ming'),
              { member => 'xiao.ming', balance => $xm, entries => [
                  { delta => 128, reason => 'order', event => 'SO-1', at => utc(2) },
                  { delta => 12800, reason => 'order', event => 'SO-2', at => utc(1) },
                  { delta => 5, reason => 'action', event => 'ACT-1', at => utc(1) } ] },
              'the buyer\'s ledger');
    is_deeply(ledger_of($h, 'li.member'),
              { member => 'li.member', balance => 2622 + $L1, entries => [
                  { delta => 2622, reason => 'adjust', at => 'WRITTEN' },
                  { delta => $L1, reason => 'referral_l1', event => 'SO-1', at => utc(2) } ] },
              'the referrer\'s ledger: level 1 on the first order only');
    is_deeply(ledger_of($h, 'wang.partner'),
              { member => 'wang.partner', balance => 15400 + $L2, entries => [
                  { delta => 15400, reason => 'adjust', at => 'WRITTEN' },
                  { delta => $L2, reason => 'referral_l2', event => 'SO-1', at => utc(2) } ] },
              'the referrer\'s referrer\'s ledger: level 2');
    for my $id (qw(xiao.ming li.member wang.partner)) {
        is(call($h, 'GET', "/admin/members/$id/ledger"),
           '200 ' . ctl($h, 'get', 'ledger', $id), "$id: the ledger through the API");
    }

    is(call($h, 'GET', '/admin/members/li.member/referrals'),
       qq(200 {"member":"li.member","level1":[{"id":"xiao.ming","stage":"partner"}],"level2":[]}\n),
       'the referrer\'s downline');
    is(call($h, 'GET', '/admin/members/wang.partner/referrals'),
       qq(200 {"member":"wang.partner","level1":[{"id":"li.member","stage":"member"}],"level2":[{"id":"xiao.ming","stage":"partner","via":"li.member"}]}\n),
       'the referrer\'s referrer\'s downline, both levels');
    is(call($h, 'GET', '/admin/members/xiao.ming/referrals'),
       qq(200 {"member":"xiao.ming","level1":[],"level2":[]}\n), 'the buyer\'s: none');

    # idempotent retries: the same batches again change nothing at all
    my $before = snapshot($h);
    my @retry = (
        [ { type => 'signup', member => 'xiao.ming', at => cst(3), ref_code => 'li-vip-tea' } ],
        [ { type => 'order', member => 'xiao.ming', order_id => 'SO-1', amount => 12800,
            at => cst(2), items => [{ sku => 'nappies-128', qty => 1 }] } ],
        [ { type => 'order', member => 'xiao.ming', order_id => 'SO-2', amount => 1280000,
            at => utc(1), items => [{ sku => 'nappies-128', qty => 60 },
                                    { sku => 'nappies-128', qty => 40 }] },
          { type => 'action', member => 'xiao.ming', kind => 'share', id => 'ACT-1',
            at => utc(1) } ],
    );
    is(post($h, @$_), batch_ok(scalar @$_, 0, scalar @$_), 'a retry: all duplicates')
        for @retry;
    same_store($h, $before, 'retries changed nothing in the store');
    my $lines = join '', map { $JSON->encode($_) . "\n" } map { @$_ } @retry;
    is(call($h, 'POST', '/admin/events', $lines), batch_ok(4, 0, 4),
       'the same as JSON Lines: all duplicates');
    same_store($h, $before, 'still nothing changed');

    my $a2 = { type => 'action', member => 'xiao.ming', kind => 'review',
               id => 'ACT-2', at => utc(1) };
    is(post($h, $a2, $a2), batch_ok(2, 1, 1), 'an event twice in one batch: once');
    $xm += 10;

    # refunds take back in proportion, rounded down at every step, the
    # buyer's points and the referrers'; stages and tiers stay
    is(post($h, { type => 'refund', refund_id => 'RF-1', order_id => 'SO-1',
                  amount => 1000, at => utc(0.5) }),
       batch_ok(1, 1, 0), 'a partial refund of the first order');
    # 128 * 1000 / 12800 = 10; 500 * 1000 / 12800 = 39.06; 200 * ... = 15.6
    is(as_member($h, 'xiao.ming'),
       '200 [xiao.ming][partner][partner][' . ($xm - 10) . "][li.member][wang.partner][active][C1]\n",
       'the buyer: points back, still a partner');
    is_deeply([map { ctl_json($h, 'get', 'member', $_)->{points} } qw(li.member wang.partner)],
              [2622 + $L1 - 39, 15400 + $L2 - 15], 'the referrers: points back, rounded down');
    is(ctl_json($h, 'get', 'member', 'xiao.ming')->{spend}, 1292800 - 1000,
       'spend goes down');

    $before = snapshot($h);
    is(post($h, { type => 'refund', refund_id => 'RF-X', order_id => 'SO-1', amount => 11801 }),
       refused([0, 'refund of 11801 exceeds the 11800 left to refund of order "SO-1"']),
       'a refund of more than is left: 422');
    is(post($h, { type => 'refund', refund_id => 'RF-Y', order_id => 'SO-404', amount => 1 }),
       refused([0, 'unknown order "SO-404"']), 'a refund of an unknown order: 422');
    is(post($h, { type => 'refund', refund_id => 'RF-A', order_id => 'SO-2', amount => 640000 },
                { type => 'refund', refund_id => 'RF-B', order_id => 'SO-2', amount => 640001 }),
       refused([1, 'refund of 640001 exceeds the 640000 left to refund of order "SO-2"']),
       'two refunds in a batch that together refund too much: 422 for the second');
    is(post($h, { type => 'refund', refund_id => 'RF-Z', order_id => 'SO-1', amount => 0 }),
       refused([0, '"amount" must be between 1 and 1000000000000']),
       'a refund of nothing: 422');
    same_store($h, $before, 'refused refunds changed nothing, not even RF-A');

    is(post($h, { type => 'refund', refund_id => 'RF-2', order_id => 'SO-1',
                  amount => 11800, at => utc(0.5) }),
       batch_ok(1, 1, 0), 'the rest of the first order refunded');
    $xm -= 128;
    is_deeply([map { ctl_json($h, 'get', 'member', $_)->{points} } qw(xiao.ming li.member wang.partner)],
              [$xm, 2622, 15400], 'a whole refund takes back all the order gave');
    is_deeply([@{ledger_of($h, 'li.member')->{entries}}[2, 3]],
              [{ delta => -39, reason => 'refund', event => 'RF-1', at => utc(0.5) },
               { delta => -461, reason => 'refund', event => 'RF-2', at => utc(0.5) }],
              'the referrer\'s ledger has both refunds');
    is(post($h, { type => 'refund', refund_id => 'RF-3', order_id => 'SO-1', amount => 1 }),
       refused([0, 'refund of 1 exceeds the 0 left to refund of order "SO-1"']),
       'nothing left to refund: 422');
    is(post($h, { type => 'refund', refund_id => 'RF-1', order_id => 'SO-1',
                  amount => 1000 }),
       batch_ok(1, 0, 1), 'a refund retried: a duplicate, though nothing is left');

    # forward-only stages, events out of time order, SKUs not in prices
    is(post($h, { type => 'follow', member => 'xiao.ming', at => utc(0.1) },
                { type => 'signup', member => 'li.member', at => utc(0.1) },
                { type => 'order', member => 'xiao.ming', order_id => 'SO-3', amount => 100,
                  at => utc(0.1), items => [{ sku => 'no-such-sku', qty => 3 }] },
                { type => 'order', member => 'xiao.ming', order_id => 'SO-0', amount => 2500,
                  at => utc(30), items => [{ sku => 'sofa-298' }] },
                { type => 'order', member => 'xiao.ming', order_id => 'SO-15', amount => 100,
                  at => utc(1.5) }),
       batch_ok(5, 5, 0), 'a follow, a signup, and orders out of time order');
    $xm += 1 + 25 + 1;
    is_deeply(ctl_json($h, 'get', 'member', 'xiao.ming'),
              { id => 'xiao.ming', tier => 'partner', stage => 'partner',
                referrer => 'li.member', joined_at => utc(3),
                first_order_at => utc(30), last_order_at => utc(0.1),
                orders => 5, spend => 1292800 - 12800 + 100 + 2500 + 100,
                points => $xm, blocked => JSON::PP::false },
              'the earliest order is first, the latest last; stage, tier and '
              . 'joined_at stay');
    is(as_member($h, 'li.member'),
       '200 [li.member][member][vip][2622][wang.partner][][none][D3]' . "\n",
       'a signup makes no member a fan again');
    is(ctl_json($h, 'get', 'member', 'li.member')->{referrer}, 'wang.partner',
       'nor changes their referrer');

    # a second referred person's first order pays the referrers again;
    # a code of their own refers no one
    is(post($h, { type => 'signup', member => 'xiao.hong', referrer => 'xiao.ming', at => utc(0.2) },
                { type => 'order', member => 'xiao.hong', order_id => 'SO-H1', amount => 9900,
                  at => utc(0.1), items => [{ sku => 'membership-99' }] }),
       batch_ok(2, 2, 0), 'xiao.ming refers xiao.hong, who buys a membership');
    is(as_member($h, 'xiao.hong'),
       "200 [xiao.hong][member][vip][99][xiao.ming][li.member][active][D2]\n",
       'a member by the membership SKU');
    is_deeply([map { ctl_json($h, 'get', 'member', $_)->{points} } qw(xiao.ming li.member wang.partner)],
              [$xm + $L1, 2622 + $L2, 15400], 'level 1 and level 2 for the new order, none above');
    is(call($h, 'GET', '/admin/members/li.member/referrals'),
       qq(200 {"member":"li.member","level1":[{"id":"xiao.ming","stage":"partner"}],"level2":[{"id":"xiao.hong","stage":"member","via":"xiao.ming"}]}\n),
       'li.member\'s downline has both levels');

    for my $id (qw(xiao.ming xiao.hong li.member wang.partner)) {
        is(ledger_sum($h, $id), ctl_json($h, 'get', 'member', $id)->{points},
           "$id: points are the sum of the ledger");
    }
    is(ctl($h, 'verify'), '', 'loyaltyctl verify finds nothing wrong');

    no_trouble($h, 'the journey');
    stop_nginx($h);
}


# refused batches: every bad event named by its index, nothing applied

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP . "[rules]\n$RULES_TEXT");
    is(post($h, { type => 'order', member => 'li.member', order_id => 'O-1',
                  amount => 100, at => utc(1) }),
       batch_ok(1, 1, 0), 'a good order first');
    my $before = snapshot($h);
    my $T = utc(1);
    my $good = qq({"type":"signup","member":"good.one"});
    my $long = 'm' x 10240;

    my @cases = (
        [ 'an unknown member',
          qq([$good,{"type":"order","member":"ghost","order_id":"O-2","amount":1,"at":"$T"}]),
          refused([1, 'unknown member "ghost"']) ],
        [ 'an unknown member of an action',
          qq([{"type":"action","member":"ghost","kind":"share","id":"A-1","at":"$T"}]),
          refused([0, 'unknown member "ghost"']) ],
        [ 'an unknown referrer',
          qq([{"type":"signup","member":"x","referrer":"ghost"}]),
          refused([0, 'unknown referrer "ghost"']) ],
        [ 'wrong types, every one named',
          qq([{"type":"order","member":"li.member","order_id":"O-3","amount":"100","at":"$T"},)
          . qq({"type":"order","member":"li.member","order_id":3,"amount":1,"at":"$T"},)
          . qq({"type":"order","member":"li.member","order_id":"O-4","amount":1.5,"at":"$T"},)
          . qq({"type":"order","member":"li.member","order_id":"O-5","amount":1,"at":"$T","items":"nappies"},)
          . qq({"type":"order","member":"li.member","order_id":"O-6","amount":1,"at":1700000000},)
          . qq({"type":"signup","member":["li.member"]},)
          . qq({"type":"order","member":"li.member","order_id":"O-7","amount":-1,"at":"$T"},)
          . qq({"type":"order","member":"li.member","order_id":"O-8","amount":1,"at":"$T","items":[{"sku":"a","qty":0}]},)
          . qq({"type":"action","member":"li.member","kind":"dance","id":"A-2","at":"$T"},)
          . qq($good]),
          refused([0, '"amount" must be an integer'], [1, '"order_id" must be a string'],
                  [2, '"amount" must be an integer'], [3, '"items" must be an array'],
                  [4, '"at" must be a string'], [5, '"member" must be a string'],
                  [6, '"amount" must be between 0 and 1000000000000'],
                  [7, 'items[0]: "qty" must be between 1 and 1000000'],
                  [8, '"kind" must be one of share, invite, group_buy, assist, review']) ],
        [ 'missing and unknown fields',
          qq([{"type":"order","member":"li.member","order_id":"O-9","amount":1},)
          . qq({"type":"signup","member":"x","coupon":"FREE"},{"member":"x"},{"type":"party","member":"x"}]),
          refused([0, '"at" is required'], [1, 'unknown field "coupon"'],
                  [2, '"type" must be one of signup, follow, order, refund, action'],
                  [3, '"type" must be one of signup, follow, order, refund, action']) ],
        [ 'bad times and codes',
          qq([{"type":"order","member":"li.member","order_id":"O-10","amount":1,"at":"yesterday"},)
          . qq({"type":"signup","member":"x","ref_code":"A"},)
          . qq({"type":"signup","member":"x","ref_code":"ABC","referrer":"li.member"},)
          . qq({"type":"signup","member":"x","referrer":"x"}]),
          refused([0, '"at" must be an RFC 3339 date-time'],
                  [1, '"ref_code" must be 3-32 characters of [A-Za-z0-9_-]'],
                  [2, '"ref_code" and "referrer" exclude each other'],
                  [3, 'a member cannot be their own referrer']) ],
        [ 'ids of 10 KB',
          qq([{"type":"signup","member":"$long"},)
          . qq({"type":"order","member":"li.member","order_id":"$long","amount":1,"at":"$T"},)
          . qq({"type":"action","member":"li.member","kind":"share","id":"$long","at":"$T"},)
          . qq({"type":"order","member":"li.member","order_id":"O-11","amount":1,"at":"$T","items":[{"sku":"$long"}]}]),
          refused([0, '"member" must be 1-64 characters of [A-Za-z0-9_.-]'],
                  [1, '"order_id" must be 1-64 characters of [A-Za-z0-9_.-]'],
                  [2, '"id" must be 1-64 characters of [A-Za-z0-9_.-]'],
                  [3, 'items[0]: "sku" must be 1-64 characters of [A-Za-z0-9_.-]']) ],
        [ 'an id of 65 characters and one with a blank',
          qq([{"type":"signup","member":"${\ ('a' x 65)}"},{"type":"signup","member":"a b"}]),
          refused([0, '"member" must be 1-64 characters of [A-Za-z0-9_.-]'],
                  [1, '"member" must be 1-64 characters of [A-Za-z0-9_.-]']) ],
        [ 'an array of things that are not events',
          qq([1,"signup",null,[],$good]),
          refused(map { [$_, 'expected a JSON object'] } 0 .. 3) ],
        [ 'a good batch but for its last event',
          join('', map { qq({"type":"signup","member":"fine-$_"}\n) } 1 .. 9)
          . qq({"type":"order","member":"fine-1","order_id":"O-12","amount":1}\n),
          refused([9, '"at" is required']) ],
        [ 'JSON Lines: a line that is not JSON, blank lines not counted',
          qq($good\n\n  \nhello\n\r\n{"type":"signup","member":"y"}\n{"type":"signup",\n),
          refused([1, "bad JSON: '[' or '{' expected near 'hello'"],
                  [3, 'bad JSON: string or \'}\' expected near end of file']) ],
        [ 'JSON Lines: a duplicate key',
          qq({"type":"signup","member":"x","member":"y"}\n),
          refused([0, q(bad JSON: duplicate object key near '"member"')]) ],
        [ 'a JSON object over several lines (JSON Lines take one a line)',
          qq({\n  "type": "signup",\n  "member": "pretty"\n}\n),
          refused([0, "bad JSON: string or '}' expected near end of file"],
                  [1, q(bad JSON: '[' or '{' expected near '"type"')],
                  [2, q(bad JSON: '[' or '{' expected near '"member"')],
                  [3, "bad JSON: '[' or '{' expected near '}'"]) ],
    );

    for (@cases) {
        my ($name, $body, $want) = @$_;
        is(call($h, 'POST', '/admin/events', $body), $want, "422: $name");
        same_store($h, $before, "422: $name: nothing applied");
    }

    # a body that is no JSON at all: one error without an index
    # (schema/batch.schema.json)
    for (['an array cut short', qq([$good,{"type":"signup"),
          q(bad JSON: '}' expected near end of file at line 1 column 55)],
         ['an array and more', qq([$good] [$good]),
          q(bad JSON: end of file expected near '[' at line 1 column 41)],
         ['an array and a comma', qq([$good,]),
          q(bad JSON: unexpected token near ']' at line 1 column 40)])
    {
        my ($name, $body, $error) = @$_;
        is(call($h, 'POST', '/admin/events', $body),
           '422 {"error":"invalid events","errors":[{"error":' . $JSTR->encode($error) . "}]}\n",
           "422: $name");
        same_store($h, $before, "422: $name: nothing applied");
    }
    is(call($h, 'POST', '/admin/events', ''),
       error_body(400, 'the request has no body'), '400: an empty body');
    is(call($h, 'POST', '/admin/events', undef, 'Content-Length' => 0),
       error_body(400, 'the request has no body'), '400: Content-Length: 0');
    same_store($h, $before, 'an empty body applies nothing');

    is(call($h, 'POST', '/admin/events', '[]'), batch_ok(0, 0, 0),
       'an empty array: a batch of none');
    same_store($h, $before, 'and nothing changes');

    # one event on one line is a batch of JSON Lines
    is(call($h, 'POST', '/admin/events', $good), batch_ok(1, 1, 0),
       'a single JSON object, one line, no newline: a batch of one');
    is(call($h, 'POST', '/admin/events',
            qq({"type":"signup","member":"crlf-1"}\r\n{"type":"signup","member":"crlf-2"}\r\n)),
       batch_ok(2, 2, 0), 'JSON Lines with CRLF');
    is(ctl_json($h, 'get', 'member', 'crlf-2')->{stage}, 'fan', 'applied');

    no_trouble($h, 'refused batches');
    stop_nginx($h);
}


# limits: loyalty_admin_batch, client_max_body_size, a body on disk, a
# chunked body, the ledger's last 1,000 entries

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP . "[rules]\n$RULES_TEXT");
    my $before = snapshot($h);
    my @six = map { { type => 'signup', member => "s-$_" } } 1 .. 6;

    is(call($h, 'POST', '/small/events', $JSON->encode(\@six)),
       error_body(413, 'more than 5 events in one request'),
       'loyalty_admin_batch 5: 6 events in an array');
    is(call($h, 'POST', '/small/events',
            join("\n\n", map { $JSON->encode($_) } @six) . "\n"),
       error_body(413, 'more than 5 events in one request'),
       'loyalty_admin_batch 5: 6 lines of JSON Lines');
    is(call($h, 'POST', '/small/events',
            $JSON->encode([@six, { type => 'nonsense' }])),
       error_body(413, 'more than 5 events in one request'),
       'too many is told before any event is checked');
    same_store($h, $before, '413: nothing applied');

    my ($s, $b, $hdr) = api($h, 'POST', '/small/events',
                            $JSON->encode([@six[0 .. 4]]) . (' ' x 3000));
    is($s, 413, 'over client_max_body_size: 413 from nginx');
    same_store($h, $before, 'nothing applied');

    is(call($h, 'POST', '/small/events',
            join("\n \n\n", map { $JSON->encode($_) } @six[0 .. 4]) . "\n\n\n"),
       batch_ok(5, 5, 0), 'loyalty_admin_batch 5: 5 events and blank lines');

    # the default, 1000, with a body of ~90 KB: past client_body_buffer_size,
    # so nginx keeps it in a temporary file
    my @actions = map { { type => 'action', member => 'li.member', kind => 'share',
                          id => "A-$_", at => utc(1) } } 0 .. 1004;
    my $body = $JSON->encode([@actions[0 .. 1000]]);
    is(call($h, 'POST', '/admin/events', $body),
       error_body(413, 'more than 1000 events in one request'),
       'the default limit: 1001 events');
    $body = $JSON->encode([@actions[0 .. 999]]);
    ok(length $body > 16384, 'a body larger than client_body_buffer_size');
    is(call($h, 'POST', '/admin/events', $body), batch_ok(1000, 1000, 0),
       'the default limit: 1000 events');
    is(post($h, @actions[1000 .. 1004]), batch_ok(5, 5, 0), '5 more');

    my ($ls, $lb) = api($h, 'GET', '/admin/members/li.member/ledger');
    my $l = eval { $JSON->decode($lb) } // {};
    is(join(' ', $ls, $l->{balance} // '-', scalar @{$l->{entries} || []},
            $l->{entries}[0]{event} // '-', $l->{entries}[-1]{event} // '-'),
       '200 ' . (2622 + 5 * 1005) . ' 1000 A-5 A-1004',
       'the API\'s ledger: the balance and the newest 1,000 entries');
    is(scalar @{ctl_json($h, 'get', 'ledger', 'li.member')->{entries}}, 1006,
       'loyaltyctl shows them all');

    # chunked, the event cut across chunks
    my $ev = qq([{"type":"signup","member":"chunked"}]);
    my $chunked = join '', map { sprintf("%x\r\n%s\r\n", length, $_) }
                           substr($ev, 0, 10), substr($ev, 10, 15), substr($ev, 25);
    ($s, $hdr, $b) = http_request($h, join("\r\n", 'POST /admin/events HTTP/1.1',
        'Host: localhost', "Authorization: Bearer $TOKEN", 'Connection: close',
        'Transfer-Encoding: chunked', '', '') . $chunked . "0\r\n\r\n");
    is(($s // 'none') . " $b", batch_ok(1, 1, 0), 'a chunked body');
    is(ctl_json($h, 'get', 'member', 'chunked')->{stage}, 'fan', 'applied');

    no_trouble($h, 'limits');
    stop_nginx($h);
}


# LMDB's writer lock held from outside (as a long import holds it): reads
# answer at once, a write waits in the thread pool and is answered once
# the lock is free

{
    my $dir = test_dir();
    my ($rc) = lmdb_tool($dir, 'hold');
    is($rc, 0, 'the lock holder compiles');

    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP . "[rules]\n$RULES_TEXT");
    is(as_member($h, 'li.member'), "200 [li.member][member][vip][2622][wang.partner][][none][D3]\n",
       'before the lock');

    my $pid = open2(my $from, my $to, "$dir/hold", $h->{store});
    my $line = <$from> // '';
    is($line, "locked\n", 'the writer lock is held from outside');
    my $t0 = time;

    my $post = admin_send($h, $TOKEN, 'POST', '/admin/events',
        $JSON->encode([{ type => 'action', member => 'li.member', kind => 'assist',
                         id => 'LOCKED-1', at => utc(0) }]));
    sleep 0.2;

    my ($slow, $worst) = (0, 0);
    for my $n (1 .. 20) {
        my $t = time;
        my $got = as_member($h, $n % 2 ? 'li.member' : 'wang.partner');
        my $took = time - $t;
        $worst = $took if $took > $worst;
        $slow++ if $took >= 0.5
                   || $got !~ /^200 \[(li\.member|wang\.partner)\]/;
    }
    is($slow, 0, 'reads with a member cookie answer while the lock is held')
        or diag("slowest read: $worst s");
    my $t = time;
    is(call($h, 'GET', '/admin/members/li.member/ledger') =~ s/ .*//sr, '200',
       'the API reads too');
    cmp_ok(time - $t, '<', 0.5, 'at once');
    $t = time;
    is(call($h, 'GET', '/admin/members/li.member/export') =~ s/ .*//sr, '200',
       'an export reads too: in a read transaction, without the writer lock');
    cmp_ok(time - $t, '<', 0.5, 'at once');
    is(answer_of($post, 1), 'none', 'the POST is not answered while the lock is held');
    my $also = admin_send($h, $TOKEN, 'POST', '/admin/events',
        $JSON->encode([{ type => 'action', member => 'wang.partner', kind => 'review',
                         id => 'LOCKED-2', at => utc(0) }]));
    is(as_member($h, 'li.member'), "200 [li.member][member][vip][2622][wang.partner][][none][D3]\n",
       'with two writes waiting, the worker still reads');
    cmp_ok(time - $t0, '>=', 1.2, 'the lock was held for more than a second');

    close $to;
    waitpid $pid, 0;

    is(answer_of($post, 5), batch_ok(1, 1, 0), 'the POST answered once the lock is free');
    is(answer_of($also, 5), batch_ok(1, 1, 0), 'and the second one');
    is(as_member($h, 'li.member'), "200 [li.member][member][vip][2672][wang.partner][][none][D3]\n",
       'the next request sees the write');
    is(ctl_json($h, 'get', 'member', 'wang.partner')->{points}, 15410, 'and the other');

    no_trouble($h, 'the writer lock');
    stop_nginx($h);
}


# two workers, four clients at once: every event applied exactly once,
# identical batches posted concurrently applied by one of them only,
# balances equal to their ledgers

{
    my $MEMBERS = 8;
    # a second listener with reuseport: the kernel spreads the clients'
    # connections over both workers, so that both write
    my $port2 = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp')->sockport;
    my $config = ($CONFIG =~ s/(location \/admin\/ \{\n)/$1    add_header X-Pid \$pid always;\n/r)
                 . "listen 127.0.0.1:$port2 reuseport;\n";
    my $h = start_nginx(http_config => $HTTP, config => $config, workers => 2,
                        store => $TIERS . "[members]\n"
                                 . join('', map { qq({"id":"p$_","tier":"basic","stage":"fan"}\n) }
                                            0 .. $MEMBERS - 1)
                                 . "[rules]\n$RULES_TEXT");
    my $T = utc(1);

    # a batch: 16 orders and 4 reviews
    my %batches;
    my $make = sub {
        my ($name, $seed) = @_;
        my @ev;
        for my $i (0 .. 15) {
            push @ev, { type => 'order', member => 'p' . (($seed + $i) % $MEMBERS),
                        order_id => "$name-o$i", amount => 100 * (1 + ($seed + $i) % 9) + $i,
                        at => $T };
        }
        for my $j (0 .. 3) {
            push @ev, { type => 'action', member => 'p' . (($seed + 3 * $j) % $MEMBERS),
                        kind => 'review', id => "$name-a$j", at => $T };
        }
        $batches{$name} = \@ev;
        return $name;
    };

    # clients 0 and 1 post the same "shared" batches; 2 and 3 retry theirs
    my @plan;
    for my $c (0 .. 3) {
        for my $b (0 .. 24) {
            my $own = $make->("c$c-b$b", $c * 31 + $b);
            my $shared = $make->("s-b$b", 7 * $b);
            push @{$plan[$c]}, $c == 0 ? ($own, $shared)
                             : $c == 1 ? ($shared, $own)
                             : ($own, $own);
        }
    }

    my $dir = test_dir();
    my @pids;
    for my $c (0 .. 3) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $out = '';
            for my $name (@{$plan[$c]}) {
                my ($s, $b, $hdr) = api({ port => $port2 }, 'POST', '/admin/events',
                                        $JSON->encode($batches{$name}));
                my $r = eval { $JSON->decode($b) } // {};
                $out .= join(' ', $name, $s, $r->{applied} // '-',
                             $r->{duplicates} // '-', $hdr->{'x-pid'} // '-') . "\n";
            }
            write_file("$dir/$c", $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }

    # meanwhile a reader
    my ($reads, $failed) = (0, 0);
    while (grep { waitpid($_, POSIX::WNOHANG()) == 0 } @pids) {
        as_member($h, 'p0') =~ /^200 \[p0\]/ ? $reads++ : $failed++;
        sleep 0.01;
    }
    waitpid $_, 0 for @pids;
    ok($reads > 0 && !$failed, 'reads answered during the writes')
        or diag("$reads answered, $failed not");

    my (%seen, %pids, @bad);
    for my $c (0 .. 3) {
        for (split /\n/, eval { slurp("$dir/$c") } // '') {
            my ($name, $s, $applied, $dup, $pid) = split ' ';
            push @{$seen{$name}}, "$applied/$dup";
            $pids{$pid}++;
            push @bad, $_ if $s ne '200';
        }
    }
    is(scalar(@bad), 0, 'every batch answered 200') or diag(join "\n", @bad[0 .. 4]);
    cmp_ok(scalar(grep { $_ ne '-' } keys %pids), '>=', 2, 'both workers wrote')
        or diag(join ' ', %pids);
    Test::More::note('batches per worker: ' . join ' ', map { "$_=$pids{$_}" } sort keys %pids);

    my @wrong;
    for my $name (sort keys %batches) {
        my $got = join ' ', sort @{$seen{$name} || []};
        my $want = $name =~ /^s-/ || $name =~ /^c[23]-/ ? '0/20 20/0' : '20/0';
        push @wrong, "$name: $got" if $got ne $want;
    }
    is(scalar(@wrong), 0, 'each batch applied exactly once, retries and '
                          . 'concurrent copies all duplicates')
        or diag(join "\n", @wrong[0 .. (@wrong > 9 ? 9 : $#wrong)]);

    # what the store must say, from the batches
    my (%orders, %spend, %points);
    for my $ev (map { @$_ } values %batches) {
        if ($ev->{type} eq 'order') {
            $orders{$ev->{member}}++;
            $spend{$ev->{member}} += $ev->{amount};
            $points{$ev->{member}} += int($ev->{amount} / 100);
        } else {
            $points{$ev->{member}} += $RULES->{points}{actions}{review};
        }
    }

    for my $id (map { "p$_" } 0 .. $MEMBERS - 1) {
        my $m = ctl_json($h, 'get', 'member', $id);
        my $l = ctl_json($h, 'get', 'ledger', $id);
        my %ids;
        $ids{$_->{event}}++ for @{$l->{entries} || []};
        is(join(' ', map { $_ // '-' } @$m{qw(orders spend points)}),
           join(' ', $orders{$id}, $spend{$id}, $points{$id}),
           "$id: orders, spend and points");
        is(sum0(map { $_->{delta} } @{$l->{entries} || []}), $m->{points},
           "$id: points are the sum of the ledger");
        is(scalar(grep { $ids{$_} > 1 } keys %ids), 0, "$id: no event twice in the ledger");
        is(scalar(grep { $_->{reason} eq 'order' } @{$l->{entries} || []}), $orders{$id},
           "$id: one ledger entry per order");
    }
    is(ctl($h, 'verify'), '', 'loyaltyctl verify finds nothing wrong');

    # and every worker's next read sees every write
    my @stale;
    for my $id (map { "p$_" } 0 .. $MEMBERS - 1) {
        for (1 .. 4) {
            my ($s, undef, $b) = http_request($port2, 'GET', '/',
                { Cookie => 'loyalty_member=' . sign_member($id, '1h') });
            push @stale, "$id: $b" unless ($b // '') =~ /^\[\Q$id\E\]\[[a-z]+\]\[\w+\]\[$points{$id}\]/;
        }
    }
    is(scalar(@stale), 0, 'reads through both workers show the new points')
        or diag(join '', @stale[0 .. ($#stale > 4 ? 4 : $#stale)]);

    no_trouble($h, 'two workers');
    stop_nginx($h);
}

# issue 18, section 6: admin data accepted that should not be.  Times out
# of 2000..2100, an order_id or refund_id reused with other data, referrer
# loops, points at the ends of int64, and what DELETE leaves behind

# the answer to a batch refused for conflicts: [index, error, field,
# stored, given]
sub conflicted {
    my @e = map { sprintf '{"index":%d,"error":%s,"conflict":{"field":"%s",'
                          . '"stored":%s,"given":%s}}', $_->[0],
                          $JSTR->encode($_->[1]), $_->[2],
                          $JSTR->encode($_->[3]), $JSTR->encode($_->[4]) } @_;
    return '409 {"error":"conflicting events","errors":[' . join(',', @e)
           . "]}\n";
}

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $SHOP);
    my $T = '2026-11-21T10:00:00+08:00';
    my $WINDOW = '"at" must be between 2000-01-01T00:00:00Z and '
                 . '2100-12-31T23:59:59Z';

    is(call($h, 'PUT', '/admin/rules', $RULES_TEXT), qq(200 {"stored":"rules"}\n),
       'rules by PUT');

    # times
    my $before = snapshot($h);
    for my $at ('0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z',
                '1999-12-31T23:59:59Z', '2101-01-01T00:00:00Z',
                '2000-01-01T00:59:59+01:00', '2100-12-31T23:59:59-00:01')
    {
        is(post($h, { type => 'order', member => 'li.member', order_id => 'T-1',
                      amount => 100, at => $at }),
           refused([0, $WINDOW]), "an order at $at: 422 naming \"at\"");
    }
    is(post($h, { type => 'signup', member => 'year0', at => '0000-01-01T00:00:00Z' },
            { type => 'action', member => 'li.member', kind => 'share', id => 'T-A',
              at => '9999-12-31T23:59:59Z' }),
       refused([0, $WINDOW], [1, $WINDOW]), 'a signup and an action out of the window');
    is(call($h, 'PUT', '/admin/members/year0',
            '{"tier":"basic","stage":"fan","joined_at":"0000-01-01T00:00:00Z"}'),
       error_body(422, '"joined_at" must be between 2000-01-01T00:00:00Z and '
                       . '2100-12-31T23:59:59Z'), 'PUT a member who joined in year 0');
    same_store($h, $before, 'no time out of the window was written');
    is(post($h, { type => 'order', member => 'li.member', order_id => 'T-2',
                  amount => 100, at => '2000-01-01T00:00:00Z' },
            { type => 'order', member => 'li.member', order_id => 'T-3',
              amount => 100, at => '2100-12-31T23:59:59Z' }),
       batch_ok(2, 2, 0), 'the first and the last second of the window');

    # an id reused: an exact replay is a duplicate, other data a conflict
    my %o = (type => 'order', member => 'li.member', order_id => 'C-1',
             amount => 10000, at => $T);
    my %r = (type => 'refund', refund_id => 'CR-1', order_id => 'C-1',
             amount => 100);
    my %a = (type => 'action', member => 'li.member', kind => 'share',
             id => 'CA-1', at => $T);
    is(post($h, \%o, { %o, order_id => 'C-2' }, \%r, \%a), batch_ok(4, 4, 0),
       'two orders, a refund, an action');
    is(post($h, \%o, \%r, \%a), batch_ok(3, 0, 3), 'replayed exactly: duplicates');
    is(post($h, { %o, at => '2026-11-22T10:00:00Z', items => [{ sku => 'x' }] }),
       batch_ok(1, 0, 1), 'another time or items: still a duplicate');

    $before = snapshot($h);
    is(post($h, { %o, member => 'wang.partner' }),
       conflicted([0, 'order_id "C-1" was applied with member "li.member", not "wang.partner"',
                   'member', 'li.member', 'wang.partner']),
       'an order_id for another member: 409');
    is(post($h, { %o, amount => 10001 }),
       conflicted([0, 'order_id "C-1" was applied with amount 10000, not 10001',
                   'amount', 10000, 10001]),
       'an order_id with another amount: 409');
    is(post($h, { %r, amount => 99 }),
       conflicted([0, 'refund_id "CR-1" was applied with amount 100, not 99',
                   'amount', 100, 99]),
       'a refund_id with another amount: 409');
    is(post($h, { %r, order_id => 'C-2' }),
       conflicted([0, 'refund_id "CR-1" was applied with order_id "C-1", not "C-2"',
                   'order_id', 'C-1', 'C-2']),
       'a refund_id for another order: 409');
    is(post($h, { %a, member => 'wang.partner' }, { %a, kind => 'review' }),
       conflicted([0, 'id "CA-1" was applied with member "li.member", not "wang.partner"',
                   'member', 'li.member', 'wang.partner'],
                  [1, 'id "CA-1" was applied with kind "share", not "review"',
                   'kind', 'share', 'review']),
       'an action id for another member or kind: 409, each named');
    is(post($h, { %o, order_id => 'C-9' }, { %o, order_id => 'C-9', amount => 1 }),
       conflicted([1, 'order_id "C-9" was applied with amount 10000, not 1',
                   'amount', 10000, 1]),
       'a conflict within one batch: 409, nothing applied');
    is(post($h, \%o, { %o, amount => 1 }, { %o, order_id => 'C-8', member => 'ghost' }),
       '422 {"error":"invalid events","errors":[{"index":1,"error":'
       . '"order_id \\"C-1\\" was applied with amount 10000, not 1",'
       . '"conflict":{"field":"amount","stored":10000,"given":1}},'
       . '{"index":2,"error":"unknown member \\"ghost\\""}]}' . "\n",
       'a conflict beside an invalid event: 422 with both');
    same_store($h, $before, 'conflicting batches changed nothing');

    # referrer loops: refused by PUT, of any length
    is(call($h, 'PUT', '/admin/members/loop.a', '{"tier":"basic","stage":"fan","referrer":"loop.b"}'),
       qq(200 {"stored":"member"}\n), 'a refers b: b is not in the store yet');
    $before = snapshot($h);
    is(call($h, 'PUT', '/admin/members/loop.b', '{"tier":"basic","stage":"fan","referrer":"loop.a"}'),
       error_body(409, 'referrer "loop.a" would make a loop: loop.b -> loop.a -> loop.b'),
       'b refers a: 409 naming the loop');
    same_store($h, $before, 'the loop was not stored');
    is(call($h, 'PUT', '/admin/members/loop.b', '{"tier":"basic","stage":"fan","referrer":"loop.c"}'),
       qq(200 {"stored":"member"}\n), 'b refers c');
    is(call($h, 'PUT', '/admin/members/loop.c', '{"tier":"basic","stage":"fan","referrer":"loop.a"}'),
       error_body(409, 'referrer "loop.a" would make a loop: loop.c -> loop.a -> loop.b -> loop.c'),
       'c refers a: a loop of three, 409');
    is(call($h, 'PUT', '/admin/members/loop.c', '{"tier":"basic","stage":"fan","referrer":"loop.c"}'),
       error_body(422, 'a member cannot be their own referrer'), 'c refers c: 422');
    is(call($h, 'PUT', '/admin/members/loop.c', '{"tier":"basic","stage":"fan","referrer":"li.member"}'),
       qq(200 {"stored":"member"}\n), 'c refers li.member: no loop');
    is(post($h, { type => 'signup', member => 'wang.partner', referrer => 'loop.a', at => $T }),
       batch_ok(1, 1, 0), 'a signup naming a referrer down the chain is no error ...');
    is(ctl_json($h, 'get', 'member', 'wang.partner')->{referrer}, undef,
       '... and refers no one: wang.partner -> loop.a -> ... -> wang.partner would loop');

    # points: bounded, so no adjust can wrap
    $before = snapshot($h);
    for my $p ('-9223372036854775808', '9223372036854775807', '1000000000001',
               '-1000000000001')
    {
        is(call($h, 'PUT', '/admin/members/rich', qq({"tier":"basic","stage":"fan","points":$p})),
           error_body(422, '"points" must be between -1000000000000 and 1000000000000'),
           "PUT points $p: 422");
    }
    same_store($h, $before, 'refused points wrote nothing');
    is(call($h, 'PUT', '/admin/members/rich', '{"tier":"basic","stage":"fan","points":-1000000000000}'),
       qq(200 {"stored":"member"}\n), 'PUT the lowest balance');
    is(call($h, 'PUT', '/admin/members/rich', '{"tier":"basic","stage":"fan","points":1000000000000}'),
       qq(200 {"stored":"member"}\n), 'then the highest');
    is_deeply(ledger_of($h, 'rich'),
              { member => 'rich', balance => 1000000000000, entries => [
                  { delta => -1000000000000, reason => 'adjust', at => 'WRITTEN' },
                  { delta => 2000000000000, reason => 'adjust', at => 'WRITTEN' } ] },
              'the ledger: exact adjust entries, no wrap');
    $before = snapshot($h);
    is(post($h, { type => 'action', member => 'rich', kind => 'share', id => 'P-1', at => $T }),
       refused([0, 'the points of "rich" would leave -1000000000000..1000000000000']),
       'an action past the highest balance: refused');
    is(post($h, { type => 'order', member => 'rich', order_id => 'P-2', amount => 1000000000001,
                  at => $T }),
       refused([0, '"amount" must be between 0 and 1000000000000']),
       'an amount past 10^12: refused');
    same_store($h, $before, 'nothing written');
    is(ctl($h, 'verify'), '', 'loyaltyctl verify: clean');

    no_trouble($h, 'issue 18 data');
    stop_nginx($h);
}


# DELETE of a member: their codes, clicks, ledger, referrals and downline
# links go, so that verify is clean and the id made again inherits nothing

{
    my $h = start_nginx(http_config => $HTTP . "loyalty_click_zone clicks 1m;\n"
                                              . "loyalty_click_flush 1s;\n",
                        config => $CONFIG, store => $SHOP);
    my $T = '2026-11-21T10:00:00+08:00';

    is(call($h, 'PUT', '/admin/rules', $RULES_TEXT), qq(200 {"stored":"rules"}\n),
       'rules by PUT');
    is(call($h, 'PUT', '/admin/members/gone', '{"tier":"basic","stage":"fan","referrer":"li.member","points":50}'),
       qq(200 {"stored":"member"}\n), 'a member referred by li.member');
    is(call($h, 'PUT', '/admin/codes/GONE-CODE', '{"member":"gone","target":"/x"}'),
       qq(200 {"stored":"code"}\n), 'their share code');
    is(call($h, 'PUT', '/admin/codes/AAA-GONE', '{"member":"gone","target":"/y"}'),
       qq(200 {"stored":"code"}\n), 'another, the first of the codes in order');
    my ($st, $hdr) = http_request($h, 'GET', '/s/gone-code', { 'User-Agent' => $UA });
    my ($ref) = join(';', @{$hdr->{'set-cookie'} || []}) =~ /loyalty_ref=([^;]+)/;
    ok($ref, 'a click on it attributes the visitor');
    is(post($h, { type => 'signup', member => 'kid', ref_code => 'gone-code', at => $T },
            { type => 'order', member => 'kid', order_id => 'K-1', amount => 12800, at => $T },
            { type => 'order', member => 'gone', order_id => 'G-1', amount => 12800, at => $T }),
       batch_ok(3, 3, 0), 'kid signs up with the code and buys; gone buys');
    is(ctl_json($h, 'get', 'member', 'kid')->{referrer}, 'gone', 'kid was referred by gone');
    ok(scalar(@{ctl_json($h, 'get', 'ledger', 'gone')->{entries}}) >= 3,
       'gone has ledger entries: adjust, level 1, order');
    # the click flushed (every second here) before the delete
    my $clicks = '';
    for (1 .. 50) {
        $clicks = ctl($h, 'clicks', 'GONE-CODE');
        last if $clicks =~ /"total":1/;
        sleep 0.2;
    }
    like($clicks, qr/"total":1/, 'the click was counted');

    is(call($h, 'DELETE', '/admin/members/gone'), qq(200 {"deleted":"gone"}\n),
       'DELETE the member');
    is(ctl($h, 'verify'), '', 'loyaltyctl verify: clean after the delete');
    like(ctl($h, 'get', 'code', 'GONE-CODE'), qr/^exit 1: /, 'their code is gone');
    like(ctl($h, 'get', 'code', 'AAA-GONE'), qr/^exit 1: /, 'and the other');
    is(ctl($h, 'clicks', 'GONE-CODE'), '', 'and its click counts');
    ($st, $hdr) = http_request($h, 'GET', '/s/gone-code', { 'User-Agent' => $UA });
    is(join(';', @{$hdr->{'set-cookie'} || []}) =~ /loyalty_ref=/ ? 'attributed' : 'not',
       'not', 'a click on it attributes no one');
    sleep 2.5;    # two flushes after that click
    is(ctl($h, 'clicks', 'GONE-CODE'), '', 'nor is it counted');
    is(ctl_json($h, 'get', 'member', 'kid')->{referrer}, undef,
       'kid no longer names a referrer');
    is(call($h, 'GET', '/admin/members/li.member/referrals'),
       qq(200 {"member":"li.member","level1":[],"level2":[]}\n),
       'li.member\'s downline no longer lists gone, nor kid at level 2');

    is(call($h, 'PUT', '/admin/members/gone', '{"tier":"basic","stage":"fan"}'),
       qq(200 {"stored":"member"}\n), 'the same id made again');
    is_deeply(ledger_of($h, 'gone'), { member => 'gone', balance => 0, entries => [] },
              'inherits no ledger');
    is(call($h, 'GET', '/admin/members/gone/referrals'),
       qq(200 {"member":"gone","level1":[],"level2":[]}\n), 'nor a downline');
    is(post($h, { type => 'order', member => 'gone', order_id => 'G-1', amount => 12800,
                  at => $T }),
       batch_ok(1, 0, 1), 'a replay of an old order stays a duplicate');
    is(post($h, { type => 'signup', member => 'kid', ref_code => 'li-vip-tea', at => $T }),
       batch_ok(1, 0, 1), 'kid\'s signup again is a duplicate ...');
    is(post($h, { type => 'follow', member => 'kid', ref_code => 'li-vip-tea', at => $T }),
       batch_ok(1, 1, 0), '... a follow with a code of li.member');
    is(ctl_json($h, 'get', 'member', 'kid')->{referrer}, 'li.member',
       'refers kid anew: the deleted referrer\'s lock went with them');
    is(ctl($h, 'verify'), '', 'loyaltyctl verify: still clean');

    no_trouble($h, 'delete');
    stop_nginx($h);
}

done_testing();
