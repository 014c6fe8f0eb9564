-- Event hook fixture for t/lua-events.t.  What it answers depends on the
-- event's id (an order_id or an action id): "WORD.ARG.ARG.tag", where
-- WORD picks an answer below and the tag only makes the id unique.

local store = require "loyalty.store"

local function words(id)
  local w = {}
  for s in string.gmatch(id, "[^.]+") do w[#w + 1] = s end
  return w
end

-- ctx as one line, keys sorted, without colons (so that each distinct
-- context is its own "place" in the error log); now is checked, not shown
local function dump(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do
    local x = v[k]
    if k == "now" then
      x = math.abs(x - os.time()) <= 60 and "NOW" or tostring(x)
    else
      x = dump(x)
    end
    out[#out + 1] = tostring(k) .. "=" .. x
  end
  return "{" .. table.concat(out, " ") .. "}"
end

local answers = {
  -- points = a
  pts = function(ctx, a) return { points = tonumber(a) } end,
  -- the referrers' points: a and b ("-" for none)
  ref = function(ctx, a, b)
    return { referrer_points = tonumber(a), referrer2_points = tonumber(b) }
  end,
  -- member points a and referrers' points b and c
  all = function(ctx, a, b, c)
    return { points = tonumber(a), referrer_points = tonumber(b),
             referrer2_points = tonumber(c) }
  end,
  stage = function(ctx, a) return { stage = a, points = 3 } end,
  tier = function(ctx, a) return { tier = a, points = 4 } end,
  none = function() return nil end,
  empty = function() return {} end,
  -- the referrer as the write transaction has them: points = their
  -- orders, referrer_points = their points mod 1000
  peek = function(ctx)
    local r = ctx.referrer and store.member(ctx.referrer)
    if not r then return { points = -1 } end
    return { points = r.orders, referrer_points = r.points % 1000 }
  end,
  -- a member the store does not have, and an id that is not one
  ghost = function(ctx)
    if store.member("nobody.here") ~= nil then return { points = -2 } end
    if store.member("not an id") ~= nil then return { points = -3 } end
    return { points = 11 }
  end,
  echo = function(ctx) error("ctx " .. dump(ctx), 0) end,
  -- failures
  loop = function() while true do end end,
  pcallloop = function()
    pcall(function() while true do end end)
    return { points = 1 }
  end,
  hog = function()
    local s = string.rep("x", 64 * 1024 * 1024)
    return { points = #s }
  end,
  boom = function() error("boom") end,
  notable = function() return 5 end,
  str = function() return "points" end,
  frac = function() return { points = 1.5 } end,
  huge = function() return { points = 1e12 + 1 } end,
  nan = function() return { points = 0 / 0 } end,
  max = function() return { points = 1e12 } end,
  min = function() return { points = -1e12 } end,
  strpts = function() return { referrer_points = "5" } end,
  boss = function() return { stage = "boss" } end,
  numstage = function() return { stage = 4 } end,
  badtier = function() return { tier = "go ld" } end,
  longtier = function() return { tier = string.rep("t", 33) } end,
  partial = function() return { points = 9, stage = "boss" } end,
}

return {
  event = function(ctx)
    local w = words(ctx.id)
    local f = answers[w[1]]
    if f then return f(ctx, w[2], w[3], w[4]) end
    return nil
  end,
}
