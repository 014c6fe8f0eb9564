# HTTP case "bare": stock nginx serving the static file, no loyalty work at
# all.  The ceiling the other cases are compared against: the same
# response, so the three headers are there with constant values of the
# usual length, and only the module's work is missing.
CASE_TITLE="nginx, no module"

case_location_conf() {
    echo 'add_header X-Member m0000000;'
    echo 'add_header X-Tier silver;'
    echo 'add_header X-Stage customer;'
}
