-- The member-only weekly specials, one or two SKUs a week, keyed by ISO
-- week. Unit prices in fen. Kept apart from the hook so the merchandiser
-- edits data, not code; the hook loads it with require "specials".

return {
  ["2026-W48"] = { ["tea"] = 799, ["nappies-128"] = 9900 },
  ["2026-W49"] = { ["wipes-80"] = 1290 },
  ["2026-W50"] = { ["tea"] = 699 },
}
