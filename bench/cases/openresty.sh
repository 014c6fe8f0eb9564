# HTTP case "openresty": the usual OpenResty answer to the same problem.
# All members sit in a lua_shared_dict filled at startup from a TSV file;
# access_by_lua takes the id in front of the first "~" of the cookie, looks
# it up and sets the same three headers.  Like the setup described in the
# issue it does not check the cookie's signature, so it does less work per
# request than our module.

CASE_TITLE="OpenResty (lua_shared_dict)"

LUA_MODULES=/usr/lib/nginx/modules

case_available() {
    local so
    for so in ndk_http_module.so ngx_http_lua_module.so; do
        [ -f "$LUA_MODULES/$so" ] \
            || { echo "$LUA_MODULES/$so missing"; return 1; }
    done
}

case_main_conf() {
    echo "load_module $LUA_MODULES/ndk_http_module.so;"
    echo "load_module $LUA_MODULES/ngx_http_lua_module.so;"
}

# safe_set fails instead of evicting, so a dict too small for the data set
# stops nginx at startup rather than silently turning lookups into misses.
case_http_conf() {
    echo "lua_shared_dict members $BENCH_LUA_DICT;"
    echo
    sed "s|@MEMBERS_TSV@|$DATA_DIR/members.tsv|" <<'LUA'
init_by_lua_block {
    local members = ngx.shared.members
    local n = 0
    for line in io.lines("@MEMBERS_TSV@") do
        local tab = line:find("\t", 1, true)
        local ok, err = members:safe_set(line:sub(1, tab - 1),
                                         line:sub(tab + 1))
        if not ok then
            error("members dict full after " .. n .. " members: " .. err)
        end
        n = n + 1
    end
    ngx.log(ngx.NOTICE, "loaded ", n, " members, ",
            members:free_space(), " bytes of the dict free")
}
LUA
}

case_location_conf() {
    cat <<'LUA'
access_by_lua_block {
    local cookie = ngx.var.cookie_loyalty_member
    if not cookie then
        return
    end
    local tilde = cookie:find("~", 1, true)
    local id = tilde and cookie:sub(1, tilde - 1) or cookie
    local value = ngx.shared.members:get(id)
    if not value then
        return
    end
    local tab = value:find("\t", 1, true)
    ngx.header["X-Member"] = id
    ngx.header["X-Tier"] = value:sub(1, tab - 1)
    ngx.header["X-Stage"] = value:sub(tab + 1)
}
LUA
}

case_check() {
    check_member_headers "$1"
}
