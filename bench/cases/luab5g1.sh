# HTTP case "luab5g1": the price API for sku0001:6 with the example
# buy-5-get-1 hook (lua/examples/buy5get1.lua): stage member and partner
# pay for 5 (bench/cases/lua.inc).
. "$ROOT/bench/cases/lua.inc"
lua_api_case "$ROOT/lua/examples/buy5get1.lua" b5g1
