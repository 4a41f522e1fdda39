#!/usr/bin/env bash
# Checks docker-compose.yml without a Docker engine (none runs on CI here):
# - `docker-compose config` accepts it;
# - exactly one service builds the inspector image and every other inspector
#   service uses that image, so it is built once;
# - every command run in that image is a binary the Dockerfile builds, each
#   `inspector` subcommand exists (`--help` of the real binary), and every
#   `--config` file is in deploy/compose/ (the services' tests load them);
# - Prometheus' compose config passes `promtool check config`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker-compose >/dev/null || {
  echo "installing docker-compose (Debian package) to check docker-compose.yml"
  apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose; }
}
docker-compose -f docker-compose.yml config -q
cargo build -q --locked -p inspector --bin inspector
python3 - <<'EOP'
import re, subprocess, sys, yaml
compose = yaml.safe_load(open("docker-compose.yml"))
dockerfile = open("Dockerfile").read()
built = set(re.findall(r"--bin ([\w-]+)", dockerfile))
image = "proactive-inspector:dev"
ours = {n: s for n, s in compose["services"].items() if s.get("image") == image}
builders = [n for n, s in ours.items() if "build" in s]
problems = []
if len(builders) != 1:
    problems.append(f"services building {image}: {builders} (want exactly one)")
if any("build" in s for n, s in compose["services"].items() if n not in ours):
    problems.append("a service builds an image other than the inspector's")
for name, service in ours.items():
    command = service.get("command") or []
    if not command or command[0] not in built:
        problems.append(f"{name}: {command[:1]} is not a binary the Dockerfile builds ({sorted(built)})")
        continue
    if "--config" in command:
        path = command[command.index("--config") + 1]
        host = path.replace("/etc/inspector/compose/", "deploy/compose/")
        try:
            open(host)
        except OSError:
            problems.append(f"{name}: config {path} is not in deploy/compose/")
    if command[0] == "inspector":
        sub = [a for a in command[1:] if not a.startswith("-")][:2]
        run = subprocess.run(["target/debug/inspector", *sub, "--help"], capture_output=True)
        if run.returncode != 0:
            problems.append(f"{name}: `inspector {' '.join(sub)}` does not exist")
    if "HEALTHCHECK_URL" not in (service.get("environment") or {}):
        problems.append(f"{name}: no HEALTHCHECK_URL for the image's HEALTHCHECK")
for p in problems:
    print("FAIL", p)
print(f"{len(ours)} inspector services checked: {len(problems)} problems")
sys.exit(1 if problems else 0)
EOP
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/etc/prometheus/inspector-rules.yaml#$PWD/deploy/monitoring/rules.yaml#" deploy/compose/prometheus.yml > "$work/prometheus.yml"
promtool check config "$work/prometheus.yml"
