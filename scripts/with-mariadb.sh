#!/usr/bin/env bash
# Runs a command with a throwaway MariaDB server, for the store's MySQL tests:
#
#   scripts/with-mariadb.sh go test -race ./store/...
#
# It installs MariaDB when missing (scripts/install-deps.sh), initialises a
# data directory in a temporary directory, starts mariadbd on its own unix
# socket and a free TCP port on 127.0.0.1, creates the database hero_test (and
# lets the user create hero_test_* databases of its own) and
# a user for it, exports
#
#   HERO_TEST_MYSQL_URL=mysql://hero:hero@127.0.0.1:PORT/hero_test
#
# (and HERO_TEST_MYSQL_SOCKET_URL, the same database over the unix socket),
# runs the command, then stops the server and deletes the temporary directory
# (also when the command or the script fails or is interrupted). The exit
# status is the command's. Works as root (CI on a fresh Debian 12 machine) and
# as an ordinary user.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
"$here/install-deps.sh" mariadb

find_bin() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    if [ -x "/usr/sbin/$name" ]; then echo "/usr/sbin/$name"; return 0; fi
    if [ -x "/usr/bin/$name" ]; then echo "/usr/bin/$name"; return 0; fi
  done
  echo "with-mariadb: none of $* found after installing mariadb-server" >&2
  return 1
}
mysqld=$(find_bin mariadbd mysqld)
install_db=$(find_bin mariadb-install-db mysql_install_db)
client=$(find_bin mariadb mysql)
admin=$(find_bin mariadb-admin mysqladmin)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hero-mariadb.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do # up to 30 s for a clean shutdown
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# mariadbd refuses to run as root unless told to; as another user it runs as
# that user.
user_args=()
if [ "$(id -u)" -eq 0 ]; then user_args=(--user=root); fi

if ! "$install_db" --no-defaults "${user_args[@]}" --datadir="$tmp/data" \
  --auth-root-authentication-method=normal --skip-test-db \
  >"$tmp/install.log" 2>&1; then
  echo "with-mariadb: mariadb-install-db failed:" >&2
  cat "$tmp/install.log" >&2
  exit 1
fi

port_free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

sock="$tmp/mysqld.sock"
started=""
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  "$mysqld" --no-defaults "${user_args[@]}" --datadir="$tmp/data" \
    --socket="$sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$tmp/mysqld.pid" --log-error="$tmp/error.log" \
    --skip-name-resolve --skip-log-bin \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=300 --open-files-limit=8192 >>"$tmp/error.log" 2>&1 &
  pid=$!
  # Ready when it answers on the socket; bounded to 60 s per attempt.
  for _ in $(seq 1 600); do
    if "$admin" --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; then
      started=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -z "$started" ] || break
  if kill -0 "$pid" 2>/dev/null; then
    echo "with-mariadb: mariadbd did not become ready within 60 s:" >&2
    tail -n 30 "$tmp/error.log" >&2 || true
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  pid=""
  echo "with-mariadb: mariadbd exited on port $port (attempt $attempt), retrying:" >&2
  tail -n 5 "$tmp/error.log" >&2 || true
done
if [ -z "$started" ]; then
  echo "with-mariadb: could not start mariadbd" >&2
  exit 1
fi

"$client" --no-defaults --socket="$sock" -uroot <<'SQL'
CREATE DATABASE hero_test CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER 'hero'@'127.0.0.1' IDENTIFIED BY 'hero';
CREATE USER 'hero'@'localhost' IDENTIFIED BY 'hero';
GRANT ALL PRIVILEGES ON hero_test.* TO 'hero'@'127.0.0.1';
GRANT ALL PRIVILEGES ON hero_test.* TO 'hero'@'localhost';
-- Tests that need an empty database of their own (several replicas
-- migrating at once) create hero_test_<something>.
GRANT ALL PRIVILEGES ON `hero\_test\_%`.* TO 'hero'@'127.0.0.1';
GRANT ALL PRIVILEGES ON `hero\_test\_%`.* TO 'hero'@'localhost';
SQL

export HERO_TEST_MYSQL_URL="mysql://hero:hero@127.0.0.1:$port/hero_test"
export HERO_TEST_MYSQL_SOCKET_URL="mysql://hero:hero@/hero_test?socket=$sock"
echo "with-mariadb: MariaDB ready, HERO_TEST_MYSQL_URL=$HERO_TEST_MYSQL_URL" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
