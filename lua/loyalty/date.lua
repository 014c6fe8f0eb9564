-- loyalty.date: calendar arithmetic on Unix seconds, without the C library.
--
-- Days, weekdays and hours are the shop's: in the time zone nginx's
-- loyalty_timezone (or loyaltyctl --tz) names, daylight saving time
-- included, so a weekend promotion starts at the shop's Saturday midnight
-- (Sunday 16:48 UTC is already Monday in Asia/Shanghai). Without a zone
-- they are UTC's. Every function also takes an optional offset in seconds
-- east of UTC that overrides the zone (0 for the UTC day). The civil-date
-- conversion is Howard Hinnant's days-from-civil algorithm, valid for any
-- year of the proleptic Gregorian calendar, so no answer depends on the
-- server's time zone or on os.date.

local floor = math.floor
local format = string.format
local zone = require "loyalty.zone"

local M = {}

-- the shop's zone: its name ("UTC" without one) and offset(t)
M.zone = zone.name
M.offset = zone.offset

local function check_time(t, offset, fname)
  if type(t) ~= "number" or t ~= t or t == math.huge or t == -math.huge then
    error(fname .. ": time must be a number of Unix seconds, got "
          .. type(t), 3)
  end
  if offset == nil then
    return t + zone.offset(t)
  end
  if type(offset) ~= "number" then
    error(fname .. ": offset must be a number of seconds, got "
          .. type(offset), 3)
  end
  return t + offset
end

-- Days since 1970-01-01 of a civil date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400                                  -- [0, 399]
  local mp = (m + 9) % 12                                    -- March = 0
  local doy = floor((153 * mp + 2) / 5) + d - 1              -- [0, 365]
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Civil date of a count of days since 1970-01-01.
local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097                               -- [0, 146096]
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524)
                     - floor(doe / 146096)) / 365)           -- [0, 399]
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)                      -- [0, 11]
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

M.is_leap = is_leap
M.days_from_civil = days_from_civil
M.civil_from_days = civil_from_days

-- ymd(t [, offset]) -> year, month, day
function M.ymd(t, offset)
  local s = check_time(t, offset, "ymd")
  return civil_from_days(floor(s / 86400))
end

-- day(t [, offset]) -> "YYYY-MM-DD"
function M.day(t, offset)
  local s = check_time(t, offset, "day")
  local y, m, d = civil_from_days(floor(s / 86400))
  return format("%04d-%02d-%02d", y, m, d)
end

-- weekday(t [, offset]) -> 1 (Monday) .. 7 (Sunday), as ISO 8601 numbers them
function M.weekday(t, offset)
  local s = check_time(t, offset, "weekday")
  return (floor(s / 86400) + 3) % 7 + 1          -- 1970-01-01 was a Thursday
end

-- is_weekend(t [, offset]) -> true on the shop's Saturday and Sunday
function M.is_weekend(t, offset)
  local s = check_time(t, offset, "is_weekend")
  return (floor(s / 86400) + 3) % 7 >= 5
end

-- hour(t [, offset]) -> 0 .. 23 on the shop's clock
function M.hour(t, offset)
  local s = check_time(t, offset, "hour")
  return floor((s % 86400) / 3600)
end

-- iso_week(t [, offset]) -> year, week
-- The ISO week belongs to the year of its Thursday, so the last days of
-- December can be week 1 of the next year and the first days of January
-- week 52 or 53 of the previous one.
function M.iso_week(t, offset)
  local s = check_time(t, offset, "iso_week")
  local days = floor(s / 86400)
  local wd = (days + 3) % 7                      -- Monday = 0
  local thursday = days - wd + 3
  local year = civil_from_days(thursday)
  local week = floor((thursday - days_from_civil(year, 1, 1)) / 7) + 1
  return year, week
end

-- week_key(t [, offset]) -> "YYYY-Www", e.g. "2026-W48"
function M.week_key(t, offset)
  local s = check_time(t, offset, "week_key")
  local y, w = M.iso_week(s, 0)
  return format("%04d-W%02d", y, w)
end

-- is_birthday(birthday, t [, offset]) -> boolean
-- birthday is "MM-DD" as the store keeps it; nil or a malformed value is
-- never a birthday. A 02-29 birthday is celebrated on 02-28 in common years.
function M.is_birthday(birthday, t, offset)
  local s = check_time(t, offset, "is_birthday")
  if type(birthday) ~= "string" then return false end
  local bm, bd = birthday:match("^(%d%d)%-(%d%d)$")
  if not bm then return false end
  bm, bd = tonumber(bm), tonumber(bd)
  local y, m, d = civil_from_days(floor(s / 86400))
  if bm == 2 and bd == 29 and not is_leap(y) then bd = 28 end
  return m == bm and d == bd
end

-- days_since(t0, t1) -> whole days from t0 to t1 (floored), nil if t0 is nil
-- t1 defaults to os.time(). Negative when t0 is in the future.
function M.days_since(t0, t1)
  if t0 == nil then return nil end
  if type(t0) ~= "number" then
    error("days_since: t0 must be a number of Unix seconds, got "
          .. type(t0), 2)
  end
  if t1 == nil then t1 = os.time() end
  if type(t1) ~= "number" then
    error("days_since: t1 must be a number of Unix seconds, got "
          .. type(t1), 2)
  end
  return floor((t1 - t0) / 86400)
end

return M
