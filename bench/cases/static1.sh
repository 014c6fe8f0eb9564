# HTTP case "static1": the limit for price1, nginx without the module
# serving a JSON file the size of the price API's answer for 1 SKU(s).
PRICE_SKUS=1
. "$ROOT/bench/cases/price.inc"
price_static_case
