#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# report.sh DIR — DIR/raw.tsv (scenario, metric, group, contender, value; one
# line per sample) and DIR/labels.tsv into DIR/summary.tsv, DIR/results.md
# and DIR/s<scenario>-<metric>.png. Median and min-max per (scenario, metric,
# group, contender); the ratio divides a median by the baseline's (the first
# contender of the scenario) in the same group.
set -euo pipefail

dir=$1
raw=$dir/raw.tsv labels=$dir/labels.tsv
[ -s "$raw" ] || { echo "report: no samples in $raw" >&2; exit 1; }
touch "$labels"

awk -F'\t' -v OFS='\t' '
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	lo = a[1]; hi = a[n]; cnt = n
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# a scenario with one contender has no baseline to compare with
FNR == NR { if (!(($1, "base") in lab)) lab[$1, "base"] = $2; else multi[$1] = 1; next }
{
	k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
	if (!(k in v)) order[++n] = k
	v[k] = v[k] " " $5
}
END {
	print "scenario", "metric", "group", "contender", "reps", "median", "min", "max", "ratio"
	for (i = 1; i <= n; i++) {
		split(order[i], f, SUBSEP)
		med[order[i]] = median(v[order[i]])
		mn[order[i]] = lo; mx[order[i]] = hi; c[order[i]] = cnt
	}
	for (i = 1; i <= n; i++) {
		split(order[i], f, SUBSEP)
		b = f[1] SUBSEP f[2] SUBSEP f[3] SUBSEP lab[f[1], "base"]
		r = (f[1] in multi) && (b in med) && med[b] + 0 != 0 ? sprintf("%.2f", med[order[i]] / med[b]) : "-"
		print f[1], f[2], f[3], f[4], c[order[i]], med[order[i]], mn[order[i]], mx[order[i]], r
	}
}' "$labels" "$raw" >"$dir/summary.tsv"

title() {
	case "$1" in
	1) echo "Scenario 1 — pod-to-pod TCP, 64 B request/response and 64 KiB-write throughput (client pod → server pod)" ;;
	2) echo "Scenario 2 — HTTP/1.1 through one L7 hop (header match + 90/10 split, keep-alive, 1 KiB bodies)" ;;
	3) echo "Scenario 3 — connect() rate to one VIP with N other services installed (client and server pinned to CPU 0)" ;;
	4) echo "Scenario 4 — control plane: apply from YAML, one-endpoint change, agent RSS" ;;
	5) echo "Scenario 5 — control plane on the Kubernetes API: initial sync, change propagation, API bytes at rest" ;;
	6) echo "Scenario 6 — unary h2c (gRPC-shaped) through one L7 hop (header match + 90/10 split, HTTP/2 both sides, 1 KiB)" ;;
	esac
}

short() {
	case "$1" in
	1) echo "1: pod-to-pod TCP (64 B request/response, 64 KiB writes)" ;;
	2) echo "2: HTTP/1.1 through one L7 hop" ;;
	3) echo "3: connect() to one VIP with N other services" ;;
	4) echo "4: control plane" ;;
	5) echo "5: Kubernetes API" ;;
	6) echo "6: h2c through one L7 hop" ;;
	esac
}

fmt() { awk -v x="$1" 'BEGIN { if (x == "" ) print "-"; else if (x + 0 >= 1000) printf "%.0f", x; else if (x + 0 >= 10) printf "%.1f", x; else printf "%.2f", x }'; }

{
	echo "# sockmesh benchmark results"
	echo
	echo "Each cell: median of the repetitions [min–max], then the ratio to the"
	echo "scenario's baseline (first row) in the same column. Latencies: lower is"
	echo "better; MB/s, requests/s and connects/s: higher is better."
	echo
	echo '```'
	cat "$dir/versions.txt" 2>/dev/null
	echo '```'
	for s in $(cut -f1 "$dir/summary.tsv" | tail -n +2 | awk '!seen[$0]++'); do
		echo
		echo "## $(title "$s")"
		mapfile -t groups < <(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s && !seen[$3]++ { print $3 }' "$dir/summary.tsv")
		for g in "${groups[@]}"; do
			mapfile -t metrics < <(awk -F'\t' -v s="$s" -v g="$g" 'NR > 1 && $1 == s && $3 == g && !seen[$2]++ { print $2 }' "$dir/summary.tsv")
			mapfile -t conts < <(awk -F'\t' -v s="$s" -v g="$g" 'NR > 1 && $1 == s && $3 == g && !seen[$4]++ { print $4 }' "$dir/summary.tsv")
			echo
			echo "**$g**"
			echo
			printf '| contender |'; printf ' %s |' "${metrics[@]}"; echo
			printf '|---|'; printf -- '---|%.0s' "${metrics[@]}"; echo
			for c in "${conts[@]}"; do
				label=$(awk -F'\t' -v s="$s" -v c="$c" '$1 == s && $2 == c { print $3; exit }' "$labels")
				printf '| %s |' "${label:-$c}"
				for m in "${metrics[@]}"; do
					row=$(awk -F'\t' -v s="$s" -v g="$g" -v c="$c" -v m="$m" '$1 == s && $3 == g && $4 == c && $2 == m' "$dir/summary.tsv")
					if [ -z "$row" ]; then printf ' – |'; continue; fi
					IFS=$'\t' read -r _ _ _ _ _ med mn mx ratio <<<"$row"
					if [ "$ratio" = - ]; then
						printf ' %s [%s–%s] |' "$(fmt "$med")" "$(fmt "$mn")" "$(fmt "$mx")"
					else
						printf ' %s [%s–%s] %s× |' "$(fmt "$med")" "$(fmt "$mn")" "$(fmt "$mx")" "$ratio"
					fi
				done
				echo
			done
		done
	done
	if [ -s "$dir/failures.txt" ]; then
		echo
		echo "## Failed"
		echo
		sed 's/^/- /' "$dir/failures.txt"
	fi
} >"$dir/results.md"

# One chart per (scenario, metric): groups on the x axis, a bar per contender
# with a min-max error bar.
awk -F'\t' 'NR > 1 && !seen[$1 FS $2]++ { print $1 "\t" $2 }' "$dir/summary.tsv" |
while IFS=$'\t' read -r s m; do
	slug=$(echo "s$s-$m" | tr '[:upper:]' '[:lower:]' | sed -e 's/µs/us/g' -e 's/[^a-z0-9]\+/-/g' -e 's/-$//')
	data=$dir/.plot-$slug.dat
	mapfile -t conts < <(awk -F'\t' -v s="$s" -v m="$m" 'NR > 1 && $1 == s && $2 == m && !seen[$4]++ { print $4 }' "$dir/summary.tsv")
	awk -F'\t' -v s="$s" -v m="$m" -v cl="${conts[*]}" '
	NR > 1 && $1 == s && $2 == m {
		if (!($3 in seen)) { seen[$3] = 1; g[++ng] = $3 }
		med[$3, $4] = $6; lo[$3, $4] = $7; hi[$3, $4] = $8
	}
	END {
		nc = split(cl, c, " ")
		for (i = 1; i <= ng; i++) {
			printf "\"%s\"", g[i]
			for (j = 1; j <= nc; j++)
				if ((g[i], c[j]) in med) printf " %s %s %s", med[g[i], c[j]], lo[g[i], c[j]], hi[g[i], c[j]]
				else printf " NaN NaN NaN"
			printf "\n"
		}
	}' "$dir/summary.tsv" >"$data"
	gnuplot <<EOF || echo "report: gnuplot failed for $slug" >&2
set terminal pngcairo size 900,480 noenhanced font ",10"
set output "$dir/$slug.png"
set title "$(short "$s")\n$m"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set key outside right top
set yrange [0:*]
set grid ytics
set ylabel "$m"
plot for [i=0:${#conts[@]}-1] "$data" using (column(2+3*i)):(column(3+3*i)):(column(4+3*i)):xtic(1) title word("${conts[*]}", i+1)
EOF
	rm -f "$data"
done
