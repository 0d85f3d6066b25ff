#!/bin/bash
# check.sh - the whole test suite in one command. Installs the missing
# Debian packages, then runs these stages, each out of tree under ./build:
#
#   check   configure --enable-werror in build/check, make check -j2
#   asan    configure CC=clang-14 --enable-sanitizers (ASan+UBSan) in
#           build/asan, make check -j2
#   fuzz    make fuzz in build/check, then every libFuzzer target for
#           MQGATE_FUZZ_SECONDS on its corpus tests/fuzz/corpus/NAME
#   valgrind  the daemon's integration tests in build/check with every
#           mqgate under valgrind (MQGATE_VALGRIND=1, tests/it/mqgatetest.py:
#           a test fails on any memory error or definite leak); about
#           5 minutes on 2 cores
#   demo    tools/demo.sh --check with the build/check binaries
#
# Every test result of automake's harness counts (tools/summary.sh), each
# fuzz target and the demo check count as one test, and a stage that
# cannot build counts as one failure. The last line of output is always
# "N passed, N failed, N skipped"; the exit status is 0 only when nothing
# failed. Full logs: build/logs/.
#
# Options (each also as an environment variable set to 1):
#   --skip-check   MQGATE_SKIP_CHECK   skip the -Werror build's make check
#   --skip-asan    MQGATE_SKIP_ASAN    skip the sanitizer build
#   --skip-fuzz    MQGATE_SKIP_FUZZ    skip fuzzing
#   --skip-valgrind MQGATE_SKIP_VALGRIND skip the valgrind stage
#   --skip-demo    MQGATE_SKIP_DEMO    skip the demo check
#   --quick        the same as --skip-asan --skip-fuzz --skip-valgrind
#   --no-install   MQGATE_NO_INSTALL   never run apt-get
#   -h, --help     this text
# Other environment:
#   MQGATE_FUZZ_SECONDS   seconds per fuzz target (default 30)
#   MQGATE_STAGE_TIMEOUT  seconds before a make check is stopped (900)

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"

skip_check=${MQGATE_SKIP_CHECK:-0}
skip_asan=${MQGATE_SKIP_ASAN:-0}
skip_fuzz=${MQGATE_SKIP_FUZZ:-0}
skip_valgrind=${MQGATE_SKIP_VALGRIND:-0}
skip_demo=${MQGATE_SKIP_DEMO:-0}
fuzz_seconds=${MQGATE_FUZZ_SECONDS:-30}
stage_timeout=${MQGATE_STAGE_TIMEOUT:-900}

while [ $# -gt 0 ]; do
	case $1 in
	--skip-check) skip_check=1 ;;
	--skip-asan) skip_asan=1 ;;
	--skip-fuzz) skip_fuzz=1 ;;
	--skip-valgrind) skip_valgrind=1 ;;
	--skip-demo) skip_demo=1 ;;
	--quick) skip_asan=1; skip_fuzz=1; skip_valgrind=1 ;;
	--no-install) export MQGATE_NO_INSTALL=1 ;;
	-h|--help) sed -n '2,34s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $fuzz_seconds in ''|*[!0-9]*) echo "check: MQGATE_FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac
case $stage_timeout in ''|*[!0-9]*) echo "check: MQGATE_STAGE_TIMEOUT must be a number" >&2; exit 2 ;; esac

build=$top/build
logs=$build/logs
passed=0
failed=0
skipped=0
report=()     # one line per stage, printed at the end
started=$(date +%s)

mkdir -p "$logs" || exit 1

stage() { printf '\n==== %s\n' "$*"; }
note() { report+=("$*"); printf '%s\n' "$*"; }
# Adds "P F S" (tools/summary.sh --raw) to the totals.
add_counts()
{
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + $3))
}
finish()
{
	local t=$(($(date +%s) - started))
	printf '\n==== summary (%d min %02d s, logs in %s)\n' $((t / 60)) $((t % 60)) "$logs"
	printf '%s\n' "${report[@]}"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

# Runs "$@" in the background under timeout SECS with its output in LOG,
# showing the lines that match REGEX (none when empty) as they come.
# Returns the command's status (124 on timeout). Ctrl-C stops it.
child=
run_timed()
{
	local secs=$1 log=$2 regex=$3 rc
	shift 3
	timeout --kill-after=30 "$secs" "$@" >"$log" 2>&1 </dev/null &
	child=$!
	if [ -n "$regex" ]; then
		tail -n +1 -f --pid="$child" "$log" | grep --line-buffered -E "$regex"
	fi
	wait "$child"
	rc=$?
	child=
	return $rc
}

# shellcheck disable=SC2317 # reached through the trap
interrupted()
{
	trap - INT TERM
	echo
	echo "check: interrupted; stopping"
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
	# shellcheck disable=SC2046 # one pid per word
	kill -TERM $(jobs -p) 2>/dev/null
	wait
	add_counts 0 1 0
	note "interrupted"
	finish
}
trap interrupted INT TERM

# ---- packages ----------------------------------------------------------------

stage "packages"
# shellcheck disable=SC2086 # one word per package
if ! deps_install $DEPS_CHECK; then
	add_counts 0 1 0
	note "packages: FAILED (see above)"
	finish
fi
echo "all packages installed"

# Builds DIR with configure arguments; a failure counts as one failed test.
# Prints the end of the log on failure.
build_stage()
{
	local name=$1 dir=$2
	shift 2
	echo "building in $dir (log: $logs/$name-build.log)"
	# shellcheck disable=SC2016 # expanded by the inner shell
	if run_timed "$stage_timeout" "$logs/$name-build.log" '' \
		bash -c '. "$0/tools/deps.sh" && deps_build "$@"' "$top" "$top" "$dir" "$@"; then
		return 0
	fi
	tail -n 30 "$logs/$name-build.log"
	add_counts 0 1 0
	note "$name: build FAILED ($logs/$name-build.log)"
	return 1
}

# make check in DIR (more make arguments may follow), result lines shown as
# they come; counts from the .trs files. A failing make check that leaves no
# failed result (a check program that did not build, a timeout) counts as
# one failure.
check_stage()
{
	local name=$1 dir=$2 rc counts
	shift 2
	find "$dir" -name '*.trs' -type f -delete
	echo "make check in $dir (log: $logs/$name-check.log)"
	run_timed "$stage_timeout" "$logs/$name-check.log" \
		'^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR): ' make -C "$dir" -j2 check "$@"
	rc=$?
	counts=$("$top/tools/summary.sh" --raw --list "$dir" 2>>"$logs/$name-failed.txt")
	# shellcheck disable=SC2086 # three numbers
	set -- $counts
	add_counts "$1" "$2" "$3"
	if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
		tail -n 30 "$logs/$name-check.log"
		add_counts 0 1 0
		if [ "$rc" -eq 124 ]; then
			note "$name: make check stopped after $stage_timeout s"
		else
			note "$name: make check failed (exit $rc) with no failed test"
		fi
		return 1
	fi
	note "$name: $1 passed, $2 failed, $3 skipped"
	if [ "$2" -ne 0 ]; then
		sed 's/^/  /' "$logs/$name-failed.txt"
		report+=("$(sed 's/^/  /' "$logs/$name-failed.txt")")
	fi
}

rm -f "$logs"/*-failed.txt

# ---- stage: -Werror build and make check -----------------------------------

# build/check serves the check, fuzz and demo stages: built once; after a
# failed build the later stages count as failed without trying again.
check_built=no
build_check()
{
	case $check_built in
	yes) return 0 ;;
	failed) add_counts 0 1 0; note "$1: not run (build/check did not build)"; return 1 ;;
	esac
	if build_stage "$1" "$build/check" --enable-werror; then
		check_built=yes
		return 0
	fi
	check_built=failed
	return 1
}

if [ "$skip_check" = 1 ]; then
	note "check: skipped (MQGATE_SKIP_CHECK)"
else
	stage "check: --enable-werror, make check"
	if build_check check; then
		check_stage check "$build/check"
	fi
fi

# ---- stage: ASan + UBSan build and make check -------------------------------

if [ "$skip_asan" = 1 ]; then
	note "asan: skipped (MQGATE_SKIP_ASAN)"
else
	stage "asan: CC=clang-14 --enable-sanitizers, make check"
	# The caller's settings win; they are left as they were afterwards.
	saved_asan=${ASAN_OPTIONS-} saved_ubsan=${UBSAN_OPTIONS-}
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	if build_stage asan "$build/asan" CC=clang-14 --enable-sanitizers; then
		# The project builds warning-free with clang-14 too (compiler
		# diagnostics only: FILE:LINE[:COL]: warning: ...).
		cc_warning='^[^:[:space:]]+:[0-9]+:([0-9]+:)? warning: '
		if grep -Eq "$cc_warning" "$logs/asan-build.log"; then
			grep -E "$cc_warning" "$logs/asan-build.log" | sort -u | head -n 20
			add_counts 0 1 0
			note "asan: clang-14 warnings ($logs/asan-build.log)"
		fi
		check_stage asan "$build/asan"
	fi
	ASAN_OPTIONS=$saved_asan UBSAN_OPTIONS=$saved_ubsan
	[ -n "$saved_asan" ] || unset ASAN_OPTIONS
	[ -n "$saved_ubsan" ] || unset UBSAN_OPTIONS
fi

# ---- stage: fuzzing ------------------------------------------------------------

# Runs one target; writes "NAME STATUS" to $2.
fuzz_one()
{
	local bin=$1 out=$2 name work corpus rc
	local args=()
	name=$(basename "$bin")
	name=${name#fuzz_}
	work=$build/check/tests/fuzz/work-$name
	rm -rf "$work" && mkdir -p "$work"
	corpus=$top/tests/fuzz/corpus/$name
	args=(-max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1
		-artifact_prefix="$build/check/tests/fuzz/crash-$name-")
	[ -f "$top/tests/fuzz/$name.dict" ] && args+=(-dict="$top/tests/fuzz/$name.dict")
	# New inputs go to the first directory, never into the committed corpus.
	if [ -d "$corpus" ]; then
		args+=("$work" "$corpus")
	else
		args+=("$work")
	fi
	timeout --kill-after=10 $((fuzz_seconds + 120)) "$bin" "${args[@]}" \
		>"$logs/fuzz-$name.log" 2>&1 </dev/null
	rc=$?
	echo "$name $rc" >>"$out"
}

if [ "$skip_fuzz" = 1 ]; then
	note "fuzz: skipped (MQGATE_SKIP_FUZZ)"
else
	stage "fuzz: make fuzz, each target ${fuzz_seconds} s"
	if build_check fuzz; then
		echo "make fuzz in $build/check (log: $logs/fuzz-make.log)"
		if run_timed "$stage_timeout" "$logs/fuzz-make.log" '' \
			make -C "$build/check" fuzz; then
			mapfile -t targets < <(make -s -C "$build/check" fuzz-targets)
			rm -f "$build"/check/tests/fuzz/crash-*
			results=$logs/fuzz-results.txt
			: >"$results"
			running=0
			for t in "${targets[@]}"; do
				if [ ! -x "$build/check/$t" ]; then
					echo "fuzz: $t was not built" >>"$logs/fuzz-make.log"
					echo "$(basename "$t") 127" >>"$results"
					continue
				fi
				echo "fuzzing $t"
				fuzz_one "$build/check/$t" "$results" &
				running=$((running + 1))
				# Two at a time: one per core.
				if [ $running -ge 2 ]; then
					wait -n
					running=$((running - 1))
				fi
			done
			wait
			fp=0
			ff=0
			fuzz_failed=()
			while read -r name rc; do
				if [ "$rc" -eq 0 ]; then
					fp=$((fp + 1))
					echo "PASS: fuzz $name"
				else
					ff=$((ff + 1))
					echo "FAIL: fuzz $name (exit $rc, log: $logs/fuzz-$name.log)"
					grep -m 5 -E 'ERROR|SUMMARY|runtime error|Test unit written' \
						"$logs/fuzz-$name.log" | sed 's/^/  /'
					fuzz_failed+=("  FAILED: fuzz $name ($logs/fuzz-$name.log)")
				fi
			done <"$results"
			add_counts $fp $ff 0
			note "fuzz: $fp passed, $ff failed, 0 skipped (${#targets[@]} targets)"
			report+=("${fuzz_failed[@]}")
		else
			tail -n 30 "$logs/fuzz-make.log"
			add_counts 0 1 0
			note "fuzz: make fuzz FAILED ($logs/fuzz-make.log)"
		fi
	fi
fi

# ---- stage: valgrind over the daemon's integration tests --------------------

# The tests of the daemon's protocol paths, error paths, reload and drain
# (the browser, AMQP and scale-out tests add other programs, not daemon
# code paths). About 5 minutes on 2 cores.
valgrind_tests="test_ws_ops test_ws_errors test_sse test_http test_outage
	test_drain test_auth test_reload"

if [ "$skip_valgrind" = 1 ]; then
	note "valgrind: skipped (MQGATE_SKIP_VALGRIND)"
else
	stage "valgrind: make check of the daemon's integration tests under valgrind"
	if build_check valgrind; then
		vt=
		for t in $valgrind_tests; do
			vt="$vt tests/it/$t.py"
		done
		MQGATE_VALGRIND=1 check_stage valgrind "$build/check" TESTS="${vt# }"
	fi
fi

# ---- stage: the demo, end to end -------------------------------------------

if [ "$skip_demo" = 1 ]; then
	note "demo: skipped (MQGATE_SKIP_DEMO)"
else
	stage "demo: tools/demo.sh --check"
	if build_check demo; then
		if run_timed 300 "$logs/demo.log" '' \
			"$top/tools/demo.sh" --check --build-dir "$build/check"; then
			add_counts 1 0 0
			grep -E '^(ok|FAIL) - ' "$logs/demo.log"
			note "demo: passed"
		else
			cat "$logs/demo.log"
			add_counts 0 1 0
			note "demo: FAILED ($logs/demo.log)"
		fi
	fi
fi

finish
