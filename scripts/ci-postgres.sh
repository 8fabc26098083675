#!/usr/bin/env bash
# A local PostgreSQL server for the suite (CI and `npm run test:postgres`), from Debian's packages:
#   scripts/ci-postgres.sh start   the default cluster on 127.0.0.1:5432, with a test admin role
#   scripts/ci-postgres.sh url     the TEST_DATABASE_URL of that role
# The admin role may create databases and roles and nothing else: each test member gets its own
# database and login role from it, as `npm run db:provision` does in production.
set -euo pipefail
ROLE=hikitsugi_test_admin
PASSWORD=hikitsugi-test-admin
PORT=${PGPORT:-5432}

case "${1:-}" in
  url)
    echo "postgres://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/postgres"
    ;;
  start)
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "${version} main"; then
      pg_createcluster "$version" main >/dev/null
    fi
    conf=/etc/postgresql/${version}/main/conf.d/hikitsugi-test.conf
    # Loopback only; room for every member of every federation a suite starts (5 connections each at most).
    printf "listen_addresses = '127.0.0.1'\nport = %s\nmax_connections = 400\nshared_buffers = 128MB\nfsync = on\n" "$PORT" > "$conf"
    pg_ctlcluster "$version" main restart
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.5; done
    runuser -u postgres -- psql -q -p "$PORT" -v ON_ERROR_STOP=1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}') THEN
    CREATE ROLE ${ROLE} LOGIN CREATEDB CREATEROLE PASSWORD '${PASSWORD}';
  END IF;
END \$\$;
SQL
    ;;
  *)
    echo "usage: $0 start|url" >&2
    exit 2
    ;;
esac
