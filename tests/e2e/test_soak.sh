#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A short soak (scripts/soak.sh, SOAK_S=20): mixed L4 + L7 load while L7
# backends behind retries flap, the policy reloads every 2 s and the agent
# restarts once. Zero L4 failures, zero L7 failures outside the restart
# window (the proxy's listener is down while the agent restarts: those are
# reported, not hidden), map entries back to baseline, RSS and fds flat.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"

e2e_require_root
e2e_tmpdir || exit 1
out=$E2E_TMP/soak.out
SOAK_S=${SOAK_S:-20} bash "$E2E_ROOT/scripts/soak.sh" >"$out" 2>&1
rc=$?
grep '^soak' "$out" | sed 's/^/# /'
field() { # field PREFIX N: field N of the first line starting with PREFIX
	awk -v k="$1" -v n="$2" 'index($0, k) == 1 { print $n; exit }' "$out"
}
e2e_assert_eq "soak.sh verdict" "soak verdict ok" "$(grep '^soak verdict' "$out")"
e2e_assert_eq "soak.sh exit code" 0 "$rc"
e2e_assert_ok "L4 load ran" test "$(field 'soak load l4' 5)" -ge 1000
e2e_assert_eq "zero L4 failures (agent restart included)" 0 "$(field 'soak load l4' 9)"
e2e_assert_ok "L7 load ran" test "$(field 'soak load l7' 5)" -ge 1000
e2e_assert_eq "zero L7 failures outside the restart window" 0 "$(field 'soak l7-outside-restart' 4)"
e2e_assert_eq "no hung L7 round" 0 "$(field 'soak l7-outside-restart' 6)"
e2e_assert_match "backends flapped, policy reloaded, agent restarted" \
	'reloads ([5-9]|[1-9][0-9]+) flaps [2-9] restarts 1' "$(grep '^soak events' "$out")"
e2e_assert_eq "two agent processes sampled" 2 "$(grep -c '^soak agent' "$out")"
e2e_assert_eq "map entries back to baseline" "$(field 'soak maps before' 4)" "$(field 'soak maps after' 4)"
e2e_assert_eq "active counts back to 0" 0 "$(field 'soak active_after' 3)"
[ "$rc" = 0 ] || sed 's/^/  | /' "$out" | tail -40
e2e_finish
