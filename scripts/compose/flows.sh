# The README's three flows, through the containers of the compose stack, from the host as a
# user would drive them (sourced by scripts/compose-test.sh, which defines step, done_step,
# fail, wait_for and focus). Each flow asserts on what the user would look at: the retry
# in GitLab, the analysis and the action in the chat, the cluster's Reconciled condition.
# Then the operator's console: signing in with the dev admin and seeing the overview.

receiver=http://127.0.0.1:8081
herder=http://127.0.0.1:8082
reconciler=http://127.0.0.1:8085
console=http://127.0.0.1:8086
fleet_api=http://127.0.0.1:8000/api/hyperfleet/v1
fake_gitlab=http://127.0.0.1:8090
fake_kube=http://127.0.0.1:8091
fake_webex=http://127.0.0.1:8092

# post_json URL FILE [curl args...]: POSTs a JSON file (answer in $flow_dir/answer), prints the
# status and fails unless 2xx.
post_json() {
  local url=$1 body=$2 status
  shift 2
  status=$(curl -sS -o "$flow_dir/answer" -w '%{http_code}' -X POST "$url" \
    -H 'Content-Type: application/json' "$@" --data-binary "@$body")
  printf '    POST %s → %s\n' "$url" "$status"
  case "$status" in 2??) ;; *) cat "$flow_dir/answer" >&2; fail "POST $url answered $status" ;; esac
}

# jq_query URL FILTER [curl args...]: GET URL and run jq -e FILTER on it (fails when false/null).
jq_query() {
  local url=$1 filter=$2
  shift 2
  curl -fsS "$@" "$url" | jq -e "$filter"
}

flow_gitlab() {
  step "flow 1: a GitLab job hook → receiver → herder → the retry at the (fake) GitLab"
  focus=(webhook-receiver pipeline-herder fake-gitlab)
  post_json "$receiver/gitlab" scripts/dev/fixtures/demo-job-hook.json \
    -H 'X-Gitlab-Event: Job Hook' -H 'X-Gitlab-Token: dev-gitlab-secret'
  wait_for 60 "the herder's decision for job 1001" jq_query "$herder/api/decisions" \
    'map(select(.job_id == 1001)) | length > 0' -H 'Authorization: Bearer dev-admin-token'
  curl -fsS -H 'Authorization: Bearer dev-admin-token' "$herder/api/decisions" >"$flow_dir/decisions"
  jq -r '.[] | select(.job_id == 1001) | "    decision: \(.action) by \(.matcher) (\(.state)) for \(.job_url)"' "$flow_dir/decisions"
  # The job's page as the user follows it from a report: the fake GitLab speaks http.
  jq -e 'map(select(.job_id == 1001 and .job_url == "http://127.0.0.1:8090/demo/kernel/-/jobs/1001")) | length == 1' \
    "$flow_dir/decisions" >/dev/null || fail "the decision does not link the job's page http://127.0.0.1:8090/demo/kernel/-/jobs/1001"
  wait_for 60 "POST /projects/1/jobs/1001/retry at the fake GitLab" jq_query "$fake_gitlab/fake/requests" \
    'map(select(.method == "POST" and (.path | endswith("/projects/1/jobs/1001/retry")))) | length > 0'
  curl -fsS "$fake_gitlab/fake/requests" \
    | jq -r 'map(select(.method == "POST" and (.path | endswith("/retry")))) | .[] | "    GitLab got: \(.method) \(.path) → \(.status)"'
  done_step
}

flow_alert() {
  step "flow 2: an alert → receiver → reconciler → recipes → analysis in the (fake) Webex → approval → action"
  focus=(webhook-receiver alert-reconciler fake-webex)
  post_json "$receiver/alertmanager" services/webhook-receiver/tests/fixtures/alertmanager-v4.json \
    -H 'Authorization: Bearer dev-alertmanager-token'
  wait_for 90 "an analysis with an approval button in the fake Webex" jq_query "$fake_webex/fake/messages" \
    '[.items[] | select(.attachments | length > 0)] | length > 0'
  local message
  message=$(curl -fsS "$fake_webex/fake/messages" | jq -c '[.items[] | select(.attachments | length > 0)][0]')
  printf '%s' "$message" | jq -r '.markdown // .text' | head -8 | sed 's/^/    chat: /'
  local message_id inputs
  message_id=$(printf '%s' "$message" | jq -r .id)
  inputs=$(printf '%s' "$message" | jq -c '[.attachments[].content | .. | objects | select(.type? == "Action.Submit") | .data][0]')
  [ "$inputs" != null ] || fail "the analysis has no approve button"
  printf '    pressing %s as dev-approver\n' "$inputs"
  jq -n --arg id "$message_id" --argjson inputs "$inputs" \
    '{messageId: $id, personId: "dev-approver", inputs: $inputs}' >"$flow_dir/press.json"
  post_json "$fake_webex/fake/attachment-actions" "$flow_dir/press.json"
  jq -e '[.deliveries[] | select(.status >= 200 and .status < 300)] | length > 0' "$flow_dir/answer" >/dev/null \
    || { cat "$flow_dir/answer" >&2; fail "the reconciler did not accept the signed callback"; }
  wait_for 90 "the action's outcome in the chat" jq_query "$fake_webex/fake/messages" \
    '[.items[] | (.markdown // .text // "") | select(test("open-ticket.*approved by webex:dev-approver") and test("successful"))] | length > 0'
  curl -fsS "$fake_webex/fake/messages" \
    | jq -r '.items[-1] | (.markdown // .text) | split("\n")[:2][] | "    chat: \(.)"'
  local incident
  incident=$(curl -fsS -H 'Authorization: Bearer dev-reconciler-api-token' "$reconciler/api/incidents" | jq -r '.incidents[0].id')
  jq_query "$reconciler/api/incidents/$incident" \
    '.audit | map(select(.action == "action completed" and .detail.action == "open-ticket" and .detail.outcome == "successful")) | length == 1' \
    -H 'Authorization: Bearer dev-reconciler-api-token' >/dev/null \
    || fail "incident $incident has no audit entry for open-ticket's success"
  printf '    incident %s: open-ticket approved by webex:dev-approver, completed successfully\n' "$incident"
  done_step
}

flow_fleet() {
  step "flow 3: a cluster in fleet-api → sentinel → adapter → (fake) Kubernetes → Reconciled=True"
  focus=(fleet-api sentinel adapter fake-kube)
  jq -n '{kind: "Cluster", name: "compose-test", spec: {}}' >"$flow_dir/cluster.json"
  post_json "$fleet_api/clusters" "$flow_dir/cluster.json"
  local id
  id=$(jq -r .id "$flow_dir/answer")
  printf '    cluster %s\n' "$id"
  wait_for 120 "Reconciled=True on cluster $id" jq_query "$fleet_api/clusters/$id" \
    '.status.conditions[] | select(.type == "Reconciled" and .status == "True")'
  curl -fsS "$fleet_api/clusters/$id" \
    | jq -r '.status.conditions[] | "    condition \(.type)=\(.status) \(.reason // "")"'
  curl -fsS "$fake_kube/api/v1/namespaces" | jq -r '.items[].metadata.name | "    namespace in Kubernetes: \(.)"' | tail -3
  done_step
}

# The console as an operator meets it: the sign-in form, the dev admin of
# scripts/dev/console-users.yaml signing in, the overview behind the session cookie.
flow_console() {
  step "console: sign in as the dev admin, the overview"
  focus=(console)
  local jar=$flow_dir/console.cookies status token
  status=$(curl -sS -c "$jar" -o "$flow_dir/login.html" -w '%{http_code}' "$console/login")
  printf '    GET %s/login → %s\n' "$console" "$status"
  [ "$status" = 200 ] || fail "GET $console/login answered $status"
  grep -q $'\tconsole_login\t' "$jar" || fail "GET /login set no console_login cookie"
  token=$(sed -n 's/.*name="login_token" value="\([^"]*\)".*/\1/p' "$flow_dir/login.html" | head -1)
  [ -n "$token" ] || fail "the sign-in form has no hidden login_token"
  status=$(curl -sS -b "$jar" -c "$jar" -D "$flow_dir/login.headers" -o "$flow_dir/answer" -w '%{http_code}' \
    -X POST "$console/login" --data-urlencode "login_token=$token" --data-urlencode user=admin \
    --data-urlencode password=dev-admin-password --data-urlencode next=/)
  printf '    POST %s/login as admin → %s\n' "$console" "$status"
  [ "$status" = 303 ] || { cat "$flow_dir/answer" >&2; fail "signing in as admin answered $status, not 303"; }
  grep -qi '^set-cookie: console_session=[^;]' "$flow_dir/login.headers" \
    || fail "signing in as admin set no console_session cookie"
  status=$(curl -sS -b "$jar" -o "$flow_dir/overview.html" -w '%{http_code}' "$console/")
  printf '    GET %s/ with the session → %s\n' "$console" "$status"
  [ "$status" = 200 ] || fail "GET $console/ with the session answered $status"
  grep -q 'Overview' "$flow_dir/overview.html" || fail "GET $console/ with the session shows no Overview"
  done_step
}

run_flows() {
  flow_dir=$(mktemp -d)
  flow_gitlab
  flow_alert
  flow_fleet
  flow_console
  rm -rf "$flow_dir"
}
