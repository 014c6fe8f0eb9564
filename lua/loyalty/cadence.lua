-- loyalty.cadence: reward cadences as a few readable lines.
--
-- Each helper takes the cadence's fields (lua/README.md, "Reward
-- cadences") and returns the plain table the module reads, with the
-- trigger filled in, so that a script's list says what it means:
--
--   local cadence = require "loyalty.cadence"
--   return { cadences = {
--     cadence.after_order { name = "product_call", over = 50000, days = 7,
--                           touch = "call", note = "How is the product?" },
--     cadence.birthday { name = "birthday_gift", touch = "gift",
--                        reward = 500 },
--   } }
--
-- Mistakes are raised here, with the caller's line, as the script loads.

local promo = require "loyalty.promo"

local M = {}

local function check(cond, fname, msg)
  if not cond then error("cadence." .. fname .. ": " .. msg, 3) end
end

local function make(trigger, fname, t)
  check(type(t) == "table", fname, "takes a table of fields")
  check(t.trigger == nil or t.trigger == trigger, fname,
        "is a " .. trigger .. " cadence, not " .. tostring(t.trigger))
  check(type(t.name) == "string", fname, "needs a name")
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  c.trigger = trigger
  return c
end

-- after_order { over = MINOR_UNITS?, days = N, hour = H? }: every order,
-- or those of at least `over`
function M.after_order(t) return make("order", "after_order", t) end

-- first_order { days = N }: a customer's first order
function M.first_order(t) return make("first_order", "first_order", t) end

-- referral { who = "referrer" | "member", days = N }: the day a referred
-- person first buys; who is thanked or followed up (default the referrer)
function M.referral(t)
  return make("referral_converted", "referral", t)
end

-- spend_crossed { threshold = MINOR_UNITS }: once, when a member's
-- cumulative spend reaches the threshold
function M.spend_crossed(t)
  check(type(t) == "table" and type(t.threshold) == "number",
        "spend_crossed", "needs a threshold")
  return make("spend_crossed", "spend_crossed", t)
end

-- birthday { days = -N?, hour = H? }: on the birthday, or N days before;
-- 29 February is 28 February in other years
function M.birthday(t) return make("birthday", "birthday", t) end

-- inactive { days = N }: N days after the last order, once per silence
function M.inactive(t)
  check(type(t) == "table" and type(t.days) == "number" and t.days >= 1,
        "inactive", "needs days of silence")
  return make("inactive", "inactive", t)
end

-- yearly_top { top = N, days = D? }: the N largest spenders of a year,
-- D days after it ends
function M.yearly_top(t)
  check(type(t) == "table" and type(t.top) == "number", "yearly_top",
        "needs top, how many spenders")
  return make("yearly_top", "yearly_top", t)
end

-- calendar { dates = { "MM-DD" | "YYYY-MM-DD", ... } }: fixed dates, for
-- every member the condition accepts
function M.calendar(t)
  check(type(t) == "table" and type(t.dates) == "table" and #t.dates > 0,
        "calendar", "needs dates")
  return make("calendar", "calendar", t)
end

-- conditions: when = cadence.stage_at_least("member")
function M.stage_at_least(stage)
  check(promo.STAGE_RANK[stage], "stage_at_least",
        "unknown stage " .. tostring(stage))
  return function(member) return promo.stage_at_least(member, stage) end
end

-- when = cadence.all(cond1, cond2, ...): every condition holds
function M.all(...)
  local conds = { ... }
  for i = 1, #conds do
    check(type(conds[i]) == "function", "all", "takes conditions")
  end
  return function(member, ctx)
    for i = 1, #conds do
      if not conds[i](member, ctx) then return false end
    end
    return true
  end
end

return M
