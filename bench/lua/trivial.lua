-- bench "luatrivial": a price hook that changes nothing.  It returns the
-- line's price without a hook, the tier's unit price times the quantity,
-- so the module converts the returned number and compares it, but the
-- answer is the one "luanone" gives (no "promo").
return {
  price = function(ctx) return ctx.price * ctx.qty end,
}
