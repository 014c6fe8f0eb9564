-- wrk script: every request carries the member cookie of a random member.
-- usage: wrk ... -s cookies.lua URL -- COOKIES_TSV [COOKIE_NAME]
-- COOKIES_TSV holds one signed cookie value per line in its first column.
-- Requests are formatted once in init() so that wrk's own Lua cost per
-- request stays a table index, not a string build.

local requests = {}
local count = 0

function init(args)
    local path = args[1] or error("cookies.lua: pass the cookie file after --")
    local name = args[2] or "loyalty_member"
    for line in io.lines(path) do
        local value = line:match("^([^\t]+)")
        if value then
            count = count + 1
            requests[count] = wrk.format(nil, nil,
                                         { Cookie = name .. "=" .. value })
        end
    end
    if count == 0 then error("cookies.lua: no cookies in " .. path) end
    math.randomseed(os.time())
end

function request()
    return requests[math.random(count)]
end
