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

-- the readers of a line described as { sku = FIELD, product = FIELD,
-- prefix = PREFIX, qty = FIELD }: the sku is the line's SKU field, else
-- prefix .. its product id field (if there is one); the quantity its
-- qty field
local function line_readers(d)
  local function sku_of(line)
    return M.key("", line[d.sku])
           or (d.product and M.key(d.prefix or "", line[d.product]))
  end
  local function qty_of(line)
    return line[d.qty]
  end
  return sku_of, qty_of
end

-- line items as the order's items: {sku =, qty =}, the sku from
-- sku_of(line) (nil skips the line), at most 256; sku_of may instead be
-- a line's description (line_readers), and then qty_of is not given
function M.items(lines, sku_of, qty_of)
  local items = {}
  if type(sku_of) == "table" then
    sku_of, qty_of = line_readers(sku_of)
  end
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

-- a paid order's events: its member's signup (at o.signup_at, if given),
-- then the order; nil and a reason for what cannot be read.  o.member and
-- o.order_id are project ids (key()); a member nil refuses the order with
-- o.no_member, or without it ignores the order ({}); o.amount is the
-- platform's amount (minor(), at o.digits); o.at the order's time (time()),
-- nil refused with o.no_at; o.lines the line items, read as o.line
-- describes them (items()).
function M.order(o)
  if not o.member then
    if o.no_member then
      return nil, o.no_member
    end
    return {}
  end

  local amount, why = M.minor(o.amount, o.digits)
  if not amount then
    return nil, why
  end

  if not o.at then
    return nil, o.no_at
  end

  return {
    { type = "signup", member = o.member, at = o.signup_at },
    { type = "order", member = o.member, order_id = o.order_id,
      amount = amount, at = o.at, items = M.items(o.lines, o.line) },
  }
end

return M
