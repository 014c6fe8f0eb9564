-- t/lua.t: a click hook that shows its context in the campaign, refuses
-- codes starting with NO and answers a bad campaign for codes BAD...

return {
  click = function(ctx)
    local code = ctx.code
    if code:sub(1, 2) == "NO" then return false end
    if code:sub(1, 3) == "TNO" then return { refuse = true } end
    if code:sub(1, 3) == "BAD" then return "not a campaign!" end
    if code:sub(1, 3) == "ERR" then error("click failed") end
    if code:sub(1, 3) == "TAB" then return { campaign = "from-table" } end
    local who = ctx.member and (ctx.member.id .. "-" .. ctx.member.stage)
                or "anon"
    return table.concat({ ctx.status, who, ctx.referrer,
                          ctx.referrer2 or "none", ctx.host,
                          ctx.uri:gsub("/", "_"),
                          ctx.user_agent:match("^(%w+)"),
                          type(ctx.now) }, ".")
  end,
}
