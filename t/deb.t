# The Debian packages, as a shop installs them: `make deb` builds
# libnginx-mod-http-loyalty and loyalty-tools, lintian finds no error in
# them, `apt-get install ./build/deb/*.deb` enables the module the Debian
# way (modules-enabled, the nginx ABI dependency), a store made by the
# installed loyaltyctl as the user loyalty serves a tagged request through
# the installed module (loaded by `include modules-enabled/*.conf`, never
# by the other tests' configurations), the sweep unit's command runs as
# the user loyalty on the store nginx has used, and after `apt-get remove`
# the system's nginx configuration still passes `nginx -t`.  The packages
# are purged and the user, group and directory the test made removed at
# the end, even on failure, so that the machine is left as it was.
#
# One build (`make deb`, a few minutes); needs root, dpkg-buildpackage
# and apt-get, and the packages not already installed for real.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my @PKGS = qw(libnginx-mod-http-loyalty loyalty-tools);
my $NGINX = '/usr/sbin/nginx';
my $ENABLED = '/etc/nginx/modules-enabled';
my $LINK = "$ENABLED/50-mod-http-loyalty.conf";

plan skip_all => 'installs packages: run as root' if $> != 0;
for my $cmd (qw(dpkg-buildpackage apt-get dpkg-query runuser)) {
    plan skip_all => "$cmd is not installed (make deps)"
        unless grep { -x "$_/$cmd" } split /:/, "$ENV{PATH}:/usr/sbin:/sbin";
}
plan skip_all => "$NGINX is not installed" unless -x $NGINX;
for my $p (@PKGS) {
    my $status = `dpkg-query -W -f '\${Status}' $p 2>/dev/null`;
    plan skip_all => "$p is installed on this machine: the test would "
                     . "remove it" if $status =~ /installed|config-files/;
}

# the way the machine was, to leave it so
my %before = (
    user => defined getpwnam('loyalty'),
    group => defined getgrnam('loyalty'),
    store => -e '/var/lib/loyalty',
    enabled => join(' ', sort glob("$ENABLED/*")),
);

my $installed = 0;
my $ngx;

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

sub cleanup {
    stop_nginx($ngx) if $ngx;
    undef $ngx;
    return unless $installed;
    $installed = 0;
    my ($rc, $out) = sh('DEBIAN_FRONTEND=noninteractive apt-get purge -y -q '
                        . '-o DPkg::Lock::Timeout=600 ' . join ' ', @PKGS);
    diag("purge: $out") if $rc;
    system('deluser --quiet --system loyalty >/dev/null 2>&1')
        unless $before{user};
    system('delgroup --quiet --system loyalty >/dev/null 2>&1')
        unless $before{group};
    system('rm', '-rf', '/var/lib/loyalty') unless $before{store};
}

END { local $?; cleanup() }

# a parent make's jobserver means nothing to this build
delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL)};


# the build, and lintian

my ($rc, $version) = sh("sh $ROOT/ngx_module/version.sh -n "
                        . "$ROOT/debian/changelog");
chomp $version;

my $t0 = time;
($rc, my $out) = sh("make -C $ROOT -s deb");
is($rc, 0, 'make deb') or diag($out);
note('make deb: ' . (time - $t0) . ' s');

my $arch = `dpkg --print-architecture`;
chomp $arch;
my %deb = map { $_ => "$ROOT/build/deb/${_}_${version}_$arch.deb" } @PKGS;
ok(-f $deb{$_}, "$_ $version is built") for @PKGS;
my @debs = glob("$ROOT/build/deb/*.deb");
is(scalar @debs, 2, 'build/deb holds the two packages alone');

SKIP: {
    skip 'lintian is not installed (make deps)', 1
        unless -x '/usr/bin/lintian';
    ($rc, $out) = sh("lintian --tag-display-limit 0 @deb{@PKGS}");
    my @errors = grep { /^E: / } split /\n/, $out;
    ok(!@errors, 'lintian reports no error') or diag($out);
    note($out);
}

BAIL_OUT('no packages to install') if grep { !-f $deb{$_} } @PKGS;

# a module built for another nginx must not be installable: the ABI
my ($abi) = slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
            =~ /^nginx:abi=(\S+)$/m;
my $depends = `dpkg-deb -f $deb{'libnginx-mod-http-loyalty'} Depends`;
like($depends, qr/(^|, )\Q$abi\E(,|$)/m, "the module depends on $abi");


# installed

$installed = 1;
($rc, $out) = sh('DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
                 . '--no-install-recommends -o DPkg::Lock::Timeout=600 '
                 . join ' ', @deb{@PKGS});
is($rc, 0, 'apt-get install ./build/deb/*.deb') or diag($out);

ok(-f '/usr/lib/nginx/modules/ngx_http_loyalty_module.so', 'the module');
is(readlink($LINK), '/usr/share/nginx/modules-available/mod-http-loyalty.conf',
   'enabled in modules-enabled as Debian does it');
is(slurp('/usr/share/nginx/modules-available/mod-http-loyalty.conf'),
   "load_module modules/ngx_http_loyalty_module.so;\n", 'its load file');

($rc, $out) = sh("$NGINX -t");
is($rc, 0, 'nginx -t with the system configuration') or diag($out);
($rc, $out) = sh("$NGINX -T");
like($out, qr{^load_module modules/ngx_http_loyalty_module\.so;$}m,
     'which loads the module');

($rc, $out) = sh('/usr/bin/loyaltyctl --version');
is($out, "loyaltyctl (nginx-loyalty) $version\n", 'loyaltyctl --version');

my $files = `dpkg -L loyalty-tools`;
for (qw(/usr/share/man/man1/loyaltyctl.1.gz /usr/share/man/man8/loyalty.8.gz
        /lib/systemd/system/loyalty-sweep.service
        /lib/systemd/system/loyalty-sweep.timer /etc/default/loyalty
        /usr/share/loyalty/lua/loyalty/date.lua
        /usr/share/loyalty/lua/examples/cadences.lua
        /usr/share/loyalty/schema/member.schema.json
        /usr/share/loyalty/schema/examples/members.jsonl))
{
    ok(index($files, "$_\n") >= 0, "loyalty-tools ships $_");
}

# the dashboard, in the folder loyalty_admin_dashboard defaults to
$files = `dpkg -L libnginx-mod-http-loyalty`;
for (qw(index.html app.js app.css echarts.min.js echarts-LICENSE.txt)) {
    ok(index($files, "/usr/share/loyalty/dashboard/$_\n") >= 0,
       "libnginx-mod-http-loyalty ships the dashboard's $_");
}

my $TIMER = '/etc/systemd/system/timers.target.wants/loyalty-sweep.timer';
ok(-l $TIMER, 'the sweep timer is enabled');

SKIP: {
    skip 'systemd-analyze is not installed', 1
        unless -x '/usr/bin/systemd-analyze';
    ($rc, $out) = sh('systemd-analyze verify '
                     . '/lib/systemd/system/loyalty-sweep.service '
                     . '/lib/systemd/system/loyalty-sweep.timer');
    ok($rc == 0 && $out eq '', 'systemd-analyze verify the units')
        or diag($out);
}

my @u = getpwnam('loyalty');
ok(@u && $u[8] =~ m{/nologin$}, 'system user loyalty');
my @g = getgrnam('loyalty');
ok(@g && $u[3] == $g[2], 'in its group loyalty');
ok(@g && grep({ $_ eq 'www-data' } split ' ', $g[3]),
   "nginx's workers' user www-data is in the group");

my @st = stat('/var/lib/loyalty');
SKIP: {
    skip '/var/lib/loyalty was there before', 3 if $before{store};
    is(sprintf('%04o', $st[2] & 07777), '2770', '/var/lib/loyalty is 2770');
    ok($st[4] == $u[2] && $st[5] == $g[2], 'owned by loyalty:loyalty');
    my @d = stat('/var/lib/loyalty/data.mdb');
    ok(@d && ($d[2] & 0660) == 0660 && $d[5] == $g[2],
       'an empty store, group-writable') or diag(sprintf '%o', $d[2] // 0);
}


# a store made by the installed loyaltyctl, as the user loyalty, serves a
# tagged request through the installed module, workers as www-data

my $tmp = test_dir();
chmod 0755, "$tmp" or die;
my $store = "$tmp/store";
mkdir $store or die "$store: $!";
chown $u[2], $g[2], $store or die;
chmod 02770, $store or die;

my $ex = '/usr/share/loyalty/schema/examples';
($rc, $out) = sh("runuser -u loyalty -- sh -c 'umask 007; "
                 . "loyaltyctl -s $store init "
                 . "&& loyaltyctl -s $store import tiers $ex/tiers.jsonl "
                 . "&& loyaltyctl -s $store import members $ex/members.jsonl'");
is($rc, 0, 'loyaltyctl, as loyalty, makes a store of the examples')
    or diag($out);

$ngx = start_nginx(
    no_module => 1,
    main_config => "include $ENABLED/*.conf;",
    http_config => "loyalty_store $store;\n    loyalty_keys %%KEYS%%;",
    config => <<'END',
        location / {
            add_header X-Member $loyalty_member;
            add_header X-Tier $loyalty_tier;
            return 200 "$loyalty_stage\n";
        }
END
);

my ($status, $hdr, $body) = http_request($ngx, 'GET', '/', {
    Cookie => 'loyalty_member=' . sign_member('li.member', '1h'),
});
is($status, 200, 'a request');
is($hdr->{'x-member'}, 'li.member', 'tagged with the member');
is($hdr->{'x-tier'}, 'vip', 'and the tier');
is($body, "member\n", 'and the stage');
like(error_log_text($ngx), qr{\] \d+#\d+: nginx-loyalty/\Q$version\E$}m,
     'the installed module logs its version');
stop_checked($ngx, 'the installed module');
undef $ngx;

# nginx's master gave lock.mdb to the workers' user; the sweep, as the
# service runs it, still writes the store through the group
my @lock = stat("$store/lock.mdb");
is(scalar getpwuid($lock[4] // 0), 'www-data', 'lock.mdb is the workers\'');

my ($exec) = slurp('/lib/systemd/system/loyalty-sweep.service')
             =~ /^ExecStart=(.*)$/m;
$exec =~ s/\$\{LOYALTY_STORE\}/$store/g;
$exec =~ s/\$LOYALTY_SWEEP_OPTS//g;
($rc, $out) = sh("runuser -u loyalty -- sh -c 'umask 007; $exec'");
is($rc, 0, "the sweep unit's command, as loyalty: $exec") or diag($out);
like($out, qr/"members":\d+/, 'sweeps the members');


# removed: the module is disabled, nginx still configures

($rc, $out) = sh('DEBIAN_FRONTEND=noninteractive apt-get remove -y -q '
                 . '-o DPkg::Lock::Timeout=600 ' . join ' ', @PKGS);
is($rc, 0, 'apt-get remove') or diag($out);
ok(!-e $LINK && !-e '/usr/lib/nginx/modules/ngx_http_loyalty_module.so',
   'the module is gone from modules-enabled');
($rc, $out) = sh("$NGINX -t");
is($rc, 0, 'nginx -t still passes') or diag($out);

cleanup();
is(join(' ', sort glob("$ENABLED/*")), $before{enabled},
   'purged: modules-enabled is as it was');
ok(!-e $TIMER && !-l $TIMER, 'and the timer is gone');
ok(!defined getpwnam('loyalty'), 'the user loyalty is gone')
    unless $before{user};

done_testing();
