#!/usr/bin/env bash
# Builds and installs pg_tle 1.5.2 (Apache-2.0, source from its public repository
# github.com/aws/pg_tle, tag v1.5.2, commit 5b953dd5) into the PostgreSQL whose pg_config is
# $PG_CONFIG (default: the system's 15; tests/run.sh gives its private copy, see tests/pg.sh, so
# the system's PostgreSQL is never written to), for the test of `rowsec compile --backend sql
# --pg-tle` (tests/tests/pg_tle.rs): what managed services that accept trusted-language
# extensions run. Idempotent: does nothing when this version is already installed. Under a
# minute on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
lib=$($pg_config --pkglibdir)
if [[ -f $lib/pg_tle.so ]] && grep -qs "default_version = '1.5.2'" "$($pg_config --sharedir)/extension/pg_tle.control"; then
  echo "pg_tle 1.5.2 already installed"; exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# flex: pg_tle's configuration-file parser is generated at build time.
missing=()
for p in flex postgresql-server-dev-15; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
work=$(mktemp -d /tmp/pg_tle-src.XXXX)
tar xzf "$here/pg_tle-1.5.2.tar.gz" -C "$work"
cd "$work/pg_tle-1.5.2"
make PG_CONFIG="$pg_config" -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log"; exit 1; }
as_root make PG_CONFIG="$pg_config" install >"$work/install.log" 2>&1 || { tail -30 "$work/install.log"; exit 1; }
rm -rf "$work"
echo "pg_tle 1.5.2 installed into $lib"
