#!/bin/sh
# summary.sh - counts the test results automake's parallel harness left in
# build directories (one .trs file per test, one ":test-result:" line per
# result; TAP tests may have many).
#
#   tools/summary.sh [--raw] [--list] DIR...
#
# Prints "N passed, N failed, N skipped" over every DIR: PASS and XFAIL
# count as passed, FAIL, XPASS and ERROR as failed, SKIP as skipped.
# --raw prints the three numbers alone ("P F S") for scripts to add up;
# --list also prints each failed test's log file name on stderr.
# Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.

raw=no
list=no
while [ $# -gt 0 ]; do
	case $1 in
	--raw) raw=yes ;;
	--list) list=yes ;;
	-h|--help)
		sed -n '2,12s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	--) shift; break ;;
	-*) echo "summary.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
if [ $# -eq 0 ]; then
	echo "usage: summary.sh [--raw] [--list] DIR..." >&2
	exit 2
fi

for dir in "$@"; do
	if [ ! -d "$dir" ]; then
		echo "summary.sh: $dir: not a directory" >&2
		exit 2
	fi
done

# One result word per line, prefixed by its .trs file when listing.
results=$(find "$@" -name '*.trs' -type f -exec awk '
	/^:test-result:/ {
		r = $2
		if (r == "FAIL" || r == "XPASS" || r == "ERROR")
			print "bad " FILENAME
		else if (r == "SKIP")
			print "skip " FILENAME
		else if (r == "PASS" || r == "XFAIL")
			print "ok " FILENAME
		else
			print "bad " FILENAME
	}' {} +)

pass=0
fail=0
skip=0
if [ -n "$results" ]; then
	pass=$(printf '%s\n' "$results" | grep -c '^ok ')
	fail=$(printf '%s\n' "$results" | grep -c '^bad ')
	skip=$(printf '%s\n' "$results" | grep -c '^skip ')
fi

if [ $list = yes ] && [ "$fail" -gt 0 ]; then
	printf '%s\n' "$results" | sed -n 's/^bad \(.*\)\.trs$/FAILED: \1.log/p' |
		sort -u >&2
fi

if [ $raw = yes ]; then
	echo "$pass $fail $skip"
else
	echo "$pass passed, $fail failed, $skip skipped"
fi
[ "$fail" -eq 0 ]
