-- Every reward cadence of the shop's handbook (../shared/domain.md,
-- "Reward cadences"), declared for the module to schedule.  Staff and
-- the shop's systems take the touches from GET .../due and acknowledge
-- them with POST .../due/ack; loyaltyctl cadence-stats counts them.
--
-- Amounts are minor units (fen): 50000 is 500.00.

local cadence = require "loyalty.cadence"

local members = cadence.stage_at_least("member")

return {
  cadences = {
    -- a week after a purchase of 500.00 or more: a call about the product
    cadence.after_order {
      name = "product_call", over = 50000, days = 7, hour = 10,
      touch = "call", note = "Ask how the product is working out",
    },

    -- the third day after any purchase: a care call, once a member
    cadence.after_order {
      name = "care_call", days = 3, hour = 10, touch = "call",
      note = "Care call: any questions about the order?",
      when = members,
    },

    -- the day a referred customer first buys: thank both, with points
    -- for the referrer; a week later, follow up with the new customer
    cadence.referral {
      name = "referral_thanks", who = "referrer", touch = "message",
      reward = 200, note = "Thank them: someone they brought bought today",
    },
    cadence.referral {
      name = "referral_welcome", who = "member", touch = "message",
      note = "Welcome the new customer their friend brought",
    },
    cadence.referral {
      name = "referral_followup", who = "member", days = 7, hour = 10,
      touch = "call", note = "A week on: how was the first order?",
    },

    -- cumulative spend passes 10,000.00: a thank-you letter
    cadence.spend_crossed {
      name = "spend_10k_letter", threshold = 1000000, touch = "letter",
      note = "Thank-you letter: 10,000 spent with us",
    },

    -- the year's top spender: a visit with flowers in the first week
    cadence.yearly_top {
      name = "top_spender_visit", top = 1, days = 7, touch = "visit",
      note = "Visit with flowers: last year's top spender",
    },

    -- birthday: a greeting on the day, a small gift with points for
    -- members, sent a week ahead so it arrives in time
    cadence.birthday {
      name = "birthday_greeting", hour = 9, touch = "message",
      note = "Happy birthday; today's extra discount is on their account",
    },
    cadence.birthday {
      name = "birthday_gift", days = -7, touch = "gift", reward = 500,
      note = "Send the birthday gift", when = members,
    },

    -- holidays and season changes: greetings without sales talk, for
    -- everyone who has bought
    cadence.calendar {
      name = "holiday_greeting", hour = 9, touch = "message",
      dates = { "01-01", "03-20", "06-21", "09-22", "12-21", "12-25" },
      note = "Season's greetings, no offers",
      when = cadence.stage_at_least("customer"),
    },

    -- no order for 90 days: "we miss you" from their own salesperson
    cadence.inactive {
      name = "we_miss_you", days = 90, hour = 10, touch = "message",
      note = "We miss you: a personal note from their salesperson",
    },

    -- four VIP gatherings a year, for members
    cadence.calendar {
      name = "vip_gathering", days = -14, touch = "letter",
      dates = { "03-15", "06-15", "09-15", "12-10" },
      note = "Invitation to the VIP gathering in two weeks",
      when = members,
    },
  },
}
