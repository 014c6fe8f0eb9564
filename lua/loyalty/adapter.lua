-- loyalty.adapter: helpers for webhook mapping scripts (lua/adapters/):
-- a platform's amounts, ids and times as the project's event fields.
-- Each returns nil (and a reason) for what it cannot read, so that a
-- script can refuse the payload with `return nil, reason`.

local floor = math.floor
local format = string.format

local M = {}

-- an amount as minor units: "199.00" -> 19900 (digits: the currency's
-- decimals, default 2), exactly, without going through a float; a number
-- is taken at those decimals. nil, reason if it is not an amount.
function M.minor(v, digits)
  digits = digits or 2
  if type(v) == "number" then
    v = format("%." .. digits .. "f", v)
  end
  if type(v) ~= "string" then
    return nil, "an amount is missing"
  end
  local sign, int, frac = v:match("^(%-?)(%d+)%.?(%d*)$")
  if not int or #int > 13 then
    return nil, "not an amount: \"" .. v:sub(1, 32) .. "\""
  end
  if #frac > digits then
    if frac:sub(digits + 1):match("[^0]") then
      return nil, "more decimals than the currency has: \"" .. v .. "\""
    end
    frac = frac:sub(1, digits)
  end
  local n = tonumber(int .. frac .. string.rep("0", digits - #frac))
  if sign == "-" then
    n = -n
  end
  return n
end

-- a platform's id, a number or a string, as a string: 123 -> "123",
-- never "1.23e+17" (the module gives integers beyond 2^53 as strings)
function M.id(v)
  if type(v) == "number" then
    if v ~= floor(v) or v < 0 or v >= 2 ^ 53 then
      return nil
    end
    return format("%.0f", v)
  end
  if type(v) == "string" and v:match("^[A-Za-z0-9_.-]+$") then
    return v
  end
  return nil
end

-- prefix .. id, if it is a valid project id (1-64 of A-Z a-z 0-9 _ . -)
function M.key(prefix, v)
  local id = M.id(v)
  if not id then
    return nil
  end
  local k = prefix .. id
  if #k > 64 or not k:match("^[A-Za-z0-9_.-]+$") then
    return nil
  end
  return k
end

-- an RFC 3339 time from a platform's: one without an offset is taken
-- at offset (default "Z"); "2024-05-01 10:00:00" gets its "T"
function M.time(s, offset)
  if type(s) ~= "string" then
    return nil
  end
  local d, t, rest =
    s:match("^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d:%d%d:%d%d)(.*)$")
  if not d then
    return nil
  end
  rest = rest:gsub("^%.%d+", "")
  if rest == "" then
    rest = offset or "Z"
  end
  if not (rest == "Z" or rest:match("^[+-]%d%d:%d%d$")) then
    return nil
  end
  return d .. "T" .. t .. rest
end

-- line items as the order's items: {sku =, qty =}, the sku from
-- sku_of(line) (nil skips the line), at most 256
function M.items(lines, sku_of, qty_of)
  local items = {}
  if type(lines) ~= "table" then
    return items
  end
  for _, line in ipairs(lines) do
    local sku = sku_of(line)
    local qty = qty_of(line)
    if sku and type(qty) == "number" and qty >= 1 and qty == floor(qty)
       and #items < 256
    then
      items[#items + 1] = { sku = sku, qty = qty }
    end
  end
  return items
end

return M
