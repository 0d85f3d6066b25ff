#!/bin/bash
# demo.sh - mqgate in one command: installs the missing Debian packages,
# builds out of tree in ./build, starts a private mosquitto on a free
# loopback port fed by tools/sensor-sim.py, then mqgate with etc/demo.conf,
# and prints where to look. Ctrl-C stops everything it started.
#
#   tools/demo.sh            run until Ctrl-C
#   tools/demo.sh --check    verify end to end (health, SSE, publish, ACL,
#                            metrics, dashboard files) and exit 0 or 1
#
# Options:
#   --check            the end-to-end check instead of waiting
#   --build-dir DIR    build (or reuse) DIR instead of ./build
#   --no-build         use DIR as it is (no configure, no make)
#   -h, --help         this text
# Environment:
#   MQGATE_DEMO_PORT   the HTTP port (default 8080, or a free one when
#                      8080 is taken)
#   MQGATE_NO_INSTALL=1  never run apt-get; fail when packages are missing

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"

check=no
build_dir=$top/build
do_build=yes
while [ $# -gt 0 ]; do
	case $1 in
	--check) check=yes ;;
	--build-dir)
		[ $# -ge 2 ] || { echo "demo: --build-dir needs a directory" >&2; exit 2; }
		build_dir=$2
		shift ;;
	--build-dir=*) build_dir=${1#--build-dir=} ;;
	--no-build) do_build=no ;;
	-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $build_dir in /*) ;; *) build_dir=$PWD/$build_dir ;; esac

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---- packages and build ------------------------------------------------

# shellcheck disable=SC2086 # one word per package
deps_install $DEPS_DEMO || die "missing packages"
if [ $do_build = yes ]; then
	deps_build "$top" "$build_dir" >"${TMPDIR:-/tmp}/mqgate-demo-build.$$.log" 2>&1 || {
		tail -n 40 "${TMPDIR:-/tmp}/mqgate-demo-build.$$.log" >&2
		rm -f "${TMPDIR:-/tmp}/mqgate-demo-build.$$.log"
		die "build failed (the end of its log is above)"
	}
	rm -f "${TMPDIR:-/tmp}/mqgate-demo-build.$$.log"
	say "built in $build_dir"
fi
mqgate=$build_dir/mqgate
[ -x "$mqgate" ] || die "$mqgate is not built"
plugins=$build_dir/plugins/.libs
[ -f "$plugins/mqtt.so" ] || die "$plugins/mqtt.so is not built (is libmosquitto-dev installed?)"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || die "mosquitto not found"
python=/usr/bin/python3
[ -x $python ] || python=python3

# ---- ports ---------------------------------------------------------------

# Prints a free loopback TCP port, or checks that PORT is free (status).
port_free()
{
	$python - "$@" <<-'EOF'
	import socket, sys
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	try:
	    s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
	except OSError:
	    sys.exit(1)
	print(s.getsockname()[1])
	EOF
}

broker_port=$(port_free) || die "no free port for mosquitto"
if [ -n "${MQGATE_DEMO_PORT:-}" ]; then
	http_port=$MQGATE_DEMO_PORT
	port_free "$http_port" >/dev/null || die "port $http_port (MQGATE_DEMO_PORT) is taken"
elif [ $check = no ] && port_free 8080 >/dev/null; then
	http_port=8080
else
	# --check always takes a free port: it may run beside a demo.
	http_port=$(port_free) || die "no free port for mqgate"
	[ $check = yes ] || say "port 8080 is taken; using $http_port"
fi
base=http://127.0.0.1:$http_port

# ---- processes -------------------------------------------------------------

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/mqgate-demo.XXXXXX") || die "mktemp failed"
mosq_pid=
sim_pid=
gate_pid=
failed=0

# shellcheck disable=SC2317 # reached through the EXIT trap
stop_pid()
{
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# shellcheck disable=SC2317
cleanup()
{
	trap - EXIT INT TERM
	stop_pid "$gate_pid"
	stop_pid "$sim_pid"
	stop_pid "$mosq_pid"
	if [ "$failed" -ne 0 ]; then
		for f in mqgate.log sensor-sim.log mosquitto.log; do
			[ -s "$run_dir/$f" ] || continue
			echo "---- $f (last lines)" >&2
			tail -n 25 "$run_dir/$f" >&2
		done
	fi
	rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'echo; say "stopping"; exit 0' INT TERM

cat >"$run_dir/mosquitto.conf" <<EOF
listener $broker_port 127.0.0.1
allow_anonymous true
persistence false
EOF
"$mosquitto" -c "$run_dir/mosquitto.conf" >"$run_dir/mosquitto.log" 2>&1 &
mosq_pid=$!

# Waits until TCP port $1 accepts connections while pid $2 lives.
wait_port()
{
	for _ in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		if $python -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
wait_port "$broker_port" "$mosq_pid" || { failed=1; die "mosquitto did not start"; }

if [ $check = yes ]; then
	$python "$top/tools/sensor-sim.py" --port "$broker_port" \
		>"$run_dir/sensor-sim.log" 2>&1 &
else
	# Its output (commands it receives on cmd/#) goes to the terminal.
	$python "$top/tools/sensor-sim.py" --port "$broker_port" \
		2>"$run_dir/sensor-sim.log" &
fi
sim_pid=$!

MQGATE_DEMO_USER=$(id -un) \
MQGATE_DEMO_LISTEN=127.0.0.1:$http_port \
MQGATE_DEMO_PORT=$http_port \
MQGATE_DEMO_BROKER_PORT=$broker_port \
MQGATE_PLUGIN_DIR=$plugins \
	"$mqgate" -c "$top/etc/demo.conf" >"$run_dir/mqgate.log" 2>&1 &
gate_pid=$!

# Polls /healthz until 200 (every broker connected): 0, or 1 on timeout or
# when mqgate exits.
wait_healthy()
{
	local code
	for _ in $(seq 200); do
		kill -0 "$gate_pid" 2>/dev/null || return 1
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/healthz")
		[ "$code" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

# Waits until the simulator has announced itself (the retained
# sensors/status = online is on the broker): 0, or 1 after 10 s.
wait_sensors()
{
	command -v mosquitto_sub >/dev/null 2>&1 || { sleep 1; return 0; }
	[ "$(mosquitto_sub -h 127.0.0.1 -p "$broker_port" -t sensors/status \
		-C 1 -W 10 2>/dev/null)" = online ]
}

# ---- the interactive demo -------------------------------------------------

if [ $check = no ]; then
	wait_healthy || { failed=1; die "mqgate did not become healthy"; }
	wait_sensors || { failed=1; die "the sensor simulator did not start"; }
	cat <<EOF

  mqgate is running (MQTT broker on 127.0.0.1:$broker_port, simulated sensors).

  Dashboard:   $base/
  SSE stream:  curl -N '$base/events?topic=sensors/%23'
  Publish:     curl -d '{"topic":"cmd/lamp","payload":{"on":true}}' $base/publish
  Health:      curl $base/healthz
  Metrics:     curl $base/metrics

  Commands published under cmd/# are printed below by the simulator.
  Press Ctrl-C to stop.

EOF
	while kill -0 "$gate_pid" 2>/dev/null; do
		wait "$gate_pid" 2>/dev/null
	done
	failed=1
	die "mqgate exited unexpectedly"
fi

# ---- the end-to-end check -------------------------------------------------

checks=0
bad=0
ok() { checks=$((checks + 1)); printf 'ok - %s\n' "$*"; }
nok() { checks=$((checks + 1)); bad=$((bad + 1)); printf 'FAIL - %s\n' "$*"; }

if wait_healthy; then
	ok "GET /healthz answers 200 with the broker connected"
else
	nok "GET /healthz never answered 200"
	failed=1
	exit 1
fi
wait_sensors || nok "the sensor simulator did not publish sensors/status"
body=$(curl -s --max-time 5 "$base/healthz")
case $body in
*'"demo"'*'"connected"'*) ok "health body names broker demo as connected" ;;
*) nok "health body: $body" ;;
esac

# SSE: the snapshot brings the retained status at once, then live readings.
curl -sN --max-time 4 "$base/events?topic=sensors/%23" >"$run_dir/sse.txt" 2>/dev/null
n_climate=$(grep -c '^data: {"topic":"sensors/[a-z]*/climate".*"temperature"' "$run_dir/sse.txt")
n_temp=$(grep -c '^data: {"topic":"sensors/[a-z]*/temp","payload":[0-9]' "$run_dir/sse.txt")
n_ids=$(grep -c '^id: [0-9]*-[0-9]*$' "$run_dir/sse.txt")
if grep -q '^data: {"topic":"sensors/status","payload":"online"' "$run_dir/sse.txt"; then
	ok "SSE snapshot has the retained sensors/status = \"online\""
else
	nok "SSE stream lacks sensors/status = \"online\""
fi
if [ "$n_climate" -ge 4 ] && [ "$n_temp" -ge 4 ]; then
	ok "SSE stream delivered $n_climate climate and $n_temp temp events"
else
	nok "SSE stream delivered $n_climate climate and $n_temp temp events (want 4 each)"
	head -n 20 "$run_dir/sse.txt"
fi
n_data=$(grep -c '^data: ' "$run_dir/sse.txt")
if [ "$n_ids" -ge "$n_data" ] && [ "$n_data" -gt 0 ]; then
	ok "every SSE event carries an event id"
else
	nok "$n_data SSE events but $n_ids event ids"
fi

# Publish through POST /publish and watch it come back from the broker:
# on an SSE stream subscribed to cmd/#, and at a plain MQTT subscriber.
nonce=$$-$RANDOM
curl -sN --max-time 10 "$base/events?topic=cmd/%23&snapshot=0" >"$run_dir/cmd.txt" 2>/dev/null &
cmd_pid=$!
sub_pid=
if command -v mosquitto_sub >/dev/null 2>&1; then
	mosquitto_sub -h 127.0.0.1 -p "$broker_port" -t cmd/demo/lamp -C 1 -W 10 \
		>"$run_dir/sub.txt" 2>/dev/null &
	sub_pid=$!
fi
for _ in $(seq 50); do
	grep -q '^retry:' "$run_dir/cmd.txt" 2>/dev/null && break
	sleep 0.1
done
sleep 0.5 # let mosquitto_sub subscribe
reply=$(curl -s --max-time 10 -w ' %{http_code}' -H 'Content-Type: application/json' \
	-d "{\"topic\":\"cmd/demo/lamp\",\"payload\":{\"on\":true,\"nonce\":\"$nonce\"},\"qos\":1}" \
	"$base/publish")
case $reply in
*'"ok":true'*' 200') ok "POST /publish to cmd/demo/lamp answered 200 {\"ok\":true}" ;;
*) nok "POST /publish to cmd/demo/lamp answered: $reply" ;;
esac
seen=no
for _ in $(seq 80); do
	if grep '^data: {"topic":"cmd/demo/lamp"' "$run_dir/cmd.txt" |
		grep -q "\"nonce\":\"$nonce\""; then
		seen=yes
		break
	fi
	sleep 0.1
done
if [ $seen = yes ]; then
	ok "the published message came back on the SSE stream for cmd/#"
else
	nok "the published message did not reach the SSE stream for cmd/#"
	cat "$run_dir/cmd.txt"
fi
kill "$cmd_pid" 2>/dev/null
wait "$cmd_pid" 2>/dev/null
if [ -n "$sub_pid" ]; then
	wait "$sub_pid" 2>/dev/null
	if grep -q "\"nonce\":\"$nonce\"" "$run_dir/sub.txt"; then
		ok "the broker got the message (mosquitto_sub on cmd/demo/lamp)"
	else
		nok "mosquitto_sub on cmd/demo/lamp did not see the message"
	fi
fi

# The walls: sensors/# comes in only, and anonymous clients publish to cmd/#
# only.
reply=$(curl -s --max-time 10 -w ' %{http_code}' -d '{"topic":"sensors/kitchen/temp","payload":99}' "$base/publish")
case $reply in
*'"forbidden"'*' 403') ok "POST /publish to sensors/kitchen/temp is 403 forbidden" ;;
*) nok "POST /publish to sensors/kitchen/temp answered: $reply" ;;
esac
reply=$(curl -s --max-time 10 -w ' %{http_code}' -d '{"topic":"cmd/#","payload":1}' "$base/publish")
case $reply in
*'"bad_request"'*' 400') ok "POST /publish to a wildcard topic is 400 bad_request" ;;
*) nok "POST /publish to cmd/# answered: $reply" ;;
esac

metrics=$(curl -s --max-time 5 "$base/metrics")
if printf '%s\n' "$metrics" | grep -q '^mqgate_broker_up{broker="demo",type="mqtt"} 1$'; then
	ok "GET /metrics reports mqgate_broker_up for broker demo"
else
	nok "GET /metrics lacks mqgate_broker_up{broker=\"demo\",type=\"mqtt\"} 1"
fi
if printf '%s\n' "$metrics" | grep -q '^mqgate_publishes_total{result="ok"} [1-9]'; then
	ok "GET /metrics counted the accepted publish"
else
	nok "GET /metrics has no mqgate_publishes_total{result=\"ok\"} above 0"
fi

# The dashboard and the client library come from ../www beside etc/.
code=$(curl -s -o "$run_dir/index.html" -w '%{http_code}' --max-time 5 "$base/")
if [ "$code" = 200 ] && grep -qi '<html' "$run_dir/index.html" &&
	cmp -s "$run_dir/index.html" "$top/www/index.html"; then
	ok "GET / serves www/index.html"
else
	nok "GET / answered $code, not www/index.html"
fi
code=$(curl -s -o "$run_dir/mqgate.js" -w '%{http_code}' --max-time 5 "$base/mqgate.js")
if [ "$code" = 200 ] && cmp -s "$run_dir/mqgate.js" "$top/www/mqgate.js"; then
	ok "GET /mqgate.js serves the client library"
else
	nok "GET /mqgate.js answered $code, not www/mqgate.js"
fi

if ! kill -0 "$gate_pid" 2>/dev/null; then
	nok "mqgate is no longer running"
fi
if [ $bad -ne 0 ]; then
	failed=1
	echo "demo check: $bad of $checks checks failed"
	exit 1
fi
echo "demo check: all $checks checks passed"
exit 0
