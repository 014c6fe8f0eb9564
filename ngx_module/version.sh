#!/bin/sh
# Writes on stdout the C header with the project's version, taken from the
# first entry of debian/changelog, the one place the version is written:
#   sh version.sh CHANGELOG > loyalty_version.h
#   sh version.sh -n CHANGELOG      the version alone
# Used by config (the module), the Makefile (loyaltyctl, the man pages)
# and, through dpkg, by the Debian packages.
set -eu

plain=
if [ "$1" = -n ]; then
    plain=1
    shift
fi

# "nginx-loyalty (0.1.0) unstable; urgency=medium": no epoch, no revision
v=`sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$1"`
v=${v#*:}
v=${v%-*}

case "$v" in
    [0-9]*) ;;
    *) echo "version.sh: no version in $1" >&2; exit 1 ;;
esac

if [ -n "$plain" ]; then
    echo "$v"
    exit 0
fi

echo '/* made by ngx_module/version.sh from debian/changelog: do not edit */'
echo "#define LOYALTY_VERSION  \"$v\""
