#!/bin/bash
# run.sh - the fan-out benchmark behind `make bench`: mqgate next to
# mosquitto's WebSocket listener and nginx+nchan, each a private server on
# free loopback ports with its config generated into a temp dir. Servers
# run on core 0, the load generator (tests/bench/loadgen) on core 1.
# Prints figures only: nothing here passes or fails on a number.
#
# Workloads (each run --runs times; median and range in the summary):
#   fanout    1 -> N for N = 100, 1,000, 10,000, as fast as possible
#   fixed     1 -> N at half of mqgate's max publish rate: latency
#   fixedpeer 1 -> N at half of the better peer's max publish rate: latency
#             where every server keeps up
#   idle      10,000 idle WS and SSE clients: server RSS per client
#   connect   10,000 clients: handshake + subscribe + reply per second
#   distinct  N clients with N distinct wildcard filters: CPU per message
#   filters   one client with K = 100, 1,000, 10,000 wildcard filters, one
#             delivery per message: what matching costs, without the
#             connection count changing with it
#   resume    1,000 SSE (and WS) clients resuming 1,000 messages at once
#
# Usage: run.sh [--runs N] [--only "fanout fixed ..."] [--quick]
#               [--targets "mqgate-ws mqgate-sse mqtt-ws nchan-ws nchan-sse"]
#               [--out DIR] [--before RAW] [--profile]
# Environment: MQGATE_BIN, MQGATE_PLUGIN_DIR, LOADGEN (default: the build
# directory make runs in), MQGATE_NO_INSTALL=1 (never run apt-get),
# BENCH_NICE (default -20 when allowed: other work on the machine then
# barely takes the benchmark's cores).
# The raw lines go to DIR/raw.txt, the tables to DIR/summary.md (DIR
# defaults to ./bench-results). --before names the raw.txt of an earlier
# run whose mqgate rows the summary shows beside this run's. --profile
# records each mqgate run with `perf record -g` and writes the hottest
# symbols to DIR/profile/LABEL.txt (use it with --runs 1: perf costs the
# server CPU, so the figures of a profiled run are not comparable).

set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$top/tests/bench
build=$PWD
mqgate=${MQGATE_BIN:-$build/mqgate}
plugins=${MQGATE_PLUGIN_DIR:-$build/plugins/.libs}
loadgen=${LOADGEN:-$build/tests/bench/loadgen}
python=/usr/bin/python3
[ -x $python ] || python=python3

runs=3
before=
profile=no
only="fanout fixed fixedpeer idle connect distinct filters resume"
targets="mqgate-ws mqgate-sse mqtt-ws nchan-ws nchan-sse"
sizes="100 1000 10000"
out=$build/bench-results
deliveries=1000000     # per fan-out run
idle_clients=10000
connect_clients=10000
resume_clients=1000
resume_msgs=1000
distinct_msgs=30000
distinct_rate=10000
fixed_seconds=5

while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift ;;
	--only) only=$2; shift ;;
	--targets) targets=$2; shift ;;
	--out) out=$2; shift ;;
	--before) before=$2; shift ;;
	--profile) profile=yes ;;
	--quick)
		runs=1 sizes="100 1000" deliveries=300000 idle_clients=1000
		connect_clients=1000 resume_clients=100 resume_msgs=200
		distinct_msgs=5000 fixed_seconds=2 ;;
	-h|--help) sed -n '2,35s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- packages, binaries, limits ------------------------------------------

# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"
deps_install mosquitto nginx libnginx-mod-nchan || die "missing packages"
[ -x "$loadgen" ] || die "$loadgen is not built (make tests/bench/loadgen)"
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
nchan_so=
for f in /usr/lib/nginx/modules/ngx_nchan_module.so \
	 /usr/share/nginx/modules/ngx_nchan_module.so; do
	[ -f "$f" ] && { nchan_so=$f; break; }
done
if [ -z "$nchan_so" ] && [ -f /usr/share/nginx/modules-available/mod-nchan.conf ]; then
	nchan_so=$(sed -n 's/^ *load_module *\([^;]*\);.*/\1/p' \
		/usr/share/nginx/modules-available/mod-nchan.conf | head -n 1)
fi
have_mqgate=yes
[ -x "$mqgate" ] || { say "$mqgate is not built: mqgate targets skipped"; have_mqgate=no; }
[ -f "$plugins/mqtt.so" ] || { say "$plugins/mqtt.so is not built: mqgate targets skipped"; have_mqgate=no; }
have_nchan=yes
[ -x "$nginx_bin" ] && [ -n "$nchan_so" ] || { say "nginx or nchan missing: nchan targets skipped"; have_nchan=no; }

# 10,000 clients need as many descriptors in the servers (the hard limit
# here is 20000; the load generator raises its own soft limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 12000 ] ||
	say "open-files limit $(ulimit -n): 10,000-client runs will fail"

pin_server="taskset -c 0"
pin_client="taskset -c 1"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
	say "fewer than 2 cores or no taskset: not pinning"
	pin_server= pin_client=
fi
# On a shared machine, a high priority keeps other work from taking the
# cores mid-run (BENCH_NICE=0 to run at normal priority).
bench_nice=${BENCH_NICE:--20}
if [ "$bench_nice" != 0 ] && nice -n "$bench_nice" true 2>/dev/null &&
   [ "$(nice -n "$bench_nice" nice)" -lt 0 ]; then
	pin_server="nice -n $bench_nice $pin_server"
	pin_client="nice -n $bench_nice $pin_client"
else
	bench_nice=0
fi

mkdir -p "$out" || die "cannot create $out"
raw=$out/raw.txt
: >"$raw"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqgate-bench.XXXXXX") || die "mktemp failed"

# A port free on every address, IPv4 and IPv6 (mosquitto's websockets
# listener binds them all).
free_port()
{
	$python -c 'import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 0))
print(s.getsockname()[1])'
}

wait_port()
{
	local port=$1 i
	for i in $(seq 100); do
		$python -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' \
			"$port" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

stop_pid()
{
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# ---- servers -----------------------------------------------------------------

mq_port=$(free_port)
mqws_port=$(free_port)
gate_port=$(free_port)
nginx_port=$(free_port)
mosq_pid= gate_pid= nginx_pid= nginx_worker=

write_mosquitto_conf()
{
	cat >"$tmp/mosquitto.conf" <<EOF
# mosquitto 2.0.11 needs a plain listener beside the websockets one, and
# refuses a bind address on the websockets one.
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
set_tcp_nodelay true
max_queued_messages 0
listener $mq_port 127.0.0.1
listener $mqws_port
protocol websockets
EOF
}
write_mosquitto_conf

# Another program may take a port between the check and the start, and
# a restarted mosquitto may not get its websockets port back while the
# old connections linger in TIME_WAIT: then it tries other ports (mqgate
# is always (re)started after it and its config is written at start).
start_mosquitto()
{
	local try
	for try in 1 2 3 4 5; do
		$pin_server "$mosquitto_bin" -c "$tmp/mosquitto.conf" >>"$tmp/mosquitto.log" 2>&1 &
		mosq_pid=$!
		if wait_port "$mq_port" && wait_port "$mqws_port" &&
		   kill -0 "$mosq_pid" 2>/dev/null; then
			return 0
		fi
		stop_mosquitto
		mq_port=$(free_port) mqws_port=$(free_port)
		write_mosquitto_conf
	done
	die "mosquitto did not start: $(tail -n 5 "$tmp/mosquitto.log")"
}

stop_mosquitto() { stop_pid "$mosq_pid"; mosq_pid=; }

write_mqgate_conf()
{
	cat >"$tmp/mqgate.conf" <<EOF
[server]
listen = 127.0.0.1:$gate_port
docroot =
keepalive = 60s
history = 100000
history_bytes = 512M
queue = 100000
queue_bytes = 512M
max_clients = 20000
max_subscriptions = 100000
log_level = warning
plugin_dir = $plugins
# the user it runs as (mqgate refuses to keep root unless told)
user = $(id -un)

[auth]
anonymous_subscribe = #

[broker bench]
type = mqtt
url = mqtt://127.0.0.1:$mq_port
client_id = mqgate-bench-%p
topic = bench/# in 0
EOF
}

start_mqgate()
{
	local i
	write_mqgate_conf
	$pin_server "$mqgate" -c "$tmp/mqgate.conf" >>"$tmp/mqgate.log" 2>&1 &
	gate_pid=$!
	for i in $(seq 100); do
		$python -c 'import sys,urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=1)' \
			"$gate_port" 2>/dev/null && return 0
		kill -0 "$gate_pid" 2>/dev/null || break
		sleep 0.1
	done
	die "mqgate did not become healthy: $(tail -n 5 "$tmp/mqgate.log")"
}

stop_mqgate() { stop_pid "$gate_pid"; gate_pid=; }

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<EOF
load_module $nchan_so;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events {
	worker_connections 20000;
	multi_accept on;
}
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	tcp_nodelay on;
	nchan_shared_memory_size 512M;
	server {
		listen 127.0.0.1:$nginx_port backlog=4096;
		location ~ ^/pub/(.+)\$ {
			nchan_publisher;
			nchan_channel_id \$1;
			nchan_message_buffer_length 2000;
			nchan_message_timeout 10m;
		}
		location ~ ^/sub/(.+)\$ {
			nchan_subscriber websocket eventsource;
			nchan_channel_id \$1;
			nchan_subscriber_first_message newest;
		}
	}
}
EOF

start_nginx()
{
	local i
	$pin_server "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx.conf" >>"$tmp/nginx.log" 2>&1 &
	nginx_pid=$!
	wait_port "$nginx_port" || die "nginx did not start: $(tail -n 5 "$tmp/nginx-error.log")"
	for i in $(seq 50); do
		nginx_worker=$(pgrep -P "$nginx_pid" | head -n 1)
		[ -n "$nginx_worker" ] && return 0
		sleep 0.1
	done
	die "no nginx worker process"
}

stop_nginx() { stop_pid "$nginx_pid"; nginx_pid= nginx_worker=; }

# shellcheck disable=SC2317 # reached through the trap
cleanup()
{
	[ -z "$perf_pid" ] || kill -INT "$perf_pid" 2>/dev/null
	stop_mqgate
	stop_nginx
	stop_mosquitto
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

available()
{
	case $1 in
	mqgate-*) [ $have_mqgate = yes ] ;;
	nchan-*) [ $have_nchan = yes ] ;;
	*) return 0 ;;
	esac
}

# Restarts the server behind a target, for runs that need a fresh process.
restart_for()
{
	case $1 in
	mqgate-*) stop_mqgate; start_mqgate ;;
	mqtt-ws) stop_mqgate; stop_mosquitto; start_mosquitto
		 [ $have_mqgate = yes ] && start_mqgate ;;
	nchan-*) stop_nginx; start_nginx ;;
	esac
}

# The loadgen arguments that address a target and its publisher.
target_args()
{
	case $1 in
	mqgate-*) echo "--port $gate_port --pub-port $mq_port --server-pid $gate_pid" ;;
	mqtt-ws) echo "--port $mqws_port --pub-port $mq_port --server-pid $mosq_pid" ;;
	nchan-*) echo "--port $nginx_port --pub-path /pub --server-pid $nginx_worker" ;;
	esac
}

# perf_start LABEL TARGET / perf_stop LABEL: a perf recording of mqgate
# around one run (--profile), reduced to its hottest symbols.
perf_pid=
perf_start()
{
	case $2 in mqgate-*) ;; *) return 0 ;; esac
	[ "$profile" = yes ] || return 0
	mkdir -p "$out/profile"
	perf record -F 1999 -g -p "$gate_pid" -o "$out/profile/$1.data" \
		>>"$out/profile/perf.log" 2>&1 &
	perf_pid=$!
	sleep 0.5
}

perf_stop()
{
	[ -n "$perf_pid" ] || return 0
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
	perf_pid=
	perf report -i "$out/profile/$1.data" --stdio --no-children \
		--sort symbol -g none --percent-limit 0.7 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -n 40 >"$out/profile/$1.txt"
	rm -f "$out/profile/$1.data"
}

# run WORKLOAD TARGET N RUN LOADGEN-ARGS...: one loadgen run, its line
# appended to raw.txt (label WORKLOAD:TARGET:N:RUN).
run()
{
	local w=$1 t=$2 n=$3 r=$4 line
	shift 4
	perf_start "$w-$t-$n-$r" "$t"
	# shellcheck disable=SC2046 # word splitting wanted
	line=$($pin_client "$loadgen" --target "$t" $(target_args "$t") \
		--clients "$n" --label "$w:$t:$n:$r" --timeout 300 "$@" 2>>"$out/loadgen.log")
	perf_stop "$w-$t-$n-$r"
	if [ -n "$line" ]; then
		echo "$line" | tee -a "$raw" >&2
	else
		echo "$w:$t:$n:$r: failed" | tee -a "$raw" >&2
	fi
	sleep 1
}

# ---- start -----------------------------------------------------------------

say "results in $out; servers on core 0, load generator on core 1"
start_mosquitto
[ $have_mqgate = yes ] && start_mqgate
[ $have_nchan = yes ] && start_nginx
{
	echo "# machine"
	echo "nproc=$(nproc)"
	echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "kernel=$(uname -r)"
	for p in libwebsockets17 mosquitto nginx libnginx-mod-nchan; do
		echo "pkg_$p=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"
	done
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "placement=${pin_server:-none} (servers), ${pin_client:-none} (loadgen)"
} >"$out/machine.txt"

if has fanout "$only"; then
	for n in $sizes; do
		for t in $targets; do
			available "$t" || continue
			for r in $(seq "$runs"); do
				run fanout "$t" "$n" "$r" --messages $((deliveries / n))
			done
		done
	done
fi

# fixed_runs WORKLOAD RATE-OPTION: the fixed-rate runs of every size at
# the rate summarize.py derives from this run's fan-out figures.
fixed_runs()
{
	local w=$1 rate_opt=$2 n t r rate msgs
	for n in $sizes; do
		rate=$($python "$bench/summarize.py" "$rate_opt" "$n" "$raw")
		[ -n "$rate" ] && [ "$rate" != 0 ] || { say "no fan-out figures for N=$n: $w runs skipped"; continue; }
		msgs=$($python -c 'import sys; print(max(200, int(float(sys.argv[1]) * float(sys.argv[2]))))' "$rate" "$fixed_seconds")
		for t in $targets; do
			available "$t" || continue
			for r in $(seq "$runs"); do
				run "$w" "$t" "$n" "$r" --messages "$msgs" --rate "$rate"
			done
		done
	done
}

# half of mqgate's max publish rate (the slower transport), then half of
# the better peer's
has fixed "$only" && fixed_runs fixed --half-rate
has fixedpeer "$only" && fixed_runs fixedpeer --half-peer-rate

if has idle "$only"; then
	for t in $targets; do
		available "$t" || continue
		for r in $(seq "$runs"); do
			restart_for "$t"
			run idle "$t" "$idle_clients" "$r" --idle 5 --messages 0
		done
	done
fi

if has connect "$only"; then
	for t in $targets; do
		available "$t" || continue
		for r in $(seq "$runs"); do
			run connect "$t" "$connect_clients" "$r" --messages 0
		done
	done
fi

if has distinct "$only"; then
	for n in $sizes; do
		for t in $targets; do
			available "$t" || continue
			[ "$t" = nchan-sse ] && continue # nchan-ws stands for nchan
			for r in $(seq "$runs"); do
				run distinct "$t" "$n" "$r" --distinct "$n" \
					--messages "$distinct_msgs" --rate "$distinct_rate"
			done
		done
	done
fi

if has filters "$only"; then
	for k in $sizes; do
		for t in mqgate-ws mqtt-ws; do
			has "$t" "$targets" && available "$t" || continue
			for r in $(seq "$runs"); do
				# labelled by K; one client (the later
				# --clients wins)
				run filters "$t" "$k" "$r" --clients 1 --filters "$k" \
					--messages "$distinct_msgs" --rate "$distinct_rate"
			done
		done
	done
fi

if has resume "$only"; then
	for t in mqgate-sse nchan-sse mqgate-ws; do
		has "$t" "$targets" && available "$t" || continue
		for r in $(seq "$runs"); do
			run resume "$t" "$resume_clients" "$r" --resume "$resume_msgs"
		done
	done
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
$python "$bench/summarize.py" --machine "$out/machine.txt" \
	${before:+--before "$before"} "$raw" >"$out/summary.md"
cat "$out/summary.md"
say "raw figures: $raw; tables: $out/summary.md"
