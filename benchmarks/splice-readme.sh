#!/usr/bin/env bash
# splice-readme.sh copies the generated sections of RESULTS.md (the workload
# table, the targets and the large export) into ../README.md between the
# <!-- bench:start --> and <!-- bench:end --> markers. Run gen-table.sh first.
set -euo pipefail
cd "$(dirname "$0")"
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
' RESULTS.md ../README.md > ../README.md.new
mv ../README.md.new ../README.md
