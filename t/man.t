# The man pages are made from what they document, and cover all of it:
# loyaltyctl(1) every command of `loyaltyctl --help` and every option,
# loyalty(8) every directive of the module's ngx_command_t table, each of
# which the README describes with a Syntax: block.  Both pages format
# without groff warnings.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $CTL = $ENV{LOYALTY_CTL} // "$ROOT/build/loyaltyctl";

plan skip_all => "$CTL is not built (make)" unless -x $CTL;

my $dir = test_dir();
my ($rc, $version) = run_out('sh', "$ROOT/ngx_module/version.sh", '-n',
                             "$ROOT/debian/changelog");
chomp $version;
is($rc, 0, 'the version comes from debian/changelog');
like($version, qr/^\d+\.\d+(\.\d+)*$/, "version $version");

my %page;
for (['loyaltyctl', $CTL, 'loyaltyctl.1'],
     ['directives', "$ROOT/README.md", 'loyalty.8'])
{
    my ($what, $from, $name) = @$_;
    ($rc, $page{$name}) = run_out('perl', "$ROOT/man/mkman", $what, $from,
                                  $version);
    is($rc, 0, "mkman makes $name");
    like($page{$name}, qr/^\.TH \S+ [18] \S+ "nginx-loyalty \Q$version\E"/m,
         "$name carries the version");
    write_file("$dir/$name", $page{$name});
}


# loyaltyctl(1): each command of --help, with its own --help's text

my ($hrc, $help) = run_out($CTL, '--help');
is($hrc, 0, 'loyaltyctl --help');
my ($commands) = $help =~ /^commands:\n(.*?)\n\n/ms;
my %seen;
my @commands = grep { !$seen{$_}++ } ($commands // '') =~ /^  ([a-z][a-z-]*)/mg;
cmp_ok(scalar @commands, '>=', 15, 'commands found in --help: '
       . scalar @commands);

for my $cmd (@commands) {
    (my $r = $cmd) =~ s/-/\\\\-/g;
    like($page{'loyaltyctl.1'}, qr/^\.SS $r$/m, "loyaltyctl(1) has $cmd");
    my ($crc, $text) = run_out($CTL, $cmd, '--help');
    my ($first) = $text =~ /^(?!usage:)(\w[^\n]*)$/m;
    $first //= '';
    (my $in_page = $first) =~ s/-/\\-/g;
    ok($first ne '' && index($page{'loyaltyctl.1'}, $in_page) >= 0,
       "loyaltyctl(1) describes $cmd as its --help does");
}

for my $opt ($help =~ /^\s+(?:-\w, )?(--[a-z-]+)/mg) {
    (my $r = $opt) =~ s/-/\\\\-/g;
    like($page{'loyaltyctl.1'}, qr/^\.B .*$r/m, "loyaltyctl(1) has $opt");
}
like($page{'loyaltyctl.1'}, qr/^\.SH "EXIT STATUS"\n0 success/m,
     'loyaltyctl(1) has the exit status');


# loyalty(8): each directive of the module, as the README gives it

my $source = slurp("$ROOT/ngx_module/ngx_http_loyalty_module.c");
my ($table) = $source =~ /ngx_command_t\s+ngx_http_loyalty_commands\[\]\s*=\s*\{
                             (.*?) ngx_null_command/sx;
my @directives = ($table // '') =~ /ngx_string\("(loyalty_\w+)"\)/g;
cmp_ok(scalar @directives, '>=', 25, 'directives in the command table: '
       . scalar @directives);

my $readme = slurp("$ROOT/README.md");
for my $d (@directives) {
    like($readme, qr/^### \Q$d\E\n\n    Syntax:  \Q$d\E[ ;]/m,
         "README describes $d with its syntax");
    like($page{'loyalty.8'}, qr/^\.SS \Q$d\E\n(?:.*\n){0,2}Syntax:  \Q$d\E/m,
         "loyalty(8) has $d");
}

my @in_page = $page{'loyalty.8'} =~ /^\.SS (\S+)$/mg;
is_deeply([sort @in_page], [sort @directives],
          'loyalty(8) lists exactly the directives of the module');


# both format cleanly, as lintian checks them

SKIP: {
    skip 'man is not installed', 2 unless -x '/usr/bin/man';
    for my $name (sort keys %page) {
        my $cmd = 'LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 '
                  . "-l $dir/$name 2>&1 >/dev/null";
        my $out = `$cmd`;
        is($out, '', "$name formats without warnings");
    }
}

done_testing();
