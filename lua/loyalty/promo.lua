-- loyalty.promo: small building blocks for hooks, so that an operator's
-- script states a promotion ("members buy 5 get 1") rather than computing it.
--
-- A price hook here is function(ctx) -> nil | line_price [, label]. The
-- module clamps what a hook returns (never above the tier's price, never
-- below 0), so every helper only ever proposes a lower price.

local money = require "loyalty.money"

local floor = math.floor
local type = type
local format = string.format

local M = {}

-- the funnel, in order; each stage is worth more than the one before
local STAGE_RANK = {
  prospect = 1, fan = 2, customer = 3, member = 4, partner = 5,
}

M.STAGE_RANK = STAGE_RANK

local function check(cond, fname, msg)
  if not cond then error(fname .. ": " .. msg, 3) end
end

local function is_count(x)
  return type(x) == "number" and x == floor(x) and x >= 0
end

-- stage_at_least(member, stage) -> boolean; false for an anonymous visitor
function M.stage_at_least(member, stage)
  local want = STAGE_RANK[stage]
  check(want, "stage_at_least", "unknown stage " .. tostring(stage))
  if type(member) ~= "table" then return false end
  local have = STAGE_RANK[member.stage]
  return have ~= nil and have >= want
end

-- is_member(member) -> true for stage member or partner
function M.is_member(member)
  return M.stage_at_least(member, "member")
end

-- is_partner(member) -> true for stage partner
function M.is_partner(member)
  return M.stage_at_least(member, "partner")
end

-- a hook that calls fn(ctx) only for a member of at least the given rank;
-- the check written out, as every price asked for runs it (interpreted)
local function rank_only(want, fn)
  return function(ctx)
    local m = ctx.member
    if type(m) == "table" then
      local have = STAGE_RANK[m.stage]
      if have ~= nil and have >= want then return fn(ctx) end
    end
    return nil
  end
end

-- members_only(fn) -> a hook that calls fn(ctx) only when the visitor is a
-- member or partner. When the module asks what a lower tier would pay it
-- passes no member, so a member-only deal never leaks into that answer.
function M.members_only(fn)
  check(type(fn) == "function", "members_only", "expects a function")
  return rank_only(STAGE_RANK.member, fn)
end

-- partners_only(fn) -> as members_only, for stage partner
function M.partners_only(fn)
  check(type(fn) == "function", "partners_only", "expects a function")
  return rank_only(STAGE_RANK.partner, fn)
end

local MAX = 2 ^ 53

-- the line's unit price and quantity, or nil unless both are integers
-- (money.is_integer) and the quantity at least 1; written out, as every
-- price asked for runs it (interpreted)
local function unit_price(ctx)
  local p, q = ctx.price, ctx.qty
  if type(p) ~= "number" or type(q) ~= "number" or p ~= floor(p)
     or q ~= floor(q) or p <= -MAX or p >= MAX or q < 1 or q >= MAX then
    return nil
  end
  return p, q
end

-- buy_n_get_m(n, m [, label]) -> price hook: every full group of n + m
-- units costs n units; the remainder is at the unit price.
-- buy_n_get_m(5, 1): 6 pay 5, 7 pay 6, 12 pay 10.
function M.buy_n_get_m(n, m, label)
  check(is_count(n) and n >= 1, "buy_n_get_m", "n must be an integer >= 1")
  check(is_count(m) and m >= 1, "buy_n_get_m", "m must be an integer >= 1")
  label = label or format("Buy %d get %d", n, m)
  local group = n + m
  return function(ctx)
    local p, q = unit_price(ctx)
    if not p or q < group then return nil end
    local groups = floor(q / group)
    local paid = groups * n + (q - groups * group)
    return paid * p, label
  end
end

-- percent_off(bp [, label]) -> price hook: the line at bp basis points off
-- (1000 = 10%), rounded half up to the minor unit.
function M.percent_off(bp, label)
  check(is_count(bp) and bp <= 10000, "percent_off",
        "basis points must be an integer 0..10000")
  return function(ctx)
    local p, q = unit_price(ctx)
    if not p then return nil end
    return money.percent_off(p * q, bp), label
  end
end

-- unit_prices(prices [, label]) -> price hook: prices[sku] is a unit price
-- in minor units; SKUs not in the table are left alone.
function M.unit_prices(prices, label)
  check(type(prices) == "table", "unit_prices", "expects a table sku -> price")
  for sku, p in pairs(prices) do
    check(money.is_integer(p) and p >= 0, "unit_prices",
          format("price of %s must be a non-negative integer", tostring(sku)))
  end
  return function(ctx)
    local p = prices[ctx.sku]
    local _, q = unit_price(ctx)
    if not p or not q then return nil end
    return p * q, label
  end
end

-- normalize(price_or_table [, label]) -> price, label (or nil): reads any of
-- the return forms a price hook may use.
function M.normalize(r, label)
  if type(r) == "table" then return r.price, r.label end
  if r == nil then return nil end
  return r, label
end

-- best_of(hook, ...) -> price hook returning the lowest price any of the
-- hooks proposes, with that hook's label (the first one on a tie).
function M.best_of(...)
  local hooks = { ... }
  for i = 1, #hooks do
    check(type(hooks[i]) == "function", "best_of", "expects functions")
  end
  return function(ctx)
    local best, best_label
    for i = 1, #hooks do
      local p, l = M.normalize(hooks[i](ctx))
      if type(p) == "number" and (best == nil or p < best) then
        best, best_label = p, l
      end
    end
    return best, best_label
  end
end

-- referral_points{ actions = { share = 5, ... }, referrer = 20,
--                  referrer2 = 10 } -> event hook
-- An action of a listed kind earns its points; the member's referrer gets
-- `referrer` percent of them and the referrer's referrer `referrer2`
-- percent, floored. Other actions and all orders keep the rules' defaults.
function M.referral_points(spec)
  check(type(spec) == "table" and type(spec.actions) == "table",
        "referral_points", "expects { actions = { kind = points, ... } }")
  for kind, p in pairs(spec.actions) do
    check(money.is_integer(p), "referral_points",
          format("points for %s must be an integer", tostring(kind)))
  end
  local pct1, pct2 = spec.referrer or 0, spec.referrer2 or 0
  check(is_count(pct1) and is_count(pct2), "referral_points",
        "referrer and referrer2 must be integer percentages")
  local actions = spec.actions
  return function(ctx)
    if ctx.type ~= "action" then return nil end
    local p = actions[ctx.kind]
    if p == nil then return nil end
    local r = { points = p }
    if ctx.referrer then r.referrer_points = money.share(p, pct1 * 100) end
    if ctx.referrer2 then r.referrer2_points = money.share(p, pct2 * 100) end
    return r
  end
end

return M
