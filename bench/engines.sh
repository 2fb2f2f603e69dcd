#!/usr/bin/env bash
# Section 9 of bench/run, which calls it; runs alone too:
#   bash bench/engines.sh target/release/ajj bench/results
# The same ajj commands against Docker and against Podman, one workspace of
# two busybox services each; results as hyperfine JSON in OUT.
set -euo pipefail
ajj=$(realpath "$1")
out=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
export JJ_USER=bench JJ_EMAIL=bench@example.com AETHER_EXTRA_LABELS=aether-bench=1
hf() { hyperfine --style basic --export-json "$out/$1.json" "${@:2}"; }
tmp=$(mktemp -d /tmp/aether-bench-engines.XXXXXX)
podman_host=""
cleanup() {
  set +e
  cd /
  for host in "" "$podman_host"; do
    [ -n "$host" ] && export DOCKER_HOST="$host" || unset DOCKER_HOST
    "$ajj" -R "$tmp/engines" workspace forget w >/dev/null 2>&1
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
# scripts/podman-service starts Podman's API on a private socket and loads
# the test images into it (with this sandbox's ulimit quirk, as the tests).
podman_host=$(bash "$src/scripts/podman-service")
cd "$tmp" && jj git init engines >/dev/null 2>&1 && cd engines
printf '.env\n' > .gitignore
cp "$src/bench/two_services.toml" aether.toml
jj commit -m engines >/dev/null 2>&1
# The services live in one revision; the default workspace moves off it, so
# that each measure is about the one workspace w.
cfg=$(jj log -r @- --no-graph -T commit_id)
jj new 'root()' >/dev/null 2>&1
for engine in docker podman; do
  if [ "$engine" = podman ]; then export DOCKER_HOST="$podman_host"; else unset DOCKER_HOST; fi
  hf "engine_add_$engine" --warmup 1 --runs 8 \
    --prepare "$ajj workspace forget w >/dev/null 2>&1; rm -rf ../w" \
    "$ajj workspace add ../w -r $cfg"
  hf "engine_noop_$engine" --warmup 3 --runs 30 "$ajj reconcile"
  (cd ../w && hf "engine_run_$engine" -N --warmup 3 --runs 50 "$ajj run -- true")
  # forget returns once every container, volume and network is gone.
  hf "engine_forget_$engine" --warmup 1 --runs 8 \
    --prepare "rm -rf ../w; $ajj workspace add ../w -r $cfg >/dev/null 2>&1 || true" \
    "$ajj workspace forget w"
done
unset DOCKER_HOST
echo "$(docker version -f '{{.Server.Version}}') $(DOCKER_HOST="$podman_host" docker version -f '{{.Server.Version}}')" > "$out/engines.txt"

