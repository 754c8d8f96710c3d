#!/usr/bin/env bash
# `make sam-local` (and `make lambda-image`): the built functions under `sam local invoke`, in containers,
# against the emulator, on this machine only.
#
#   scripts/sam_local.sh          docker, the base image, the emulator, then scripts/sam_local.py run
#   scripts/sam_local.sh image    docker and the base image only
#
# Docker is Debian's docker.io (installed here if missing; CI runs as root). A daemon this script starts,
# and the emulator, are stopped on the way out, failed or not. The emulator listens on the docker bridge's
# gateway address: the containers reach it there, and it is an interface of our own daemon, not a public
# address. SAM CLI 1.170 ignores `--docker-network host`, so loopback is not an option.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-run}
PYTHON=${PYTHON_BIN:-.venv/bin/python}
SAM=${SAM:-.venv-sam/bin/sam}
PORT=${SAM_LOCAL_PORT:-5055}
ACCOUNT=012345678912 # the account aws-lambda-rie names in every function ARN (see scripts/sam_local.py)
LOGS=${SAM_LOCAL_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/sam-local-daemons.XXXXXX")}
# The emulator: a command that takes --host, --port and --account-id (keyguard.local.server).
EMULATOR_CMD=${EMULATOR_CMD:-.venv/bin/keyguard emulator}

dockerd_pid=""
emulator_pid=""
stop() {
	if [ -n "$emulator_pid" ]; then
		kill "$emulator_pid" 2>/dev/null || true
		wait "$emulator_pid" 2>/dev/null || true
	fi
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null || true
		for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
		kill -9 "$dockerd_pid" 2>/dev/null || true
		echo "sam-local: stopped the docker daemon this run started"
	fi
}
trap stop EXIT
trap 'exit 130' INT TERM

if ! timeout 10 docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; then
	[ "$(id -u)" = 0 ] || { echo "sam-local: needs Docker (apt-get install docker.io, as root)" >&2; exit 1; }
	echo "sam-local: installing Debian's docker.io"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >"$LOGS/apt.log" 2>&1 ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >"$LOGS/apt.log" 2>&1; }
fi
if ! timeout 10 docker info >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || { echo "sam-local: no docker daemon running, and starting one needs root" >&2; exit 1; }
	dockerd --userland-proxy=false >"$LOGS/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
	timeout 10 docker info >/dev/null 2>&1 || {
		echo "sam-local: dockerd did not answer within 60 s:" >&2
		tail -20 "$LOGS/dockerd.log" >&2
		exit 1
	}
fi

scripts/lambda_image.sh
[ "$what" = image ] && exit 0

bridge=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}')
endpoint="http://$bridge:$PORT"
MOTO_ACCOUNT_ID=$ACCOUNT $EMULATOR_CMD --host "$bridge" --port "$PORT" --account-id "$ACCOUNT" \
	>"$LOGS/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 30); do
	(exec 3<>"/dev/tcp/$bridge/$PORT") 2>/dev/null && break
	kill -0 "$emulator_pid" 2>/dev/null || break
	sleep 1
done
(exec 3<>"/dev/tcp/$bridge/$PORT") 2>/dev/null || {
	echo "sam-local: the emulator ($EMULATOR_CMD) is not listening on $endpoint after 30 s:" >&2
	tail -20 "$LOGS/emulator.log" >&2
	exit 1
}
echo "sam-local: emulator $EMULATOR_CMD on $endpoint (account $ACCOUNT); daemon logs in $LOGS"
"$PYTHON" scripts/sam_local.py run --endpoint "$endpoint" --sam "$SAM" ${SAM_LOCAL_ARGS:-}
