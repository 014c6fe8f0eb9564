# HTTP case "price1": the price API (loyalty_price_api) for 1 SKU(s),
# every request from a random member with a signed cookie.
PRICE_SKUS=1
. "$ROOT/bench/cases/price.inc"
price_api_case
