#!/usr/bin/env bash
# Section 12 of bench/run, which calls it; runs alone too:
#   bash bench/distance.sh target/release/ajj bench/results
# then `python3 bench/distance_report.py bench/results BENCHMARKS.md`
# splices its table into BENCHMARKS.md. The remote backend at a distance:
# a real sshd on loopback behind bench/delay_relay.py, which delays every
# chunk by the one-way time of $DISTANCE_DELAYS (default "0 25 50" ms; 0
# is sshd directly). At each, with a warm master:
#   `ajj workspace add` of 2 services, `ajj run -- true`, `ajj status
#   --json`, a no-op `ajj reconcile`;
# against Docker's own remote CLI, `docker -H ssh://… ps -q`, with a new
# connection each time, over a ControlMaster, and through a named `docker
# context` over that ControlMaster (the fairest hand-made peer); and the
# watcher's time from a container's removal to its replacement's create.
set -euo pipefail
ajj=$(realpath "$1")
out=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
delays=${DISTANCE_DELAYS:-0 25 50}
export JJ_USER=bench JJ_EMAIL=bench@example.com AETHER_EXTRA_LABELS=aether-bench-distance=1
unset AETHER_BACKEND
tmp=$(mktemp -d /tmp/aether-bench-distance.XXXXXX)
relay=
cleanup() {
  set +e
  cd /
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
  for kind in container network volume; do
    docker $kind ls -q --filter label=aether-bench-distance=1 2>/dev/null | xargs -r docker $kind rm -f >/dev/null 2>&1
  done
  docker ps -aq --filter label=aether-bench-distance=1 | xargs -r docker rm -f >/dev/null 2>&1
  pkill -f -- "$tmp/" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v /usr/sbin/sshd >/dev/null || { apt-get update -qq; apt-get install -y -qq openssh-server >/dev/null; }
mkdir -p "$tmp/ssh" /run/sshd && chmod 700 "$tmp/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/ssh/host" && ssh-keygen -q -t ed25519 -N '' -f "$tmp/ssh/client"
cp "$tmp/ssh/client.pub" "$tmp/ssh/authorized_keys"
sshport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/ssh/sshd_config" <<CFG
Port $sshport
ListenAddress 127.0.0.1
HostKey $tmp/ssh/host
AuthorizedKeysFile $tmp/ssh/authorized_keys
PasswordAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile $tmp/ssh/sshd.pid
MaxSessions 100
MaxStartups 100
CFG
/usr/sbin/sshd -f "$tmp/ssh/sshd_config"
user=$(id -un)
base="Host *\n  IdentityFile $tmp/ssh/client\n  IdentitiesOnly yes\n  UserKnownHostsFile $tmp/ssh/known_hosts\n  BatchMode yes\n"
printf "$base" > "$tmp/ssh/config"
printf "$base  ControlMaster auto\n  ControlPath $tmp/ssh/cm-%%C\n  ControlPersist 600\n" > "$tmp/ssh/config-cm"
# Docker's CLI runs `ssh` from PATH: wrappers give it each config.
for kind in fresh cm; do
  mkdir -p "$tmp/bin-$kind"
  cfg="$tmp/ssh/config"; [ $kind = cm ] && cfg="$tmp/ssh/config-cm"
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$cfg" > "$tmp/bin-$kind/ssh"
  chmod +x "$tmp/bin-$kind/ssh"
done
export AETHER_SSH_CONFIG="$tmp/ssh/config"

for d in $delays; do
  port=$sshport
  if [ "$d" != 0 ]; then
    python3 "$src/bench/delay_relay.py" "$sshport" "$d" > "$tmp/relay.port" &
    relay=$!
    for _ in $(seq 100); do [ -s "$tmp/relay.port" ] && break; sleep 0.05; done
    [ -s "$tmp/relay.port" ] || { echo "the delay relay did not start" >&2; exit 1; }
    port=$(cat "$tmp/relay.port")
  fi
  echo "[127.0.0.1]:$port $(cat "$tmp/ssh/host.pub")" >> "$tmp/ssh/known_hosts"
  export XDG_RUNTIME_DIR="$tmp/run$d"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  cd "$tmp" && jj git init "r$d" >/dev/null 2>&1 && cd "r$d"
  printf '.env\n' > .gitignore
  printf '[backend]\nkind = "docker-ssh"\nhost = "%s"\n' "$user@127.0.0.1:$port" > aether.toml
  cat "$src/bench/two_services.toml" >> aether.toml
  jj commit -m distance >/dev/null 2>&1
  "$ajj" reconcile >/dev/null 2>&1   # the master is up, the main workspace's services too
  hyperfine --style none --runs 3 --export-json "$out/distance_add_$d.json" \
    --prepare "$ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/w; true" \
    "$ajj workspace add ../w" >/dev/null
  "$ajj" workspace forget w >/dev/null 2>&1 || true
  rm -rf "$tmp/w"
  "$ajj" workspace add ../w >/dev/null 2>&1
  cd ../w
  "$ajj" run -- true
  hyperfine -N --style none --warmup 2 --runs 15 --export-json "$out/distance_ajj_$d.json" \
    "$ajj run -- true" "$ajj status --json" "$ajj reconcile" >/dev/null
  # A named docker context, as a user would make one, over the ControlMaster config.
  export DOCKER_CONFIG="$tmp/docker-config"
  mkdir -p "$DOCKER_CONFIG"
  docker context rm -f "bench$d" >/dev/null 2>&1 || true
  docker context create "bench$d" --docker "host=ssh://$user@127.0.0.1:$port" >/dev/null
  hyperfine -N --style none --warmup 1 --runs 10 --export-json "$out/distance_docker_$d.json" \
    "env PATH=$tmp/bin-fresh:$PATH docker -H ssh://$user@127.0.0.1:$port ps -q" \
    "env PATH=$tmp/bin-cm:$PATH docker -H ssh://$user@127.0.0.1:$port ps -q" \
    "env PATH=$tmp/bin-cm:$PATH docker --context bench$d ps -q" >/dev/null
  unset DOCKER_CONFIG
  # The watcher: from the engine's `destroy` of a container removed by hand
  # to its `create` of the replacement, both stamped by the engine (which
  # is on this machine: one clock). Between them: the event's way here, the
  # debounce, the pass's observations, and the create's way there.
  "$ajj" watch --json > "$tmp/watch$d.log" 2>/dev/null &
  watcher=$!
  for _ in $(seq 200); do grep -q '"pass_finished"' "$tmp/watch$d.log" 2>/dev/null && break; sleep 0.05; done
  : > "$out/distance_watch_$d.txt"
  for _ in 1 2 3 4 5; do
    victim=$(docker ps -q --filter label=aether-bench-distance=1 --filter label=dev.aether.service=a --filter label=dev.aether.workspace=w | head -1)
    since=$(date +%s.%N)
    docker rm -f "$victim" >/dev/null
    for _ in $(seq 200); do
      docker ps -q --filter label=aether-bench-distance=1 --filter label=dev.aether.service=a --filter label=dev.aether.workspace=w --filter status=running | grep -q . && break
      sleep 0.05
    done
    docker events --since "$since" --until "$(date +%s.%N)" \
      --filter label=aether-bench-distance=1 --filter label=dev.aether.service=a --filter type=container \
      --format '{{.Action}} {{.TimeNano}}' \
      | awk '$1=="destroy"&&!d{d=$2} $1=="create"&&d&&!c{c=$2} END{if(d&&c) printf "%.1f\n", (c-d)/1e6}' \
      >> "$out/distance_watch_$d.txt"
    sleep 0.5
  done
  kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null || true
  "$ajj" workspace forget w >/dev/null 2>&1
  cd "$tmp"
  rm -rf "$tmp/w"
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
  relay=
  echo "   $d ms one way done"
done
