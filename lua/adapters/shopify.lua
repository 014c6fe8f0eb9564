-- Shopify order webhooks -> loyalty events (loyalty_webhook shopify).
--
-- Topics (Settings > Notifications > Webhooks, or the Admin API's
-- webhookSubscriptionCreate): "orders/paid" and "refunds/create".
-- orders/paid is the order: id, customer (id; null for a guest),
-- total_price ("199.65", shop currency), processed_at, created_at, test,
-- line_items[] (sku, variant_id, quantity). refunds/create is the
-- refund: id, order_id, created_at, transactions[] (kind "refund",
-- status "success", amount "10.00").
--
-- What this script does, for the shop to change:
--   * members are Shopify customers, "shopify-" .. customer.id; guest
--     orders are ignored, and so are test orders (test: true);
--   * an order counts for its total_price;
--   * a refund counts the successful "refund" transactions' amounts; one
--     with none (a restock only) is ignored;
--   * a line's SKU, else "shopify-variant-" .. variant_id, is the sku.
-- Shopify's ids pass 2^53: they arrive as strings, kept exact.

local adapter = require "loyalty.adapter"

local MEMBER = "shopify-"
local ORDER = "shopify-order-"
local REFUND = "shopify-refund-"
local DIGITS = 2
local LINE = { sku = "sku", product = "variant_id",
               prefix = "shopify-variant-", qty = "quantity" }

local function paid(order)
  if order.id == nil then
    return nil, "not a Shopify order: no id"
  end

  local order_id = adapter.key(ORDER, order.id)
  if not order_id then
    return nil, "the order id is not a number"
  end

  if order.test == true or type(order.customer) ~= "table" then
    return {}
  end

  local at = adapter.time(order.processed_at) or adapter.time(order.created_at)

  return adapter.order {
    member = adapter.key(MEMBER, order.customer.id),
    no_member = "the customer has no id",
    order_id = order_id,
    amount = order.total_price, digits = DIGITS,
    at = at, no_at = "the order has no processed_at or created_at",
    signup_at = adapter.time(order.customer.created_at) or at,
    lines = order.line_items, line = LINE,
  }
end

local function refunded(refund)
  local refund_id = adapter.key(REFUND, refund.id)
  local order_id = adapter.key(ORDER, refund.order_id)
  if not refund_id or not order_id then
    return nil, "not a Shopify refund: no id or order_id"
  end

  local amount = 0
  for _, t in ipairs(refund.transactions or {}) do
    if t.kind == "refund" and t.status == "success" then
      local minor, why = adapter.minor(t.amount, DIGITS)
      if not minor then
        return nil, why
      end
      amount = amount + minor
    end
  end

  if amount <= 0 then
    return {}
  end

  return {
    { type = "refund", refund_id = refund_id, order_id = order_id,
      amount = amount,
      at = adapter.time(refund.processed_at)
           or adapter.time(refund.created_at) },
  }
end

local function map(payload, headers)
  if headers.topic == "orders/paid" then
    return paid(payload)
  elseif headers.topic == "refunds/create" then
    return refunded(payload)
  end
  return {}
end

return { map = map }
