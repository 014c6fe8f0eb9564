-- wrk script: every request posts a batch of events to the admin API.
-- usage: wrk ... -s events.lua URL -- MEMBERS TOKEN [BATCH [RATE [SEED]]]
--   MEMBERS  members in the store, m0000001 ... mMEMBERS; each event is for
--            a random one of them
--   TOKEN    the admin bearer token
--   BATCH    events per request (default 100)
--   RATE     requests per second over all connections; 0 (default): as
--            fast as the server answers
--   SEED     for the member and amount picks (default 42)
--
-- A batch is 9 orders to 1 action (kinds in turn).  An order is for 1,000
-- to 20,000 (minor units) of 1 to 3 items of one SKU, "pack-128" (the
-- member-making SKU of the bench rules) in one order out of five, else one
-- of 100 others; its time is now.  Every order_id and action id is new:
-- a tag unique to this wrk process (from the kernel's random UUID), the
-- request's number and the event's index.  So every batch is applied in
-- full: response() counts the events the answers report as applied and
-- any answer that is not a 200 with "applied":BATCH, and done() prints
--   events applied: N
--   bad answers: N
-- for the harness, with the first bad answer when there is one.
--
-- With RATE, delay() paces requests wrk2-style: each request takes the
-- next slot of a schedule of RATE per second from the first request on,
-- and waits for it; a request behind the schedule goes at once, so a slow
-- answer is caught up on rather than lost.  Use a few connections so that
-- one slow answer does not hold back the rest.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_events_timespec;
int clock_gettime(int clock_id, bench_events_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_events_timespec")

local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local kinds = { "share", "invite", "group_buy", "assist", "review" }
local members, token, batch, rate, tag
local headers
local counter = 0
local next_slot
-- globals: done() reads them through thread:get()
applied, bad, first_bad = 0, 0, nil

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    members = tonumber(args[1]) or error("events.lua: pass MEMBERS TOKEN after --")
    token = args[2] or error("events.lua: pass MEMBERS TOKEN after --")
    batch = tonumber(args[3] or 100)
    rate = tonumber(args[4] or 0)
    math.randomseed(tonumber(args[5] or 42))
    local f = assert(io.open("/proc/sys/kernel/random/uuid"))
    tag = "b" .. f:read("*l"):gsub("-", ""):sub(1, 16)
    f:close()
    headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
    }
end

function request()
    counter = counter + 1
    local at = os.date("!%Y-%m-%dT%H:%M:%SZ")
    local ev = {}
    for i = 1, batch do
        local member = string.format("m%07d", math.random(members))
        local id = tag .. "-" .. counter .. "-" .. i
        if i % 10 == 0 then
            ev[i] = string.format(
                '{"type":"action","member":"%s","kind":"%s","id":"%s","at":"%s"}',
                member, kinds[(counter + i / 10) % #kinds + 1], id, at)
        else
            local sku = math.random(5) == 1 and "pack-128"
                        or string.format("sku-%03d", math.random(100))
            ev[i] = string.format(
                '{"type":"order","member":"%s","order_id":"%s","amount":%d,'
                .. '"items":[{"sku":"%s","qty":%d}],"at":"%s"}',
                member, id, 1000 + math.random(0, 19000), sku,
                math.random(3), at)
        end
    end
    return wrk.format("POST", nil, headers, "[" .. table.concat(ev, ",") .. "]")
end

function delay()
    if rate <= 0 then
        return 0
    end
    local now = now_ms()
    next_slot = next_slot and next_slot + 1000 / rate or now
    return next_slot > now and math.floor(next_slot - now) or 0
end

function response(status, hdrs, body)
    local n = status == 200 and body and tonumber(body:match('"applied":(%d+)'))
    if n then
        applied = applied + n
    end
    if n ~= batch then
        bad = bad + 1
        if not first_bad then
            first_bad = status .. " " .. tostring(body):sub(1, 200)
        end
    end
end

function done(summary, latency, requests)
    local a, b, first = 0, 0, nil
    for _, t in ipairs(threads) do
        a = a + (t:get("applied") or 0)
        b = b + (t:get("bad") or 0)
        first = first or t:get("first_bad")
    end
    io.write(string.format("events applied: %d\nbad answers: %d\n", a, b))
    if first then
        io.write("first bad answer: " .. first .. "\n")
    end
end
