#!/usr/bin/env bash
# Put the relay (Gigs events -> Pub/Sub -> Cloud Function -> Svix) on Google Cloud.
#
# Safe to run again: every step creates what is missing and updates what exists.
# Run `./deploy.sh --help` for the settings, `./deploy.sh --dry-run` to see every
# gcloud command without running any.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: ./deploy.sh [--dry-run] [--trigger=http|topic] [-h|--help]

Deploys the Gigs -> Svix relay as a Cloud Function (2nd gen, Python 3.12) and
wires it to Pub/Sub, Secret Manager, Cloud Logging and Cloud Monitoring: logs-based
metrics (outcomes, publish-to-Svix lag), alert policies, a dashboard, and a daily
reconcile (a Cloud Run job built from this source, started by Cloud Scheduler).
Safe to run again: what exists is updated, what is missing is created.

Flags:
  --dry-run         Print every command (shell-quoted) without running any; no
                    gcloud call at all, existence probes are printed and their
                    resources assumed absent, read values are placeholders, and
                    the Svix token is neither read nor shown. The files rendered
                    from monitoring/ (metrics, alert policies, the dashboard) are
                    still written (to a folder in $TMPDIR) and kept, for inspection.
  --trigger=http    (default) HTTP function (entry point `relay`) behind a
                    Pub/Sub push subscription with OIDC auth, retry policy and
                    dead-letter topic, all managed by this script.
  --trigger=topic   Eventarc variant: --trigger-topic=$EVENTS_TOPIC, entry point
                    `relay_event`, --retry; the Eventarc subscription gets the
                    dead-letter and retry policy. A function keeps its trigger
                    type: to switch, delete the function (and, going from http
                    to topic, the push subscription) first.
  -h, --help        Show this text.

Settings (environment variables, default in brackets):
  PROJECT_ID                 GCP project [gcloud config get-value project]
  REGION                     [europe-west1]
  FUNCTION_NAME              [gigs-svix-relay]
  EVENTS_TOPIC               topic the Gigs events arrive on [gigs-events]
  SUBSCRIPTION               push subscription (http trigger) [gigs-events-svix-relay]
  DEAD_LETTER_TOPIC          [gigs-events-svix-relay-dead-letter]; also the
                             relay's parking topic for poison events
  DEAD_LETTER_SUBSCRIPTION   pull subscription that keeps dead letters
                             [$DEAD_LETTER_TOPIC-sub]
  DEAD_LETTER_RETENTION      how long dead letters are kept [7d]
  SECRET_NAME                Secret Manager secret for the Svix token [svix-auth-token]
  FUNCTION_SA                service account the function runs as (id or email)
                             [gigs-svix-relay-fn]
  PUSH_SA                    service account Pub/Sub (or Eventarc) authenticates
                             as when calling the function [gigs-svix-relay-push]
  BUILD_SERVICE_ACCOUNT      optional service account email for the build
  MAX_INSTANCES              [10]
  CONCURRENCY                requests per instance [32]; above 1 needs CPU >= 1
  CPU                        vCPUs per instance [1]
  MEMORY                     [512Mi]
  TIMEOUT                    function timeout, seconds [60]
  ACK_DEADLINE               push ack deadline, seconds, above TIMEOUT [90]
  MAX_DELIVERY_ATTEMPTS      before dead-lettering, 5-100 [10]
  MIN_RETRY_DELAY            [10s]
  MAX_RETRY_DELAY            [600s]
  RELAY_MAX_IN_FLIGHT        Svix calls in flight per instance, 1-256 [$CONCURRENCY]
  RELAY_TIME_BUDGET_SECONDS  per-event time budget, below TIMEOUT [40]
  SVIX_SERVER_URL            optional Svix server URL (default: from the token)
  SVIX_APP_ID                optional Svix app id or uid
  LEDGER_SUBSCRIPTION        pull subscription on EVENTS_TOPIC that only the daily
                             reconcile reads (never acknowledged) [$EVENTS_TOPIC-ledger]
  LEDGER_RETENTION           how long it keeps events [7d]
  RECONCILE_JOB              Cloud Run job running the daily reconcile
                             [$FUNCTION_NAME-reconcile]; its schedule is the Cloud
                             Scheduler job $RECONCILE_JOB-daily
  RECONCILE_SA               service account the job runs as [gigs-svix-relay-reconcile]
  SCHEDULER_SA               service account Cloud Scheduler starts the job as
                             [gigs-svix-relay-scheduler]
  RECONCILE_SCHEDULE         cron schedule, UTC, of the reconcile of the previous UTC
                             day [30 3 * * *]
  RECONCILE_TIMEOUT          the job's task timeout [3600s]
  RECONCILE_MEMORY           the job's memory [1Gi]
  LAG_ALERT_P99_MS           alert when the p99 of publish-to-Svix lag over 5 minutes
                             stays above this many ms for 10 minutes [60000]
  ALERT_EMAIL                optional: email notification channel for the alerts
  NOTIFICATION_CHANNEL       optional: existing channel id or resource name
  SVIX_AUTH_TOKEN            the Svix token; when unset it is read from stdin
                             (hidden prompt on a terminal). Empty input keeps the
                             secret's current version, when there is one.

Run it from anywhere: it deploys the directory it lives in. Needs gcloud with
the alpha and beta components (for monitoring policies and channels), logged in
as someone who may enable APIs, create service accounts and set IAM policies.
The metrics, alert policies and the dashboard come from monitoring/*.json, with
${NAME} placeholders filled from the settings above.
EOF
}

die() {
	printf 'deploy.sh: error: %s\n' "$*" >&2
	exit 1
}

usage_error() {
	printf 'deploy.sh: %s\n' "$*" >&2
	printf "Run './deploy.sh --help' for usage.\n" >&2
	exit 2
}

# --- flags ---------------------------------------------------------------------

DRY_RUN=0
TRIGGER=http
while (($# > 0)); do
	case $1 in
	--dry-run) DRY_RUN=1 ;;
	--trigger=*) TRIGGER=${1#--trigger=} ;;
	--trigger)
		(($# > 1)) || usage_error "--trigger needs a value: http or topic"
		TRIGGER=$2
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown option: $1" ;;
	esac
	shift
done
case $TRIGGER in
http | topic) ;;
*) usage_error "--trigger must be http or topic, not '$TRIGGER'" ;;
esac

# --- settings ------------------------------------------------------------------

PROJECT_ID=${PROJECT_ID:-}
REGION=${REGION:-europe-west1}
FUNCTION_NAME=${FUNCTION_NAME:-gigs-svix-relay}
EVENTS_TOPIC=${EVENTS_TOPIC:-gigs-events}
SUBSCRIPTION=${SUBSCRIPTION:-gigs-events-svix-relay}
DEAD_LETTER_TOPIC=${DEAD_LETTER_TOPIC:-gigs-events-svix-relay-dead-letter}
DEAD_LETTER_SUBSCRIPTION=${DEAD_LETTER_SUBSCRIPTION:-${DEAD_LETTER_TOPIC}-sub}
DEAD_LETTER_RETENTION=${DEAD_LETTER_RETENTION:-7d}
SECRET_NAME=${SECRET_NAME:-svix-auth-token}
FUNCTION_SA=${FUNCTION_SA:-gigs-svix-relay-fn}
PUSH_SA=${PUSH_SA:-gigs-svix-relay-push}
BUILD_SERVICE_ACCOUNT=${BUILD_SERVICE_ACCOUNT:-}
MAX_INSTANCES=${MAX_INSTANCES:-10}
CONCURRENCY=${CONCURRENCY:-32}
CPU=${CPU:-1}
MEMORY=${MEMORY:-512Mi}
TIMEOUT=${TIMEOUT:-60}
TIMEOUT=${TIMEOUT%s}
ACK_DEADLINE=${ACK_DEADLINE:-90}
ACK_DEADLINE=${ACK_DEADLINE%s}
MAX_DELIVERY_ATTEMPTS=${MAX_DELIVERY_ATTEMPTS:-10}
MIN_RETRY_DELAY=${MIN_RETRY_DELAY:-10s}
MAX_RETRY_DELAY=${MAX_RETRY_DELAY:-600s}
RELAY_MAX_IN_FLIGHT=${RELAY_MAX_IN_FLIGHT:-$CONCURRENCY}
RELAY_TIME_BUDGET_SECONDS=${RELAY_TIME_BUDGET_SECONDS:-40}
SVIX_SERVER_URL=${SVIX_SERVER_URL:-}
SVIX_APP_ID=${SVIX_APP_ID:-}
LEDGER_SUBSCRIPTION=${LEDGER_SUBSCRIPTION:-${EVENTS_TOPIC}-ledger}
LEDGER_RETENTION=${LEDGER_RETENTION:-7d}
RECONCILE_JOB=${RECONCILE_JOB:-${FUNCTION_NAME}-reconcile}
RECONCILE_SA=${RECONCILE_SA:-gigs-svix-relay-reconcile}
SCHEDULER_SA=${SCHEDULER_SA:-gigs-svix-relay-scheduler}
RECONCILE_SCHEDULE=${RECONCILE_SCHEDULE:-30 3 * * *}
RECONCILE_TIMEOUT=${RECONCILE_TIMEOUT:-3600s}
RECONCILE_MEMORY=${RECONCILE_MEMORY:-1Gi}
LAG_ALERT_P99_MS=${LAG_ALERT_P99_MS:-60000}
ALERT_EMAIL=${ALERT_EMAIL:-}
NOTIFICATION_CHANNEL=${NOTIFICATION_CHANNEL:-}

# The token is read later (never in --dry-run); keep it out of child processes.
TOKEN_FROM_ENV=0
TOKEN=""
if [[ -n ${SVIX_AUTH_TOKEN+set} ]]; then
	TOKEN_FROM_ENV=1
	TOKEN=$SVIX_AUTH_TOKEN
	unset SVIX_AUTH_TOKEN
fi

# Never prompt half-way through a deployment.
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

if [[ -z $PROJECT_ID ]]; then
	if ((DRY_RUN)); then
		die "PROJECT_ID is not set; --dry-run does not ask gcloud, so set PROJECT_ID=..."
	fi
	command -v gcloud >/dev/null 2>&1 || die "gcloud is not installed (and PROJECT_ID is not set)"
	PROJECT_ID=$(gcloud config get-value project 2>/dev/null || true)
	[[ -n $PROJECT_ID && $PROJECT_ID != "(unset)" ]] ||
		die "PROJECT_ID is not set and gcloud has no default project: run with PROJECT_ID=my-project ./deploy.sh (or gcloud config set project my-project)"
fi

# --- validation ----------------------------------------------------------------

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

need_uint() { # NAME VALUE MIN MAX
	is_uint "$2" || die "$1 must be a whole number, not '$2'"
	((10#$2 >= $3 && 10#$2 <= $4)) || die "$1 must be between $3 and $4, not $2"
}

need_match() { # NAME VALUE REGEX WHAT
	[[ $2 =~ $3 ]] || die "$1 '$2' is not valid: $4"
}

need_seconds() { # NAME VALUE (Ns, 0-600)
	[[ $2 =~ ^[0-9]+s$ ]] || die "$1 must look like 10s, not '$2'"
	need_uint "$1" "${2%s}" 0 600
}

sa_email() { # id-or-email
	if [[ $1 == *@* ]]; then printf '%s' "$1"; else printf '%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT_ID"; fi
}

need_match PROJECT_ID "$PROJECT_ID" '^[a-z][a-z0-9.:-]*[a-z0-9]$' "a GCP project id"
need_match REGION "$REGION" '^[a-z]+-[a-z]+[0-9]+$' "a region like europe-west1"
need_match FUNCTION_NAME "$FUNCTION_NAME" '^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$' \
	"lower-case letters, digits and hyphens, at most 49 characters"
name_re='^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$'
name_what="3-255 characters: letters, digits and -_.~%+, starting with a letter"
need_match EVENTS_TOPIC "$EVENTS_TOPIC" "$name_re" "$name_what"
need_match SUBSCRIPTION "$SUBSCRIPTION" "$name_re" "$name_what"
need_match DEAD_LETTER_TOPIC "$DEAD_LETTER_TOPIC" "$name_re" "$name_what"
need_match DEAD_LETTER_SUBSCRIPTION "$DEAD_LETTER_SUBSCRIPTION" "$name_re" "$name_what"
need_match DEAD_LETTER_RETENTION "$DEAD_LETTER_RETENTION" '^[0-9]+[smhdw]$' "a duration like 7d"
need_match SECRET_NAME "$SECRET_NAME" '^[A-Za-z0-9_-]{1,255}$' "letters, digits, - and _"
sa_re='^([a-z][a-z0-9-]{4,28}[a-z0-9]|[^@[:space:]]+@[^@[:space:]]+\.gserviceaccount\.com)$'
sa_what="a service account id (6-30 characters: a-z, 0-9, -) or email"
need_match FUNCTION_SA "$FUNCTION_SA" "$sa_re" "$sa_what"
need_match PUSH_SA "$PUSH_SA" "$sa_re" "$sa_what"
need_match RECONCILE_SA "$RECONCILE_SA" "$sa_re" "$sa_what"
need_match SCHEDULER_SA "$SCHEDULER_SA" "$sa_re" "$sa_what"
need_match LEDGER_SUBSCRIPTION "$LEDGER_SUBSCRIPTION" "$name_re" "$name_what"
need_match LEDGER_RETENTION "$LEDGER_RETENTION" '^[0-9]+[smhdw]$' "a duration like 7d"
# Cloud Run job names; -daily is added for the scheduler job.
need_match RECONCILE_JOB "$RECONCILE_JOB" '^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$' \
	"lower-case letters, digits and hyphens, at most 63 characters"
need_match RECONCILE_SCHEDULE "$RECONCILE_SCHEDULE" '^[0-9A-Za-z*/,-]+( [0-9A-Za-z*/,-]+){4}$' \
	"a cron schedule of five fields, like '30 3 * * *'"
[[ $RECONCILE_TIMEOUT =~ ^[0-9]+s$ ]] || die "RECONCILE_TIMEOUT must look like 3600s, not '$RECONCILE_TIMEOUT'"
need_uint RECONCILE_TIMEOUT "${RECONCILE_TIMEOUT%s}" 60 86400
need_match RECONCILE_MEMORY "$RECONCILE_MEMORY" '^[0-9]+(k|M|G|Ki|Mi|Gi)?$' "a size like 512Mi or 1Gi"
need_uint LAG_ALERT_P99_MS "$LAG_ALERT_P99_MS" 1 86400000
if [[ -n $BUILD_SERVICE_ACCOUNT ]]; then
	need_match BUILD_SERVICE_ACCOUNT "$BUILD_SERVICE_ACCOUNT" '^[^@[:space:]]+@[^@[:space:]]+$' "a service account email"
fi
need_uint MAX_INSTANCES "$MAX_INSTANCES" 1 1000
need_uint CONCURRENCY "$CONCURRENCY" 1 1000
need_match CPU "$CPU" '^[0-9]+(\.[0-9]+)?$' "a number of vCPUs like 1 or 0.583"
need_match MEMORY "$MEMORY" '^[0-9]+(k|M|G|Ki|Mi|Gi)?$' "a size like 512Mi or 1Gi"
need_uint TIMEOUT "$TIMEOUT" 1 3600
need_uint ACK_DEADLINE "$ACK_DEADLINE" 10 600
need_uint MAX_DELIVERY_ATTEMPTS "$MAX_DELIVERY_ATTEMPTS" 5 100
need_seconds MIN_RETRY_DELAY "$MIN_RETRY_DELAY"
need_seconds MAX_RETRY_DELAY "$MAX_RETRY_DELAY"
need_uint RELAY_MAX_IN_FLIGHT "$RELAY_MAX_IN_FLIGHT" 1 256
need_uint RELAY_TIME_BUDGET_SECONDS "$RELAY_TIME_BUDGET_SECONDS" 1 540

((10#${MIN_RETRY_DELAY%s} <= 10#${MAX_RETRY_DELAY%s})) ||
	die "MIN_RETRY_DELAY ($MIN_RETRY_DELAY) must not be above MAX_RETRY_DELAY ($MAX_RETRY_DELAY)"
((10#$RELAY_TIME_BUDGET_SECONDS < 10#$TIMEOUT)) ||
	die "RELAY_TIME_BUDGET_SECONDS ($RELAY_TIME_BUDGET_SECONDS) must stay below TIMEOUT ($TIMEOUT)"
if [[ $TRIGGER == http ]]; then
	((10#$ACK_DEADLINE > 10#$TIMEOUT)) ||
		die "ACK_DEADLINE ($ACK_DEADLINE) must be above TIMEOUT ($TIMEOUT): the ack deadline is also the push request timeout"
else
	((10#$TIMEOUT <= 540)) || die "TIMEOUT ($TIMEOUT) must be at most 540 s for an event-triggered function"
fi
if ((10#$CONCURRENCY > 1)) && ! awk -v c="$CPU" 'BEGIN { exit !(c + 0 >= 1) }'; then
	die "CONCURRENCY=$CONCURRENCY needs at least 1 vCPU (CPU=$CPU): raise CPU or set CONCURRENCY=1"
fi
if [[ $SVIX_SERVER_URL == *';'* || $SVIX_SERVER_URL =~ [[:space:]] ]]; then
	die "SVIX_SERVER_URL must not contain ';' or spaces"
fi
if [[ -n $SVIX_APP_ID ]]; then
	need_match SVIX_APP_ID "$SVIX_APP_ID" '^[a-zA-Z0-9._-]{1,256}$' "an app id or uid (letters, digits, -_.)"
fi
if [[ -n $ALERT_EMAIL ]]; then
	need_match ALERT_EMAIL "$ALERT_EMAIL" '^[^@[:space:]"]+@[^@[:space:]"]+$' "an email address"
fi
if [[ -n $NOTIFICATION_CHANNEL ]]; then
	need_match NOTIFICATION_CHANNEL "$NOTIFICATION_CHANNEL" '^[A-Za-z0-9/_-]+$' "a channel id or projects/P/notificationChannels/ID"
fi

FUNCTION_SA_EMAIL=$(sa_email "$FUNCTION_SA")
PUSH_SA_EMAIL=$(sa_email "$PUSH_SA")
RECONCILE_SA_EMAIL=$(sa_email "$RECONCILE_SA")
SCHEDULER_SA_EMAIL=$(sa_email "$SCHEDULER_SA")
PARKING_TOPIC="projects/${PROJECT_ID}/topics/${DEAD_LETTER_TOPIC}"
RECONCILE_SCHEDULER_JOB="${RECONCILE_JOB}-daily"
P=(--project="$PROJECT_ID")

# --- how commands run ----------------------------------------------------------

# Commands are printed before they run: to stderr normally, to stdout (kept as
# fd 3, so that $(...) does not swallow them) in --dry-run.
exec 3>&1

quote_cmd() { # prints the arguments as one shell-quoted line
	local sq="'" out="" a
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			out+=" $a"
		else
			out+=" '${a//$sq/$sq\\$sq$sq}'"
		fi
	done
	printf '%s' "${out# }"
}

show() { # CMD...: print a command about to run
	if ((DRY_RUN)); then
		printf '+ %s\n' "$(quote_cmd "$@")" >&3
	else
		printf '+ %s\n' "$(quote_cmd "$@")" >&2
	fi
}

note() {
	if ((DRY_RUN)); then printf '# %s\n' "$*" >&3; else printf '# %s\n' "$*" >&2; fi
}

step() {
	if ((DRY_RUN)); then printf '\n## %s\n' "$*" >&3; else printf '\n## %s\n' "$*" >&2; fi
}

run() { # CMD...: print, then run unless --dry-run
	show "$@"
	if ((DRY_RUN)); then return 0; fi
	"$@"
}

run_retry() { # CMD...: like run, retried a few times (IAM changes need time to propagate)
	show "$@"
	if ((DRY_RUN)); then return 0; fi
	local attempt
	for attempt in 1 2 3 4 5; do
		if "$@"; then return 0; fi
		((attempt < 5)) || break
		note "failed; retrying in $((attempt * 10)) s (new accounts and roles take a while to propagate)"
		sleep $((attempt * 10))
	done
	return 1
}

exists() { # CMD...: a describe-style probe; true when the resource exists
	show "$@"
	if ((DRY_RUN)); then
		note "(dry run: assumed absent)"
		return 1
	fi
	"$@" >/dev/null 2>&1
}

capture() { # PLACEHOLDER CMD...: print a command and output what it prints
	local placeholder=$1
	shift
	show "$@"
	if ((DRY_RUN)); then
		note "(dry run: assumed to print '$placeholder')"
		printf '%s\n' "$placeholder"
		return 0
	fi
	"$@"
}

bind() { # the binding commands print whole policies: keep them quiet
	run_retry "$@" --format=none
}

# --- the Svix token --------------------------------------------------------------

if ((DRY_RUN)); then
	TOKEN=""
elif ((!TOKEN_FROM_ENV)); then
	if [[ -t 0 ]]; then
		printf 'Svix auth token for secret %s (input hidden; empty keeps the current version): ' "$SECRET_NAME" >&2
		IFS= read -rs TOKEN || true
		printf '\n' >&2
	else
		IFS= read -r TOKEN || true
	fi
fi
TOKEN=${TOKEN%$'\r'}

if ((!DRY_RUN)); then
	command -v gcloud >/dev/null 2>&1 || die "gcloud is not installed"
fi
cd -- "$(dirname -- "${BASH_SOURCE[0]}")"
[[ -f requirements.txt ]] || die "requirements.txt not found next to deploy.sh: is this the relay repository?"

for template in dashboard.json metric-events.json metric-publish-lag.json alert-dead-letters.json \
	alert-publish-lag.json alert-reconcile-missing.json alert-reconcile-failed.json; do
	[[ -f monitoring/$template ]] || die "monitoring/$template not found next to deploy.sh"
done
[[ -f reconcile_job.py ]] || die "reconcile_job.py not found next to deploy.sh"

# The files rendered from monitoring/ go here; a dry run keeps them for inspection.
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/relay-deploy.XXXXXX")
cleanup() {
	if ((!DRY_RUN)); then rm -rf -- "$WORK_DIR"; fi
}
trap cleanup EXIT

if ((DRY_RUN)); then
	note "dry run: nothing below is executed; project ${PROJECT_ID}, trigger ${TRIGGER}"
	note "dry run: the files rendered from monitoring/ are written and kept in ${WORK_DIR}"
fi

# monitoring/*.json name settings as ${NAME}. A number's placeholder that is a whole JSON
# string ("${LAG_ALERT_P99_MS}") becomes the number, so that the templates stay valid JSON.
TEMPLATE_NUMBERS=(LAG_ALERT_P99_MS MAX_DELIVERY_ATTEMPTS)
TEMPLATE_NAMES=(PROJECT_ID REGION FUNCTION_NAME EVENTS_TOPIC SOURCE_SUBSCRIPTION_ID
	DEAD_LETTER_SUBSCRIPTION LEDGER_SUBSCRIPTION RECONCILE_JOB RECONCILE_SCHEDULER_JOB)
CHANNELS_JSON=""
render() { # TEMPLATE: writes monitoring/TEMPLATE, filled in, to $WORK_DIR/TEMPLATE
	local text name
	text=$(<"monitoring/$1")
	for name in "${TEMPLATE_NUMBERS[@]}"; do
		text=${text//"\"\${${name}}\""/"${!name}"}
		text=${text//"\${${name}}"/"${!name}"}
	done
	for name in "${TEMPLATE_NAMES[@]}"; do
		text=${text//"\${${name}}"/"${!name}"}
	done
	if [[ $text =~ \$\{[A-Z_]+\} ]]; then
		die "monitoring/$1 names a setting deploy.sh does not fill in: ${BASH_REMATCH[0]}"
	fi
	text=${text//'"notificationChannels": []'/"\"notificationChannels\": [${CHANNELS_JSON}]"}
	printf '%s\n' "$text" >"${WORK_DIR}/$1"
}

display_name() { # FILE: the first displayName in a rendered file (the resource's own)
	[[ $(<"$1") =~ \"displayName\":\ \"([^\"]+)\" ]] || die "$1 has no displayName"
	printf '%s' "${BASH_REMATCH[1]}"
}

# --- 1. APIs -------------------------------------------------------------------

step "Enable the APIs"
apis=(
	cloudfunctions.googleapis.com
	run.googleapis.com
	cloudbuild.googleapis.com
	artifactregistry.googleapis.com
	pubsub.googleapis.com
	secretmanager.googleapis.com
	logging.googleapis.com
	monitoring.googleapis.com
	cloudscheduler.googleapis.com
	iam.googleapis.com
	cloudresourcemanager.googleapis.com
)
if [[ $TRIGGER == topic ]]; then apis+=(eventarc.googleapis.com); fi
run gcloud services enable "${apis[@]}" "${P[@]}"

PROJECT_NUMBER=$(capture PROJECT_NUMBER gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)' "${P[@]}")
[[ -n $PROJECT_NUMBER ]] || die "could not read the project number of $PROJECT_ID"
PUBSUB_AGENT="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"

# --- 2. Service accounts -------------------------------------------------------

step "Service accounts"
ensure_sa() { # EMAIL DISPLAY-NAME DESCRIPTION
	if exists gcloud iam service-accounts describe "$1" "${P[@]}"; then
		note "service account $1 exists"
	elif [[ $1 == *"@${PROJECT_ID}.iam.gserviceaccount.com" ]]; then
		run gcloud iam service-accounts create "${1%%@*}" --display-name="$2" --description="$3" "${P[@]}"
	elif ((DRY_RUN)); then
		note "(dry run: $1 is not an account of this project, so it must exist already)"
	else
		die "service account $1 does not exist (and is not one of project $PROJECT_ID, so it is not created)"
	fi
}
ensure_sa "$FUNCTION_SA_EMAIL" "$FUNCTION_NAME function" \
	"Runs the ${FUNCTION_NAME} Cloud Function (Gigs events to Svix)"
ensure_sa "$PUSH_SA_EMAIL" "$FUNCTION_NAME push" \
	"Identity Pub/Sub uses to call ${FUNCTION_NAME}"
ensure_sa "$RECONCILE_SA_EMAIL" "$FUNCTION_NAME reconcile" \
	"Runs the daily reconcile of ${FUNCTION_NAME} (Cloud Run job ${RECONCILE_JOB})"
ensure_sa "$SCHEDULER_SA_EMAIL" "$FUNCTION_NAME scheduler" \
	"Identity Cloud Scheduler uses to start ${RECONCILE_JOB}"

# --- 3. The Svix token in Secret Manager ---------------------------------------

step "Svix token in Secret Manager"
secret_existed=0
if exists gcloud secrets describe "$SECRET_NAME" "${P[@]}"; then
	secret_existed=1
	note "secret $SECRET_NAME exists"
else
	run gcloud secrets create "$SECRET_NAME" --replication-policy=automatic \
		--labels=app="$FUNCTION_NAME" "${P[@]}"
fi
add_version=(gcloud secrets versions add "$SECRET_NAME" --data-file=- "${P[@]}")
if ((DRY_RUN)); then
	printf '+ %s  # stdin: <the Svix token from SVIX_AUTH_TOKEN or the prompt, not shown>\n' \
		"$(quote_cmd "${add_version[@]}")" >&3
elif [[ -n $TOKEN ]]; then
	printf '+ %s  # stdin: the Svix token (not shown)\n' "$(quote_cmd "${add_version[@]}")" >&2
	printf '%s' "$TOKEN" | "${add_version[@]}"
elif ((secret_existed)) && gcloud secrets versions describe latest --secret="$SECRET_NAME" "${P[@]}" >/dev/null 2>&1; then
	note "no token given: keeping the current version of $SECRET_NAME"
else
	die "no Svix token given (set SVIX_AUTH_TOKEN or type it at the prompt) and secret $SECRET_NAME has no version yet"
fi
TOKEN=""
bind gcloud secrets add-iam-policy-binding "$SECRET_NAME" \
	--member="serviceAccount:${FUNCTION_SA_EMAIL}" --role=roles/secretmanager.secretAccessor "${P[@]}"
bind gcloud secrets add-iam-policy-binding "$SECRET_NAME" \
	--member="serviceAccount:${RECONCILE_SA_EMAIL}" --role=roles/secretmanager.secretAccessor "${P[@]}"

# --- 4. Topics and the dead-letter subscription --------------------------------

step "Topics and the dead-letter subscription"
ensure_topic() {
	if exists gcloud pubsub topics describe "$1" "${P[@]}"; then
		note "topic $1 exists"
	else
		run gcloud pubsub topics create "$1" "${P[@]}"
	fi
}
ensure_topic "$EVENTS_TOPIC"
ensure_topic "$DEAD_LETTER_TOPIC"
dls_flags=(--message-retention-duration="$DEAD_LETTER_RETENTION" --expiration-period=never --ack-deadline=60)
if exists gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION" "${P[@]}"; then
	run gcloud pubsub subscriptions update "$DEAD_LETTER_SUBSCRIPTION" "${dls_flags[@]}" "${P[@]}"
else
	run gcloud pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION" \
		--topic="$DEAD_LETTER_TOPIC" "${dls_flags[@]}" "${P[@]}"
fi
# The relay parks poison events on the dead-letter topic itself.
bind gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
	--member="serviceAccount:${FUNCTION_SA_EMAIL}" --role=roles/pubsub.publisher "${P[@]}"
# The Pub/Sub service agent forwards dead letters.
bind gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
	--member="$PUBSUB_AGENT" --role=roles/pubsub.publisher "${P[@]}"

# The ledger: every event of the topic, kept LEDGER_RETENTION for the daily reconcile, which
# pulls and releases but never acknowledges. Kept acknowledged too, so that a mistaken ack
# (a replay pointed at it) can be undone with `gcloud pubsub subscriptions seek --time`.
ledger_flags=(--retain-acked-messages --message-retention-duration="$LEDGER_RETENTION"
	--expiration-period=never --ack-deadline=60)
if exists gcloud pubsub subscriptions describe "$LEDGER_SUBSCRIPTION" "${P[@]}"; then
	run gcloud pubsub subscriptions update "$LEDGER_SUBSCRIPTION" "${ledger_flags[@]}" "${P[@]}"
else
	run gcloud pubsub subscriptions create "$LEDGER_SUBSCRIPTION" --topic="$EVENTS_TOPIC" \
		"${ledger_flags[@]}" "${P[@]}"
fi
bind gcloud pubsub subscriptions add-iam-policy-binding "$LEDGER_SUBSCRIPTION" \
	--member="serviceAccount:${RECONCILE_SA_EMAIL}" --role=roles/pubsub.subscriber "${P[@]}"

# --- 5. The function -----------------------------------------------------------

step "Deploy the function"
env_vars="THREADS=${CONCURRENCY};RELAY_MAX_IN_FLIGHT=${RELAY_MAX_IN_FLIGHT}"
env_vars+=";RELAY_TIME_BUDGET_SECONDS=${RELAY_TIME_BUDGET_SECONDS}"
env_vars+=";RELAY_PARKING_TOPIC=${PARKING_TOPIC};RELAY_LOG_FORMAT=json"
# Links log lines to traces (the python312 runtime does not set it).
env_vars+=";GOOGLE_CLOUD_PROJECT=${PROJECT_ID}"
if [[ -n $SVIX_SERVER_URL ]]; then env_vars+=";SVIX_SERVER_URL=${SVIX_SERVER_URL}"; fi
if [[ -n $SVIX_APP_ID ]]; then env_vars+=";SVIX_APP_ID=${SVIX_APP_ID}"; fi

deploy=(
	gcloud functions deploy "$FUNCTION_NAME"
	--gen2
	--runtime=python312
	--region="$REGION"
	--source=.
	--service-account="$FUNCTION_SA_EMAIL"
	--no-allow-unauthenticated
	--set-secrets="SVIX_AUTH_TOKEN=${SECRET_NAME}:latest"
	--timeout="${TIMEOUT}s"
	--memory="$MEMORY"
	--cpu="$CPU"
	--concurrency="$CONCURRENCY"
	--max-instances="$MAX_INSTANCES"
	--set-env-vars="^;^${env_vars}"
)
if [[ $TRIGGER == http ]]; then
	deploy+=(--entry-point=relay --trigger-http)
else
	deploy+=(--entry-point=relay_event --trigger-topic="$EVENTS_TOPIC"
		--trigger-service-account="$PUSH_SA_EMAIL" --retry)
fi
if [[ -n $BUILD_SERVICE_ACCOUNT ]]; then
	deploy+=(--build-service-account="projects/${PROJECT_ID}/serviceAccounts/${BUILD_SERVICE_ACCOUNT}")
fi
deploy+=("${P[@]}")
run "${deploy[@]}"

FUNCTION_URL=$(capture "https://${FUNCTION_NAME}-dry-run-placeholder.a.run.app" \
	gcloud functions describe "$FUNCTION_NAME" --gen2 --region="$REGION" \
	--format='value(serviceConfig.uri)' "${P[@]}")
[[ $FUNCTION_URL == https://* ]] || die "could not read the URL of function $FUNCTION_NAME (got '$FUNCTION_URL')"

# Only the push (or Eventarc trigger) account may call the function.
bind gcloud functions add-invoker-policy-binding "$FUNCTION_NAME" --region="$REGION" \
	--member="serviceAccount:${PUSH_SA_EMAIL}" "${P[@]}"
# Older projects: the Pub/Sub service agent mints the OIDC tokens of the push account.
bind gcloud iam service-accounts add-iam-policy-binding "$PUSH_SA_EMAIL" \
	--member="$PUBSUB_AGENT" --role=roles/iam.serviceAccountTokenCreator "${P[@]}"

# --- 6. The subscription that feeds the function -------------------------------

retry_flags=(--min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY"
	--dead-letter-topic="$PARKING_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS")
if [[ $TRIGGER == http ]]; then
	step "Push subscription"
	SOURCE_SUBSCRIPTION=$SUBSCRIPTION
	push_flags=(
		--push-endpoint="$FUNCTION_URL"
		--push-auth-service-account="$PUSH_SA_EMAIL"
		--push-auth-token-audience="$FUNCTION_URL"
		--ack-deadline="$ACK_DEADLINE"
		--expiration-period=never
		"${retry_flags[@]}"
	)
	if exists gcloud pubsub subscriptions describe "$SUBSCRIPTION" "${P[@]}"; then
		run gcloud pubsub subscriptions update "$SUBSCRIPTION" "${push_flags[@]}" "${P[@]}"
	else
		run gcloud pubsub subscriptions create "$SUBSCRIPTION" --topic="$EVENTS_TOPIC" \
			"${push_flags[@]}" "${P[@]}"
	fi
else
	step "Dead-letter and retry policy on the Eventarc subscription"
	trigger_name=$(capture "projects/${PROJECT_ID}/locations/${REGION}/triggers/${FUNCTION_NAME}-dry-run-placeholder" \
		gcloud functions describe "$FUNCTION_NAME" --gen2 --region="$REGION" \
		--format='value(eventTrigger.trigger)' "${P[@]}")
	[[ -n $trigger_name ]] || die "function $FUNCTION_NAME has no Eventarc trigger"
	SOURCE_SUBSCRIPTION=$(capture "projects/${PROJECT_ID}/subscriptions/eventarc-${REGION}-${FUNCTION_NAME}-dry-run-placeholder" \
		gcloud eventarc triggers describe "$trigger_name" \
		--format='value(transport.pubsub.subscription)' "${P[@]}")
	[[ -n $SOURCE_SUBSCRIPTION ]] || die "could not read the subscription of trigger $trigger_name"
	run gcloud pubsub subscriptions update "$SOURCE_SUBSCRIPTION" "${retry_flags[@]}" "${P[@]}"
fi
# The Pub/Sub service agent acknowledges what it dead-letters.
bind gcloud pubsub subscriptions add-iam-policy-binding "$SOURCE_SUBSCRIPTION" \
	--member="$PUBSUB_AGENT" --role=roles/pubsub.subscriber "${P[@]}"
# shellcheck disable=SC2034 # render() reads it through ${!name}
SOURCE_SUBSCRIPTION_ID=${SOURCE_SUBSCRIPTION##*/}

# --- 7. The daily reconcile ----------------------------------------------------

step "The daily reconcile: a Cloud Run job and its schedule"
# The job is built from this directory (buildpacks, like the function) and runs
# reconcile_job.py through the buildpacks launcher, which sets up the Python it installed.
job_env="RECONCILE_SUBSCRIPTION=projects/${PROJECT_ID}/subscriptions/${LEDGER_SUBSCRIPTION}"
job_env+=";GOOGLE_CLOUD_PROJECT=${PROJECT_ID}"
if [[ -n $SVIX_SERVER_URL ]]; then job_env+=";SVIX_SERVER_URL=${SVIX_SERVER_URL}"; fi
if [[ -n $SVIX_APP_ID ]]; then job_env+=";SVIX_APP_ID=${SVIX_APP_ID}"; fi
# One retry: exit 2 ("could not tell") is mostly Pub/Sub or Svix being unreachable.
run gcloud run jobs deploy "$RECONCILE_JOB" \
	--source=. \
	--region="$REGION" \
	--service-account="$RECONCILE_SA_EMAIL" \
	--set-secrets="SVIX_AUTH_TOKEN=${SECRET_NAME}:latest" \
	--set-env-vars="^;^${job_env}" \
	--command=launcher \
	--args=python,reconcile_job.py \
	--tasks=1 \
	--max-retries=1 \
	--task-timeout="$RECONCILE_TIMEOUT" \
	--cpu=1 \
	--memory="$RECONCILE_MEMORY" \
	--labels=app="$FUNCTION_NAME" \
	"${P[@]}"
bind gcloud run jobs add-iam-policy-binding "$RECONCILE_JOB" --region="$REGION" \
	--member="serviceAccount:${SCHEDULER_SA_EMAIL}" --role=roles/run.invoker "${P[@]}"
schedule_flags=(
	--location="$REGION"
	--schedule="$RECONCILE_SCHEDULE"
	--time-zone=Etc/UTC
	--uri="https://${REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/${PROJECT_ID}/jobs/${RECONCILE_JOB}:run"
	--http-method=POST
	--oauth-service-account-email="$SCHEDULER_SA_EMAIL"
	--oauth-token-scope=https://www.googleapis.com/auth/cloud-platform
	--attempt-deadline=180s
	--max-retry-attempts=2
	--min-backoff=300s
	--description="Reconciles the previous UTC day of ${EVENTS_TOPIC} against Svix (${FUNCTION_NAME})"
)
if exists gcloud scheduler jobs describe "$RECONCILE_SCHEDULER_JOB" --location="$REGION" "${P[@]}"; then
	run gcloud scheduler jobs update http "$RECONCILE_SCHEDULER_JOB" "${schedule_flags[@]}" "${P[@]}"
else
	run gcloud scheduler jobs create http "$RECONCILE_SCHEDULER_JOB" "${schedule_flags[@]}" "${P[@]}"
fi

# --- 8. Logs-based metrics -----------------------------------------------------

step "Logs-based metrics"
log_base="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${FUNCTION_NAME}\""
ensure_metric() { # NAME DESCRIPTION FILTER
	if exists gcloud logging metrics describe "$1" "${P[@]}"; then
		run gcloud logging metrics update "$1" --description="$2" --log-filter="$3" "${P[@]}"
	else
		run gcloud logging metrics create "$1" --description="$2" --log-filter="$3" "${P[@]}"
	fi
}
METRICS=("${FUNCTION_NAME}-delivered" "${FUNCTION_NAME}-duplicate"
	"${FUNCTION_NAME}-rate-limited" "${FUNCTION_NAME}-failed")
ensure_metric "${METRICS[0]}" "Gigs events ${FUNCTION_NAME} delivered to Svix as new messages" \
	"${log_base} AND jsonPayload.outcome=\"delivered\""
ensure_metric "${METRICS[1]}" "Gigs events ${FUNCTION_NAME} found already in Svix (409 or idempotent replay)" \
	"${log_base} AND jsonPayload.outcome=\"duplicate\""
ensure_metric "${METRICS[2]}" "Gigs events ${FUNCTION_NAME} could not deliver because Svix kept answering 429" \
	"${log_base} AND jsonPayload.outcome=\"rate_limited\""
ensure_metric "${METRICS[3]}" "Gigs events ${FUNCTION_NAME} failed to deliver (failed, rejected or parked)" \
	"${log_base} AND (jsonPayload.outcome=\"failed\" OR jsonPayload.outcome=\"rejected\" OR jsonPayload.outcome=\"parked\")"
ensure_metric_from_file() { # NAME TEMPLATE: a metric with labels or a distribution
	render "$2"
	if exists gcloud logging metrics describe "$1" "${P[@]}"; then
		run gcloud logging metrics update "$1" --config-from-file="${WORK_DIR}/$2" "${P[@]}"
	else
		run gcloud logging metrics create "$1" --config-from-file="${WORK_DIR}/$2" "${P[@]}"
	fi
}
METRICS+=("${FUNCTION_NAME}-events" "${FUNCTION_NAME}-publish-lag" "${FUNCTION_NAME}-reconcile-missing")
ensure_metric_from_file "${METRICS[4]}" metric-events.json
ensure_metric_from_file "${METRICS[5]}" metric-publish-lag.json
# Only a reconcile that could tell: with errors its "missing" may be false, and it exits 2,
# which the could-not-tell alert reports instead.
ensure_metric "${METRICS[6]}" "Daily reconciles of ${FUNCTION_NAME} that found events missing in Svix" \
	"resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"${RECONCILE_JOB}\" AND jsonPayload.message=\"reconcile finished\" AND jsonPayload.reconcile_missing>0 AND jsonPayload.reconcile_errors=0"

# --- 9. Alert policies --------------------------------------------------------

step "Alert policies"
channels=()
if [[ -n $NOTIFICATION_CHANNEL ]]; then
	if [[ $NOTIFICATION_CHANNEL == projects/* ]]; then
		channels+=("$NOTIFICATION_CHANNEL")
	else
		channels+=("projects/${PROJECT_ID}/notificationChannels/${NOTIFICATION_CHANNEL}")
	fi
fi
if [[ -n $ALERT_EMAIL ]]; then
	channel=$(capture "" gcloud beta monitoring channels list \
		--filter="type=\"email\" AND labels.email_address=\"${ALERT_EMAIL}\"" \
		--format='value(name)' --limit=1 "${P[@]}")
	if [[ -z $channel ]]; then
		channel=$(capture "projects/${PROJECT_ID}/notificationChannels/DRY_RUN_CHANNEL" \
			gcloud beta monitoring channels create --type=email \
			--display-name="${FUNCTION_NAME} alerts (${ALERT_EMAIL})" \
			--channel-labels=email_address="$ALERT_EMAIL" \
			--format='value(name)' "${P[@]}")
	fi
	channels+=("$channel")
fi
for c in "${channels[@]}"; do CHANNELS_JSON+="${CHANNELS_JSON:+, }\"${c}\""; done

POLICIES=()
ensure_policy() { # TEMPLATE: create the policy, or replace the one of the same display name
	local file="${WORK_DIR}/$1" name existing
	render "$1"
	name=$(display_name "$file")
	POLICIES+=("$name")
	existing=$(capture "" gcloud alpha monitoring policies list \
		--filter="displayName=\"${name}\"" --format='value(name)' "${P[@]}")
	if [[ -n $existing ]]; then
		if [[ $existing == *$'\n'* ]]; then
			note "several alert policies are named '${name}': only ${existing%%$'\n'*} is updated"
		fi
		run gcloud alpha monitoring policies update "${existing%%$'\n'*}" \
			--policy-from-file="$file" "${P[@]}"
	else
		run gcloud alpha monitoring policies create --policy-from-file="$file" "${P[@]}"
	fi
}
ensure_policy alert-dead-letters.json
ensure_policy alert-publish-lag.json
ensure_policy alert-reconcile-missing.json
ensure_policy alert-reconcile-failed.json

# --- 10. The dashboard ---------------------------------------------------------

step "Dashboard"
render dashboard.json
DASHBOARD_FILE="${WORK_DIR}/dashboard.json"
DASHBOARD_NAME=$(display_name "$DASHBOARD_FILE")
existing=$(capture "" gcloud monitoring dashboards list \
	--filter="displayName=\"${DASHBOARD_NAME}\"" --format='value(name,etag)' "${P[@]}")
if [[ -n $existing ]]; then
	read -r DASHBOARD etag <<<"${existing%%$'\n'*}"
	if [[ -n $etag ]]; then
		# With the etag the update fails, rather than overwrites, if someone else changed the
		# dashboard since the list.
		text=$(<"$DASHBOARD_FILE")
		printf '{\n  "etag": "%s",%s\n' "$etag" "${text#\{}" >"$DASHBOARD_FILE"
	fi
	run gcloud monitoring dashboards update "$DASHBOARD" --config-from-file="$DASHBOARD_FILE" \
		--format=none "${P[@]}"
else
	DASHBOARD=$(capture "projects/${PROJECT_NUMBER}/dashboards/DRY_RUN_DASHBOARD" \
		gcloud monitoring dashboards create --config-from-file="$DASHBOARD_FILE" \
		--format='value(name)' "${P[@]}")
fi

# --- Done ----------------------------------------------------------------------

if ((DRY_RUN)); then
	out=3
else
	out=1
fi
{
	printf '\n'
	if ((DRY_RUN)); then printf 'Dry run finished: nothing was deployed.\n'; else printf 'Deployed.\n'; fi
	printf '  Project:              %s (%s)\n' "$PROJECT_ID" "$REGION"
	printf '  Function:             %s (%s trigger)\n' "$FUNCTION_NAME" "$TRIGGER"
	printf '  URL:                  %s\n' "$FUNCTION_URL"
	printf '  Runs as:              %s\n' "$FUNCTION_SA_EMAIL"
	printf '  Events topic:         %s\n' "$EVENTS_TOPIC"
	printf '  Subscription:         %s (as %s)\n' "$SOURCE_SUBSCRIPTION" "$PUSH_SA_EMAIL"
	printf '  Dead letters:         topic %s, kept %s in subscription %s\n' \
		"$DEAD_LETTER_TOPIC" "$DEAD_LETTER_RETENTION" "$DEAD_LETTER_SUBSCRIPTION"
	printf '  Svix token:           secret %s (latest version; new instances pick up new versions)\n' "$SECRET_NAME"
	printf '  Ledger:               subscription %s on %s, kept %s, read by the daily reconcile\n' \
		"$LEDGER_SUBSCRIPTION" "$EVENTS_TOPIC" "$LEDGER_RETENTION"
	printf '  Daily reconcile:      Cloud Run job %s (as %s), started %s UTC by %s\n' \
		"$RECONCILE_JOB" "$RECONCILE_SA_EMAIL" "$RECONCILE_SCHEDULE" "$RECONCILE_SCHEDULER_JOB"
	printf '  Metrics:              %s\n' "${METRICS[*]}"
	printf '  Alert policies:       %s\n' "${POLICIES[0]}"
	printf '                        %s\n' "${POLICIES[@]:1}"
	printf '  Dashboard:            https://console.cloud.google.com/monitoring/dashboards/builder/%s?project=%s\n' \
		"${DASHBOARD##*/}" "$PROJECT_ID"
	printf '\nTail the logs:\n'
	printf '  gcloud beta run services logs tail %s --region=%s --project=%s\n' "$FUNCTION_NAME" "$REGION" "$PROJECT_ID"
	printf '  gcloud functions logs read %s --gen2 --region=%s --project=%s --limit=50\n' "$FUNCTION_NAME" "$REGION" "$PROJECT_ID"
	printf '  Logs Explorer: %s AND jsonPayload.outcome!="delivered"\n' "$log_base"
	printf 'Look at dead letters:\n'
	printf '  gcloud pubsub subscriptions pull %s --limit=10 --project=%s\n' "$DEAD_LETTER_SUBSCRIPTION" "$PROJECT_ID"
	printf 'Reconcile a day now (RECONCILE_DAY is optional: yesterday, UTC, by default):\n'
	printf '  gcloud run jobs execute %s --region=%s --update-env-vars=RECONCILE_DAY=YYYY-MM-DD --project=%s\n' \
		"$RECONCILE_JOB" "$REGION" "$PROJECT_ID"
} >&"$out"
