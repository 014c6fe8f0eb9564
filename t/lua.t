# Lua hooks, end to end: the examples of lua/examples (but the event hook's
# referral_points, in t/lua-events.t), the guard around a price hook's
# answer, failures logged once per place, loyalty.store inside a hook,
# the click hook, the admin API's counts, two workers and reloads.  The
# sandbox, the budget, the memory cap and refused configurations are in
# t/lua-sandbox.t.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp ();
use JSON::PP ();
use POSIX qw(strftime);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $EX = "$ROOT/lua/examples";
my $JSON = JSON::PP->new->canonical;

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

# gold members pay 10% less, partners 20%
my $STORE = <<'END';
[tiers]
{"name":"basic","rank":0,"label":"Basic"}
{"name":"gold","rank":1,"discount_bp":1000,"label":"Gold"}
{"name":"partner","rank":2,"discount_bp":2000,"label":"Partner"}
[members]
{"id":"cust1","tier":"gold","stage":"customer"}
{"id":"mem1","tier":"gold","stage":"member","points":77}
{"id":"part1","tier":"partner","stage":"partner"}
{"id":"basic1","tier":"basic","stage":"member"}
[prices]
{"sku":"tea","retail":1000}
{"sku":"nappies-128","retail":12800}
{"sku":"wipes-80","retail":1590}
{"sku":"up","retail":1000}
{"sku":"half","retail":1000}
{"sku":"table","retail":1000}
{"sku":"zero","retail":1000}
{"sku":"neg","retail":1000}
{"sku":"nan","retail":1000}
{"sku":"frac","retail":1000}
{"sku":"str","retail":1000}
{"sku":"huge","retail":1000}
{"sku":"inf","retail":1000}
{"sku":"label","retail":1000}
{"sku":"tlabel","retail":1000}
{"sku":"boom","retail":1000}
{"sku":"peek","retail":1000}
{"sku":"long","retail":1000}
{"sku":"ctl","retail":1000}
{"sku":"badutf","retail":1000}
END

my $PRICE = "location /price { loyalty_price_api; }\n"
          . "location /admin/ { %%ADMIN%% }\n"
          . "location /product/ {\n"
          . "    loyalty_price_sku \$arg_sku;\n"
          . "    return 200 \"[\$loyalty_price_tier][\$loyalty_price]\\n\";\n"
          . "}\n";

sub lua_http { return $HTTP . "loyalty_lua_file $_[0];\n" . ($_[1] // '') }

# (status, body) of a GET, as member $id if given
sub get {
    my ($h, $uri, $id, %hdr) = @_;
    $hdr{Cookie} = "loyalty_member=" . sign_member($id, '1h') if $id;
    my ($s, undef, $b) = http_request($h, 'GET', $uri, \%hdr);
    return $b;
}

# price API: "price/label/promo" of the only item
sub price {
    my ($h, $sku, $id) = @_;
    my $doc = eval { $JSON->decode(get($h, "/price?sku=$sku", $id)) }
        or return "bad answer: $@";
    my $i = $doc->{items}[0];
    return $i->{error} if $i->{error};
    return join '/', $i->{price}, $i->{label}, $i->{promo} // '-';
}

# "ok" if python3 decodes the raw bytes as UTF-8 strictly and parses them
# as JSON, or python's complaint
sub strict_json {
    my ($raw) = @_;
    my $tmp = File::Temp->new;
    binmode $tmp;
    print $tmp $raw;
    close $tmp;
    my $out = `python3 -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict")); print("ok")' $tmp 2>&1`;
    chomp $out;
    return $out;
}

sub admin_lua {
    my ($h) = @_;
    return $JSON->decode(get($h, '/admin/lua', undef,
                             %{admin_auth('read')}));
}

sub errors_like {
    my ($h, $re) = @_;
    my @n = error_log_text($h) =~ /$re/g;
    return scalar @n;
}



# birthday.lua: 10% off the tier price on the member's birthday, UTC day
{
    my @t = gmtime;
    my $today = strftime('%m-%d', @t);
    my $tomorrow = strftime('%m-%d', gmtime(time + 86400));
    my $h = start_nginx(http_config => lua_http("$EX/birthday.lua"),
                        config => $PRICE, store => <<"END");
[tiers]
{"name":"basic","rank":0}
{"name":"gold","rank":1,"discount_bp":1000,"label":"Gold"}
[members]
{"id":"bday","tier":"gold","stage":"member","birthday":"$today"}
{"id":"nobday","tier":"gold","stage":"member"}
{"id":"later","tier":"gold","stage":"member","birthday":"$tomorrow"}
{"id":"custbday","tier":"gold","stage":"customer","birthday":"$today"}
[prices]
{"sku":"tea","retail":1000}
{"sku":"sofa","retail":29800}
END
    is(price($h, 'tea', 'bday'), '810/Gold/Birthday',
       "birthday: a member born on $today pays 10% less than the tier price");
    is(get($h, '/price?sku=sofa:3', 'bday'),
       qq({"tier":"gold","currency":"CNY","items":[{"sku":"sofa","qty":3,"retail":89400,"price":72414,"saved":16986,"label":"Gold","promo":"Birthday"}]}\n),
       'birthday: the line of 3 sofas at 10% off 3 x 26820, rounded half up');
    is(price($h, 'tea', 'nobday'), '900/Gold/-',
       'birthday: a member without a birthday pays the tier price');
    is(price($h, 'tea', 'later'), '900/Gold/-',
       "birthday: a member born on $tomorrow pays the tier price today");
    is(price($h, 'tea', 'custbday'), '900/Gold/-',
       'birthday: a customer (not a member yet) gets nothing on the day');
    is(price($h, 'tea'), '1000//-', 'birthday: anonymous visitors pay retail');
    is(get($h, '/product/?sku=tea', 'bday'), "[gold][810]\n",
       'birthday: $loyalty_price has the discount too');
    unlike(error_log_text($h), qr/\[error\]/, 'birthday: no errors');
    stop_checked($h, 'birthday');
}


# weekly_specials.lua with require "specials": today's ISO week from the
# example's table, or, in a week it does not list, the same hook file next
# to a specials.lua written for this week
{
    my $week = strftime('%G-W%V', gmtime);
    my $table = slurp("$EX/specials.lua");
    my $dir = $EX;
    my ($tmp, %special);

    # LOYALTY_TEST_OWN_SPECIALS=1 takes the second way in any week
    if (!$ENV{LOYALTY_TEST_OWN_SPECIALS}
        && $table =~ /\["\Q$week\E"\]\s*=\s*\{([^}]*)\}/)
    {
        %special = $1 =~ /\["([^"]+)"\]\s*=\s*(\d+)/g;
    } else {
        $tmp = test_dir();
        chmod 0755, "$tmp" or die "chmod $tmp: $!";
        $dir = "$tmp";
        %special = (tea => 799, 'nappies-128' => 9900);
        write_file("$dir/weekly_specials.lua",
                   slurp("$EX/weekly_specials.lua"), 0644);
        write_file("$dir/specials.lua", <<"END", 0644);
-- t/lua.t: $week is not in lua/examples/specials.lua, so this week's
return {
  ["$week"] = { ["tea"] = 799, ["nappies-128"] = 9900 },
  ["1999-W01"] = { ["wipes-80"] = 1 },
}
END
    }

    my @skus = sort keys %special;
    ok(@skus >= 1, "weekly specials: $week lists @skus");

    my $h = start_nginx(http_config => lua_http("$dir/weekly_specials.lua"),
                        config => $PRICE, store => $STORE);
    for my $sku (@skus) {
        is(price($h, "$sku:2", 'mem1'), 2 * $special{$sku} . '/Gold/Weekly special',
           "weekly specials: 2 x $sku for a member at 2 x $special{$sku}");
        my $anon = $JSON->decode(get($h, "/price?sku=$sku:2"))->{items}[0];
        is("$anon->{price}/" . ($anon->{promo} // '-'), "$anon->{retail}/-",
           "weekly specials: anonymous visitors pay retail for $sku");
    }
    my %all = map { $_ => 1 } qw(tea nappies-128 wipes-80);
    for my $sku (grep { !$special{$_} } sort keys %all) {
        like(price($h, $sku, 'mem1'), qr{^\d+/Gold/-$},
             "weekly specials: $sku is not special in $week");
    }
    is(price($h, 'tea', 'cust1'), '900/Gold/-',
       'weekly specials: a customer pays the tier price');
    unlike(error_log_text($h), qr/\[error\]/, 'weekly specials: no errors');
    stop_checked($h, 'weekly specials');
}


# two workers: every request priced by the hook, the counts summed in shm
{
    my $h = start_nginx(http_config => lua_http("$ROOT/t/lua/guard.lua"),
                        config => $PRICE, store => $STORE, workers => 2);
    my $ok = 0;
    for (1 .. 40) {
        $ok++ if price($h, 'table') eq '999//Table form';
    }
    is($ok, 40, 'two workers: 40 requests, all priced by the hook');
    is_deeply(admin_lua($h)->{hooks}{price},
              { calls => 40, errors => 0, budget => 0, memory => 0 },
              'two workers: 40 calls counted');
    stop_checked($h, 'two workers');
}


# a failure is logged once per place in the script, and counted each time
{
    my $h = start_nginx(http_config => lua_http("$ROOT/t/lua/guard.lua"),
                        config => $PRICE, store => $STORE);
    my $place = qr/\[error\].*the price hook failed: \Q$ROOT\E\/t\/lua\/guard\.lua:21: boom; it is skipped \(logged once per place in the script\)/;

    is(price($h, 'boom'), '1000//-', 'a failing hook leaves the price alone')
        for 1 .. 3;
    is(errors_like($h, $place), 1, 'three failures, one [error] line');
    is(price($h, 'table'), '999//Table form', 'the next call works');
    is(price($h, 'neg'), '1000//-', 'a bad answer: the price is unchanged');
    is(price($h, 'nan'), '1000//-', 'another one');
    is(errors_like($h, qr/\[error\]/), 2,
       'a bad answer is logged, once: it has no place in the script');

    is_deeply(admin_lua($h),
              { file => "$ROOT/t/lua/guard.lua", budget => 100000,
                time => 50, memory => 16 * 1024 * 1024,
                hooks => { price => { calls => 6, errors => 5, budget => 0,
                                      memory => 0 } } },
              'GET /admin/lua: 6 calls, 5 failed');

    # a member: the hook is asked for the member, then for the public and
    # for the lower tier basic
    price($h, 'tea', 'mem1');
    is(admin_lua($h)->{hooks}{price}{calls}, 9,
       'a gold member\'s line: 3 calls (gold, basic, public)');

    # the same line again within the second: what the lower tiers pay, and
    # that the hook lowered none of them, is remembered: only gold is asked
    my $t0 = time;
    my $tea = price($h, 'tea', 'mem1');
    my $calls = admin_lua($h)->{hooks}{price}{calls};
    is(price($h, 'tea', 'mem1'), $tea, 'the same line again, the same answer');
    SKIP: {
        skip 'a second went by between the asks', 1 if time != $t0;
        is(admin_lua($h)->{hooks}{price}{calls}, $calls + 1,
           'the same line again within the second: 1 call (gold)');
    }
    stop_checked($h, 'once per place');
}


# the guard: a hook may only lower a price, and what it gives the public
# (or a lower tier) caps what a member pays; bad answers change nothing
{
    my $h = start_nginx(http_config => lua_http("$ROOT/t/lua/guard.lua"),
                        config => $PRICE, store => $STORE, log_level => 'info');

    is(price($h, 'up'), '1000//-', 'guard: a dearer answer is capped at retail');
    is(price($h, 'up:3', 'mem1'), '2700/Gold/-',
       'guard: and at the tier price of the line');
    like(error_log_text($h),
         qr/\[info\].*privilege guard lowered the price hook's 3200 for sku "up" and tier "gold" to 2700/,
         'guard: the clamp logged at info');
    is(price($h, 'half'), '500//Half price', 'guard: the public at half price');
    is(price($h, 'half:2', 'mem1'), '1000/Gold/Half price',
       'guard: a gold member pays no more than the public (1000, not 1800)');
    is(price($h, 'half:2', 'mem1'), '1000/Gold/Half price',
       'guard: again, from what the public pays remembered');
    is(price($h, 'half', 'part1'), '500/Partner/Half price',
       'guard: a partner neither (500, not 800)');
    is(get($h, '/product/?sku=half', 'mem1'), "[gold][500]\n",
       'guard: $loyalty_price too');
    is(price($h, 'table:2', 'mem1'), '1799/Gold/Table form',
       'guard: the table form {price =, label =}');
    is(price($h, 'zero'), '0//Free', 'guard: 0 is a price');

    # labels go out in JSON: escaped, cut to 64 bytes of whole characters
    my $utf8 = JSON::PP->new->utf8;
    my $doc = eval { $utf8->decode(get($h, '/price?sku=long')) };
    is($doc && $doc->{items}[0]{promo}, 'a' . ("\x{e9}" x 31),
       'guard: a long label is cut to 63 bytes, not inside a character');
    $doc = eval { $utf8->decode(get($h, '/price?sku=ctl')) };
    is($doc && $doc->{items}[0]{promo}, "a\"b\n\\c",
       'guard: a label with quotes and a newline, escaped');

    my %bad = (neg => 'negative', nan => '0/0', frac => '12.5',
               str => 'a string', huge => '1e300', inf => 'math.huge',
               label => 'a label that is a number',
               tlabel => 'a label that is a table');
    for my $sku (sort keys %bad) {
        is(price($h, $sku), '1000//-', "guard: $bad{$sku}: retail");
        is(price($h, $sku, 'mem1'), '900/Gold/-',
           "guard: $bad{$sku}: a member pays the tier price");
    }
    like(error_log_text($h),
         qr/\[error\].*the price hook failed: \Q$ROOT\E\/t\/lua\/guard\.lua:28 \(field price\): the price hook returned a price that is not a whole amount of at least 0 \(round it with loyalty\.money\): 12\.5; it is skipped/,
         'guard: a bad price logged');
    like(error_log_text($h),
         qr/\[error\].*the price hook failed: \Q$ROOT\E\/t\/lua\/guard\.lua:28 \(field label\): the price hook returned a label that is not a string: 42; it is skipped/,
         'guard: a bad label logged');
    # a label that is not UTF-8 (0xFF): the answer is refused (the place,
    # already logged for the label of the wrong type, is not logged again:
    # t/cli-lua.t's dry run shows the message), the JSON stays valid for a strict parser (the raw bytes decoded strictly)
    for my $id (undef, 'mem1') {
        my $raw = get($h, '/price?sku=badutf', $id);
        my $strict = strict_json($raw);
        is($strict, 'ok', 'guard: a label with 0xFF: valid JSON, strictly '
                          . ($id ? '(member)' : '(anonymous)'));
        unlike($raw, qr/\xff/, 'guard: the 0xFF byte is not sent');
    }
    is(price($h, 'badutf'), '1000//-', 'guard: a label with 0xFF: refused');
    unlike(error_log_text($h), qr/\[(alert|crit|emerg)\]/, 'guard: nothing worse');
    is(price($h, 'table'), '999//Table form', 'guard: the hook still works');
    stop_checked($h, 'guard');
}


# loyalty.store, and a module of the script's directory, inside a hook
{
    my $h = start_nginx(http_config => lua_http("$ROOT/t/lua/store.lua"),
                        config => $PRICE, store => $STORE);
    is(price($h, 'peek'), '999//[mem1/gold/member/1/77/1000/900/1000/nil/nil/nil]',
       'loyalty.store: member(), price(sku, tier), price(sku), unknowns are nil');
    is(price($h, 'peek', 'basic1'), '999/Basic/[mem1/gold/member/1/77/1000/900/1000/nil/nil/nil]',
       'loyalty.store: the same for a member');
    unlike(error_log_text($h), qr/\[error\]/, 'loyalty.store: no errors');
    stop_checked($h, 'loyalty.store');
}


# the member a price hook sees: what the request knows, the rest read from
# the store when the hook first asks for it
{
    my $store = $STORE;
    $store =~ s/\{"id":"mem1","tier":"gold","stage":"member","points":77\}/{"id":"mem1","tier":"gold","stage":"member","points":77,"orders":3,"spend":45600,"birthday":"02-29","referrer":"part1","last_order_at":"2026-11-01T08:00:00Z"}/
        or die 'mem1 not in the store';
    my $h = start_nginx(http_config => lua_http("$ROOT/t/lua/member.lua"),
                        config => $PRICE, store => $store);
    is(price($h, 'tea', 'mem1'),
       '899/Gold/mem1,gold,1,member,77,false;3,45600,02-29,part1,1793520000,nil',
       'price hook: the member, every field');
    is(price($h, 'tea', 'cust1'),
       '899/Gold/cust1,gold,1,customer,0,false;0,0,nil,nil,nil,nil',
       'price hook: a member without orders, birthday or referrer');
    is(price($h, 'tea'), '1000//-', 'price hook: no member for a visitor');
    unlike(error_log_text($h), qr/\[error\]/, 'price hook member: no errors');
    stop_checked($h, 'price hook member');
}


# the admin API without a script
{
    my $h = start_nginx(http_config => $HTTP, config => $PRICE,
                        store => $STORE);
    is(get($h, '/admin/lua', undef, %{admin_auth('read')}),
       qq({"hooks":{},"file":null}\n),
       'GET /admin/lua without loyalty_lua_file');
    stop_checked($h, 'no script');
}


# reloads: a script that does not load keeps the old one serving; the
# counts go on across a good reload
{
    my $dir = test_dir();
    chmod 0755, "$dir" or die "chmod $dir: $!";
    my $file = "$dir/hooks.lua";
    write_file($file, qq(return { price = function(c) return c.price - 1, "one" end }\n), 0644);

    my $h = start_nginx(http_config => lua_http($file), config => $PRICE,
                        store => $STORE);
    is(price($h, 'tea'), '999//one', 'reload: the first script');

    write_file($file, qq(return { price = function(c) return c.price - 2, "two" end\n), 0644);
    ok(!reload_nginx($h), 'reload: the script, edited in place, has a syntax error');
    like(error_log_text($h),
         qr/\[emerg\].*loyalty_lua_file "\Q$file\E": \Q$file\E:2: '}' expected/,
         'reload: the error names the file and line');
    is(price($h, 'tea'), '999//one', 'reload: the old script keeps serving');

    ok(!reload_nginx($h, http_config => lua_http("$dir/missing.lua")),
       'reload: a missing script is refused');
    is(price($h, 'tea'), '999//one', 'reload: the old script still serves');

    write_file($file, qq(return { price = function(c) return c.price - 2, "two" end }\n), 0644);
    ok(reload_nginx($h, http_config => lua_http($file)),
       'reload: the fixed script');
    is(price($h, 'tea'), '998//two', 'reload: the new script serves');
    is(admin_lua($h)->{hooks}{price}{calls}, 4,
       'reload: the counts went on across the reload');

    ok(reload_nginx($h, http_config => $HTTP), 'reload: no script at all');
    is(price($h, 'tea'), '1000//-', 'reload: no hook, retail');
    stop_checked($h, 'reload', 1);
}


# the click hook: context, campaign, refusal, failures
{
    my $UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36';
    my $vars = 'location / { return 200 "[$loyalty_ref_status][$loyalty_ref_code][$loyalty_referrer][$loyalty_ref_campaign]\n"; }'
             . "\nlocation /admin/ { %%ADMIN%% }\n";
    my $codes = <<'END';
[tiers]
{"name":"gold","rank":1}
[members]
{"id":"carol","tier":"gold","stage":"partner"}
{"id":"alice","tier":"gold","stage":"member","referrer":"carol"}
{"id":"bob","tier":"gold","stage":"fan"}
{"id":"dave","tier":"gold","stage":"customer","orders":2}
[codes]
{"code":"SPRING26","member":"alice"}
{"code":"BDAY1","vanity":true,"member":"bob"}
{"code":"VIPX","vanity":true,"member":"bob"}
{"code":"PLAIN","vanity":true,"member":"bob"}
{"code":"NOPE","vanity":true,"member":"bob"}
{"code":"TNOPE","vanity":true,"member":"bob"}
{"code":"BAD1","vanity":true,"member":"bob"}
{"code":"ERR1","vanity":true,"member":"bob"}
{"code":"TAB1","vanity":true,"member":"bob"}
END
    my $click = sub {
        my ($h, $code, $id) = @_;
        my %hdr = ('User-Agent' => $UA);
        $hdr{Cookie} = 'loyalty_member=' . sign_member($id, '1h') if $id;
        my (undef, $hdr, $body) =
            http_request($h, 'GET', "/?ref=$code", \%hdr);
        chomp $body;
        return $body . ($hdr->{'set-cookie'} ? ' cookie' : ' -');
    };

    # the example
    my $h = start_nginx(http_config => lua_http("$EX/click_campaign.lua",
                                                "loyalty_click_zone clicks 1m;\nloyalty_click_flush 1s;\n"),
                        config => $vars, store => $codes);
    is($click->($h, 'SPRING26'), '[new][SPRING26][alice][spring-sale] cookie',
       'click_campaign: SPRING... is the spring-sale campaign');
    is($click->($h, 'bday1'), '[new][BDAY1][bob][birthday] cookie',
       'click_campaign: BDAY..., the code upper-cased');
    is($click->($h, 'VIPX', 'carol'), '[new][VIPX][bob][vip-event] cookie',
       'click_campaign: a member without a referrer is attributed');
    is($click->($h, 'PLAIN'), '[new][PLAIN][bob][] cookie',
       'click_campaign: no campaign for other codes');
    my $calls = admin_lua($h)->{hooks}{click}{calls};
    is($calls, 4, 'click_campaign: the hook was asked 4 times');
    is($click->($h, 'BDAY1', 'alice'), '[kept][][carol][] -',
       'click_campaign: a member who has a referrer is not re-attributed');
    # the module keeps a lifetime referrer before it asks the hook
    is(admin_lua($h)->{hooks}{click}{calls}, $calls,
       'click_campaign: the hook was not asked for her');
    is($click->($h, 'SPRING26', 'dave'), '[refused][][][] -',
       'click_campaign: a visitor who has ordered before is refused');
    is(admin_lua($h)->{hooks}{click}{calls}, $calls + 1,
       'click_campaign: the hook was asked for him');
    stop_checked($h, 'click_campaign');

    # refusals, counted as rejected clicks; failures accept the click
    $h = start_nginx(http_config => lua_http("$ROOT/t/lua/click.lua",
                                             "loyalty_click_zone clicks 1m;\nloyalty_click_flush 1s;\n"),
                     config => $vars, store => $codes);
    is($click->($h, 'PLAIN'),
       '[new][PLAIN][bob][new.anon.bob.none.localhost._.Mozilla.number] cookie',
       'click hook: the context of an anonymous click');
    is($click->($h, 'PLAIN', 'carol'),
       '[new][PLAIN][bob][new.carol-partner.bob.none.localhost._.Mozilla.number] cookie',
       'click hook: the context of a member\'s click');
    is($click->($h, 'SPRING26'),
       '[new][SPRING26][alice][new.anon.alice.carol.localhost._.Mozilla.number] cookie',
       'click hook: referrer2');
    is($click->($h, 'NOPE'), '[refused][][][] -',
       'click hook: false refuses, no cookie');
    is($click->($h, 'TNOPE'), '[refused][][][] -',
       'click hook: {refuse = true} refuses');
    is($click->($h, 'TAB1'), '[new][TAB1][bob][from-table] cookie',
       'click hook: {campaign = ...}');
    is($click->($h, 'BAD1'), '[new][BAD1][bob][] cookie',
       'click hook: a bad campaign is a failure, the click is accepted');
    is($click->($h, 'ERR1'), '[new][ERR1][bob][] cookie',
       'click hook: an error, the click is accepted');
    like(error_log_text($h),
         qr/\[error\].*the click hook failed: \Q$ROOT\E\/t\/lua\/click\.lua:\d+ \(field campaign\): the click hook returned a campaign that is not 1-64 characters of \[A-Za-z0-9_.-\]: a string/,
         'click hook: the bad campaign logged');
    like(error_log_text($h),
         qr/\[error\].*the click hook failed: \Q$ROOT\E\/t\/lua\/click\.lua:10: click failed/,
         'click hook: the error logged with its place');
    like(error_log_text($h),
         qr/\[info\].*the click hook refused the attribution to share code "NOPE"/,
         'click hook: a refusal is logged at info');
    is_deeply(admin_lua($h)->{hooks}{click},
              { calls => 8, errors => 2, budget => 0, memory => 0 },
              'click hook: 8 calls, 2 failed');

    my $counts;
    for (1 .. 50) {
        my (undef, $out) = loyaltyctl('-s', $h->{store}, 'clicks', 'NOPE');
        last if ($counts = $out) =~ /"rejected"\s*:\s*1/;
        select undef, undef, undef, 0.1;
    }
    like($counts, qr/"rejected"\s*:\s*1\b/, 'click hook: the refused click counted as rejected');
    like($counts, qr/"attributed"\s*:\s*0\b/, 'click hook: and not as attributed');
    stop_checked($h, 'click hook');
}

run_blocks(store => $STORE, config => $PRICE);
done_testing();

__DATA__

=== TEST 1: buy5get1: a member buying 6 pays for 5 at the tier price
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/buy5get1.lua;
--- request
GET /price?sku=tea:6,tea:12,tea:7,tea:5,tea
--- more_headers
Cookie: loyalty_member=%%SIGN(mem1,1h)%%
--- response_body
{"tier":"gold","currency":"CNY","items":[{"sku":"tea","qty":6,"retail":6000,"price":4500,"saved":1500,"label":"Gold","promo":"Buy 5 get 1"},{"sku":"tea","qty":12,"retail":12000,"price":9000,"saved":3000,"label":"Gold","promo":"Buy 5 get 1"},{"sku":"tea","qty":7,"retail":7000,"price":5400,"saved":1600,"label":"Gold","promo":"Buy 5 get 1"},{"sku":"tea","qty":5,"retail":5000,"price":4500,"saved":500,"label":"Gold"},{"sku":"tea","retail":1000,"price":900,"saved":100,"label":"Gold"}]}
--- no_error_log
[error]


=== TEST 2: buy5get1: a partner too
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/buy5get1.lua;
--- request
GET /price?sku=nappies-128:6
--- more_headers
Cookie: loyalty_member=%%SIGN(part1,1h)%%
--- response_body
{"tier":"partner","currency":"CNY","items":[{"sku":"nappies-128","qty":6,"retail":76800,"price":51200,"saved":25600,"label":"Partner","promo":"Buy 5 get 1"}]}


=== TEST 3: buy5get1: anonymous visitors pay for all 6
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/buy5get1.lua;
--- request
GET /price?sku=tea:6,tea:12
--- response_body
{"tier":"public","currency":"CNY","items":[{"sku":"tea","qty":6,"retail":6000,"price":6000,"saved":0,"label":""},{"sku":"tea","qty":12,"retail":12000,"price":12000,"saved":0,"label":""}]}


=== TEST 4: buy5get1: a customer (stage below member) pays the tier price for all 6
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/buy5get1.lua;
--- request
GET /price?sku=tea:6
--- more_headers
Cookie: loyalty_member=%%SIGN(cust1,1h)%%
--- response_body
{"tier":"gold","currency":"CNY","items":[{"sku":"tea","qty":6,"retail":6000,"price":5400,"saved":600,"label":"Gold"}]}


=== TEST 5: buy5get1: $loyalty_price is for one unit: no deal
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/buy5get1.lua;
--- request
GET /product/?sku=tea
--- more_headers
Cookie: loyalty_member=%%SIGN(mem1,1h)%%
--- response_body
[gold][900]


=== TEST 6: partner_wholesale: a partner pays 6900 for nappies-128, 900 for wipes-80
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/partner_wholesale.lua;
--- request
GET /price?sku=nappies-128,wipes-80:3,tea
--- more_headers
Cookie: loyalty_member=%%SIGN(part1,1h)%%
--- response_body
{"tier":"partner","currency":"CNY","items":[{"sku":"nappies-128","retail":12800,"price":6900,"saved":5900,"label":"Partner","promo":"Wholesale"},{"sku":"wipes-80","qty":3,"retail":4770,"price":2700,"saved":2070,"label":"Partner","promo":"Wholesale"},{"sku":"tea","retail":1000,"price":800,"saved":200,"label":"Partner"}]}


=== TEST 7: partner_wholesale: members and visitors are left alone
--- http_config
loyalty_store %%STORE%%;
loyalty_keys %%KEYS%%;
loyalty_lua_file %%ROOT%%/lua/examples/partner_wholesale.lua;
--- request
GET /price?sku=nappies-128
--- more_headers
Cookie: loyalty_member=%%SIGN(mem1,1h)%%
--- response_body
{"tier":"gold","currency":"CNY","items":[{"sku":"nappies-128","retail":12800,"price":11520,"saved":1280,"label":"Gold"}]}
