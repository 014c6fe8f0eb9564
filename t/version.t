# The version is written once, in debian/changelog: loyaltyctl --version
# prints it, and the module logs it when nginx starts and reloads.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');

my ($rc, $version) = run_out('sh', "$ROOT/ngx_module/version.sh", '-n',
                             "$ROOT/debian/changelog");
chomp $version;
is($rc, 0, 'version.sh reads debian/changelog');
like($version, qr/^\d+\.\d+(\.\d+)*$/, "version $version");

# the header both builds include
($rc, my $h) = run_out('sh', "$ROOT/ngx_module/version.sh",
                       "$ROOT/debian/changelog");
like($h, qr/^#define LOYALTY_VERSION  "\Q$version\E"$/m, 'the header');

# a changelog without a version is refused, not built as ""
my $dir = test_dir();
write_file("$dir/changelog", "garbage\n");
($rc) = run_out("sh $ROOT/ngx_module/version.sh $dir/changelog 2>/dev/null");
isnt($rc, 0, 'a changelog without a version fails the build');
write_file("$dir/changelog",
           "nginx-loyalty (1:2.3.4-5) unstable; urgency=medium\n");
($rc, my $v) = run_out('sh', "$ROOT/ngx_module/version.sh", '-n',
                       "$dir/changelog");
is($v, "2.3.4\n", 'epoch and Debian revision are not the version');

my ($out, $err);
($rc, $out, $err) = loyaltyctl('--version');
is($rc, 0, 'loyaltyctl --version exits 0');
is($out, "loyaltyctl (nginx-loyalty) $version\n", 'and prints it');

($rc, $out) = loyaltyctl('--help');
like($out, qr/^\s+--version\s/m, '--help lists --version');

my $ngx = start_nginx();
like(error_log_text($ngx),
     qr/\[notice\] \d+#\d+: nginx-loyalty\/\Q$version\E$/m,
     'the module logs its version at start');
my $before = () = error_log_text($ngx) =~ /nginx-loyalty\//g;
ok(reload_nginx($ngx), 'reload');
my $after = () = error_log_text($ngx) =~ /nginx-loyalty\//g;
cmp_ok($after, '>', $before, 'and at reload');
stop_checked($ngx, 'version');

done_testing();
