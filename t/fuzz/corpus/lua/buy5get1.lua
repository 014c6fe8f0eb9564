-- Members buy 6, pay for 5 (7 pay 6, 12 pay 10).
--
-- A repeat-purchase deal only members see: it rewards the people who keep
-- buying the consumable (nappies, tea) and gives fans a reason to join.
-- Customers and anonymous visitors pay the normal price.

local promo = require "loyalty.promo"

return {
  price = promo.members_only(promo.buy_n_get_m(5, 1, "Buy 5 get 1")),
}
