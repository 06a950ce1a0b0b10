# The waypoint's scenes of local-node.sh (issue 10: routing, L7 policy, telemetry; issue 11: governance), sourced
# by it once the nodes, pods, agents and the waypoint pod run. Uses local-node.sh's step/ok/fail/show/in_pod and
# $root. Every scene fails the run when what it shows is not what happened; none measures wall-clock time.
# The traffic: frontend (node-a) -> node-a ztunnel -> HBONE -> waypoint pod (node-a) -> HBONE -> the chosen
# reviews pod's ztunnel (v1 on node-b, v2 on node-a).

reviews=10.96.0.12 reviews_v1=10.96.0.13 reviews_v2=10.96.0.14
waypoint_metrics() { in_pod waypoint curl -s --max-time 10 http://127.0.0.1:15020/metrics || true; }
# The waypoint's access-log lines for requests whose path starts with $1 (a fixed string).
waypoint_log() { grep -F "\"GET $1" "$root/waypoint/access.log" || true; }
# Status codes of N requests in one curl (one connection, one HBONE tunnel; each request routed on its own).
codes() { # POD URL-WITH-[1-N]-GLOB [curl args...]
  local pod=$1 url=$2; shift 2
  in_pod "$pod" curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "$@" "$url" || true
}

step "the waypoint: reviews.shop (istio.io/use-waypoint: waypoint) is served by pod waypoint on node-a"
if out=$(in_pod frontend curl -sS --max-time 10 "http://$reviews/"); then
  ok "frontend -> reviews VIP $reviews:80: \"$out\""
else fail "frontend -> reviews failed"; fi
sleep 0.3
grep -h 'direction="outbound"' "$root/node-a/access.log" | grep "$reviews" | tail -n 1 \
  | grep -oE '(dst.service|dst.hbone_addr|dst.identity)=("[^"]*"|[^ ]*)' | sed 's/^/  /' | show
if grep -h 'direction="outbound"' "$root/node-a/access.log" | grep "$reviews" | grep 'dst.hbone_addr=10.10.1.20:15008' \
     | grep -q 'dst.identity="spiffe://cluster.local/ns/shop/sa/waypoint"' \
   && waypoint_log "/ " | grep -q 'src_principal=spiffe://cluster.local/ns/shop/sa/frontend'; then
  ok "node-a's ztunnel sent it to the waypoint, which saw frontend's identity and routed it"
  waypoint_log "/ " | tail -n 1 | cut -c1-160 | show
else fail "the waypoint did not log the request (see $root/waypoint/access.log)"; fi

step "a. header-based route (HTTPRoute shop/reviews): x-version: v2 goes to reviews v2"
v2=$(in_pod frontend curl -s --max-time 30 -H 'x-version: v2' "http://$reviews/header/[1-10]" | grep -c '^reviews v2$' || true)
if [ "$v2" = 10 ]; then ok "10 of 10 requests with x-version: v2 answered by reviews v2"
else fail "$v2 of 10 requests with x-version: v2 reached v2"; fi

step "b. weighted split 75/25 between reviews-v1 and reviews-v2 (200 requests)"
split=$(in_pod frontend curl -s --max-time 60 "http://$reviews/split/[1-200]" || true)
n1=$(grep -c '^reviews v1$' <<< "$split" || true); n2=$(grep -c '^reviews v2$' <<< "$split" || true)
# 200 draws at 25%: 50 expected, standard deviation 6; 20..80 is 5 deviations either side (never flakes).
if [ $((n1 + n2)) = 200 ] && [ "$n2" -ge 20 ] && [ "$n2" -le 80 ]; then
  ok "v1 answered $n1, v2 answered $n2 (expected about 150/50)"
else fail "split: v1 $n1, v2 $n2 of 200 (expected about 150/50)"; fi

step "c. L7 authorization at the waypoint: /admin denied (AuthorizationPolicy shop/reviews-deny-admin)"
body=$(in_pod frontend curl -s --max-time 10 -w ' %{http_code}' "http://$reviews/admin/users" || true)
if [ "${body##* }" = 403 ] && grep -q 'RBAC: access denied' <<< "$body"; then
  ok "GET /admin/users -> 403 \"${body% *}\"; GET /reviews/1 -> $(in_pod frontend curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$reviews/reviews/1" || true)"
else fail "GET /admin/users answered \"$body\", not 403 RBAC: access denied"; fi
sleep 0.3
if waypoint_log "/admin/users" | grep -q '" 403 DENY '; then
  ok "the waypoint's access log: 403 with flag DENY"
else fail "no 403 DENY in the waypoint's access log"; fi

step "d. istio_requests_total from the waypoint's metrics (pod waypoint, :15020)"
metrics=$(waypoint_metrics)
grep -E '^istio_requests_total\{' <<< "$metrics" | grep 'source_workload="frontend"' \
  | sed -E 's/.*reporter="([^"]*)".*source_workload="([^"]*)".*destination_workload="([^"]*)".*destination_service="([^"]*)".*response_code="([^"]*)".*response_flags="([^"]*)".*\} (.*)/{reporter=\1 source=\2 destination=\3 service=\4 code=\5 flags=\6} \7/' | show
ok200=$(grep -E '^istio_requests_total\{' <<< "$metrics" | grep 'reporter="waypoint"' | grep 'source_principal="spiffe://cluster.local/ns/shop/sa/frontend"' \
  | grep 'destination_workload="reviews-v2"' | grep 'destination_version="v2"' | grep -E 'destination_service="reviews(-v2)?\.shop\.svc\.cluster\.local"' | grep -c 'response_code="200"' || true)
deny=$(grep -E '^istio_requests_total\{' <<< "$metrics" | grep 'reporter="waypoint"' | grep 'response_code="403"' | grep -c 'response_flags="DENY"' || true)
if [ "$ok200" -ge 1 ] && [ "$deny" -ge 1 ]; then
  ok "reporter=\"waypoint\" with source/destination workload, principal, version and service; the denial as 403 DENY"
else fail "istio_requests_total from the waypoint lacks the expected labels (200 to reviews-v2: $ok200 series, 403 DENY: $deny)"; fi

step "e. rate limit (HTTPLocalRateLimitPolicy shop/reviews-limits): batch may send 5/s, frontend is not limited"
burst=$(codes batch "http://$reviews/burst/[1-30]")
n200=$(grep -c '^200$' <<< "$burst" || true); n429=$(grep -c '^429$' <<< "$burst" || true)
after=$(codes frontend "http://$reviews/unlimited/[1-10]" | grep -c '^200$' || true)
if [ "$n200" -ge 1 ] && [ "$n429" -ge 1 ] && [ $((n200 + n429)) = 30 ] && [ "$after" = 10 ]; then
  ok "batch's burst of 30: $n200 answered, $n429 refused with 429; frontend right after: 10 of 10 answered"
else fail "burst of 30 from batch: $n200 x 200, $n429 x 429; frontend after: $after of 10"; fi
sleep 0.3
limited=$(waypoint_metrics | grep -E '^ambient_rate_limited_total\{' | grep 'reviews.shop' | grep -oE '[0-9]+$' | head -n 1)
if waypoint_log "/burst/" | grep -q '" 429 RL '; then
  ok "429 flagged RL in the access log; ambient_rate_limited_total for reviews: ${limited:-none}"
else fail "no 429 RL in the waypoint's access log"; fi

step "f. retries (HTTPRoute retry: attempts 2, codes [503]): a backend that fails every other request"
direct=$(codes frontend "http://$reviews_v1/flaky/direct/[1-6]")
d503=$(grep -c '^503$' <<< "$direct" || true)
via=$(codes frontend "http://$reviews/flaky/[1-6]")
v200=$(grep -c '^200$' <<< "$via" || true)
if [ "$d503" = 3 ] && [ "$v200" = 6 ]; then
  ok "straight to reviews-v1 (no waypoint): 3 of 6 failed with 503; through the waypoint: 6 of 6 answered"
else fail "direct: $d503 of 6 failed (expected 3); through the waypoint: $v200 of 6 answered (expected 6)"; fi
retried=$(waypoint_metrics | grep -E '^ambient_retries_total\{' | grep 'result="retried"' | grep -oE '[0-9]+$' | head -n 1)
if [ "${retried:-0}" -ge 1 ]; then ok "ambient_retries_total{result=\"retried\"} $retried"
else fail "the waypoint counted no retries"; fi

step "g. outlier detection (DestinationRule shop/reviews: 2 consecutive 5xx eject an endpoint)"
# /broken fails on v2 only: keep asking until v2 has failed twice; then v2 is out and every answer is v1's.
fails=0
for _ in $(seq 1 60); do
  [ "$(in_pod frontend curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$reviews/broken/probe" || true)" = 500 ] && fails=$((fails + 1))
  [ "$fails" = 2 ] && break
done
after=$(codes frontend "http://$reviews/broken/after/[1-10]" | grep -c '^200$' || true)
ejected=$(waypoint_metrics | grep -E '^ambient_outlier_ejections_total\{destination_service="reviews.shop.svc.cluster.local"' | grep -oE '[0-9]+$' | head -n 1)
if [ "$fails" = 2 ] && [ "$after" = 10 ] && [ "${ejected:-0}" -ge 1 ]; then
  ok "v2 answered 500 twice and was ejected: the next 10 requests all answered by v1; ambient_outlier_ejections_total $ejected"
else fail "outlier: v2 failed $fails times, then $after of 10 answered, ejections ${ejected:-none}"; fi

step "h. fault injection (VirtualService shop/reviews-v2: x-delay: 1 waits 200 ms at the waypoint)"
code=$(in_pod frontend curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'x-delay: 1' "http://$reviews_v2/delayed" || true)
plain=$(in_pod frontend curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$reviews_v2/not-delayed" || true)
sleep 0.3
if [ "$code" = 200 ] && [ "$plain" = 200 ] && waypoint_log "/delayed " | grep -q '" 200 DI ' && ! waypoint_log "/not-delayed " | grep -q ' DI '; then
  ok "the delayed request answered 200 with flag DI in the access log; the one without the header has no DI"
  waypoint_log "/delayed " | tail -n 1 | cut -c1-160 | show
else fail "fault: $code / $plain; the access log: $(waypoint_log "/delayed " | tail -n 1)"; fi

step "i. tracing (OpenTelemetry SDK, OTLP/HTTP to a receiver in the waypoint's pod): a request with a sampled traceparent"
trace_id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n'); caller=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
exported() { waypoint_metrics | grep -E '^ambient_waypoint_spans_exported_total ' | grep -oE '[0-9]+$' || echo 0; }
before=$(exported)
answer=$(in_pod frontend curl -s --max-time 10 -H "traceparent: 00-$trace_id-$caller-01" "http://$reviews/traced" || true)
# The waypoint exports in batches (every 200 ms here): wait until its two spans are out, then stop the receiver,
# which prints what it got as span trees.
for _ in $(seq 1 100); do [ "$(exported)" -ge $((before + 2)) ] && break; sleep 0.1; done
receiver=$(cat "$root/waypoint/otlp-receiver.pid")
kill "$receiver" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$receiver" 2>/dev/null || break; sleep 0.1; done
tree=$(awk -v t="trace $trace_id" '$0 == t { on = 1; print; next } /^trace / { on = 0 } on' "$root/waypoint/traces.txt")
server=$(grep -E "^  [^ ].*\[server\].* parent=$caller " <<< "$tree" | grep -oE 'span=[0-9a-f]+' | head -n 1 | cut -d= -f2 || true)
client=$(grep -E '^    [^ ].*\[client\]' <<< "$tree" | grep -oE 'span=[0-9a-f]+' | head -n 1 | cut -d= -f2 || true)
if [ -n "$server" ] && [ -n "$client" ] && grep -q "traceparent 00-$trace_id-$client-01" <<< "$answer"; then
  ok "trace $trace_id: the waypoint's server span continues the caller's span $caller, its client span is under it, and reviews got traceparent 00-$trace_id-$client-01"
  cut -c1-220 <<< "$tree" | show
else fail "trace $trace_id: server span ${server:-missing}, client span ${client:-missing}; reviews answered \"$answer\"; the receiver printed: $(head -c 600 "$root/waypoint/traces.txt")"; fi
