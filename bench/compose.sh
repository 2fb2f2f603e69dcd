#!/usr/bin/env bash
# Section 10 of bench/run, which calls it; runs alone too:
#   bash bench/compose.sh target/release/ajj bench/results
# then `python3 bench/compose_report.py bench/results BENCHMARKS.md` splices
# its table into BENCHMARKS.md. Compose files as a source of services:
#   a. what loading a 20-service Compose file costs, against aether.toml
#      with the same services (`ajj services` is the load alone; `ajj run`
#      does not read the config at all; and the add itself);
#   b. a no-op add of a `build:` service with a 50 MB context, against the
#      same add naming the prebuilt image;
#   c. `ajj workspace add` of a Compose stack against `docker-compose up -d`
#      of the same file under its own project name, both waiting until the
#      web service answers.
set -euo pipefail
ajj=$(realpath "$1")
out=$(realpath "$2")
export PATH="$HOME/.cargo/bin:$PATH"
export JJ_USER=bench JJ_EMAIL=bench@example.com AETHER_EXTRA_LABELS=aether-bench=1
hf() { hyperfine --style basic --export-json "$out/$1.json" "${@:2}"; }
interleaved() {
  local name=$1 runs=$2 a=$3 b=$4
  for round in 1 2 3 4 5 6; do
    if [ $((round % 2)) = 1 ]; then set -- "$a" "$b"; else set -- "$b" "$a"; fi
    hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$out/$name.r$round.json" "$1" "$2" >/dev/null
  done
  echo "   $name: 6 interleaved rounds of $runs"
}
tmp=$(mktemp -d /tmp/aether-bench-compose.XXXXXX)
cleanup() {
  set +e
  cd /
  for r in toml yaml build image stack; do
    for w in $(cd "$tmp/$r" 2>/dev/null && jj workspace list -T 'name ++ "\n"' 2>/dev/null); do
      "$ajj" -R "$tmp/$r" workspace forget "$w" >/dev/null 2>&1
    done
  done
  docker-compose -p aetherbenchstack -f "$tmp/stack/compose.yaml" down -v -t 0 >/dev/null 2>&1
  docker images --filter label=dev.aether.built -q | xargs -r docker rmi -f >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
repo() { cd "$tmp" && jj git init "$1" >/dev/null 2>&1 && cd "$1" && printf '.env\n' > .gitignore; }

echo "== 10a. loading 20 services: Compose file vs aether.toml"
repo toml
for i in $(seq 1 20); do
  printf '[services.s%s]\nimage = "aether-test/busybox:1"\ncommand = ["httpd", "-f", "-p", "80", "-h", "/www"]\nports = [80]\nenv = { NAME = "s%s", LEVEL = "debug" }\nstop_timeout = "1s"\n' "$i" "$i"
done > aether.toml
jj commit -m toml >/dev/null 2>&1
repo yaml
{
  echo 'x-common: &common'
  echo '  image: aether-test/busybox:1'
  echo '  command: ["httpd", "-f", "-p", "80", "-h", "/www"]'
  echo '  stop_grace_period: 1s'
  echo 'services:'
  for i in $(seq 1 20); do
    printf '  s%s:\n    <<: *common\n    ports: ["80"]\n    environment:\n      NAME: s%s\n      LEVEL: ${LEVEL:-debug}\n' "$i" "$i"
  done
} > compose.yaml
jj commit -m yaml >/dev/null 2>&1
interleaved load20 30 "$ajj -R $tmp/toml services --json" "$ajj -R $tmp/yaml services --json"
"$ajj" -R "$tmp/toml" workspace add "$tmp/tw" >/dev/null 2>&1
"$ajj" -R "$tmp/yaml" workspace add "$tmp/yw" >/dev/null 2>&1
interleaved run20 40 "$ajj -R $tmp/tw run -- true" "$ajj -R $tmp/yw run -- true"
"$ajj" -R "$tmp/toml" workspace forget tw >/dev/null 2>&1
"$ajj" -R "$tmp/yaml" workspace forget yw >/dev/null 2>&1
hf add20 --warmup 1 --runs 5 \
  --prepare "cd $tmp/toml && $ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/tw; cd $tmp/yaml && $ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/yw" \
  "cd $tmp/toml && $ajj workspace add --name w $tmp/tw" "cd $tmp/yaml && $ajj workspace add --name w $tmp/yw"

echo "== 10b. a no-op add of a build: service with a 50 MB context vs the prebuilt image"
repo build
mkdir -p ctx
for i in $(seq 1 50); do head -c 1048576 /dev/urandom > "ctx/blob$i.bin"; done
printf 'FROM aether-test/busybox:1\nCOPY ctx/blob1.bin /blob\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n' > Dockerfile
printf 'services:\n  web:\n    build: .\n    ports: ["80"]\n    stop_grace_period: 1s\n' > compose.yaml
jj commit -m build >/dev/null 2>&1
"$ajj" workspace add ../b0 >/dev/null 2>&1   # builds once
tag=$(cd ../b0 && "$ajj" services --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"]["web"]["image"])')
"$ajj" workspace forget b0 >/dev/null 2>&1
repo image
cp -r "$tmp/build/ctx" . && cp "$tmp/build/Dockerfile" .
printf 'services:\n  web:\n    image: %s\n    ports: ["80"]\n    stop_grace_period: 1s\n' "$tag" > compose.yaml
jj commit -m image >/dev/null 2>&1
hf build_noop --warmup 1 --runs 8 \
  --prepare "cd $tmp/build && $ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/bw; cd $tmp/image && $ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/iw" \
  "cd $tmp/image && $ajj workspace add --name w $tmp/iw" "cd $tmp/build && $ajj workspace add --name w $tmp/bw"
(cd "$tmp/build" && "$ajj" workspace forget w >/dev/null 2>&1) || true
(cd "$tmp/image" && "$ajj" workspace forget w >/dev/null 2>&1) || true

echo "== 10c. a Compose stack: ajj workspace add vs docker-compose up -d, both until web answers"
repo stack
cat > compose.yaml <<'YML'
services:
  db:
    image: aether-test/busybox:1
    command: ["httpd", "-f", "-p", "5432", "-h", "/www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/"]
      interval: 200ms
      retries: 50
    stop_grace_period: 1s
  cache:
    image: aether-test/busybox:1
    command: ["httpd", "-f", "-p", "6379", "-h", "/www"]
    stop_grace_period: 1s
  web:
    image: aether-test/busybox:1
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: ["127.0.0.1::8080"]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
    stop_grace_period: 1s
YML
jj commit -m stack >/dev/null 2>&1
cat > "$tmp/compose-up.sh" <<SH
set -e
cd $tmp/stack
docker-compose -p aetherbenchstack up -d >/dev/null 2>&1
port=\$(docker-compose -p aetherbenchstack port web 8080 | cut -d: -f2)
until curl -sf -o /dev/null "http://127.0.0.1:\$port/"; do sleep 0.02; done
SH
hf stack_up --warmup 1 --runs 8 \
  --prepare "cd $tmp/stack && docker-compose -p aetherbenchstack down -v -t 0 >/dev/null 2>&1; $ajj workspace forget w >/dev/null 2>&1; rm -rf $tmp/sw" \
  "bash $tmp/compose-up.sh" "cd $tmp/stack && $ajj workspace add --name w $tmp/sw"
echo "   done"
