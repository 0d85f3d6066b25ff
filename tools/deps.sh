# deps.sh - shared by tools/demo.sh and tools/check.sh (sourced, not run):
# the Debian packages each needs; deps_install, which installs the ones
# dpkg does not list as installed (nothing is installed when all are there,
# and `apt-get update` runs only when something is missing); deps_build,
# the out-of-tree configure and make.
# shellcheck shell=bash

# Build and run the daemon, the demo broker and the demo's checks.
DEPS_DEMO="build-essential autoconf automake libtool pkg-config
	libwebsockets-dev libmosquitto-dev libcjson-dev librabbitmq-dev
	libssl-dev mosquitto mosquitto-clients curl python3"

# shellcheck disable=SC2034 # used by the scripts that source this file
# Everything the test suite uses (unit, integration, browser, sanitizers,
# fuzzing, valgrind, reverse proxy).
DEPS_CHECK="$DEPS_DEMO rabbitmq-server amqp-tools clang-14
	libclang-rt-14-dev chromium chromium-driver python3-selenium
	python3-websocket haproxy valgrind"

# Prints the packages of "$@" that are not installed, one per line.
deps_missing()
{
	local p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
		[ "$st" = installed ] || echo "$p"
	done
}

# Installs the packages of "$@" that are missing. MQGATE_NO_INSTALL=1 only
# reports them. Returns 0 when everything is installed afterwards.
deps_install()
{
	local missing sudo=""
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system (no dpkg-query); install by hand: $*" >&2
		return 0
	fi
	missing=$(deps_missing "$@" | tr '\n' ' ')
	missing=${missing% }
	[ -z "$missing" ] && return 0
	if [ "${MQGATE_NO_INSTALL:-0}" = 1 ]; then
		echo "deps: missing packages (MQGATE_NO_INSTALL=1): $missing" >&2
		return 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo="sudo"
		else
			echo "deps: missing packages: $missing" >&2
			echo "deps: run as root or install them: apt-get install $missing" >&2
			return 1
		fi
	fi
	echo "deps: installing $missing"
	# Waits for a dpkg lock held by another apt run instead of failing.
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get -q \
		-o DPkg::Lock::Timeout=900 update; then
		echo "deps: apt-get update failed" >&2
		return 1
	fi
	# shellcheck disable=SC2086 # one word per package
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
		-o DPkg::Lock::Timeout=900 install $missing; then
		echo "deps: apt-get install failed" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	missing=$(deps_missing $missing | tr '\n' ' ')
	if [ -n "$missing" ]; then
		echo "deps: still missing after apt-get: $missing" >&2
		return 1
	fi
	return 0
}

# Out-of-tree build of the source tree TOP in DIR: autoreconf -fi when TOP
# has no complete configure yet, configure when DIR has no Makefile (with the given
# arguments), then make -j2. Make's own rules regenerate what changed.
deps_build()
{
	local top=$1 dir=$2
	shift 2
	if [ ! -x "$top/configure" ] || [ ! -f "$top/Makefile.in" ] ||
		[ ! -f "$top/build-aux/ltmain.sh" ]; then
		echo "build: autoreconf -fi"
		(cd "$top" && autoreconf -fi) || return 1
	fi
	mkdir -p "$dir" || return 1
	if [ ! -f "$dir/Makefile" ]; then
		echo "build: configure $* in $dir"
		(cd "$dir" && "$top/configure" "$@") || return 1
	fi
	echo "build: make -j2 in $dir"
	make -C "$dir" -j2 || return 1
}
