#!/bin/sh
# Prepares everything the firmware build needs on a Debian machine, idempotently:
# the cross toolchain, picolibc, QEMU, libcoap's client, and BearSSL's source
# (apt-get source bearssl, with deb-src enabled if it is not). Run as root on a
# fresh machine; a machine that already has everything is left untouched.
set -eu
BUILD=${1:-build}
PKGS="gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf qemu-system-misc libcoap3-bin dpkg-dev xz-utils gcc g++ make python3"

missing=""
command -v xtensa-lx106-elf-gcc >/dev/null 2>&1 || missing="$missing gcc-xtensa-lx106 binutils-xtensa-lx106"
[ -f /usr/lib/xtensa-lx106-elf/picolibc.specs ] || missing="$missing picolibc-xtensa-lx106-elf"
command -v qemu-system-xtensa >/dev/null 2>&1 || missing="$missing qemu-system-misc"
command -v coap-client-notls >/dev/null 2>&1 || missing="$missing libcoap3-bin"
command -v dpkg-source >/dev/null 2>&1 || missing="$missing dpkg-dev"
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
command -v g++ >/dev/null 2>&1 || missing="$missing g++"   # the ESP8266 core's emulator (make emu)
command -v python3 >/dev/null 2>&1 || missing="$missing python3"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else
        echo "firmware deps: need root for: $*" >&2; exit 1
    fi
}

updated=0
apt_update() {
    [ $updated = 1 ] && return 0
    as_root apt-get update -q >/dev/null
    updated=1
}

if [ -n "$missing" ]; then
    echo "firmware deps: installing$missing"
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
fi

# BearSSL source, unpacked under $BUILD (git-ignored), never committed.
if ! ls "$BUILD"/bearssl-*/inc/bearssl.h >/dev/null 2>&1; then
    if ! grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "firmware deps: enabling deb-src for apt-get source"
        # Mirror the configured binary sources as source entries.
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            grep -q '^Types:.*deb' "$f" || continue
            sed 's/^Types:.*/Types: deb-src/' "$f" >"/etc/apt/sources.list.d/iotguard-src-$(basename "$f")"
        done
        if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/iotguard-src.list
        fi
        updated=0
    fi
    apt_update
    mkdir -p "$BUILD"
    (cd "$BUILD" && apt-get source -q bearssl >/dev/null 2>&1) || {
        echo "firmware deps: apt-get source bearssl failed" >&2; exit 1; }
fi
ls -d "$BUILD"/bearssl-*/ | head -1
