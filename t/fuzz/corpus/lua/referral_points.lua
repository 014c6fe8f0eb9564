-- Points for helpful actions, shared up the referral chain.
--
-- Every action that spreads the shop earns points, and whoever brought the
-- member in earns a share too (20% to the referrer, 10% to the referrer's
-- referrer, floored), so introducing someone keeps paying off. Rewards are
-- points, not money. Orders keep the rules' default points.

local promo = require "loyalty.promo"

return {
  event = promo.referral_points {
    actions = {
      share     = 5,    -- shared the shop to the social feed
      invite    = 20,   -- pulled someone into the group chat
      group_buy = 50,   -- started a group buy
      assist    = 30,   -- helped close a sale at an owner event
      review    = 10,   -- wrote a review
    },
    referrer  = 20,     -- percent of the points
    referrer2 = 10,
  },
}
