#!/usr/bin/env bash
# run_llm.sh <ems-binary> — the support assistant end to end, over the wire.
#
# Starts fake_llm.py (a fake OpenAI-compatible server, Python stdlib) and an
# embedded `ems serve` pointed at it (LLM_API_URL, a random LLM_API_KEY,
# LLM_MODEL=fake-model, LLM_TIMEOUT_MS=1500), both on free loopback ports in
# a temp dir, then asks POST /api/support/messages as a registered client:
#   - rule questions (source "rule" and the rule's id);
#   - answers from the client's own data: no devices yet; then, with a device
#     and a reading yesterday (when the monitoring API is there), the kWh of
#     yesterday, the top device and the alert; without it, "not available";
#   - an unmatched question (source "llm", the fake's reply; the fake saw the
#     key, the model, a system prompt and the question);
#   - the fake slow beyond the timeout, answering 500, answering malformed
#     JSON (source "fallback", within about the timeout);
#   - no token or a bad one (401); empty, blank, oversized text, bad tz,
#     unknown field (400);
#   - the key never appears in the server's log;
#   - a bad rules file stops start-up with a message naming the file and rule.
# Prints PASS/FAIL lines and "N passed, N failed"; stops both processes by PID.
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
# shellcheck disable=SC2016  # check ... eval '...' expands when the check runs, on purpose
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
tmp=$(make_tmp support 700)
pids=()
passed=0
failed=0

cleanup() {
  local rc=$?
  stop_pids "${pids[@]}"
  logs_clean "FAIL sanitizer errors in a server log:" "$tmp"/*.log || rc=1
  if [ "$rc" -ne 0 ]; then tail_logs 30 "$tmp/ems.log"; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # <name> <command...>: PASS if the command succeeds
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

wait_for() { # <seconds> <command...>: polls every 0.1 s
  local tries=$(($1 * 10))
  shift
  for _ in $(seq "$tries"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# ---- the fake LLM and the server ----
key="test-key-$(random_token 16)"
admin_password=$(random_token 18)
python3 "$here/fake_llm.py" --port-file "$tmp/llm.port" --key "$key" --slow 5 >"$tmp/llm.log" 2>&1 &
pids+=($!)
wait_for 10 test -s "$tmp/llm.port" || { echo "FAIL fake LLM did not start"; exit 1; }
llm="http://127.0.0.1:$(cat "$tmp/llm.port")"

start_ems() { # <name> [VAR=value...]: an embedded server on any free port, log <name>.log
  local name=$1
  shift
  mkdir -p "$tmp/$name"
  env EMS_ADMIN_PASSWORD="$admin_password" EMS_LOGIN_RATE=100000 EMS_HTTP_THREADS=4 "$@" \
    "$ems" serve --data-dir "$tmp/$name" --port 0 --bind 127.0.0.1 --web-dir "$tmp/$name" \
    >"$tmp/$name.log" 2>&1 </dev/null &
  pids+=($!)
  last_pid=$!
}

start_ems ems LLM_API_URL="$llm" LLM_API_KEY="$key" LLM_MODEL=fake-model LLM_TIMEOUT_MS=1500 EMS_LOG_LEVEL=debug
ems_pid=$last_pid
listening() { grep -q 'event=ems.listening' "$tmp/ems.log"; }
if ! wait_for 30 listening; then
  echo "FAIL ems did not start"
  exit 1
fi
port=$(sed -nE 's/.*event=ems.listening.* port=([0-9]+).*/\1/p' "$tmp/ems.log" | head -n 1)
api="http://127.0.0.1:$port"

# ---- helpers over the wire ----
req() { # <method> <path> <token or -> [json]: sets status, writes $tmp/body
  local auth=()
  [ "$3" != - ] && auth=(-H "Authorization: Bearer $3")
  if [ $# -ge 4 ]; then
    status=$(curl -s -m 20 -o "$tmp/body" -w '%{http_code}' -X "$1" "${auth[@]}" -H 'Content-Type: application/json' \
      --data-binary "$4" "$api$2")
  else
    status=$(curl -s -m 20 -o "$tmp/body" -w '%{http_code}' -X "$1" "${auth[@]}" "$api$2")
  fi
}
ask() { # <token> <text> [tz]: POST /api/support/messages
  local body
  if [ $# -ge 3 ]; then body=$(jq -cn --arg t "$2" --arg z "$3" '{text: $t, tz: $z}')
  else body=$(jq -cn --arg t "$2" '{text: $t}'); fi
  req POST /api/support/messages "$1" "$body"
}
field() { jq -r "$1" "$tmp/body" 2>/dev/null; }
is_rule() { [ "$status" = 200 ] && [ "$(field .source)" = rule ] && [ "$(field .rule)" = "$1" ]; }
reply_has() { field .reply | grep -qF -- "$1"; }

req POST /api/auth/register - '{"username":"ana","password":"correct-horse","first_name":"Ana","last_name":"Pop","email":"ana@example.com"}'
client=$(field .token)
client_id=$(field .user.id)
req POST /api/auth/login - "$(jq -cn --arg p "$admin_password" '{username: "admin", password: $p}')"
admin=$(field .token)
check "register a client and sign in the admin" test -n "$client" -a "$client" != null -a -n "$admin" -a "$admin" != null

# ---- rules ----
ask "$client" "How do I read the chart?"
check "rule: chart question → source rule, rule chart" is_rule chart
ask "$client" "WHAT is a kWh???"
check "rule: kWh question, any case → rule kwh" is_rule kwh
ask "$client" "hello"
check "rule: greeting uses the username" eval 'is_rule greeting && reply_has "Hello ana"'
ask "$client" "How much is my bill?"
check "rule: billing → polite refusal" eval 'is_rule billing && reply_has "not handled"'

# ---- answers from the client's own data ----
ask "$client" "How much did I use yesterday?"
check "data: no devices yet → says so" eval 'is_rule usage_yesterday && reply_has "no devices"'
ask "$client" "Which of my devices uses most?"
check "data: top device without devices → says so" eval 'is_rule top_device && reply_has "no devices"'

req POST /api/devices "$admin" "$(jq -cn --arg o "$client_id" '{name: "Heater", max_hourly_kwh: 1.0, owner_id: $o}')"
heater=$(field .id)
req POST /api/devices "$admin" "$(jq -cn --arg o "$client_id" '{name: "Lamp", max_hourly_kwh: 1.0, owner_id: $o}')"
check "admin assigns two devices to the client" test "$status" = 201 -a -n "$heater"

yesterday=$(date -u -d yesterday +%F)
req GET "/api/alerts" "$client"
if [ "$status" = 200 ]; then
  # The monitoring API is there: a reading yesterday, over the heater's limit.
  known() { req GET "/api/consumption/$heater?date=$yesterday&tz=UTC" "$client"; [ "$status" = 200 ]; }
  check "monitoring knows the device" wait_for 10 known
  ts=$(($(date -u -d "$yesterday 12:00" +%s) * 1000))
  req POST /api/readings "$admin" "$(jq -cn --arg d "$heater" --argjson t "$ts" \
    '[{timestamp: $t, device_id: $d, measurement_value: 1.0}, {timestamp: ($t + 900000), device_id: $d, measurement_value: 0.5}]')"
  check "admin posts yesterday's readings" test "${status:0:1}" = 2
  usage() { ask "$client" "How much did I use yesterday?" UTC; is_rule usage_yesterday && reply_has "1.50 kWh"; }
  check "data: yesterday's usage is the readings' sum (1.50 kWh)" wait_for 10 usage
  top() { ask "$client" "which of my devices uses the most?"; is_rule top_device && reply_has '"Heater" used the most: 1.50 kWh'; }
  check "data: top device over 7 days is the heater" wait_for 10 top
  over() { ask "$client" "Did I go over my limit?" UTC; is_rule limit_exceeded && reply_has "Yes: 1 hour" && reply_has Heater; }
  check "data: the alert for going over the limit" wait_for 10 over
else
  ask "$client" "How much did I use yesterday?"
  check "data: no consumption API → not available, no number" eval 'is_rule usage_yesterday && reply_has "not available" && ! reply_has kWh'
  ask "$client" "Did I go over my limit?"
  check "data: no alerts API → not available" eval 'is_rule limit_exceeded && reply_has "not available"'
fi
# The data answers go through the API with the caller's token: an admin's question is about the admin's devices.
ask "$admin" "How much did I use yesterday?"
check "data: an admin without devices of their own → no devices" eval 'is_rule usage_yesterday && reply_has "no devices"'

# ---- the LLM path ----
ask "$client" "Tell me about penguins"
check "llm: unmatched question → source llm, the fake's reply" \
  eval '[ "$status" = 200 ] && [ "$(field .source)" = llm ] && reply_has "fake-llm: a short answer about Tell me about penguins" && [ "$(field .rule)" = null ]'
curl -s -m 5 "$llm/control/last" >"$tmp/last"
lastf() { jq -r "$1" "$tmp/last"; }
check "llm: the fake got the key as a bearer token" test "$(lastf .last.authorization_ok)" = true
check "llm: the fake got the model" test "$(lastf .last.model)" = fake-model
check "llm: system prompt then the question" eval '[ "$(lastf ".last.messages[0].role")" = system ] && [ -n "$(lastf ".last.messages[0].content")" ] && [ "$(lastf ".last.messages[1].content")" = "Tell me about penguins" ] && [ "$(lastf .last.path)" = /v1/chat/completions ] && [ "$(lastf .last.max_tokens)" -le 300 ]'

t0=$(date +%s%N)
ask "$client" "Tell me about penguins xyzzy-slow"
elapsed=$((($(date +%s%N) - t0) / 1000000))
check "llm slow beyond the timeout → fallback" eval '[ "$status" = 200 ] && [ "$(field .source)" = fallback ] && reply_has administrator'
check "llm slow → answered within about the timeout (${elapsed} ms, timeout 1500)" test "$elapsed" -ge 1400 -a "$elapsed" -lt 4000
ask "$client" "Tell me about penguins xyzzy-500"
check "llm HTTP 500 → fallback" eval '[ "$status" = 200 ] && [ "$(field .source)" = fallback ]'
ask "$client" "Tell me about penguins xyzzy-malformed"
check "llm malformed JSON → fallback" eval '[ "$status" = 200 ] && [ "$(field .source)" = fallback ]'
curl -s -m 5 -X POST -d '{"mode":"error"}' "$llm/control/mode" >/dev/null
ask "$client" "Tell me about owls"
check "llm error mode set by the control endpoint → fallback" eval '[ "$status" = 200 ] && [ "$(field .source)" = fallback ]'
curl -s -m 5 -X POST -d '{"mode":"success"}' "$llm/control/mode" >/dev/null
check "llm failures logged with the host and status" grep -qE 'event=support.llm_failed host=127.0.0.1 status=500' "$tmp/ems.log"

# ---- refusals ----
ask - "hello"
check "no token → 401" test "$status" = 401
ask "not.a.token" "hello"
check "bad token → 401" test "$status" = 401
ask "$client" ""
check "empty text → 400" test "$status" = 400
ask "$client" "  	 "
check "blank text → 400" test "$status" = 400
ask "$client" "$(head -c 1001 /dev/zero | tr '\0' a)"
check "1001 characters → 400" test "$status" = 400
ask "$client" "$(python3 -c 'print("é" * 1000)')"
check "1000 characters (2000 bytes) → 200" test "$status" = 200
ask "$client" "hello" "Mars/Olympus_Mons"
check "unknown tz → 400" test "$status" = 400
req POST /api/support/messages "$client" '{"text": "hello", "colour": "blue"}'
check "unknown field → 400" test "$status" = 400
req POST /api/support/messages "$client" '{"text": 42}'
check "text not a string → 400" test "$status" = 400
req POST /api/support/messages "$client" 'not json'
check "malformed body → 400" test "$status" = 400
req GET /api/support/messages "$client"
check "GET → 405" test "$status" = 405

check "the server is still running" alive "$ems_pid"
check "the key never appears in the server log" eval '! grep -qF -- "$key" "$tmp/ems.log"'
check "nor in the fake's log" eval '! grep -qF -- "$key" "$tmp/llm.log"'

# ---- a bad rules file stops start-up ----
cat >"$tmp/bad-rules.json" <<'JSON'
{"min_score": 3, "fallback": "f", "system_prompt": "p",
 "rules": [{"id": "fine", "keywords": {"a": 3}, "answer": "x"},
           {"id": "broken", "keywords": {"b": 0}, "answer": "y"}]}
JSON
start_ems bad EMS_SUPPORT_RULES="$tmp/bad-rules.json"
bad_pid=$last_pid
exited() { ! alive "$bad_pid"; }
check "bad rules file: ems exits" wait_for 30 exited
wait "$bad_pid" 2>/dev/null
bad_rc=$?
check "bad rules file: non-zero exit status ($bad_rc)" test "$bad_rc" -ne 0
check "bad rules file: the message names the file and the rule" \
  grep -qF "$tmp/bad-rules.json: rule 'broken' (#2): keyword 'b': weight" "$tmp/bad.log"
check "bad rules file: nothing listens" eval '! grep -q event=ems.listening "$tmp/bad.log"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
