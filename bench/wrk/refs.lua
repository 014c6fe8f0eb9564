-- wrk script: every request is a referral click, "PATH?ref=CODE" on the URL's
-- path, from a browser; returning visitors also send their attribution
-- cookie.
-- usage: wrk ... -s refs.lua URL -- REFS_TSV [COOKIE_NAME [USER_AGENT]]
-- REFS_TSV holds one request a line: the code, then the cookie value or "-"
-- for a new visitor (further columns are for bench/run's checks).
-- Requests are formatted once in init(), as in cookies.lua.

-- A browser's User-Agent by default: without one the module counts the
-- click as a bot's and skips the attribution.
local BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                .. "AppleWebKit/537.36 (KHTML, like Gecko) "
                .. "Chrome/120.0 Safari/537.36"

local requests = {}
local count = 0

function init(args)
    local path = args[1] or error("refs.lua: pass the refs file after --")
    local name = args[2] or "loyalty_ref"
    local ua = args[3] or BROWSER
    for line in io.lines(path) do
        local code, cookie = line:match("^([^\t]+)\t([^\t]+)")
        if code then
            local headers = { ["User-Agent"] = ua }
            if cookie ~= "-" then
                headers["Cookie"] = name .. "=" .. cookie
            end
            count = count + 1
            requests[count] = wrk.format(nil, wrk.path .. "?ref=" .. code,
                                         headers)
        end
    end
    if count == 0 then error("refs.lua: no requests in " .. path) end
    math.randomseed(os.time())
end

function request()
    return requests[math.random(count)]
end
