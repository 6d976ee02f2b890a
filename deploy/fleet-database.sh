#!/bin/sh
# fleet-database.sh: prepares Debian's PostgreSQL 15 as a Keyhold fleet's database, on the database server.
#
#   deploy/fleet-database.sh HOSTS_CIDR [DB_HOST_NAME]
#
# Creates the role and database `keyhold` with a random password, accepts TLS connections with that
# password (scram-sha-256) from HOSTS_CIDR only, and writes the URL the hosts need to
# /root/keyhold-database-url (mode 0600), to be sealed on each host (see deploy/fleet.conf). Run as root.
# The server's TLS certificate is Debian's snakeoil one unless you configure your own: give the hosts the
# CA that signed it (sslrootcert=) or they refuse to connect (verify-full is the default off loopback).
set -eu

cidr=${1:?usage: fleet-database.sh HOSTS_CIDR [DB_HOST_NAME]}
name=${2:-$(hostname -f)}
case "$cidr" in
*/*) ;;
*) echo "fleet-database.sh: HOSTS_CIDR must be an address block such as 10.0.0.0/24, not '$cidr'" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "fleet-database.sh: run as root" >&2; exit 1; }
command -v pg_lsclusters >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
version=$(pg_lsclusters -h | awk 'NR == 1 { print $1 }')
config=/etc/postgresql/$version/main

password=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q <<SQL
SELECT 'CREATE ROLE keyhold LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keyhold')\gexec
ALTER ROLE keyhold PASSWORD '$password';
SELECT 'CREATE DATABASE keyhold OWNER keyhold' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'keyhold')\gexec
SQL

cat >"$config/conf.d/keyhold.conf" <<CONF
listen_addresses = '*'
ssl = on
password_encryption = scram-sha-256
CONF
rule="hostssl keyhold keyhold $cidr scram-sha-256"
grep -qxF "$rule" "$config/pg_hba.conf" || echo "$rule" >>"$config/pg_hba.conf"
systemctl restart "postgresql@$version-main"

umask 077
printf 'postgresql://keyhold:%s@%s:5432/keyhold?sslmode=verify-full\n' "$password" "$name" >/root/keyhold-database-url
echo "the hosts' database URL is in /root/keyhold-database-url (seal it on each host, then remove it)"
