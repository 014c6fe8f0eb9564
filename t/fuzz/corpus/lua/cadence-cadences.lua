-- t/cadence.t's cadences: one of most triggers, and a condition that
-- fails for err1 and runs away for loop1.
local cadence = require "loyalty.cadence"

local function picky(member, ctx)
  if member.id == "err1" then error("no greeting for err1") end
  if member.id == "loop1" then while true do end end
  return ctx.cadence == "bday" and ctx.period ~= nil
end

return {
  cadences = {
    cadence.birthday { name = "bday", hour = 9, touch = "message",
                       reward = 10, when = picky,
                       note = "Happy birthday" },
    cadence.after_order { name = "call7", over = 50000, days = 7,
                          touch = "call", note = "How is it going?",
                          when = function(m, ctx)
                            return ctx.order.amount >= 50000
                          end },
    cadence.referral { name = "thanks", touch = "message", reward = 200 },
    cadence.referral { name = "welcome", who = "member", days = 7,
                       touch = "call" },
    cadence.inactive { name = "miss", days = 90, touch = "message" },
    cadence.calendar { name = "newyear", dates = { "01-01" },
                       touch = "letter",
                       when = cadence.stage_at_least("member") },
  },
}
