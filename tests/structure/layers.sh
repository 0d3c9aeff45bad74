#!/bin/bash
# layers.sh - no circle among the modules of src/ (HACKING.md, "Layout"):
# each module (foo.c with foo.h, and foo-int.h) includes only modules below
# it. The #include lines give the edges and tsort finds a loop, naming the
# modules in it.
src=${top_srcdir:-$(dirname "$0")/../..}/src
edges=$(
	for f in "$src"/*.c "$src"/*.h; do
		m=$(basename "$f")
		m=${m%.*}
		m=${m%-int}
		sed -n 's/^#include "\([a-z_]*\)\(-int\)\{0,1\}\.h".*/\1/p' "$f" |
			while read -r inc; do
				[ "$inc" = "$m" ] || echo "$m $inc"
			done
	done | sort -u
)
n=$(printf '%s\n' "$edges" | grep -c .)
echo "1..2"
if [ "$n" -gt 50 ]; then
	echo "ok 1 - the #include lines of src/ give $n edges between modules"
else
	echo "not ok 1 - the #include lines of src/ give $n edges between modules (too few: is src/ there?)"
fi
if loop=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) && [ -z "$loop" ]; then
	echo "ok 2 - no circle among the modules of src/"
else
	echo "not ok 2 - no circle among the modules of src/"
	printf '%s\n' "$loop" | sed 's/^/# /'
fi
