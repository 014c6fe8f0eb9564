-- Members get an extra 10% off their tier price on their birthday.
--
-- The day is the shop's (loyalty_timezone; UTC without one). Someone born
-- on 02-29 is celebrated on 02-28 in common years. The discount applies on
-- top of the tier price the module has already worked out, so it never
-- undercuts another privilege.

local date  = require "loyalty.date"
local money = require "loyalty.money"
local promo = require "loyalty.promo"

local EXTRA_BP = 1000     -- basis points: 1000 = 10%

return {
  price = promo.members_only(function(ctx)
    if not date.is_birthday(ctx.member.birthday, ctx.now) then
      return nil
    end
    return money.percent_off(ctx.price * ctx.qty, EXTRA_BP), "Birthday"
  end),
}
