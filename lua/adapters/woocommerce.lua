-- WooCommerce order webhooks -> loyalty events (loyalty_webhook woocommerce).
--
-- Topics (WooCommerce > Settings > Advanced > Webhooks): "Order created"
-- and "Order updated". The payload is the order as the WooCommerce REST
-- API (v3) gives it: id, status, total ("29.35"), customer_id (0 for a
-- guest), date_created_gmt, date_paid_gmt, line_items[] (sku,
-- product_id, quantity), refunds[] (id, total "-5.00").
--
-- What this script does, for the shop to change:
--   * members are WooCommerce customers, "wc-" .. customer_id; guest
--     orders (customer_id 0) are ignored;
--   * an order counts once it is paid ("processing" or "completed"), for
--     its total (shipping and tax included); other statuses are ignored;
--   * WooCommerce has no refund topic: refunds come in the order's
--     refunds[] on "order.updated", each one a refund event once;
--   * a line's SKU, else "wc-product-" .. product_id, is the item's sku.
-- The events' ids make a re-sent order a duplicate, never counted twice.

local adapter = require "loyalty.adapter"

local MEMBER = "wc-"            -- member ids: "wc-123"
local ORDER = "wc-order-"       -- order ids: "wc-order-4567"
local REFUND = "wc-refund-"
local DIGITS = 2                -- the store currency's decimals
local PAID = { processing = true, completed = true }
local LINE = { sku = "sku", product = "product_id", prefix = "wc-product-",
               qty = "quantity" }

local function map(order, headers)
  local topic = headers.topic
  if topic ~= "order.created" and topic ~= "order.updated" then
    return {}
  end

  if order.id == nil or order.status == nil then
    return nil, "not a WooCommerce order: no id or status"
  end

  local order_id = adapter.key(ORDER, order.id)
  if not order_id then
    return nil, "the order id is not a number"
  end

  if not PAID[order.status] or order.customer_id == nil
     or order.customer_id == 0
  then
    return {}
  end

  local at = adapter.time(order.date_paid_gmt)
             or adapter.time(order.date_created_gmt)

  local events, why = adapter.order {
    member = adapter.key(MEMBER, order.customer_id),
    no_member = "the customer id is not a number",
    order_id = order_id,
    amount = order.total, digits = DIGITS,
    at = at, no_at = "the order has no date_paid_gmt or date_created_gmt",
    signup_at = adapter.time(order.date_created_gmt) or at,
    lines = order.line_items, line = LINE,
  }
  if not events then
    return nil, why
  end

  for _, refund in ipairs(order.refunds or {}) do
    local minor = adapter.minor(refund.total, DIGITS)
    local refund_id = adapter.key(REFUND, refund.id)
    if not minor or not refund_id then
      return nil, "a refund without an id or a total"
    end
    if minor < 0 then
      minor = -minor
    end
    if minor > 0 then
      events[#events + 1] = { type = "refund", refund_id = refund_id,
                              order_id = order_id, amount = minor }
    end
  end

  return events
end

return { map = map }
