#!/usr/bin/env bash
# Builds the container images the test cluster's node (upstream kubelet + containerd + runc) runs, without a
# registry: each becomes an archive that `ctr -n k8s.io images import ARCHIVE` takes (docker-archive written by
# `podman save`). Prints one line `REF ARCHIVE` per image reference on stdout, in the order asked; progress goes
# to stderr.
#
#   tests/cluster/images.sh NAME...
#     pause      localhost/poolkeeper-test/pause:3.10       images/pause.c, static; containerd's sandbox_image
#     pgbouncer  localhost/poolkeeper-test/pgbouncer:1.18.0  Debian bookworm: pgbouncer, psql and curl (test clients), runs as 70:70
#     pgbouncer-1.24  localhost/poolkeeper-test/pgbouncer:1.24.1  the same from Debian trixie: the version of the
#                operator's default image (ghcr.io/cloudnative-pg/pgbouncer:1.24.1), with 1.23's shutdown signals
#     coredns    localhost/poolkeeper-test/coredns:<ver>     only /coredns: $COREDNS_BIN or $(build.sh)/coredns
#     operator   ghcr.io/poolkeeper/poolkeeper:<appVersion> and localhost/poolkeeper:dev (two lines, one
#                archive holding both tags): the repository's Dockerfile, on Debian base images made here
#
# Cache: ${POOLKEEPER_IMAGE_CACHE:-/var/cache/poolkeeper/images}. pause, pgbouncer and coredns archives are
# named after a hash of their recipe (this script's recipe functions, pause.c, the binary's sha256, ...) and
# reused while it matches; a new one is written to a temporary file and renamed into place under a per-image
# flock, so concurrent callers never see half an archive. The operator image is built by `podman build` on
# every call (podman's layer cache and a ccache cache mount make an unchanged or slightly changed tree quick);
# its archive is named after the image ID. Archives beyond the 3 most recently used of an image are deleted.
# podman runs on its own storage under $POOLKEEPER_IMAGE_CACHE/podman (own containers.conf and storage.conf,
# file locks, runc): the host's container storage (/var/lib/containers/storage), /run/libpod and
# /dev/shm/libpod_lock are not touched (see host_dirs below for the few files podman insists on).
# Needs root, podman, runc, mmdebstrap, gcc (static glibc), flock.
set -euo pipefail
shopt -s inherit_errexit # a failing build inside $(...) stops there (bash clears -e in command substitutions)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

cache="${POOLKEEPER_IMAGE_CACHE:-/var/cache/poolkeeper/images}"
pdir="$cache/podman"
prefix=localhost/poolkeeper-test
suite=bookworm
# The rlimits podman would set by default exceed this machine's hard limits (no CAP_SYS_RESOURCE).
ulimits=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
work=""

log() { echo "images.sh: $*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^# Needs/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }

# Whatever --root says, rootful podman 4.3 keeps two caches at fixed paths (containers/image's blob info cache
# and short-name alias lock) and runc its state root in /run/runc; when this call created them, they go at
# exit (only those files: rmdir leaves anything else alone).
host_dirs=(/var/lib/containers /var/cache/containers /run/runc)
host_dirs_new=()
for dir in "${host_dirs[@]}"; do [[ -e "$dir" ]] || host_dirs_new+=("$dir"); done
cleanup() {
	[[ -n "$work" ]] || return 0
	local dir ran=0
	[[ -e "$work/podman-ran" ]] && ran=1
	# On SIGINT/SIGTERM to the process group, mmdebstrap may still be cleaning up its chroot in $work: retry a
	# while. --one-file-system: never follow a mount a killed build left there.
	for _ in {1..20}; do
		rm -rf --one-file-system "$work" 2>/dev/null && break
		sleep 0.5
	done
	((ran)) || return 0
	for dir in "${host_dirs_new[@]}"; do
		case "$dir" in
		/var/lib/containers) rm -f "$dir/cache/blob-info-cache-v1.boltdb"; rmdir "$dir/cache" 2>/dev/null || true ;;
		/var/cache/containers) rm -f "$dir/short-name-aliases.conf.lock" ;;
		esac
		rmdir "$dir" 2>/dev/null || true
	done
}

# podman on the script's own storage and state: containers.conf and storage.conf under $pdir, TMPDIR too
# (buildah keeps its RUN --mount=type=cache directories there).
pm() {
	touch "$work/podman-ran"
	CONTAINERS_CONF="$pdir/containers.conf" CONTAINERS_STORAGE_CONF="$pdir/storage.conf" TMPDIR="$pdir/tmp" \
		podman --runtime runc "$@"
}

# Writes FILE from stdin unless it already has that content (atomically: concurrent callers read it).
write_if_changed() { # file
	local tmp
	tmp="$(mktemp "$1.XXXXXX")"
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

# Prepares $pdir once per call. The run root and libpod's tmp_dir must not outlive a reboot (stale mount
# counts, "alive" markers): they are emptied when the boot ID changed, under a lock every caller takes first.
podman_setup() {
	mkdir -p "$pdir"
	(
		flock 9
		local boot
		boot="$(cat /proc/sys/kernel/random/boot_id)"
		if [[ "$(cat "$pdir/boot_id" 2>/dev/null)" != "$boot" ]]; then
			rm -rf "$pdir/run" "$pdir/libpod"
			echo "$boot" >"$pdir/boot_id"
		fi
		mkdir -p "$pdir/root" "$pdir/run" "$pdir/libpod" "$pdir/tmp" "$pdir/networks"
		write_if_changed "$pdir/storage.conf" <<-EOF
			[storage]
			driver = "overlay"
			graphroot = "$pdir/root"
			runroot = "$pdir/run"
		EOF
		write_if_changed "$pdir/containers.conf" <<-EOF
			[engine]
			runtime = "runc"
			cgroup_manager = "cgroupfs"
			events_logger = "none"
			lock_type = "file"
			tmp_dir = "$pdir/libpod"
			static_dir = "$pdir/root/libpod"
			volume_path = "$pdir/root/volumes"
			[network]
			network_config_dir = "$pdir/networks"
		EOF
	) 9>"$pdir/setup.lock"
}

# ROOTFS-TAR REF CHANGE...: imports a root filesystem into podman's storage as REF with the Dockerfile-style
# changes (ENTRYPOINT, ENV, USER, CMD).
pm_import() {
	local rootfs="$1" ref="$2" change args=()
	shift 2
	for change in "$@"; do args+=(--change "$change"); done
	pm import --quiet "${args[@]}" "$rootfs" "$ref" >/dev/null
}
# REF DEST: saves REF as a docker-archive to DEST and drops it from podman's storage (the archive is the cache).
pm_save() {
	pm save --quiet --format docker-archive -o "$2" "$1"
	pm rmi --force "$1" >/dev/null
}

# Keeps the 3 most recently used archives of an image (a cache hit touches its archive); older ones go once
# unused for 10 minutes (a concurrent caller may just have printed one).
prune() { # name: keeps its 3 most recent archives (NAME-<16 hex digits>.tar)
	find "$cache" -maxdepth 1 -name "$1-????????????????.tar" -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2- |
		while read -r old; do
			find "$old" -mmin +10 -delete
		done
}

# NAME KEY BUILDER [ARGS...]: prints the cached archive $cache/NAME-KEY.tar, running BUILDER DEST ARGS... under
# NAME's lock to write it when missing.
cached() {
	local name="$1" key="$2" builder="$3"
	shift 3
	local archive="$cache/$name-$key.tar"
	if [[ ! -f "$archive" ]]; then
		(
			flock 9
			if [[ ! -f "$archive" ]]; then
				local tmp="$work/$name.tar" start=$SECONDS
				log "$name: building (recipe $key)"
				"$builder" "$tmp" "$@"
				mv -f "$tmp" "$archive"
				log "$name: built in $((SECONDS - start))s: $archive ($(du -m "$archive" | cut -f1) MiB)"
				prune "$name"
			else
				log "$name: built meanwhile by another caller: $archive"
			fi
		) 9>"$cache/$name.lock"
	else
		log "$name: cached $archive"
	fi
	touch -c "$archive"
	echo "$archive"
}

# A recipe's key: the source of the functions that build it (as bash prints them, so comments do not count)
# and any other input on stdin.
recipe_key() { # function... <inputs
	{ declare -f "$@"; cat; } | sha256sum | cut -c1-16
}

# ---- pause ----------------------------------------------------------------------------------------------------
build_pause() { # dest ref
	mkdir -p "$work/pause-root"
	gcc -static -Os -s -Wall -Wextra -o "$work/pause-root/pause" "$here/images/pause.c"
	tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/pause-root" -cf "$work/pause-rootfs.tar" pause
	# USER as the upstream pause image; the kubelet's pod securityContext still decides.
	pm_import "$work/pause-rootfs.tar" "$2" 'ENTRYPOINT ["/pause"]' 'USER 65535:65535'
	pm_save "$2" "$1"
}
image_pause() {
	local ref="$prefix/pause:3.10" key archive
	key="$({ cat "$here/images/pause.c"; gcc --version | head -1; echo "$ref"; } | recipe_key build_pause pm_import pm_save)"
	archive="$(cached pause "$key" build_pause "$ref")"
	echo "$ref $archive"
}

# ---- pgbouncer ------------------------------------------------------------------------------------------------
# Debian's pgbouncer 1.18.0, psql and curl (for client pods in the tests) on a minbase bookworm; postgres is uid/gid 70 (as in the Alpine-based
# images; the operator's pods run as 70:70); no config of the package's own (the pod mounts /etc/pgbouncer and
# /etc/pgbouncer-auth); no docs, man pages, locales or apt lists.
build_pgbouncer() { # dest ref version suite
	local rootfs="$work/pgbouncer-rootfs.tar" v
	# shellcheck disable=SC2016 # the hooks' $1 is the chroot, expanded by mmdebstrap's shell
	TMPDIR="$work" mmdebstrap --quiet --variant=minbase --include=pgbouncer,postgresql-client,curl \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
		--essential-hook='echo "postgres:x:70:70:PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >>"$1/etc/passwd"' \
		--essential-hook='echo "postgres:x:70:" >>"$1/etc/group"' \
		--customize-hook='rm -rf "$1"/etc/pgbouncer/* "$1"/etc/default/pgbouncer "$1"/etc/init.d/pgbouncer "$1"/etc/logrotate.d/pgbouncer' \
		--customize-hook='mkdir -p "$1/etc/pgbouncer-auth"' \
		--customize-hook='rm -rf "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/var/cache/ldconfig/aux-cache "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old' \
		"$4" "$rootfs" >&2
	pm_import "$rootfs" "$2" \
		'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'USER 70:70' \
		'CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]'
	rm -f "$rootfs"
	# The tag promises the version the operator renders for: check it, run as the pods run it.
	v="$(pm run --rm --network none --read-only --user 70:70 "${ulimits[@]}" "$2" pgbouncer -V | head -1)" || true
	if [[ "$v" != "PgBouncer $3" ]] ||
		! pm run --rm --network none --read-only --user 70:70 "${ulimits[@]}" "$2" psql --version >&2; then
		pm rmi --force "$2" >/dev/null
		die "pgbouncer: the image does not run PgBouncer $3 and psql as 70:70 (pgbouncer -V: '$v')"
	fi
	pm_save "$2" "$1"
}
pgbouncer_image() { # name version suite
	local ref="$prefix/pgbouncer:$2" key archive
	key="$(echo "$ref $3" | recipe_key build_pgbouncer pm_import pm_save)"
	archive="$(cached "$1" "$key" build_pgbouncer "$ref" "$2" "$3")"
	echo "$ref $archive"
}
image_pgbouncer() { pgbouncer_image pgbouncer 1.18.0 "$suite"; }
image_pgbouncer-1.24() { pgbouncer_image pgbouncer-1.24 1.24.1 trixie; }

# ---- coredns --------------------------------------------------------------------------------------------------
build_coredns() { # dest ref binary
	mkdir -p "$work/coredns-root"
	install -m 0755 "$3" "$work/coredns-root/coredns"
	tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/coredns-root" -cf "$work/coredns-rootfs.tar" coredns
	pm_import "$work/coredns-rootfs.tar" "$2" 'ENTRYPOINT ["/coredns"]'
	pm_save "$2" "$1"
}
# The version the binary reports (`coredns -version` prints "CoreDNS-1.12.1"), else the one go.mod pins, else v1.
coredns_tag() { # binary
	local v
	v="$(timeout 2 "$1" -version 2>/dev/null </dev/null | sed -n 's/^CoreDNS-\([0-9][0-9.]*\)$/v\1/p' | head -1)" || true
	[[ -n "$v" ]] || v="$(awk '$1 == "github.com/coredns/coredns" { print $2; exit }' "$here/go.mod")"
	echo "${v:-v1}"
}
image_coredns() {
	local bin="${COREDNS_BIN:-}" sum ref key archive
	if [[ -z "$bin" ]]; then
		bin="$("$here/build.sh")/coredns" || die "coredns: tests/cluster/build.sh failed"
	fi
	[[ -f "$bin" && -x "$bin" ]] ||
		die "coredns: no executable $bin (tests/cluster/build.sh does not build coredns yet? set COREDNS_BIN)"
	if grep -q 'program interpreter' <<<"$(LC_ALL=C readelf -lW "$bin" 2>/dev/null)"; then
		die "coredns: $bin is dynamically linked; the image holds nothing else (build it with CGO_ENABLED=0)"
	fi
	ref="$prefix/coredns:$(coredns_tag "$bin")"
	sum="$(sha256sum "$bin" | cut -d' ' -f1)"
	key="$(echo "$ref $sum" | recipe_key build_coredns pm_import pm_save)"
	archive="$(cached coredns "$key" build_coredns "$ref" "$bin")"
	echo "$ref $archive"
}

# ---- operator -------------------------------------------------------------------------------------------------
# debian:bookworm and debian:bookworm-slim for the Dockerfile's FROM lines, made here (no registry): one
# minbase root filesystem without docs, man pages and locales (as -slim), imported once and kept in podman's
# storage (importing again would change the image ID and defeat the layer cache). Its tar is cached by recipe.
build_debian_base() { # dest
	TMPDIR="$work" mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
		"$suite" "$1" >&2
}
debian_base() {
	local key tar id stamp="$pdir/debian-base.stamp"
	key="$(echo "$suite" | recipe_key build_debian_base)"
	(
		flock 9
		id="$(pm image inspect --format '{{.Id}}' "docker.io/library/debian:$suite" 2>/dev/null)" || true
		if [[ -n "$id" && "$(cat "$stamp" 2>/dev/null)" == "$key $id" ]] &&
			[[ "$(pm image inspect --format '{{.Id}}' "docker.io/library/debian:$suite-slim" 2>/dev/null)" == "$id" ]]; then
			exit 0
		fi
		tar="$(cached debian-base "$key" build_debian_base)"
		log "operator: importing $tar as docker.io/library/debian:$suite and :$suite-slim"
		id="$(pm import --quiet "$tar" "docker.io/library/debian:$suite")"
		id="${id#sha256:}"
		pm tag "$id" "docker.io/library/debian:$suite-slim"
		echo "$key $id" >"$stamp"
	) 9>"$pdir/debian-base.lock"
}
# VERSION REF...: podman build of the Dockerfile tagged REF..., under the operator's lock; prints the archive.
build_operator() {
	local version="$1" id archive
	shift
	(
		flock 9
		log "operator: podman build (layer cache)"
		local args=(--runtime runc --network=host --pull=never "${ulimits[@]}" --build-arg VERSION="$version"
			-f "$repo/Dockerfile")
		# The build stage tagged too: its layers (apt, the compile) are then never dangling, so the prune below
		# keeps them while they are current.
		pm build "${args[@]}" --target build --tag localhost/poolkeeper-build-stage:cache "$repo" >&2
		pm build "${args[@]}" "${@/#/--tag=}" "$repo" >&2
		id="$(pm image inspect --format '{{.Id}}' "$1")"
		archive="$cache/operator-${id:0:16}.tar"
		if [[ ! -f "$archive" ]]; then
			pm save --quiet --format docker-archive -o "$work/operator.tar" "$@"
			mv -f "$work/operator.tar" "$archive"
			prune operator
		fi
		touch -c "$archive"
		# Drops the layers of builds older than 3 days that no tag leads to any more (the current build's stay).
		pm image prune --force --filter until=72h >/dev/null
		echo "$archive"
	) 9>"$cache/operator.lock"
}
image_operator() {
	local version archive start=$SECONDS refs
	version="$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' "$repo/helm/poolkeeper/Chart.yaml")"
	[[ -n "$version" ]] || die "operator: no appVersion in helm/poolkeeper/Chart.yaml"
	refs=("ghcr.io/poolkeeper/poolkeeper:$version" localhost/poolkeeper:dev)
	debian_base
	archive="$(build_operator "$version" "${refs[@]}")"
	log "operator: $archive ($(du -m "$archive" | cut -f1) MiB) in $((SECONDS - start))s"
	echo "${refs[0]} $archive"
	echo "${refs[1]} $archive"
}

# ---- main -----------------------------------------------------------------------------------------------------
(($# > 0)) || usage
for name in "$@"; do
	case "$name" in
	pause | pgbouncer | pgbouncer-1.24 | coredns | operator) ;;
	-h | --help) usage ;;
	*) log "unknown image '$name'"; usage ;;
	esac
done
[[ $EUID == 0 ]] || die "needs root (podman's storage, mmdebstrap)"
mkdir -p "$cache"
# Same filesystem as the cache: a finished archive is renamed into place. Left by a killed call: removed a day on.
find "$cache" -maxdepth 1 -name '.work.*' -mmin +1440 -exec rm -rf --one-file-system {} + 2>/dev/null || true
work="$(mktemp -d "$cache/.work.XXXXXX")"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
podman_setup
for name in "$@"; do
	"image_$name"
done
