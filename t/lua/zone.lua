-- t/timezone.t: the shop's zone as a price hook sees it, in the label
local date = require "loyalty.date"

return {
  price = function(ctx)
    return ctx.price * ctx.qty - 1,
           date.zone .. " " .. date.offset(ctx.now) .. " " .. date.day(ctx.now)
           .. " " .. date.weekday(ctx.now)
  end,
}
