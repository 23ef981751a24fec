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
