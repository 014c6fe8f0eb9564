-- Partners buy at a wholesale unit price (nappies: 128 CNY retail, 69 CNY
-- to a partner).
--
-- A partner resells, so their price must leave them a margin; it is a stage
-- privilege rather than a tier price, which is why it lives in a hook.
-- Members, customers and visitors are left alone.

local promo = require "loyalty.promo"

local WHOLESALE = {            -- unit prices in fen
  ["nappies-128"] = 6900,      -- retail 12800
  ["wipes-80"]    = 900,       -- retail 1590
}

return {
  price = promo.partners_only(promo.unit_prices(WHOLESALE, "Wholesale")),
}
