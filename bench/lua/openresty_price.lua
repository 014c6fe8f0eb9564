-- bench "luaopenresty": the price API of "luab5g1" written for
-- lua-nginx-module, as an OpenResty shop would, without our module.
--
--   init_by_lua_block { require("openresty_price").init{ members = TSV,
--                        tiers = JSONL, prices = JSONL } }
--   location = /api/prices {
--       content_by_lua_block { require("openresty_price").handler() } }
--
-- Members (id -> "tier\tstage") go into the lua_shared_dict "members";
-- tiers and prices, a few hundred kilobytes, into Lua tables that every
-- worker inherits from the master.  Per request: the member id in front
-- of the cookie's first "~" (the signature is not checked, as in the
-- "openresty" case), the member's tier and stage, for each SKU the tier's
-- price (its override or retail less the tier's discount, rounded half
-- up, and no more than retail or any lower tier's price), times the
-- quantity, and buy 5 get 1 for stage member and partner.  The answer is
-- the price API's, byte for byte.

local M = {}

local floor = math.floor
local concat = table.concat
local tonumber = tonumber

local tiers = {}    -- name -> { rank =, bp =, label = }
local prices = {}   -- sku -> { retail =, over = { tier = unit price } }
local members       -- ngx.shared.members

-- the deal of lua/examples/buy5get1.lua
local DEAL_N, DEAL_M, DEAL_LABEL = 5, 1, "Buy 5 get 1"
local DEAL_STAGES = { member = true, partner = true }

local function num(line, name)
  return tonumber(line:match('"' .. name .. '":(%d+)'))
end

local function str(line, name)
  return line:match('"' .. name .. '":"([^"]*)"')
end

function M.init(files)
  for line in io.lines(files.tiers) do
    tiers[str(line, "name")] = {
      rank = num(line, "rank"), bp = num(line, "discount_bp"),
      label = str(line, "label"),
    }
  end

  local n = 0
  for line in io.lines(files.prices) do
    local over = {}
    local t = line:match('"tiers":{([^}]*)}')
    if t then
      for name, v in t:gmatch('"([^"]+)":(%d+)') do over[name] = tonumber(v) end
    end
    prices[str(line, "sku")] = { retail = num(line, "retail"), over = over }
    n = n + 1
  end

  -- as the "openresty" case: safe_set fails rather than evicting
  members = ngx.shared.members
  local m = 0
  for line in io.lines(files.members) do
    local tab = line:find("\t", 1, true)
    local ok, err = members:safe_set(line:sub(1, tab - 1), line:sub(tab + 1))
    if not ok then
      error("members dict full after " .. m .. " members: " .. err)
    end
    m = m + 1
  end
  ngx.log(ngx.NOTICE, "loaded ", m, " members and ", n, " prices, ",
          members:free_space(), " bytes of the dict free")
end

-- a tier's price of one unit before the guard
local function raw(p, name, t)
  local o = p.over[name]
  if o then return o end
  local f = 10000 - t.bp
  local r = p.retail
  return floor(r / 10000) * f + floor((r % 10000 * f + 5000) / 10000)
end

-- the guard: no more than retail or what any lower tier pays
local function unit_price(p, name, t)
  local price = raw(p, name, t)
  local bound = p.retail
  for other, ot in pairs(tiers) do
    if ot.rank < t.rank then
      local lower = raw(p, other, ot)
      if lower < bound then bound = lower end
    end
  end
  return price < bound and price or bound
end

local function fail(status, msg)
  local body = '{"error":"' .. msg .. '"}\n'
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.header["Cache-Control"] = "private"
  ngx.header["Vary"] = "Cookie"
  ngx.print(body)
  return ngx.exit(status)
end

function M.handler()
  local arg = ngx.var.arg_sku
  if not arg or arg == "" then
    return fail(400, "the sku argument is required")
  end
  arg = ngx.unescape_uri(arg)

  -- the lines: sku[:qty], comma-separated, checked before anything else
  local skus, qtys, n, pos = {}, {}, 0, 1
  while true do
    local comma = arg:find(",", pos, true)
    local item = arg:sub(pos, comma and comma - 1 or -1)
    local colon = item:find(":", 1, true)
    local sku = colon and item:sub(1, colon - 1) or item
    local qty = false
    if colon then
      qty = tonumber(item:match("^%d+$", colon + 1))
      if not qty or qty < 1 or qty > 1000 then
        return fail(400, "a quantity is not a whole number from 1 to 1000")
      end
    end
    if #sku == 0 then return fail(400, "an empty sku") end
    if #sku > 64 or sku:find("[^%w_.-]") then
      return fail(400, "a sku is not 1-64 characters of [A-Za-z0-9_.-]")
    end
    n = n + 1
    if n > 100 then return fail(400, "more than 100 skus") end
    skus[n], qtys[n] = sku, qty
    if not comma then break end
    pos = comma + 1
  end

  -- the visitor: tier and stage, or the public
  local tier, t, stage = "public", nil, nil
  local cookie = ngx.var.cookie_loyalty_member
  if cookie then
    local tilde = cookie:find("~", 1, true)
    local v = members:get(tilde and cookie:sub(1, tilde - 1) or cookie)
    if v then
      local tab = v:find("\t", 1, true)
      local name = v:sub(1, tab - 1)
      t = tiers[name]
      if t then tier, stage = name, v:sub(tab + 1) end
    end
  end
  local deal = stage and DEAL_STAGES[stage]
  local label = t and t.label or ""

  local out, k = { '{"tier":"', tier, '","currency":"CNY","items":[' }, 3
  for i = 1, n do
    local sku, qty = skus[i], qtys[i]
    local p = prices[sku]
    if i > 1 then k = k + 1; out[k] = "," end
    if not p then
      k = k + 1
      out[k] = '{"sku":"' .. sku .. '","error":"unknown sku"}'
    else
      local q = qty or 1
      local unit = t and unit_price(p, tier, t) or p.retail
      local total = unit * q
      local promo = ""
      if deal and q >= DEAL_N + DEAL_M then
        local groups = floor(q / (DEAL_N + DEAL_M))
        total = (groups * DEAL_N + q - groups * (DEAL_N + DEAL_M)) * unit
        promo = ',"promo":"' .. DEAL_LABEL .. '"'
      end
      local retail = p.retail * q
      k = k + 1
      out[k] = concat({
        '{"sku":"', sku, '"', qty and ',"qty":' .. qty or "",
        ',"retail":', retail, ',"price":', total,
        ',"saved":', retail - total, ',"label":"', label, '"', promo, '}',
      })
    end
  end
  k = k + 1
  out[k] = "]}\n"

  local body = concat(out)
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.header["Cache-Control"] = "private"
  ngx.header["Vary"] = "Cookie"
  ngx.print(body)
end

return M
