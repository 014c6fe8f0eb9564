-- loyalty.money: amounts are integers in minor units (fen, cents), never
-- floats, so a price computed in a hook is exactly the price charged. This
-- module formats them for labels and applies discounts with integer
-- arithmetic (exact up to 2^53, which LuaJIT's doubles hold exactly).

local floor = math.floor
local format = string.format

local M = {}

-- symbol and number of minor-unit digits per ISO 4217 code
local currencies = {
  CNY = { symbol = "¥",   digits = 2 },
  USD = { symbol = "$",   digits = 2 },
  EUR = { symbol = "€",   digits = 2 },
  GBP = { symbol = "£",   digits = 2 },
  HKD = { symbol = "HK$", digits = 2 },
  JPY = { symbol = "¥",   digits = 0 },
  KRW = { symbol = "₩",   digits = 0 },
}

local MAX = 2 ^ 53

local function is_integer(x)
  return type(x) == "number" and x == floor(x) and x > -MAX and x < MAX
end

M.is_integer = is_integer

-- floor(n / d) for integers, exact even where the double quotient rounds
-- up to the next integer (n near 2^53)
local function idiv(n, d)
  local q = floor(n / d)
  if q * d > n then
    q = q - 1
  elseif (q + 1) * d <= n then
    q = q + 1
  end
  return q
end

local function check_integer(x, what, fname)
  if not is_integer(x) then
    error(format("%s: %s must be an integer, got %s", fname, what,
                 type(x) == "number" and format("%.17g", x) or type(x)), 3)
  end
end

-- "1234567" -> "1,234,567"
local function group(digits)
  local head = #digits % 3
  if head == 0 then head = 3 end
  local parts = { digits:sub(1, head) }
  for i = head + 1, #digits, 3 do
    parts[#parts + 1] = digits:sub(i, i + 2)
  end
  return table.concat(parts, ",")
end

-- format(minor [, currency]) -> "¥128.00", "$1,234.50", "¥5,000", "XYZ 12.00"
-- currency defaults to "CNY"; an unknown code is printed before the amount
-- with two decimals.
function M.format(minor, currency)
  check_integer(minor, "amount", "format")
  currency = currency or "CNY"
  if type(currency) ~= "string" then
    error("format: currency must be a string, got " .. type(currency), 2)
  end
  local c = currencies[currency]
  local prefix = c and c.symbol or currency .. " "
  local digits = c and c.digits or 2

  local sign = minor < 0 and "-" or ""
  local abs = minor < 0 and -minor or minor
  local unit = 10 ^ digits
  local whole = floor(abs / unit)
  local s = sign .. prefix .. group(format("%d", whole))
  if digits > 0 then
    s = s .. "." .. format("%0" .. digits .. "d", abs - whole * unit)
  end
  return s
end

-- x rounded to a whole number of minor units: "half_up" (the default:
-- 2.5 -> 3, -2.5 -> -2) or "half_even" (banker's rounding: 2.5 -> 2,
-- 3.5 -> 4), for a hook's price must be a whole amount.
local function round(x, mode, fname)
  if type(x) ~= "number" or x ~= x or x >= MAX or x <= -MAX then
    error(format("%s: amount must be a finite number, got %s", fname,
                 type(x) == "number" and format("%.17g", x) or type(x)), 3)
  end
  local f = floor(x)
  local frac = x - f
  if mode == nil or mode == "half_up" then
    return frac >= 0.5 and f + 1 or f
  elseif mode == "half_even" then
    if frac > 0.5 or (frac == 0.5 and f % 2 == 1) then
      return f + 1
    end
    return f
  end
  error(format("%s: mode must be \"half_up\" or \"half_even\", got %s",
               fname, tostring(mode)), 3)
end

-- round(x [, mode]) -> x to a whole number of minor units (fen, cents)
function M.round(x, mode)
  return round(x, mode, "round")
end

-- to_minor(major [, currency [, mode]]) -> minor units of an amount in the
-- currency's major unit: to_minor(12.345, "CNY") == 1235, to_minor(500,
-- "JPY") == 500 (yen have no minor unit). currency defaults to "CNY".
function M.to_minor(major, currency, mode)
  currency = currency or "CNY"
  local c = currencies[currency]
  local digits = c and c.digits or 2
  if type(major) ~= "number" then
    error("to_minor: amount must be a number, got " .. type(major), 2)
  end
  return round(major * 10 ^ digits, mode, "to_minor")
end

-- times(amount, factor [, mode]) -> amount times a fractional factor,
-- rounded to the minor unit: times(900, 0.333) == 300 where
-- 900 * 0.333 == 299.7 is no price. A factor is a double, so 1.15 is
-- 1.149999...: for percentages use percent_off, exact in basis points.
function M.times(amount, factor, mode)
  check_integer(amount, "amount", "times")
  if type(factor) ~= "number" or factor ~= factor then
    error("times: factor must be a number, got " .. type(factor), 2)
  end
  return round(amount * factor, mode, "times")
end

-- percent_off(amount, bp [, mode]) -> amount less bp basis points (1/100
-- of a percent: 1000 = 10%), the result rounded half up to the minor unit
-- (or half even with mode "half_even"): percent_off(15, 1000) == 14 (13.5
-- rounds up), percent_off(15, 1000, "half_even") == 14,
-- percent_off(25, 1000, "half_even") == 22 (22.5), percent_off(999, 1000)
-- == 899.
function M.percent_off(amount, bp, mode)
  check_integer(amount, "amount", "percent_off")
  check_integer(bp, "basis points", "percent_off")
  if bp < 0 or bp > 10000 then
    error(format("percent_off: basis points must be 0..10000, got %d", bp), 2)
  end
  local scaled = amount * (10000 - bp)
  if scaled >= MAX or scaled <= -MAX then
    error(format("percent_off: amount %d is too large", amount), 2)
  end
  if mode == nil or mode == "half_up" then
    return idiv(scaled + 5000, 10000)
  elseif mode ~= "half_even" then
    error(format("percent_off: mode must be \"half_up\" or \"half_even\", "
                 .. "got %s", tostring(mode)), 2)
  end
  local q = idiv(scaled, 10000)
  local r = scaled - q * 10000                       -- [0, 10000)
  if r > 5000 or (r == 5000 and q % 2 == 1) then
    q = q + 1
  end
  return q
end

-- share(amount, bp) -> bp basis points of amount, floored (2000 = 20%):
-- what a referrer earns from a reward, never rounded in their favour.
function M.share(amount, bp)
  check_integer(amount, "amount", "share")
  check_integer(bp, "basis points", "share")
  if bp < 0 then
    error(format("share: basis points must not be negative, got %d", bp), 2)
  end
  local scaled = amount * bp
  if scaled >= MAX or scaled <= -MAX then
    error(format("share: amount %d is too large", amount), 2)
  end
  return idiv(scaled, 10000)
end

return M
