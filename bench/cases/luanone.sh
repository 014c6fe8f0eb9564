# HTTP case "luanone": the price API for sku0001:6 without a Lua script,
# the baseline of the Lua hook cases (bench/cases/lua.inc).
. "$ROOT/bench/cases/lua.inc"
lua_api_case "" none
