#!/usr/bin/env bash
# Builds the images the integration tests use, each only when it is missing.
# There is no registry here: both are made from Debian packages and `docker import`.
#   aether-test/busybox:1    busybox-static as a rootfs (a few hundred KiB)
#   aether-test/postgres:15  a debootstrap'd Debian bookworm with PostgreSQL 15
set -euo pipefail

BUSYBOX_IMAGE=aether-test/busybox:1
POSTGRES_IMAGE=aether-test/postgres:15
MIRROR=${AETHER_DEBIAN_MIRROR:-http://deb.debian.org/debian}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

need_pkg() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build_busybox() {
  need_pkg busybox-static
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh httpd nc sleep echo cat ls true false env wget; do
    ln -s busybox "$root/bin/$applet"
  done
  echo "aether-test" > "$root/www/index.html"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$root"
  echo "built $BUSYBOX_IMAGE" >&2
}

build_postgres() {
  need_pkg debootstrap
  local root
  root=$(mktemp -d /var/tmp/aether-pg-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* "$root/var/lib/postgresql/15"
  mkdir -p "$root/var/lib/postgresql/data"
  chroot "$root" chown postgres:postgres /var/lib/postgresql/data
  cat > "$root/usr/local/bin/aether-pg-entrypoint" <<'SH'
#!/bin/sh
# Minimal stand-in for the official image's entrypoint: initdb on first start, then postgres.
set -e
BIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ "${1:-}" = postgres ]; then shift; fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" > "$pw"
  "$BIN/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pw" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
SH
  chmod 755 "$root/usr/local/bin/aether-pg-entrypoint"
  tar -C "$root" -c . | docker import \
    --change 'USER postgres' \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/aether-pg-entrypoint"]' \
    --change 'CMD ["postgres"]' \
    - "$POSTGRES_IMAGE" >/dev/null
  rm -rf "$root"
  echo "built $POSTGRES_IMAGE" >&2
}

have_image "$BUSYBOX_IMAGE" || build_busybox
if [ "${AETHER_SKIP_POSTGRES_IMAGE:-0}" != 1 ]; then
  have_image "$POSTGRES_IMAGE" || build_postgres
fi
