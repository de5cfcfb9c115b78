#!/usr/bin/env bash
# splice-readme.sh copies the generated sections of RESULTS.md (from its
# first "## " heading up to the raw output) into the README between the
# <!-- bench:start --> and <!-- bench:end --> markers, one heading level
# down. Run gen-table.sh first.
#
#   ./splice-readme.sh                          # RESULTS.md into ../README.md
#   ./splice-readme.sh /tmp/README.md /tmp/RESULTS.md
set -euo pipefail
here="$(dirname "$0")"
readme="${1:-$here/../README.md}"
results="${2:-$here/RESULTS.md}"
grep -q '<!-- bench:start -->' "$readme" && grep -q '<!-- bench:end -->' "$readme" || {
	echo "splice-readme.sh: $readme lacks the <!-- bench:start --> and <!-- bench:end --> markers" >&2
	exit 1
}
awk '
	FNR == NR {
		# RESULTS.md: keep from the first "## " heading up to the raw output.
		if (/^<details>/) { stop = 1 }
		if (!stop && (started || /^## /)) { started = 1; line = $0; sub(/^## /, "### ", line); body = body line "\n" }
		next
	}
	/<!-- bench:start -->/ { print; printf "%s", body; skip = 1; next }
	/<!-- bench:end -->/ { skip = 0 }
	!skip { print }
' "$results" "$readme" > "$readme.new"
mv "$readme.new" "$readme"
