-- t/lua.t: a module of the script's own directory, required as "lib.tag"
return function(s) return "[" .. s .. "]" end
