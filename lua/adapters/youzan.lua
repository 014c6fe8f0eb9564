-- A third platform, the way to add one: Youzan-style trade messages,
-- relayed (loyalty_webhook generic).
--
-- Youzan pushes its trade messages to the shop's own server, signed its
-- own way (not an HMAC of the body, as far as its public documentation
-- shows), and with the trade inside "msg" as URL-encoded JSON text,
-- which a mapping script cannot decode. So this example assumes a small
-- relay of the shop's own that checks Youzan's signature, decodes "msg"
-- and forwards the message to the "generic" platform:
--
--   POST /hooks/youzan
--   Content-Type: application/json
--   X-Loyalty-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
--   X-Loyalty-Topic: trade_TradePaid | trade_TradeRefund (our names)
--   X-Loyalty-Delivery: <Youzan's message id>
--
--   {"type": "trade_TradePaid", "kdt_id": 1000,
--    "msg": {"tid": "E20240501100000000000001", "fans_id": 88001,
--            "payment": "128.00", "pay_time": "2024-05-01 10:00:00",
--            "orders": [{"outer_sku_id": "NAPPY-M-128", "num": 1}]}}
--
--   {"type": "trade_TradeRefund", "kdt_id": 1000,
--    "msg": {"tid": "E20240501100000000000001", "refund_id": "R1",
--            "refund_fee": "28.00", "modified": "2024-05-03 09:00:00"}}
--
-- The field names follow Youzan's trade fields as we understand them;
-- check them against what your relay forwards. Times are Beijing time.

local adapter = require "loyalty.adapter"

local MEMBER = "yz-"
local ORDER = "yz-order-"
local REFUND = "yz-refund-"
local OFFSET = "+08:00"
local LINE = { sku = "outer_sku_id", qty = "num" }

local function map(payload, headers)
  local msg = payload.msg
  local topic = headers.topic or payload.type

  if type(msg) ~= "table" then
    return nil, "no trade in \"msg\" (the relay decodes it)"
  end

  local order_id = adapter.key(ORDER, msg.tid)
  if not order_id then
    return nil, "the trade has no tid"
  end

  if topic == "trade_TradePaid" then
    -- a buyer who is not the shop's fan has no member: ignored
    return adapter.order {
      member = adapter.key(MEMBER, msg.fans_id),
      order_id = order_id,
      amount = msg.payment,
      at = adapter.time(msg.pay_time, OFFSET),
      no_at = "the trade has no pay_time",
      lines = msg.orders, line = LINE,
    }
  end

  if topic == "trade_TradeRefund" then
    local refund_id = adapter.key(REFUND, msg.refund_id)
    local amount, why = adapter.minor(msg.refund_fee)
    if not refund_id or not amount then
      return nil, why or "the refund has no refund_id"
    end
    return {
      { type = "refund", refund_id = refund_id, order_id = order_id,
        amount = amount, at = adapter.time(msg.modified, OFFSET) },
    }
  end

  return {}
end

return { map = map }
