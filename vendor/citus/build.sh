#!/usr/bin/env bash
# Builds and installs Citus 13.2.2 (AGPL-3.0, source from its public repository, tag v13.2.2) into
# the PostgreSQL 15 whose pg_config is $PG_CONFIG (default: the system's; tests/run.sh gives its
# private copy, see tests/pg.sh, so the system's PostgreSQL is never written to), for tests of
# rowsec on a distributed cluster. Idempotent: does nothing
# when this version with these patches is already installed. Two patches: PostgreSQL 15.14+ exports
# have_createdb_privilege, which Citus 13.2.2's compat header also defines; and Citus copies
# restrictive policies to shards as permissive ones (restrictive-policies.patch, a security fix
# rowsec's `always:` rules need). About 4 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
lib=$($pg_config --pkglibdir)
# The installed build records which patches it carries: a changed patch set rebuilds.
stamp=$($pg_config --sharedir)/extension/citus.rowsec-patches
patches=$(cd "$here" && sha256sum ./*.patch)
if [[ -f $lib/citus.so ]] && grep -qs "default_version = '13.2" "$($pg_config --sharedir)/extension/citus.control" \
   && [[ "$(cat "$stamp" 2>/dev/null)" == "$patches" ]]; then
  echo "citus 13.2 already installed"; exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for p in libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev postgresql-server-dev-15; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
work=$(mktemp -d /tmp/citus-src.XXXX)
tar xzf "$here/citus-13.2.2.tar.gz" -C "$work"
cd "$work/citus-13.2.2"
for p in "$here"/*.patch; do patch -p1 <"$p"; done
PG_CONFIG=$pg_config ./configure >"$work/configure.log"
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log"; exit 1; }
as_root make install >"$work/install.log"
echo "$patches" | as_root tee "$stamp" >/dev/null
rm -rf "$work"
echo "citus 13.2.2 installed into $lib"
