#!/bin/sh
# Fetch Xen 4.17's upstream source (the orig tarball of Debian's source
# package xen 4.17.5+72-g01140da4e8-1, without Debian's patches) and unpack
# it.  Idempotent: nothing is downloaded or unpacked twice.
#
#   xen/fetch.sh [DIR]        (DIR defaults to build/xen-src)
#
# Leaves DIR/xen-4.17.5+72-g01140da4e8/ (pristine, never built in) and prints
# its path.  apt is used with a private source list, list directory and
# cache under DIR/apt, so no root-owned apt state is changed.
# XEN_SRC_CACHE=DIR2: take the .dsc and orig tarball from DIR2 if present
# there (still verified against the .dsc).
#
#   xen/fetch.sh --xl [DIR]   (DIR defaults to build/xen-xl)
#
# Downloads Debian's binary package xen-utils-4.17 of the same version (else
# the newest bookworm one) with `apt-get download`, unpacks it with dpkg -x
# into DIR/pkg (it is not installed: that would pull in systemd and QEMU),
# links DIR/xl to its xl binary and prints that path.
set -eu

VERSION=4.17.5+72-g01140da4e8
DEBREV=1
ORIG=xen_$VERSION.orig.tar.xz
DSC=xen_$VERSION-$DEBREV.dsc
TOP=xen-$VERSION

MODE=src
if [ "${1:-}" = --xl ]; then
    MODE=xl
    shift
fi
if [ $MODE = xl ]; then DIR=${1:-build/xen-xl}; else DIR=${1:-build/xen-src}; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
A=$DIR/apt

# The mirror apt itself uses for bookworm, else deb.debian.org.
mirror() {
    uri=
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk 'BEGIN{RS=""; FS="\n"}
            { u=""; s=0
              for (i=1; i<=NF; i++) {
                if ($i ~ /^URIs:/)   { split($i, a, /[ \t]+/); u=a[2] }
                if ($i ~ /^Suites:/) { n=split($i, b, /[ \t]+/)
                                       for (j=2; j<=n; j++) if (b[j]=="bookworm") s=1 }
              }
              if (s && u != "") { print u; exit } }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" { i=2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
                               if ($2 ~ /^\[/) i++;
                               if ($(i+1)=="bookworm") { print $i; exit } }' \
              /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# papt ARGS...: apt-get with the private source list $A/list, and lists and
# cache under $A.
papt() {
    apt-get -o "Dir::Etc::SourceList=$A/list" -o Dir::Etc::SourceParts=/dev/null \
            -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" \
            -o APT::Sandbox::User=root -q "$@"
}

# private_apt TYPE: write $A/list (TYPE is deb or deb-src) and update it.
private_apt() {
    uri=$(mirror)
    echo "fetch.sh: using $uri" >&2
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
    opts=
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
        opts=" [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    echo "$1$opts $uri bookworm main" > "$A/list"
    papt update >&2
}

if [ $MODE = xl ]; then
    if [ -x "$DIR/xl" ]; then
        echo "$DIR/xl"
        exit 0
    fi
    private_apt deb
    rm -f "$DIR"/xen-utils-4.17_*.deb
    (cd "$DIR" && { papt download "xen-utils-4.17=$VERSION-$DEBREV" >&2 ||
                    papt download xen-utils-4.17 >&2; })
    rm -rf "$DIR/pkg"
    dpkg -x "$DIR"/xen-utils-4.17_*.deb "$DIR/pkg"
    ln -sf pkg/usr/lib/xen-4.17/bin/xl "$DIR/xl"
    [ -x "$DIR/xl" ] || { echo "fetch.sh: no xl in xen-utils-4.17" >&2; exit 1; }
    echo "$DIR/xl"
    exit 0
fi

SRC=$DIR/$TOP
if [ -f "$SRC/.unpacked" ]; then
    echo "$SRC"
    exit 0
fi

# The expected sha256 of the orig tarball, from the .dsc (whose own hash apt
# checks against the signed Sources index when it downloads it).
dsc_sha() {
    awk -v f="$ORIG" '/^Checksums-Sha256:/ {s=1; next} /^[^ ]/ {s=0}
                      s && $3 == f {print $1}' "$DIR/$DSC"
}
orig_ok() {
    [ -f "$DIR/$DSC" ] && [ -f "$DIR/$ORIG" ] || return 1
    want=$(dsc_sha)
    [ -n "$want" ] || { echo "fetch.sh: no sha256 for $ORIG in $DSC" >&2; exit 1; }
    have=$(sha256sum "$DIR/$ORIG" | cut -d' ' -f1)
    [ "$want" = "$have" ]
}

if ! orig_ok && [ -n "${XEN_SRC_CACHE:-}" ] && [ -f "$XEN_SRC_CACHE/$DSC" ] \
        && [ -f "$XEN_SRC_CACHE/$ORIG" ]; then
    cp "$XEN_SRC_CACHE/$DSC" "$XEN_SRC_CACHE/$ORIG" "$DIR/"
    orig_ok || rm -f "$DIR/$DSC" "$DIR/$ORIG"
fi

if ! orig_ok; then
    private_apt deb-src
    (cd "$DIR" && papt source --download-only "xen=$VERSION-$DEBREV" >&2)
    orig_ok || { echo "fetch.sh: sha256 of $ORIG does not match $DSC" >&2; exit 1; }
fi

rm -rf "$SRC" "$SRC.tmp"
mkdir "$SRC.tmp"
tar -C "$SRC.tmp" -xJf "$DIR/$ORIG"
mv "$SRC.tmp/$TOP" "$SRC"
rmdir "$SRC.tmp"
touch "$SRC/.unpacked"
echo "$SRC"
