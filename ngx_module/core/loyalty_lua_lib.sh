#!/bin/sh
# Writes on stdout the C header that compiles the project's Lua library
# into the core (ngx_module/core/loyalty_lua.c), for require "loyalty.NAME":
#   sh loyalty_lua_lib.sh DIR > loyalty_lua_lib.h
# with DIR the lua/loyalty directory.  Used by config and by the Makefile.
set -eu

dir=$1

echo '/* made by loyalty_lua_lib.sh from lua/loyalty: do not edit */'

for f in "$dir"/*.lua; do
    n=`basename "$f" .lua`
    echo "static const char  loyalty_lua_lib_$n[] = {"
    od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1, /g' \
                              -e 's/^/    /'
    echo '    0 };'
done

echo 'static const loyalty_lua_lib_t  loyalty_lua_lib[] = {'

for f in "$dir"/*.lua; do
    n=`basename "$f" .lua`
    echo "    { \"loyalty.$n\", loyalty_lua_lib_$n,"
    echo "      sizeof(loyalty_lua_lib_$n) - 1 },"
done

echo '    { NULL, NULL, 0 }'
echo '};'
