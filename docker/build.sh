#!/usr/bin/env bash
# Build the evaluation image (cifar10-harness:latest) from docker/Dockerfile, on either of two paths:
#
#   official  an image registry answers: pull the Dockerfile's default BASE (the official Python
#             3.11 image) and build on it; the locked torch wheel brings CUDA. The GPU machine's path.
#   local     no registry: make everything here. debootstrap this machine's own distribution
#             (suite and apt mirror read from /etc/os-release and the apt sources), import it as a
#             base image, build a stand-in for the Python image on it (python3, a venv, the locked
#             torch and torchvision fetched by this machine's own pip, with its own configuration), then
#             build docker/Dockerfile unchanged with --build-arg BASE=<stand-in>.
#
# Without --local/--official the script probes the registry for BASE and says which path it takes.
# Whatever already exists is reused: the base and stand-in images by tag, the rest by Docker's
# layer cache. See docker/README.md.
#
# Usage: bash docker/build.sh [--local | --official] [--start-engine] [--tag TAG]
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash docker/build.sh [--local | --official] [--start-engine] [--tag TAG]

  --official       pull the Dockerfile's BASE from its registry and build on it
  --local          build without a registry: debootstrap a base, build a PyTorch stand-in on it
                   (default: --official if BASE is present or its registry answers, else --local)
  --start-engine   if no Docker engine answers: install Debian's docker.io when dockerd is
                   missing (needs root and apt), start dockerd in the background, wait for it
  --tag TAG        the image to build (default: cifar10-harness:latest)

Environment (all optional):
  BASE             the official base image (default: the Dockerfile's ARG BASE)
  TORCH_PACKAGES   what the stand-in installs (default: torch and torchvision at the lock's versions)
  DEBIAN_MIRROR    the apt mirror for debootstrap (default: read from this machine's apt sources)
  BUILD_CACHE      work folder (default: ${XDG_CACHE_HOME:-~/.cache}/cifar10-harness-docker)
  KEEP_WHEELS=1    keep the downloaded wheels after the stand-in is built
EOF
}

MODE=auto
START_ENGINE=0
TAG=cifar10-harness:latest
while [ $# -gt 0 ]; do
    case "$1" in
        --local) MODE=local ;;
        --official) MODE=official ;;
        --start-engine) START_ENGINE=1 ;;
        --tag) [ $# -ge 2 ] || { usage >&2; exit 2; }; TAG=$2; shift ;;
        --tag=*) TAG=${1#--tag=} ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DOCKERFILE=docker/Dockerfile
CACHE=${BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cifar10-harness-docker}
LOCK=requirements/lock.txt  # the one lock of every install (README, .ci/run, this image)
[ -f "$LOCK" ] || { echo "build.sh: $LOCK is missing" >&2; exit 1; }
LOCK_SHA=$(sha256sum "$LOCK" | cut -c1-64)
TORCH_PACKAGES=${TORCH_PACKAGES:-$(sed -n 's/^\(torch\|torchvision\)==\([^ ;]*\).*/\1==\2/p' "$LOCK" | tr '\n' ' ')}
TORCH_TAG=$(sed -n 's/^torch==\([^ ;+]*\).*/\1/p' "$LOCK")
DEFAULT_BASE=$(sed -n 's/^ARG BASE=//p' "$DOCKERFILE" | head -n 1)
BASE=${BASE:-$DEFAULT_BASE}
[ -n "$BASE" ] || { echo "build.sh: no 'ARG BASE=' in $DOCKERFILE" >&2; exit 1; }

mkdir -p "$CACHE"
T_START=$(date +%s)
STEP_START=$T_START
log() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\nbuild.sh: error: %s\n' "$*" >&2; exit 1; }
human_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
since() { human_secs $(($(date +%s) - $1)); }
step() { STEP_START=$(date +%s); log "$*"; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.2f GB", $1 / 1e9}'; }
docker_disk() {
    # one line: what Docker's images and build cache hold, and what the disk under it has left
    local root
    docker system df --format '{{.Type}} {{.Size}}' 2>/dev/null | paste -sd, - | sed 's/,/, /g'
    root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || true)
    if [ -n "$root" ] && [ -d "$root" ]; then
        echo "free on $root's disk: $(df -h --output=avail "$root" | tail -n 1 | tr -d ' ')"
    fi
}
done_step() {
    local now
    now=$(date +%s)
    note "done in $(human_secs $((now - STEP_START))) ($*)"
    note "disk: $(docker_disk | paste -sd';' - | sed 's/;/; /')"
}
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run as root, or do it by hand: see docker/README.md)"; }

# ---------------------------------------------------------------------------------------------
step "[engine] a Docker engine must answer"
if ! docker info >/dev/null 2>&1; then
    if [ "$START_ENGINE" != 1 ]; then
        die "no Docker engine answers ('docker info' fails). Start one (docker/README.md, 'Start the
engine'): 'systemctl start docker', or without an init system:
    dockerd > /var/log/dockerd.log 2>&1 &
or rerun with --start-engine (installs Debian's docker.io if dockerd is missing, then starts it)."
    fi
    need_root "--start-engine"
    if ! command -v dockerd >/dev/null 2>&1; then
        note "dockerd is missing: apt-get install docker.io"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        note "starting the engine: systemctl start docker"
        systemctl start docker
    else
        note "no init system: starting 'dockerd' in the background (log: /var/log/dockerd.log)"
        nohup setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "the engine did not answer within 60 s; see /var/log/dockerd.log"
fi
done_step "$(docker version -f 'engine {{.Server.Version}}, client {{.Client.Version}}')"

registry_answers() {
    # Asks the registry for the image's manifest (metadata only); a client without 'docker
    # manifest' tries the pull itself, and a pull still running after 30 s counts as an answer.
    local rc=0
    timeout 30 docker manifest inspect "$1" >/dev/null 2>"$CACHE/probe.err" && return 0
    grep -qiE 'not a docker command|experimental' "$CACHE/probe.err" || return 1
    timeout 30 docker pull -q "$1" >/dev/null 2>"$CACHE/probe.err" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 124 ]
}

# ---------------------------------------------------------------------------------------------
step "[path] official base image, or a local stand-in?"
if [ "$MODE" = auto ]; then
    if image_exists "$BASE"; then
        MODE=official; note "official: $BASE is already here"
    elif registry_answers "$BASE"; then
        MODE=official; note "official: the registry answers for $BASE"
    else
        MODE=local
        note "local: no registry answers for $BASE within 30 s:"
        note "  $(head -c 300 "$CACHE/probe.err" | tr '\n' ' ')"
        note "(force a path with --official or --local)"
    fi
    rm -f "$CACHE/probe.err"
else
    note "$MODE: chosen with --$MODE"
fi
done_step "path: $MODE"

# ---------------------------------------------------------------------------------------------
if [ "$MODE" = official ]; then
    step "[1/2] pull $BASE"
    if image_exists "$BASE"; then
        note "already here: reused"
    else
        docker pull "$BASE" || die "could not pull $BASE (log in with 'docker login' if the registry
asks; without a registry, build the local stand-in: bash docker/build.sh --local)"
    fi
    done_step "$BASE: $(image_size "$BASE")"
    BUILD_BASE=$BASE
else
    # shellcheck disable=SC1091
    . /etc/os-release
    DISTRO=${ID:-unknown}
    SUITE=${VERSION_CODENAME:-}
    [ -n "$SUITE" ] || die "no VERSION_CODENAME in /etc/os-release: cannot tell which suite to debootstrap"
    LOCAL_BASE=cifar10-local/$DISTRO:$SUITE
    STANDIN=cifar10-local/pytorch:$SUITE-torch$TORCH_TAG

    # -----------------------------------------------------------------------------------------
    step "[1/4] base image $LOCAL_BASE: debootstrap --variant=minbase $SUITE, docker import"
    if image_exists "$LOCAL_BASE"; then
        note "already here: reused (docker rmi $LOCAL_BASE to rebuild it)"
    else
        need_root "debootstrap"
        if ! command -v debootstrap >/dev/null 2>&1; then
            note "debootstrap is missing: apt-get install debootstrap"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
                || die "could not install debootstrap"
        fi
        if [ -z "${DEBIAN_MIRROR:-}" ]; then
            # The first 'deb' source of this suite in the machine's apt configuration (one-line
            # .list files or deb822 .sources files).
            DEBIAN_MIRROR=$(SUITE=$SUITE python3 - <<'EOF'
import glob, os, re
suite = os.environ["SUITE"]
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
    + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for path in files:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for para in re.split(r"\n\s*\n", text):
            fields = {}
            for line in para.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []) and fields.get("uris"):
                print(fields["uris"][0]); raise SystemExit
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                print(words[1]); raise SystemExit
EOF
)
            [ -n "$DEBIAN_MIRROR" ] || die "no 'deb' source for suite $SUITE in /etc/apt/sources.list{,.d/}: set DEBIAN_MIRROR"
            note "mirror: the machine's apt source for $SUITE (set DEBIAN_MIRROR to use another)"
        fi
        ROOTFS=$CACHE/rootfs-$SUITE
        rm -rf "$ROOTFS"
        note "debootstrap --variant=minbase $SUITE $ROOTFS $DEBIAN_MIRROR   (log: $CACHE/debootstrap.log)"
        if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
            tail -n 20 "$CACHE/debootstrap.log" >&2
            die "debootstrap failed; see $CACHE/debootstrap.log"
        fi
        note "rootfs: $(du -sh "$ROOTFS" | cut -f1); importing it"
        tar -C "$ROOTFS" --numeric-owner -c . | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["/bin/bash"]' \
            --message "debootstrap --variant=minbase $SUITE (docker/build.sh)" - "$LOCAL_BASE" >/dev/null
        rm -rf "$ROOTFS"
    fi
    done_step "$LOCAL_BASE: $(image_size "$LOCAL_BASE")"

    # -----------------------------------------------------------------------------------------
    step "[2/4] PyTorch stand-in $STANDIN: python3 + venv + $TORCH_PACKAGES, on $LOCAL_BASE"
    if image_exists "$STANDIN"; then
        note "already here: reused (docker rmi $STANDIN to rebuild it)"
    else
        CTX=$(mktemp -d "$CACHE/standin-context.XXXXXX")
        WHEELS=$CACHE/wheels
        SERVER_PID=
        cleanup() {
            if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
            rm -rf "${CTX:-}"
        }
        trap cleanup EXIT

        # The stand-in's pip configuration: the host's network indexes (local folders and files
        # in the host's configuration do not exist in the image and are left out) and the CA
        # certificates the host's pip trusts.
        INDEX_STATUS=0
        python3 - "$CTX" <<'EOF' || INDEX_STATUS=$?
import ast, os, shutil, subprocess, sys
ctx = sys.argv[1]
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=True,
                        capture_output=True, text=True).stdout
values = {}
for line in listed.splitlines():
    scoped, _, raw = line.partition("=")
    if not raw:
        continue
    section, _, key = scoped.rpartition(".")
    if section not in ("global", "install", "download", ":env:"):
        continue
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw.strip("'\"")
    values.setdefault(key.replace("_", "-"), []).append((section, str(value)))
def last(key):
    got = values.get(key, [])
    env = [v for s, v in got if s == ":env:"]
    return (env or [v for _, v in got] or [None])[-1]
def words(key):
    return [w for _, v in values.get(key, []) for w in v.split()]
is_net = lambda url: url.startswith(("http://", "https://"))
no_index = (last("no-index") or "").lower() in ("1", "true", "yes", "on")
index = last("index-url")
extra = list(dict.fromkeys(u for u in words("extra-index-url") if is_net(u)))
local = [u for u in ([index] if index else []) + words("extra-index-url") + words("find-links") if not is_net(u)]
conf = ["[global]", "cert = /usr/local/share/cifar10-harness/host-ca.crt"]
if index and is_net(index):
    conf.append("index-url = " + index)
if extra:
    conf.append("extra-index-url = " + " ".join(extra))
if words("trusted-host"):
    conf.append("trusted-host = " + " ".join(words("trusted-host")))
open(os.path.join(ctx, "pip.conf"), "w").write("\n".join(conf) + "\n")
cert = last("cert") or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
if not (cert and os.path.isfile(cert)):
    cert = "/etc/ssl/certs/ca-certificates.crt"
if not os.path.isfile(cert):
    import certifi  # pip's own bundle, as a last resort
    cert = certifi.where()
shutil.copyfile(cert, os.path.join(ctx, "host-ca.crt"))
has_net = not no_index and (index is None or is_net(index) or bool(extra))
print("    host pip: index %s%s; local entries (used for the stand-in only): %d; CA: %s" % (
    "(pip's default)" if index is None else ("(local)" if not is_net(index) else "(configured)"),
    " + %d extra network index(es)" % len(extra) if extra else "", len(local), cert))
sys.exit(0 if has_net and not no_index else 10)
EOF
        case $INDEX_STATUS in
            0) ;;
            10) die "this machine's pip has no network index (only local folders, or no-index): the
stand-in could be built, but docker/Dockerfile's 'pip install .[dev]' runs inside the build and
needs an index it can reach over the network (docker build --network host). Configure one
(PIP_INDEX_URL or pip.conf) and rerun." ;;
            *) die "could not read this machine's pip configuration (python3 -m pip config list)" ;;
        esac

        cat >"$CTX/Dockerfile" <<'EOF'
# Generated by docker/build.sh: a local stand-in for the official Python image, for machines
# that reach no image registry. Python in a venv on PATH (the official image has conda's python
# first on PATH; docker/Dockerfile calls `python`), the host's CA certificates and network
# indexes in /etc/pip.conf, torch and torchvision from wheels the host's pip fetched.
ARG BASE
FROM ${BASE} AS standin-python
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY host-ca.crt /usr/local/share/cifar10-harness/host-ca.crt
COPY pip.conf /etc/pip.conf
RUN python3 -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FROM standin-python
ARG TORCH_PACKAGES="torch torchvision"
ARG WHEELS_URL
RUN python -m pip install --no-cache-dir --progress-bar off --no-index --find-links "${WHEELS_URL}" ${TORCH_PACKAGES} \
 && python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
LABEL org.opencontainers.image.description="Local stand-in for the official PyTorch image, made by docker/build.sh"
WORKDIR /workspace
CMD ["/bin/bash"]
EOF

        SUB=$(date +%s)
        note "python layer (apt-get install python3 python3-venv; docker build --target standin-python)"
        docker build --network host --target standin-python --build-arg "BASE=$LOCAL_BASE" \
            -t "$STANDIN-python" "$CTX"
        # Fetch the wheels with the host's pip and its configuration (indexes, local folders,
        # find-links, constraints), for the image's interpreter: the same as the host's, or named
        # to pip by version and platform tags when they differ.
        probe='import platform, sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.machine(), *platform.libc_ver())'
        HOST_PY=$(python3 -c "$probe")
        IMAGE_PY=$(docker run --rm --network none "$STANDIN-python" python -c "$probe")
        note "python layer done ($(since "$SUB")); interpreter: image '$IMAGE_PY', host pip '$HOST_PY'"
        SUB=$(date +%s)
        CROSS=()
        if [ "$HOST_PY" != "$IMAGE_PY" ]; then
            read -r _ PYVER _ <<<"$IMAGE_PY"
            CROSS=(--only-binary=:all: --python-version "$PYVER" --implementation cp)
            while read -r plat; do CROSS+=(--platform "$plat"); done < <(
                docker run --rm --network none "$STANDIN-python" python -m pip debug --verbose 2>/dev/null \
                    | sed -n 's/^ *[a-z]*[0-9]*-[a-z0-9_]*-\([a-z0-9_]*\)$/\1/p' | grep -v '^any$' | sort -u)
            note "they differ: pip download ${CROSS[*]}"
        fi
        rm -rf "$WHEELS"; mkdir -p "$WHEELS"
        note "python3 -m pip download $TORCH_PACKAGES (the host's pip configuration) -> $WHEELS"
        # shellcheck disable=SC2086  # TORCH_PACKAGES is a list of requirements
        python3 -m pip download --quiet --progress-bar off --dest "$WHEELS" "${CROSS[@]}" -c "$LOCK" $TORCH_PACKAGES 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
        note "wheels: $(find "$WHEELS" -name '*.whl' | wc -l) files, $(du -sh "$WHEELS" | cut -f1) ($(since "$SUB"))"

        # Serve them to the build on 127.0.0.1 (the build shares the host's network): no copy of
        # the wheels lands in a layer.
        python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$WHEELS" >"$CACHE/wheel-server.log" 2>&1 &
        SERVER_PID=$!
        PORT=
        for _ in $(seq 1 50); do
            PORT=$(sed -n 's/.* port \([0-9][0-9]*\) .*/\1/p' "$CACHE/wheel-server.log" | head -n 1)
            [ -n "$PORT" ] && break
            sleep 0.2
        done
        [ -n "$PORT" ] || die "the wheel server did not start; see $CACHE/wheel-server.log"
        SUB=$(date +%s)
        note "installing them from http://127.0.0.1:$PORT/ (docker build --network host)"
        docker build --network host --build-arg "BASE=$LOCAL_BASE" \
            --build-arg "TORCH_PACKAGES=$TORCH_PACKAGES" --build-arg "WHEELS_URL=http://127.0.0.1:$PORT/" \
            -t "$STANDIN" "$CTX"
        kill "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
        note "torch layer done ($(since "$SUB"))"
        docker rmi "$STANDIN-python" >/dev/null  # the tag only: its layers are the stand-in's
        if [ "${KEEP_WHEELS:-0}" != 1 ]; then rm -rf "$WHEELS"; fi
        trap - EXIT
        cleanup
    fi
    done_step "$STANDIN: $(image_size "$STANDIN")"
    BUILD_BASE=$STANDIN
fi

# ---------------------------------------------------------------------------------------------
# The local path's build reaches the index through the host's network, as the stand-in's did; the
# official path needs no such thing (nor BuildKit's host-network entitlement).
if [ "$MODE" = official ]; then LAST=2/2; NET=(); else LAST=3/4; NET=(--network host); fi
step "[$LAST] $TAG: docker build ${NET[*]} -f $DOCKERFILE --build-arg BASE=$BUILD_BASE (layer cache reused)"
OLD_ID=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
docker build "${NET[@]}" -f "$DOCKERFILE" --build-arg "BASE=$BUILD_BASE" --label "cifar10-harness.lock=$LOCK_SHA" \
    -t "$TAG" .
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$TAG")" ]; then
    # the previous build of TAG, now untagged: drop it (kept if a container or another tag uses it)
    if docker rmi "$OLD_ID" >/dev/null 2>&1; then note "removed the previous $TAG (${OLD_ID:7:12})"; fi
fi
done_step "$TAG: $(image_size "$TAG")"

# ---------------------------------------------------------------------------------------------
step "$([ "$MODE" = official ] || echo '[4/4] ')smoke test"
SMOKE='import harness, torch; print("harness", harness.__version__, "torch", torch.__version__, "cuda build", torch.version.cuda)'
note "docker run --rm --network none $TAG python -c '$SMOKE'"
docker run --rm --network none "$TAG" python -c "$SMOKE"
done_step "ok"

T_END=$(date +%s)
log "built $TAG ($(image_size "$TAG"), path: $MODE, base: $BUILD_BASE) in $(human_secs $((T_END - T_START)))"
docker system df
