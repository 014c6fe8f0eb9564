# HTTP case "luaopenresty": lua-nginx-module, without our module, doing
# what "luab5g1" does in content_by_lua (bench/lua/openresty_price.lua):
# the member's tier and stage from a lua_shared_dict, the tier's guarded
# price, buy 5 get 1 for members and partners, the same JSON
# (bench/cases/lua.inc).
. "$ROOT/bench/cases/lua.inc"
lua_openresty_case
