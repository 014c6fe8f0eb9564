# HTTP case "static10": the limit for price10, nginx without the module
# serving a JSON file the size of the price API's answer for 10 SKU(s).
PRICE_SKUS=10
. "$ROOT/bench/cases/price.inc"
price_static_case
