#!/usr/bin/env bash
# Section 11 of bench/run, which calls it; runs alone too:
#   bash bench/scale.sh target/release/ajj bench/results
# then `python3 bench/scale_report.py bench/results BENCHMARKS.md` splices
# its table into BENCHMARKS.md. A fleet on one host, Docker's default
# daemon settings, one busybox service per workspace, at each size of
# $SCALE_SIZES (default "50 200"):
#   a. cold reconcile: every environment created by one pass (the
#      workspaces exist in jj; their objects were removed);
#   b. no-op reconcile;
#   c. `ajj status --all --json` against `docker ps`;
#   d. `ajj workspace add` and `forget` of one more workspace;
#   e. the watcher: its RSS, and a plain `jj workspace add` → `.env` written.
# And at $SCALE_PARALLEL_SIZE (default 140) new environments, the pass at
# AETHER_PARALLEL=1 against the default, in the same run.
set -euo pipefail
ajj=$(realpath "$1")
out=$(realpath "$2")
sizes=${SCALE_SIZES:-50 200}
parallel_size=${SCALE_PARALLEL_SIZE:-140}
export JJ_USER=bench JJ_EMAIL=bench@example.com AETHER_EXTRA_LABELS=aether-bench-scale=1
unset AETHER_NETWORK_POOL AETHER_PARALLEL
tmp=$(mktemp -d /tmp/aether-bench-scale.XXXXXX)
wipe() {
  # Every object of this bench's repo: the next pass recreates them all.
  docker ps -aq --filter label=aether-bench-scale=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network ls -q --filter label=aether-bench-scale=1 | xargs -r docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter label=aether-bench-scale=1 | xargs -r docker volume rm >/dev/null 2>&1 || true
}
cleanup() {
  set +e
  [ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null
  wipe
  rm -rf "$tmp"
}
trap cleanup EXIT
wipe

cd "$tmp" && jj git init repo >/dev/null 2>&1 && cd repo
printf '.env\n' > .gitignore
cat > aether.toml <<'TOML'
[services.web]
image = "aether-test/busybox:1"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
ports = [8080]
TOML
jj commit -m fleet >/dev/null 2>&1
have=0
grow() { while [ $have -lt "$1" ]; do jj workspace add "../s$have" --name "s$have" >/dev/null 2>&1; have=$((have + 1)); done; }
seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

grow "$parallel_size"
wipe
echo "parallel $(AETHER_PARALLEL=1 seconds "$ajj" reconcile)" > "$out/scale_parallel.txt"
wipe
echo "default $(seconds "$ajj" reconcile)" >> "$out/scale_parallel.txt"
echo "   $parallel_size new environments: $(tr '\n' ' ' < "$out/scale_parallel.txt")"

for n in $sizes; do
  for i in $(seq "$n" $((have - 1))); do jj workspace forget "s$i" >/dev/null 2>&1; rm -rf "../s$i"; done
  [ "$have" -gt "$n" ] && have=$n
  grow "$n"
  wipe
  echo "$n cold $(seconds "$ajj" reconcile)" >> "$out/scale_cold.txt"
  hyperfine -N --style none --warmup 2 --runs 15 --export-json "$out/scale_noop_$n.json" "$ajj reconcile" >/dev/null
  hyperfine -N --style none --warmup 2 --runs 15 --export-json "$out/scale_status_$n.json" \
    "docker ps" "$ajj status --all --json" >/dev/null
  hyperfine --style none --runs 5 --export-json "$out/scale_add_$n.json" \
    --prepare "$ajj workspace forget extra >/dev/null 2>&1; rm -rf ../extra" \
    "$ajj workspace add ../extra" >/dev/null
  hyperfine --style none --runs 5 --export-json "$out/scale_forget_$n.json" \
    --prepare "$ajj workspace forget extra >/dev/null 2>&1; rm -rf ../extra; $ajj workspace add ../extra >/dev/null 2>&1" \
    "$ajj workspace forget extra" >/dev/null
  rm -rf ../extra
  # The watcher: RSS once settled, then a plain jj add until its .env.
  "$ajj" watch >/dev/null 2>&1 &
  watcher=$!
  sleep 3
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$watcher/status")
  lat=()
  for r in 1 2 3 4 5; do
    s=$(date +%s.%N)
    jj workspace add "../wx$r" --name "wx$r" >/dev/null 2>&1
    while [ ! -s "../wx$r/.env" ]; do sleep 0.01; done
    e=$(date +%s.%N)
    lat+=("$(echo "$e - $s" | bc)")
    jj workspace forget "wx$r" >/dev/null 2>&1; rm -rf "../wx$r"
  done
  sleep 2
  kill "$watcher"; wait "$watcher" 2>/dev/null || true; watcher=
  echo "$n $rss ${lat[*]}" >> "$out/scale_watch.txt"
  echo "   $n workspaces done"
done
