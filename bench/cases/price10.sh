# HTTP case "price10": the price API (loyalty_price_api) for 10 SKU(s),
# every request from a random member with a signed cookie.
PRICE_SKUS=10
. "$ROOT/bench/cases/price.inc"
price_api_case
