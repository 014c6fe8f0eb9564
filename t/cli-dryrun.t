# loyaltyctl --lua FILE price|click|event: dry runs of the script's hooks
# against the store, in the sandbox and with the checks nginx uses, at
# --now, in the shop's zone (--tz); and lua-check's warnings: unknown keys
# with a "did you mean", literal fractional factors; loyalty.money's
# rounding.

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp ();
use JSON::PP ();

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $json = JSON::PP->new->canonical;

my ($tmp, $store) = new_store(qw(tiers members prices));
my $DIR = "$tmp";
my ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', 'rules',
                                  "$ROOT/schema/examples/rules.json");
is($rc, 0, 'the example rules') or diag($err);

# the issue's promotion: 20% off at weekends, the shop's weekend
write_file("$DIR/weekend.lua", <<'LUA');
local date  = require "loyalty.date"
local money = require "loyalty.money"

return {
  price = function(ctx)
    if date.is_weekend(ctx.now) then
      return money.percent_off(ctx.price * ctx.qty, 2000),
             "Weekend " .. date.weekday(ctx.now)
    end
  end,
}
LUA
write_file("$DIR/third.lua", <<'LUA');
return {
  price = function(ctx)
    return ctx.price * ctx.qty * 0.333, "A third"
  end,
}
LUA
write_file("$DIR/rounded.lua", <<'LUA');
local money = require "loyalty.money"
return {
  price = function(ctx)
    return money.times(ctx.price * ctx.qty, 0.333), "A third"
  end,
}
LUA
write_file("$DIR/ff.lua", <<'LUA');
return {
  price = function(ctx)
    return ctx.price * ctx.qty - 1, "caf\255 sale"
  end,
}
LUA
write_file("$DIR/hooks.lua", <<'LUA');
return {
  click = function(ctx)
    if ctx.user_agent == "bot" then return false end
    return { campaign = "c-" .. ctx.referrer:gsub("%.", "-") }
  end,
  event = function(ctx)
    if ctx.type == "order" then return { points = ctx.points * 2 } end
  end,
}
LUA
write_file("$DIR/typo.lua", <<'LUA');
local money = require "loyalty.money"
-- "* 0.5" in a comment is not code
return {
  prcie = function(ctx) return ctx.price * ctx.qty * 0.9 end,
  evnet = function(ctx) return nil end,
  cadence = {},
  version = "2026.12",
  click = function(ctx) return "x * 0.5" end,
  event = function(ctx) return { points = math.floor(ctx.points * 1.5) } end,
  half = function(ctx) return money.percent_off(ctx.price, 5000) end,
}
LUA

sub price {
    my (@args) = @_;
    my ($rc, $out, $err) = loyaltyctl('-s', $store, @args);
    my $doc = eval { $json->decode($out) };
    return ($rc, $doc, $err, $out);
}

sub line {
    my ($doc) = @_;
    return 'no answer' unless $doc && $doc->{items};
    return join ' ', map { join '/', $_->{sku}, $_->{qty}, $_->{price} // '',
                           $_->{promo} // '-' } @{$doc->{items}};
}


# the repro: Sunday 16:48 UTC is Monday in Beijing

{
    my @run = ('--lua', "$DIR/weekend.lua", 'price', 'sofa-298:2');
    my ($rc, $doc) = price(@run, '--now', '2026-12-06T16:48:00Z');
    is($rc, 0, 'price: exit 0');
    is(line($doc), 'sofa-298/2/47680/Weekend 7',
       'Sunday 16:48 UTC without a zone: Sunday, the weekend price');
    is($doc->{tier}, 'public', 'price: the public without --member');
    is($doc->{now}, '2026-12-06T16:48:00Z', 'price: --now told');

    ($rc, $doc) = price('--tz', 'Asia/Shanghai', @run, '--now',
                        '2026-12-06T16:48:00Z');
    is(line($doc), 'sofa-298/2/59600/-',
       'Sunday 16:48 UTC in Asia/Shanghai: Monday, retail');
    ($rc, $doc) = price('--tz', 'Asia/Shanghai', @run, '--now',
                        '2026-12-04T16:00:00Z');
    is(line($doc), 'sofa-298/2/47680/Weekend 6',
       'Friday 16:00 UTC in Asia/Shanghai: Saturday midnight, the weekend');
    ($rc, $doc) = price('--tz', 'America/New_York', @run, '--now',
                        '2026-12-07T03:00:00Z');
    is(line($doc), 'sofa-298/2/47680/Weekend 7',
       'Monday 03:00 UTC in New York: still Sunday');

    # the example, as its comment runs it: Saturday in Beijing
    ($rc, $doc) = price('--tz', 'Asia/Shanghai', '--lua',
                        "$ROOT/lua/examples/weekend.lua", 'price', 'sofa-298',
                        '--tier', 'vip', '--now', '2026-12-12T10:00:00+08:00');
    is(line($doc), 'sofa-298/1/20640/Weekend',
       'lua/examples/weekend.lua: 20% off the tier price on Saturday');
    ($rc, $doc) = price('--tz', 'Asia/Shanghai', '--lua',
                        "$ROOT/lua/examples/weekend.lua", 'price', 'sofa-298',
                        '--tier', 'vip', '--now', '2026-12-13T23:59:59+08:00');
    is(line($doc), 'sofa-298/1/20640/Weekend', '... until Sunday midnight');
    ($rc, $doc) = price('--tz', 'Asia/Shanghai', '--lua',
                        "$ROOT/lua/examples/weekend.lua", 'price', 'sofa-298',
                        '--tier', 'vip', '--now', '2026-12-14T00:00:00+08:00');
    is(line($doc), 'sofa-298/1/25800/-', '... not on Monday');

    # a member: the tier's price, then the hook on it
    ($rc, $doc) = price('--lua', "$DIR/weekend.lua", 'price', 'sofa-298',
                        'tea-gift:3', 'nope', '--member', 'li.member',
                        '--now', '2026-12-05T12:00:00Z');
    is($rc, 0, 'a member: exit 0');
    is($doc->{tier}, 'vip', "the member's tier");
    is(line($doc), 'sofa-298/1/20640/Weekend 6 tea-gift/3/38304/Weekend 6 '
                   . 'nope/1//-',
       "a member's weekend: 20% off the tier's price, an unknown sku said");
    is($doc->{items}[2]{error}, 'unknown sku', 'unknown sku');
    is($doc->{items}[0]{label}, 'VIP', "the tier's label");

    ($rc, $doc) = price('--lua', "$DIR/weekend.lua", 'price', 'sofa-298',
                        '--tier', 'ka', '--now', '2026-12-09T12:00:00Z');
    is(line($doc), 'sofa-298/1/25800/-', 'a tier on a Wednesday: its price');

    my $s;
    ($rc, $doc, $err) = price('--lua', "$DIR/weekend.lua", 'price', 'sofa',
                              '--member', 'nobody');
    is("$rc $err", "1 loyaltyctl: no member \"nobody\"\n", 'no member: 1');
    ($rc, $doc, $err) = price('--lua', "$DIR/weekend.lua", 'price', 'sofa',
                              '--tier', 'gold');
    is("$rc $err", "1 loyaltyctl: no tier \"gold\"\n", 'no tier: 1');
    for my $bad (['sofa:0'], ['sofa:1001'], ['sofa:x'], [':2'],
                 ['sofa', '--member', 'li.member', '--tier', 'vip'],
                 ['sofa', '--now', 'yesterday'], []) {
        ($rc) = price('--lua', "$DIR/weekend.lua", 'price', @$bad);
        is($rc, 2, "usage: price @$bad");
    }
    ($rc, $doc, $err) = price('price', 'sofa-298');
    is("$rc $err", "2 loyaltyctl: no script: use --lua FILE\n",
       'price without --lua: 2');
    ($rc, $doc, $err) = price('--lua', "$DIR/hooks.lua", 'price', 'sofa-298');
    like("$rc $err", qr/^1 .*the script has no price hook/, 'no price hook');
    ($rc, $doc, $err) = price('--tz', 'Mars/Olympus', '--lua',
                              "$DIR/weekend.lua", 'price', 'sofa-298');
    is($rc, 2, 'a bad --tz: 2');
    like($err, qr/invalid --tz "Mars\/Olympus": unknown time zone/,
         'a bad --tz: said');
    ($rc, $doc, $err) = price('--tz', '../../etc/passwd', 'stat');
    is($rc, 2, 'a --tz out of tzdata: 2');

    # the old way ignored the hook; now it says where the hook runs
    ($rc, undef, $err) = price('--lua', "$DIR/weekend.lua", 'get', 'price',
                               'sofa-298', '--tier', 'vip');
    is($rc, 2, 'get price with --lua: 2, not the hookless price');
    like($err, qr/get price does not run the --lua script: its dry run is/,
         'get price with --lua: points at the dry run');
}


# answers that are refused: the hook's line and the field

{
    my ($rc, $doc, $err) = price('--lua', "$DIR/third.lua", 'price',
                                 'sofa-298', '--tier', 'vip');
    is($rc, 1, 'a fractional price: exit 1');
    my $say = "loyaltyctl: --lua \"$DIR/third.lua\": $DIR/third.lua:2 "
              . '(field price): the price hook returned a price that is not '
              . 'a whole amount of at least 0 (round it with loyalty.money): ';
    is($err, "${say}8591.4\n${say}9923.4\n${say}9923.4\n",
       'the place and the field, for the tier, the lower one and the '
       . 'public (every call told)');
    is(line($doc), 'sofa-298/1/25800/-', 'priced without the hook');

    ($rc, $doc) = price('--lua', "$DIR/rounded.lua", 'price', 'sofa-298',
                        '--tier', 'vip');
    is($rc, 0, 'money.times: exit 0');
    is(line($doc), 'sofa-298/1/8591/A third',
       'money.times(25800, 0.333): 8591 (8591.4 rounded)');

    my $raw;
    ($rc, $doc, $err, $raw) = price('--lua', "$DIR/ff.lua", 'price',
                                    'sofa-298');
    is($rc, 1, 'a label with 0xFF: exit 1');
    like($err, qr/\Q$DIR\E\/ff\.lua:2 \(field label\): the price hook returned a label that is not valid UTF-8 text: a string/,
         'a label with 0xFF: refused, with its place');
    is(line($doc), 'sofa-298/1/29800/-', 'a label with 0xFF: no promo');
    my $f = File::Temp->new;
    binmode $f;
    print $f $raw;
    close $f;
    my $py = `python3 -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict")); print("ok")' $f 2>&1`;
    is($py, "ok\n", 'the answer is JSON a strict parser takes');
}


# click and event

{
    my ($rc, $code) = loyaltyctl('-s', $store, 'mint-code', 'li.member');
    chomp $code;
    is($rc, 0, 'a code minted');

    my ($c, $doc, $err) = price('--lua', "$DIR/hooks.lua", 'click', $code,
                                '--ua', 'Mozilla/5.0', '--now',
                                '2026-12-05T10:00:00Z');
    is($c, 0, 'click: exit 0');
    is_deeply($doc, { code => $code, referrer => 'li.member',
                      now => '2026-12-05T10:00:00Z', refuse => JSON::PP::false,
                      campaign => 'c-li-member' },
              'click: the campaign the hook gave');

    # the referrer's own referrer, read from the store: ctx.referrer2
    write_file("$DIR/members2.jsonl",
               qq({"id":"ref.top","tier":"basic","stage":"partner"}\n)
               . qq({"id":"ref.mid","tier":"basic","stage":"partner",)
               . qq("referrer":"ref.top"}\n));
    ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', 'members',
                                   "$DIR/members2.jsonl");
    is($rc, 0, 'a referrer with a referrer of its own') or diag($err);
    write_file("$DIR/level2.lua", <<'LUA');
return {
  click = function(ctx)
    return { campaign = "l2-" .. (ctx.referrer2 or "none") }
  end,
}
LUA
    my $mid;
    ($rc, $mid) = loyaltyctl('-s', $store, 'mint-code', 'ref.mid');
    chomp $mid;
    ($c, $doc) = price('--lua', "$DIR/level2.lua", 'click', $mid);
    is($doc->{campaign}, 'l2-ref.top', 'click: ctx.referrer2 from the store');
    ($c, $doc) = price('--lua', "$DIR/level2.lua", 'click', $code);
    is($doc->{campaign}, 'l2-wang.partner',
       'click: li.member\'s own referrer as referrer2');
    my $top;
    ($rc, $top) = loyaltyctl('-s', $store, 'mint-code', 'ref.top');
    chomp $top;
    ($c, $doc) = price('--lua', "$DIR/level2.lua", 'click', $top);
    is($doc->{campaign}, 'l2-none', 'click: no referrer2 without one');
    ($c, $doc) = price('--lua', "$DIR/hooks.lua", 'click', lc $code,
                       '--ua', 'bot');
    is($doc->{refuse}, JSON::PP::true, 'click: refused (a code in any case)');
    ($c, $doc, $err) = price('--lua', "$DIR/hooks.lua", 'click', 'NOPE99');
    is("$c $err", "1 loyaltyctl: no code \"NOPE99\"\n", 'click: no code');
    ($c) = price('--lua', "$DIR/hooks.lua", 'click');
    is($c, 2, 'click: usage');

    my ($r0, $before) = loyaltyctl('-s', $store, 'get', 'member',
                                   'li.member');
    my $ev = '{"type":"order","member":"li.member","order_id":"DRY-1",'
             . '"amount":10000,"at":"2026-12-05T10:00:00Z"}';
    ($c, $doc, $err) = price('--lua', "$DIR/hooks.lua", 'event', $ev,
                             '--now', '2026-12-05T10:00:00Z');
    is($c, 0, 'event: exit 0') or diag($err);
    my $d = $doc->{hook}{defaults}{points};
    ok($d > 0, "event: the rules' points ($d)");
    is($doc->{hook}{answer}{points}, 2 * $d, 'event: the hook doubled them');
    is($doc->{member}{points}, $json->decode($before)->{points} + 2 * $d,
       'event: the member as the event would leave them');
    my ($r1, $after) = loyaltyctl('-s', $store, 'get', 'member',
                                  'li.member');
    is($after, $before, 'event: nothing written');
    my ($r2, $ledger) = loyaltyctl('-s', $store, 'get', 'ledger',
                                   'li.member');
    unlike($ledger, qr/DRY-1/, 'event: no ledger entry');

    ($c, $doc, $err) = price('--lua', "$DIR/hooks.lua", 'event',
                             '{"type":"order"}');
    is($c, 1, 'event: a bad event, 1');
    like($err, qr/^loyaltyctl: invalid event: /, 'event: said');
}


# lua-check's warnings

{
    my ($rc, $out, $err) = loyaltyctl('--lua', "$DIR/typo.lua", 'lua-check');
    is($rc, 0, 'typos: lua-check still exit 0 (warnings)');
    my $doc = eval { $json->decode($out) } // {};
    is_deeply($doc->{hooks}, ['click', 'event'], 'typos: the hooks taken');
    my $not = '(the keys read are price, click, event and cadences)';
    is_deeply($doc->{warnings}, [
        'unknown key "cadence" in the script\'s table: did you mean '
        . '"cadences"?',
        'unknown key "evnet" in the script\'s table: did you mean "event"?',
        'unknown key "half" in the script\'s table: it is not read ' . $not,
        'unknown key "prcie" in the script\'s table: did you mean "price"?',
        'unknown key "version" in the script\'s table: it is not read '
        . $not,
        "$DIR/typo.lua:4: a price multiplied by a fraction (\"* 0.9 end,\") "
        . 'is seldom a whole amount: round it with loyalty.money '
        . '(percent_off, round)',
    ], 'typos: every unknown key, a did-you-mean for the near ones, the '
       . 'fractional factor at its line (not in comments, strings or a '
       . 'rounded line)');
    like($err, qr/^loyaltyctl: --lua "\Q$DIR\E\/typo\.lua": warning: unknown key "prcie" in the script's table: did you mean "price"\?$/m,
         'typos: on stderr too');

    ($rc, $out) = loyaltyctl('--lua', "$DIR/third.lua", 'lua-check');
    like($out, qr/third\.lua:3: a price multiplied by a fraction/,
         'the issue\'s "* 0.333" is flagged');
    ($rc, $out) = loyaltyctl('--lua', "$DIR/rounded.lua", 'lua-check');
    like($out, qr/"warnings":\[\]/, 'money.times on the line: no warning');
}


# loyalty.money: rounding, checked in the sandbox as the script loads

{
    write_file("$DIR/money.lua", <<'LUA');
local m = require "loyalty.money"
local function eq(got, want, what)
  if got ~= want then
    error(what .. ": got " .. tostring(got) .. ", want " .. tostring(want))
  end
end
eq(m.round(2.5), 3, "round half up")
eq(m.round(-2.5), -2, "round half up, negative")
eq(m.round(2.4999), 2, "round down")
eq(m.round(2.5, "half_even"), 2, "half even, 2.5")
eq(m.round(3.5, "half_even"), 4, "half even, 3.5")
eq(m.round(3.2, "half_even"), 3, "half even, 3.2")
eq(m.times(900, 0.333), 300, "times")
eq(m.times(25800, 0.333), 8591, "times, 8591.4")
eq(m.percent_off(15, 1000), 14, "percent_off half up, 13.5")
eq(m.percent_off(25, 1000, "half_even"), 22, "percent_off half even, 22.5")
eq(m.percent_off(35, 1000, "half_even"), 32, "percent_off half even, 31.5")
eq(m.percent_off(999, 1000), 899, "percent_off 899.1")
eq(m.to_minor(12.345, "CNY"), 1235, "to_minor CNY")
eq(m.to_minor(500, "JPY"), 500, "to_minor JPY")
eq(pcall(m.round, 0/0), false, "NaN refused")
eq(pcall(m.round, 1, "up"), false, "a bad mode refused")
eq(pcall(m.times, 1.5, 2), false, "times of a fractional amount refused")
return {}
LUA
    my ($rc, $out, $err) = loyaltyctl('--lua', "$DIR/money.lua", 'lua-check');
    is("$rc $err", '0 ', 'loyalty.money: every rounding as documented');
}

# nginx -t warns about an unknown key, naming the directive
{
    my $h = start_nginx(http_config => "loyalty_lua_file $DIR/typo.lua;\n");
    like(error_log_text($h),
         qr/\[warn\].*loyalty_lua_file "\Q$DIR\E\/typo\.lua": unknown key "prcie" in the script's table: did you mean "price"\? in \S+\/conf\/nginx\.conf:24$/m,
         'nginx warns about the misspelt hook at its directive\'s line, and '
         . 'starts');
    stop_checked($h, 'typo');
}

done_testing();
