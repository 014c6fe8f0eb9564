-- The "anon" case: wrk's own request, no cookie, no arguments: a visitor
-- the module knows nothing of.  (wrk_run always passes a script.)
request = function()
    return wrk.format("GET")
end
