# The module and loyaltyctl compile clean with clang as well as gcc: nginx's
# configure gives clang its own warnings (-Wconditional-uninitialized, ...),
# all errors under -Werror.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Harness;
use File::Temp qw(tempdir);
use Test::More;

plan skip_all => 'clang is not installed' unless -x '/usr/bin/clang';

my $root = `pwd`;
chomp $root;
my $dir = tempdir(CLEANUP => 1);

system('cp', '-r', '/usr/share/nginx/src', "$dir/nginx") == 0
    or BAIL_OUT('cannot copy the nginx sources');

my $configure = qq{cd $dir/nginx && bash -c '. ./conf_flags; }
    . qq{./configure "\${NGX_CONF_FLAGS[\@]}" --with-cc=clang }
    . qq{--with-cc-opt="-g -O2 -fPIC" --with-ld-opt=-fPIC }
    . qq{--add-dynamic-module=$root' > configure.log 2>&1};
is(system($configure), 0, 'configure with clang');

my ($rc, $out) = run_out("make -C $dir/nginx -f objs/Makefile modules 2>&1");
is($rc, 0, 'the module builds with clang -Werror')
    or diag(join "\n", grep { /error|warning/ } split /\n/, $out);
ok(-f "$dir/nginx/objs/ngx_http_loyalty_module.so", 'the .so is there');

system("sh ngx_module/core/loyalty_lua_lib.sh lua/loyalty "
       . "> $dir/loyalty_lua_lib.h") == 0
    or BAIL_OUT('cannot make the Lua library header');
system("sh ngx_module/version.sh debian/changelog > $dir/loyalty_version.h") == 0
    or BAIL_OUT('cannot make the version header');

($rc, $out) = run_out('clang -O2 -Wall -Wextra -Werror -Wno-unused-parameter '
    . "-Ingx_module/core -Ingx_module/cli -I$dir -I/usr/include/luajit-2.1 "
    . "-o $dir/loyaltyctl ngx_module/core/*.c ngx_module/cli/*.c "
    . '-llmdb -ljansson -lcrypto -lluajit-5.1 -lnats -lm 2>&1');
is($rc, 0, 'loyaltyctl builds with clang -Werror') or diag($out);

done_testing();
