#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sockmeshctl validate (no agent, no root): the shipped policies and Istio's
# own samples validate; broken files fail with file:line:col and exit 1.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
CTL=$SM_BUILD/sockmeshctl
C=$E2E_ROOT/tests/compat/istio-samples
P=$E2E_ROOT/policies
e2e_tmpdir

v() { "$CTL" validate "$@" >"$E2E_TMP/out" 2>&1; echo $?; }

e2e_assert_eq "demo policy" 0 "$(v -f "$P/demo-l4.yaml")"
e2e_assert_eq "demo + canary + circuit breaker" 0 \
	"$(v -f "$P/demo-l4.yaml" -f "$P/reviews-canary-tcp.yaml" -f "$P/circuit-breaker-l4.yaml")"
e2e_assert_eq "the L4 test policy" 0 "$(v -f "$E2E_ROOT/tests/e2e/policies/l4.yaml")"
e2e_assert_eq "the L7 test policy" 0 "$(v -f "$E2E_ROOT/tests/e2e/policies/l7.yaml")"
mkdir -p "$E2E_TMP/dir" && cp "$P/demo-l4.yaml" "$P/reviews-canary-tcp.yaml" "$E2E_TMP/dir/"
e2e_assert_eq "a policy directory" 0 "$(v -f "$E2E_TMP/dir")"
for vs in "$C"/virtual-service-*.yaml; do
	e2e_assert_eq "istio sample $(basename "$vs")" 0 \
		"$(v -f "$C/bookinfo.yaml" -f "$C/destination-rule-all.yaml" -f "$vs")"
done
e2e_assert_eq "istio sample mtls rules (warnings only)" 0 \
	"$(v -f "$C/bookinfo.yaml" -f "$C/destination-rule-all-mtls.yaml")"
e2e_assert_match "mTLS is a warning naming the field" 'warning: .*tls' "$(cat "$E2E_TMP/out")"
e2e_assert_eq "httpbin + gateway" 0 "$(v -f "$C/httpbin.yaml" -f "$C/httpbin-gateway.yaml")"

cat >"$E2E_TMP/typo.yaml" <<'Y'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - name: v1
    lables: {version: v1}
Y
e2e_assert_eq "typo is an error" 1 "$(v -f "$E2E_TMP/typo.yaml")"
e2e_assert_match "typo error has file:line:col" 'typo\.yaml:8:5: error: .*lables' "$(cat "$E2E_TMP/out")"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: "eighty"}]\n' >"$E2E_TMP/type.yaml"
e2e_assert_eq "wrong type is an error" 1 "$(v -f "$E2E_TMP/type.yaml")"
e2e_assert_match "type error has file:line:col" 'type\.yaml:5:[0-9]+: error' "$(cat "$E2E_TMP/out")"
printf 'a: [\n' >"$E2E_TMP/syntax.yaml"
e2e_assert_eq "YAML syntax error" 1 "$(v -f "$E2E_TMP/syntax.yaml")"
e2e_assert_match "syntax error has file:line:col" 'syntax\.yaml:[0-9]+:[0-9]+: error' "$(cat "$E2E_TMP/out")"
e2e_assert_eq "missing file" 1 "$(v -f "$E2E_TMP/nope.yaml")"
e2e_finish
