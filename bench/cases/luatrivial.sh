# HTTP case "luatrivial": the price API for sku0001:6 with a price hook
# that returns the line's price unchanged (bench/lua/trivial.lua), the
# cost of asking a hook: the member's, then the public's and every lower
# tier's (bench/cases/lua.inc).
. "$ROOT/bench/cases/lua.inc"
lua_api_case "$ROOT/bench/lua/trivial.lua" none
