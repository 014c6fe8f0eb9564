-- Tag referral clicks with a campaign by code prefix, and refuse the
-- attribution for a visitor who has bought from the shop already.
--
-- Campaign tags let the shop count which push brought which clicks. The
-- refusal shows the other answer a click hook can give: a referral reward
-- is for bringing a new buyer, so a customer who has ordered before is not
-- attributed to whoever shared this link.

local CAMPAIGNS = {                  -- checked in order, first match wins
  { prefix = "SPRING", tag = "spring-sale" },
  { prefix = "BDAY",   tag = "birthday" },
  { prefix = "VIP",    tag = "vip-event" },
}

return {
  click = function(ctx)
    local m = ctx.member
    if m and m.orders > 0 then
      return false
    end
    local code = string.upper(ctx.code or "")
    for _, c in ipairs(CAMPAIGNS) do
      if code:sub(1, #c.prefix) == c.prefix then
        return c.tag
      end
    end
    return nil                       -- accept, no campaign
  end,
}
