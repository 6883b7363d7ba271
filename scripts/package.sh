#!/bin/sh
# Builds the Debian package of the plugin, inside the Debian 13 environment
# (scripts/debian13.sh scripts/package.sh; `npm run package` builds the plugin first):
#
#   scripts/package.sh [OUTPUT_DIRECTORY]     (default: build/)
#
# writes OUTPUT_DIRECTORY/orthanc-multitenant-dicom_<version>_<arch>.deb and prints its path.
# The package installs build/libOrthancMultitenantDicom.so (stripped) into Orthanc's
# plugins folder, and diverts Debian's stock libMultitenantDicom.so out of it
# (packaging/preinst, packaging/postrm). Its version is package.json's (a pre-release
# "1.2.0-rc.1" becomes "1.2.0~rc.1", which Debian sorts before "1.2.0").
set -eu
cd "$(dirname "$0")/.."
project=$(pwd)
plugin=build/libOrthancMultitenantDicom.so
name=orthanc-multitenant-dicom
output=${1:-build}

[ -f "$plugin" ] || { echo "package.sh: $plugin is missing: run npm run build first" >&2; exit 1; }
mkdir -p build "$output"
output=$(cd "$output" && pwd)
exec 9>build/.lock
flock 9  # not while scripts/build.sh rewrites the plugin

version=$(node -p 'require("./package.json").version')
deb_version=$(printf '%s' "$version" | sed 's/-/~/')
case "$deb_version" in
  [0-9]*) ;;
  *) echo "package.sh: package.json's version \"$version\" is not a Debian version" >&2; exit 1 ;;
esac
if printf '%s' "$deb_version" | grep -q '[^A-Za-z0-9.+~]'; then
  echo "package.sh: package.json's version \"$version\" is not a Debian version" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)
maintainer=${DEBFULLNAME:-orthanc-multitenant-dicom maintainers}
maintainer="$maintainer <${DEBEMAIL:-maintainers@users.noreply.r-seed-538f93de.example}>"

umask 022
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root/DEBIAN"
chmod 755 "$root"

install -D -m 644 "$plugin" "$root/usr/share/orthanc/plugins/libOrthancMultitenantDicom.so"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$root/usr/share/orthanc/plugins/libOrthancMultitenantDicom.so"
install -D -m 644 packaging/copyright "$root/usr/share/doc/$name/copyright"
install -m 755 packaging/preinst packaging/postrm "$root/DEBIAN/"
install -m 644 packaging/triggers "$root/DEBIAN/"

# Depends: Orthanc with labels, and the package of every shared library the plugin needs,
# with the minimum version its shlibs file gives (what dpkg-shlibdeps would read first).
# All of them but libnode115 come with orthanc today; naming them keeps the package right
# if a later orthanc stops pulling one.
needed=$(objdump -p "$plugin" | awk '$1 == "NEEDED" { print $2 }')
[ -n "$needed" ] || { echo "package.sh: objdump found no NEEDED entry in $plugin" >&2; exit 1; }
: > "$stage/dependencies"
for library in $needed; do
  soname=${library%%.so*}
  soversion=${library#*.so.}
  dependency=$(cat /var/lib/dpkg/info/*.shlibs | awk -v n="$soname" -v v="$soversion" '
    $1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }')
  if [ -z "$dependency" ]; then
    path=$(ldconfig -p | awk -v l="$library" '$1 == l { print $NF; exit }')
    dependency=$( { [ -n "$path" ] && dpkg -S "$path" 2>/dev/null; } | cut -d: -f1 | head -n 1)
  fi
  [ -n "$dependency" ] || { echo "package.sh: no package provides $library" >&2; exit 1; }
  printf '%s\n' "$dependency" >> "$stage/dependencies"
done
depends=$( { echo 'orthanc (>= 1.12)'; LC_ALL=C sort -u "$stage/dependencies"; } |
  awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g')

# Installed-Size as dpkg-gencontrol computes it: KiB per file (rounded up), 1 per directory.
installed_size=$(find "$root" -path "$root/DEBIAN" -prune -o -printf '%y %s\n' |
  awk '$1 == "f" || $1 == "l" { total += int(($2 + 1023) / 1024); next } { total += 1 } END { print total }')

cat > "$root/DEBIAN/control" <<EOF
Package: $name
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: science
Priority: optional
Description: multitenant DICOM servers for Orthanc, isolated by labels
 Replaces Orthanc's stock MultitenantDicom plugin (same plugin name, same
 "MultitenantDicom" configuration section): one DICOM endpoint (AET and port) per
 tenant, each seeing only the images that carry its labels. The DICOM servers run
 in Orthanc's process; their decisions are made by TypeScript running in an
 embedded Node.js runtime.
 .
 The stock plugin /usr/share/orthanc/plugins/libMultitenantDicom.so is diverted
 to /usr/share/orthanc/plugins-disabled/ while this package is installed, and
 comes back when it is removed.
EOF

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb="$output/${name}_${deb_version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
dpkg-deb --info "$deb" >&2
dpkg-deb --contents "$deb" >&2
echo "${deb#"$project"/}"
