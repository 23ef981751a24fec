#!/usr/bin/env bash
# Builds packaging/Dockerfile from packaging/out/ and checks the image: a container starts with
# rowsec preloaded, and the CRM example, compiled by the image's own rowsec, applies. Skipped,
# with a message, where docker does not work (no daemon, no permission).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR=${OUT_DIR:-$(pwd)/packaging/out}
if ! docker info >/dev/null 2>&1; then
    echo "docker: not available here (docker info fails): the image was not built"
    exit 0
fi
tag=rowsec-postgres:15-test-$$
name=rowsec-test-$$
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; docker rmi "$tag" >/dev/null 2>&1 || true' EXIT
docker build -q -f packaging/Dockerfile -t "$tag" "$OUT_DIR" >/dev/null
docker run -d --name "$name" -e POSTGRES_HOST_AUTH_METHOD=trust "$tag" >/dev/null
for _ in $(seq 60); do
    docker exec "$name" pg_isready -U postgres -h 127.0.0.1 >/dev/null 2>&1 && break
    sleep 1
done
in_box() { docker exec -i "$name" "$@"; }
[ "$(in_box psql -U postgres -h 127.0.0.1 -At -c 'SHOW shared_preload_libraries')" = rowsec ]
in_box mkdir -p /tmp/crm
docker cp examples/crm.yaml "$name:/tmp/crm/crm.yaml"
docker cp examples/crm-schema.sql "$name:/tmp/crm/crm-schema.sql"
in_box rowsec compile /tmp/crm/crm.yaml --schema /tmp/crm/crm-schema.sql -o /tmp/crm/crm.sql --quiet
in_box createdb -U postgres -h 127.0.0.1 crm
in_box psql -U postgres -h 127.0.0.1 -d crm -q -v ON_ERROR_STOP=1 -f /tmp/crm/crm-schema.sql
in_box psql -U postgres -h 127.0.0.1 -d crm -q -v ON_ERROR_STOP=1 -f /tmp/crm/crm.sql
in_box psql -U postgres -h 127.0.0.1 -d crm -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE bob LOGIN; GRANT sales_rep TO bob;
INSERT INTO crm.app_users (id, name, manager_id, team_id, db_login) VALUES (1, 'Alice', NULL, 10, NULL), (2, 'Bob', 1, 20, 'bob');
INSERT INTO crm.accounts (owner_id, name) VALUES (1, 'Acme'), (2, 'Globex');
SQL
seen=$(in_box psql -U bob -h 127.0.0.1 -d crm -At -c 'SELECT string_agg(name, $$,$$) FROM crm.accounts')
[ "$seen" = Globex ] || { echo "FAIL: bob sees $seen" >&2; exit 1; }
echo "docker: image $tag built; the CRM example applies in it and bob sees only his account"
