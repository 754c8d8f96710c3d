#!/usr/bin/env bash
# The python3.13 Lambda base image that `sam local invoke` builds FROM, assembled without a container
# registry (CI and the development machines reach Debian's and PyPI's package registries only).
#
# SAM CLI (samcli/local/docker/lambda_image.py) builds its invoke image as
#     FROM public.ecr.aws/lambda/python:3.13-x86_64
#     ADD aws-lambda-rie-x86_64 /var/rapid/
#     RUN mv /var/rapid/aws-lambda-rie-x86_64 /var/rapid/aws-lambda-rie && chmod +x ...
# and starts /var/rapid/aws-lambda-rie, which runs /var/runtime/bootstrap. With --skip-pull-image it uses
# whatever local image carries that name, so this script makes one with the managed runtime's layout:
#   /var/lang/bin/python3.13   Debian trixie's python3.13 (debootstrap; trixie is where 3.13 lives)
#   /var/runtime               awslambdaric (the runtime interface client) and boto3, as the runtime has
#   /var/runtime/bootstrap     starts awslambdaric with the function's handler
#   /var/task                  where SAM mounts the built function
# It is a stand-in for AWS's image (same Python minor version, same layout), not a copy of it.
#
# Idempotent: an image already tagged is kept; debootstrap's download is cached in $CACHE.
set -euo pipefail

IMAGE=${LAMBDA_IMAGE:-public.ecr.aws/lambda/python:3.13-x86_64}
CACHE=${LAMBDA_IMAGE_CACHE:-.cache/lambda-image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
# The runtime interface client and the SDK the python3.13 runtime provides (the functions ship neither).
AWSLAMBDARIC=${AWSLAMBDARIC:-awslambdaric==4.2.2}
BOTO3=${LAMBDA_BOTO3:-boto3==1.40.4}
PIP=${PIP:-.venv/bin/pip}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	echo "lambda-image: $IMAGE is already there (docker rmi it to rebuild)"
	exit 0
fi
start=$(date +%s)
if ! command -v debootstrap >/dev/null; then
	echo "lambda-image: installing debootstrap (Debian package)"
	apt-get install -y -q debootstrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
fi

# First stage only (--foreign): download the packages and unpack the essential ones, run nothing inside
# the new root (no chroot, no maintainer scripts). The download is the slow part; keep it.
root=$CACHE/rootfs
if [ ! -f "$CACHE/debootstrap.done" ]; then
	rm -rf "$root"
	mkdir -p "$root"
	echo "lambda-image: debootstrap --foreign $SUITE (python3.13) into $root"
	timeout 900 debootstrap --foreign --variant=minbase --arch=amd64 --include=python3.13 \
		"$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{
			tail -20 "$CACHE/debootstrap.log"
			exit 1
		}
	touch "$CACHE/debootstrap.done"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/lambda-image.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -a "$root/." "$stage/"
# The second stage would configure these; unpacking is all a runtime needs (no maintainer script of
# python3.13's dependencies does anything the interpreter reads). --keep-directory-symlink keeps trixie's
# merged /usr (bin -> usr/bin) that the first stage made.
for deb in "$stage"/var/cache/apt/archives/*.deb; do
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$stage" --keep-directory-symlink
done
rm -rf "$stage/debootstrap" "$stage"/var/cache/apt/archives/*.deb
test -x "$stage/usr/bin/python3.13" || {
	echo "lambda-image: python3.13 is missing from the unpacked root" >&2
	exit 1
}

mkdir -p "$stage/var/lang/bin" "$stage/var/runtime" "$stage/var/task" "$stage/opt"
ln -s /usr/bin/python3.13 "$stage/var/lang/bin/python3.13"
ln -s python3.13 "$stage/var/lang/bin/python3"
ln -s python3.13 "$stage/var/lang/bin/python"
timeout 600 "$PIP" install --quiet --no-compile --target "$stage/var/runtime" --only-binary=:all: \
	--platform manylinux2014_x86_64 --python-version 3.13 --implementation cp "$AWSLAMBDARIC" "$BOTO3"
cat >"$stage/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# Started by the runtime emulator (aws-lambda-rie) as Lambda's managed python3.13 runtime would start it.
export AWS_EXECUTION_ENV=AWS_Lambda_python3.13
export PYTHONPATH="/var/task:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3.13 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
EOF
chmod 755 "$stage/var/runtime/bootstrap"

echo "lambda-image: docker import as $IMAGE"
tar -C "$stage" -c . | timeout 600 docker import \
	--change 'ENV LANG=C.UTF-8' \
	--change 'ENV TZ=:/etc/localtime' \
	--change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
	--change 'ENV LAMBDA_TASK_ROOT=/var/task' \
	--change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
	--change 'WORKDIR /var/task' \
	--change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
	- "$IMAGE" >/dev/null
# what the runtime itself must be able to do, checked before SAM uses the image
timeout 120 docker run --rm -e PYTHONPATH=/var/runtime --entrypoint /var/lang/bin/python3.13 "$IMAGE" \
	-c 'import sys, awslambdaric, boto3; print("python", sys.version.split()[0], "boto3", boto3.__version__)' \
	2>&1 | sed 's/^/lambda-image: /'
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
echo "lambda-image: built $IMAGE in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
