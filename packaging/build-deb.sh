#!/usr/bin/env bash
# Builds the two Debian packages of rowsec for the system's PostgreSQL 15 (Debian's layout):
#   postgresql-15-rowsec  the extension: rowsec.so in /usr/lib/postgresql/15/lib, rowsec.control
#                         and its SQL in /usr/share/postgresql/15/extension (from `cargo pgrx package`)
#   rowsec                the CLI: /usr/bin/rowsec, its man pages and shell completions
# into packaging/out/ (or $OUT_DIR). Needs cargo-pgrx (tests/run.sh installs it), dpkg-deb, and
# PostgreSQL 15's pg_config with server headers (Debian's postgresql-server-dev-15). Nothing is
# installed: packaging/test-deb.sh installs the result into a clean PostgreSQL 15 and tests it.
#   PG_CONFIG   default /usr/lib/postgresql/15/bin/pg_config: its paths are the package's paths
#   REVISION    the Debian revision (default 1)
#   PROFILE     release (default: what a user installs) or debug (tests/run.sh: the test checks
#               the packaging, and two release builds would cost CI about ten minutes)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
OUT_DIR=${OUT_DIR:-$ROOT/packaging/out}
REVISION=${REVISION:-1}
export PGRX_HOME=${PGRX_HOME:-$ROOT/target/pgrx-home}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
case $PROFILE in
    release) pgrx_profile=(); cargo_profile=(--release); bin_dir=release ;;
    debug) pgrx_profile=(--debug); cargo_profile=(); bin_dir=debug ;;
    *) echo "build-deb.sh: PROFILE is release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac

major=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
[ "$major" = 15 ] || { echo "build-deb.sh: $PG_CONFIG is PostgreSQL $major; the packages are for 15" >&2; exit 2; }
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d /tmp/rowsec-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$OUT_DIR"

# Depends: for each library a binary links, the Debian package that ships it; libc6 with the
# newest glibc symbol version it uses.
depends_of() {
    local deps=() lib path pkg glibc
    for lib in $(objdump -p "$@" | awk '/NEEDED/ { print $2 }' | sort -u); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
        [ -n "$path" ] || { echo "build-deb.sh: $lib is not on this system" >&2; exit 1; }
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1) || true
        [ -n "$pkg" ] || pkg=$(dpkg -S "$path" | head -n1 | cut -d: -f1)
        if [ "$pkg" = libc6 ]; then
            glibc=$(objdump -T "$@" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
            deps+=("libc6 (>= $glibc)")
        else
            deps+=("$pkg")
        fi
    done
    printf '%s\n' "${deps[@]}" | sort -u | paste -sd, | sed 's/,/, /g'
}

# control FILE PACKAGE DEPENDS DESCRIPTION...: a DEBIAN/control with the installed size.
control() {
    local dir=$1 package=$2 depends=$3 summary=$4 body=$5
    mkdir -p "$dir/DEBIAN"
    cat >"$dir/DEBIAN/control" <<CONTROL
Package: $package
Version: $version-$REVISION
Architecture: $arch
Maintainer: rowsec developers <rowsec@localhost>
Section: database
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$dir" | cut -f1)
Depends: $depends
Description: $summary
$body
CONTROL
}

docs() {
    local dir=$1 package=$2
    mkdir -p "$dir/usr/share/doc/$package"
    cp README.md "$dir/usr/share/doc/$package/"
    printf 'rowsec %s\nLicense: Apache-2.0\n' "$version" >"$dir/usr/share/doc/$package/copyright"
}

echo "==> the extension: cargo pgrx package --pg-config $PG_CONFIG"
(cd extension && cargo pgrx package "${pgrx_profile[@]}" --pg-config "$PG_CONFIG" --out-dir "$stage/pgrx")
ext="$stage/postgresql-15-rowsec"
mkdir -p "$ext"
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
# pgrx lays the files out at the pg_config's own paths: take exactly those.
install -D -m 0644 "$stage/pgrx$libdir/rowsec.so" "$ext$libdir/rowsec.so"
for f in "$stage/pgrx$extdir"/rowsec*; do
    install -D -m 0644 "$f" "$ext$extdir/$(basename "$f")"
done
strip --strip-unneeded "$ext$libdir/rowsec.so"
docs "$ext" postgresql-15-rowsec
control "$ext" postgresql-15-rowsec "postgresql-15, $(depends_of "$ext$libdir/rowsec.so")" \
    "rowsec extension for PostgreSQL 15: row-level security helpers" \
" The PostgreSQL extension behind the SQL that \`rowsec compile\` writes: who the
 current person is, their subtree, team and shares, limits, the audit trail and
 access requests. Add rowsec to shared_preload_libraries and restart the server;
 the compiled script runs CREATE EXTENSION itself."
cat >"$ext/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    echo "rowsec: add shared_preload_libraries = 'rowsec' to postgresql.conf and restart PostgreSQL 15"
fi
POSTINST
chmod 0755 "$ext/DEBIAN/postinst"

echo "==> the CLI: cargo build ${cargo_profile[*]} -p rowsec"
cargo build "${cargo_profile[@]}" --locked -p rowsec
cli="$stage/rowsec"
install -D -m 0755 "$TARGET/$bin_dir/rowsec" "$cli/usr/bin/rowsec"
strip --strip-unneeded "$cli/usr/bin/rowsec"
install -d "$cli/usr/share/man/man1" "$cli/usr/share/bash-completion/completions" \
    "$cli/usr/share/zsh/vendor-completions" "$cli/usr/share/fish/vendor_completions.d"
"$cli/usr/bin/rowsec" man --out-dir "$cli/usr/share/man/man1"
gzip -9n "$cli/usr/share/man/man1"/*.1
"$cli/usr/bin/rowsec" completions bash >"$cli/usr/share/bash-completion/completions/rowsec"
"$cli/usr/bin/rowsec" completions zsh >"$cli/usr/share/zsh/vendor-completions/_rowsec"
"$cli/usr/bin/rowsec" completions fish >"$cli/usr/share/fish/vendor_completions.d/rowsec.fish"
docs "$cli" rowsec
install -m 0644 docs/rowsec.schema.json "$cli/usr/share/doc/rowsec/"
control "$cli" rowsec "$(depends_of "$cli/usr/bin/rowsec")" \
    "compile a CRM access spec into PostgreSQL row-level security" \
" rowsec reads a declarative spec (people, levels, tables, column classes, roles)
 and writes the SQL that makes PostgreSQL enforce it; it also plans, applies and
 verifies the spec on a live database. The extension is postgresql-15-rowsec."

for dir in "$ext" "$cli"; do
    find "$dir" -type d -exec chmod 0755 {} +
    dpkg-deb --root-owner-group -Zxz --build "$dir" "$OUT_DIR/$(basename "$dir")_${version}-${REVISION}_${arch}.deb" >/dev/null
done
ls -l "$OUT_DIR"/*_"${version}-${REVISION}_${arch}".deb
