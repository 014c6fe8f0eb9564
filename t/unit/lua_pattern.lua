-- t/unit/lua.c: the sandbox's pattern functions (P, core/loyalty_lua_pattern.c)
-- against LuaJIT's stock string functions, case by case.  Returns, per
-- group, the number of cases and a list of those that differ.

local P = ...
local S = string

local function show(v)
  if type(v) == "string" then return S.format("%q", v) end
  return tostring(v)
end

-- every result of f(...), or its error without the place
local function run(f, ...)
  local r = { pcall(f, ...) }
  if not r[1] then
    return "error: " .. S.gsub(tostring(r[2]), "^[^:]*:%d+: ", "")
  end
  local out = {}
  for i = 2, #r do out[#out + 1] = show(r[i]) end
  return table.concat(out, ", ")
end

local function gm(gmatch)
  return function(s, p)
    local out = {}
    for a, b, c in gmatch(s, p) do
      out[#out + 1] = show(a) .. "/" .. show(b) .. "/" .. show(c)
      if #out > 200 then break end
    end
    return table.concat(out, " ")
  end
end

local SUBJECTS = {
  "", "a", "abc", "hello world", "  padded  ", "aaa", "aaab", "abab",
  "THE (quick) fox", "f(a(b)c)d", "[x]y%z", "a.b.c", "x = 1, y = 22",
  "one\0two", "\n\t tab", "key=value; k2=v2", "2026-12-06T18:10:00Z",
  "Mozilla/5.0 (iPhone) AppleWebKit MicroMessenger/8.0.1 NetType/WIFI",
  "caf\195\169 \255\128", "$100 ^up^", "-+-+", "THE END", "abcabcabc",
}

local PATTERNS = {
  "", "a", "b", "x", ".", "..", "a*", "a+", "a-", "a?", "a-b", "a*b",
  "^a", "^", "$", "c$", "^abc$", "a$b", "^$", "%a+", "%A+", "%d+",
  "%D", "%s+", "%S+", "%w+", "%W", "%p", "%P+", "%l+", "%u+", "%U",
  "%c", "%x+", "%X", "%z", "%Z+", "%.", "%%", "[abc]", "[^abc]+",
  "[a-c]+", "[%a_]+", "[%d%.]+", "[]]", "[^]]+", "[a-]", "[-a]",
  "[%]x]", "[^%s]+", "(a)", "(a*)", "()", "()a()", "(a)(b)(c)",
  "((a)(b))", "(.-)%s", "(%w+)=(%w+)", "(a)%1", "(a*)b%1", "%b()",
  "%b[]", "%bxy", "%f[%w]%w+", "%f[%W]", "%f[%a]", "%f[^%z]", ".-b",
  ".-.-.-b", "(.-)%s+(.-)%s+MicroMessenger", "MicroMessenger/([%d.]+)",
  "^(%d+)-(%d+)-(%d+)T", "[%+%-]", "%-", "a.-c", "(a.-c)()", "x*$",
  "%a*", "[%w%p]*", "^%s*(.-)%s*$", "(h)(e)(l)(l)(o)", "[\128-\255]+",
  "\0", "%z+", "[^%z]+", "o\0t", "%$", "%^", "%(", "%)", "(()a)",
}

local REPLS = { "<%0>", "%1", "[%1|%2]", "%%", "x", "", "%a", 7, "%" }

local groups = {}

local function group(name)
  local g = { name = name, n = 0, bad = {} }
  groups[#groups + 1] = g
  return function(what, a, b)
    g.n = g.n + 1
    if a ~= b then
      g.bad[#g.bad + 1] = what .. ": stock " .. a .. ", ours " .. b
    end
  end
end

local cmp = group("find")
for _, s in ipairs(SUBJECTS) do
  for _, p in ipairs(PATTERNS) do
    local w = "find(" .. show(s) .. ", " .. show(p) .. ")"
    cmp(w, run(S.find, s, p), run(P.find, s, p))
    for _, init in ipairs({ 2, -2, 0, 100, -100 }) do
      cmp(w .. " init " .. init, run(S.find, s, p, init),
          run(P.find, s, p, init))
    end
    cmp(w .. " plain", run(S.find, s, p, 1, true), run(P.find, s, p, 1, true))
  end
end

cmp = group("match")
for _, s in ipairs(SUBJECTS) do
  for _, p in ipairs(PATTERNS) do
    local w = "match(" .. show(s) .. ", " .. show(p) .. ")"
    cmp(w, run(S.match, s, p), run(P.match, s, p))
    cmp(w .. " init 3", run(S.match, s, p, 3), run(P.match, s, p, 3))
    cmp(w .. " init -1", run(S.match, s, p, -1), run(P.match, s, p, -1))
  end
end

cmp = group("gmatch")
for _, s in ipairs(SUBJECTS) do
  for _, p in ipairs(PATTERNS) do
    cmp("gmatch(" .. show(s) .. ", " .. show(p) .. ")",
        run(gm(S.gmatch), s, p), run(gm(P.gmatch), s, p))
  end
end

cmp = group("gsub")
local T = { a = "A", hello = "HI", b = false, c = 3 }
local function F(a, b) if a == "a" then return nil end return "{" .. tostring(a) .. tostring(b) .. "}" end
for _, s in ipairs(SUBJECTS) do
  for _, p in ipairs(PATTERNS) do
    local w = "gsub(" .. show(s) .. ", " .. show(p) .. ", "
    for _, r in ipairs(REPLS) do
      cmp(w .. show(r) .. ")", run(S.gsub, s, p, r), run(P.gsub, s, p, r))
    end
    cmp(w .. "table)", run(S.gsub, s, p, T), run(P.gsub, s, p, T))
    cmp(w .. "function)", run(S.gsub, s, p, F), run(P.gsub, s, p, F))
    cmp(w .. "x, 2)", run(S.gsub, s, p, "x", 2), run(P.gsub, s, p, "x", 2))
    cmp(w .. "x, 0)", run(S.gsub, s, p, "x", 0), run(P.gsub, s, p, "x", 0))
  end
end

-- malformed patterns and bad arguments: the same errors
cmp = group("errors")
local BAD = {
  { "find", "x", "%" }, { "find", "x", "[a" }, { "find", "x", "[^" },
  { "find", "x", "[]" }, { "find", "x", "%f" }, { "find", "x", "%fa" },
  { "find", "x", "%b" }, { "find", "x", "%bx" }, { "find", "x", "(" },
  { "find", "x", "x)" }, { "find", "x", "%1" }, { "find", "xx", "(x)%2" },
  { "find", "xx", "(x%1)" }, { "match", "x", "(" }, { "match", "x", "(()" },
  { "find", "x", S.rep("(", 40) }, { "match", S.rep("x", 40), S.rep("(x)", 33) },
  { "find", S.rep("a", 300), S.rep("a?", 300) },
  { "find", S.rep("a", 300), S.rep("(a)", 31) .. S.rep("a?", 300) },
  { "match", S.rep("a", 300), S.rep("a*", 250) },
  { "gsub", "x", "x", "%2" }, { "gsub", "x", "(x)", "%2" },
  { "gsub", "x", "x", { x = true } }, { "gsub", "x", "x", true },
  { "gsub", "x", "x" }, { "gsub", "x", "(", "y" }, { "gmatch", "x" },
  { "find" }, { "find", "x" }, { "find", {}, "x" }, { "match", "x", "x", "y" },
  { "gsub", "x", "x", function() return {} end },
  { "find", "abc", "b", 1.5 }, { "find", 123, 2 }, { "gsub", 12, 2, 3 },
}
for _, c in ipairs(BAD) do
  local f = c[1]
  local w = f .. "(" .. table.concat((function()
    local t = {} for i = 2, #c do t[#t + 1] = show(c[i]) end return t end)(), ", ") .. ")"
  if f == "gmatch" then
    cmp(w, run(gm(S.gmatch), unpack(c, 2)), run(gm(P.gmatch), unpack(c, 2)))
  else
    cmp(w, run(S[f], unpack(c, 2)), run(P[f], unpack(c, 2)))
  end
end

local out = {}
for _, g in ipairs(groups) do out[#out + 1] = g end
return out
