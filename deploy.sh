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
wires it to Pub/Sub, Secret Manager, Cloud Logging and Cloud Monitoring.
Safe to run again: what exists is updated, what is missing is created.

Flags:
  --dry-run         Print every command (shell-quoted) without running any; no
                    gcloud call at all, existence probes are printed and their
                    resources assumed absent, read values are placeholders, and
                    the Svix token is neither read nor shown. The alert policy
                    file is still written (to $TMPDIR) and kept, for inspection.
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
  ALERT_EMAIL                optional: email notification channel for the alert
  NOTIFICATION_CHANNEL       optional: existing channel id or resource name
  SVIX_AUTH_TOKEN            the Svix token; when unset it is read from stdin
                             (hidden prompt on a terminal). Empty input keeps the
                             secret's current version, when there is one.

Run it from anywhere: it deploys the directory it lives in. Needs gcloud with
the alpha and beta components (for monitoring policies and channels), logged in
as someone who may enable APIs, create service accounts and set IAM policies.
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
PARKING_TOPIC="projects/${PROJECT_ID}/topics/${DEAD_LETTER_TOPIC}"
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

POLICY_FILE=""
cleanup() {
	if ((!DRY_RUN)) && [[ -n $POLICY_FILE ]]; then rm -f -- "$POLICY_FILE"; fi
}
trap cleanup EXIT

if ((DRY_RUN)); then
	note "dry run: nothing below is executed; project ${PROJECT_ID}, trigger ${TRIGGER}"
fi

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

# --- 7. Logs-based metrics -----------------------------------------------------

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

# --- 8. Alert on dead letters --------------------------------------------------

step "Alert policy on the dead-letter backlog"
POLICY_NAME="${FUNCTION_NAME}: dead-lettered events in ${DEAD_LETTER_SUBSCRIPTION}"
existing_policy=$(capture "" gcloud alpha monitoring policies list \
	--filter="displayName=\"${POLICY_NAME}\"" --format='value(name)' "${P[@]}")
if [[ -n $existing_policy ]]; then
	note "alert policy exists: ${existing_policy%%$'\n'*} (left as it is)"
else
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
	channels_json=""
	for c in "${channels[@]}"; do channels_json+="${channels_json:+, }\"${c}\""; done

	POLICY_FILE=$(mktemp "${TMPDIR:-/tmp}/relay-alert-policy.XXXXXX")
	cat >"$POLICY_FILE" <<EOF
{
  "displayName": "${POLICY_NAME}",
  "combiner": "OR",
  "enabled": true,
  "conditions": [
    {
      "displayName": "Undelivered messages in ${DEAD_LETTER_SUBSCRIPTION} above 0 for 5 minutes",
      "conditionThreshold": {
        "filter": "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${DEAD_LETTER_SUBSCRIPTION}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
        "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MAX"}],
        "comparison": "COMPARISON_GT",
        "thresholdValue": 0,
        "duration": "300s",
        "trigger": {"count": 1}
      }
    }
  ],
  "alertStrategy": {"autoClose": "604800s"},
  "documentation": {
    "mimeType": "text/markdown",
    "content": "Gigs events that ${FUNCTION_NAME} could not deliver to Svix are waiting in the Pub/Sub subscription ${DEAD_LETTER_SUBSCRIPTION} (project ${PROJECT_ID}): events Pub/Sub gave up on after ${MAX_DELIVERY_ATTEMPTS} attempts, and poison events the relay parked. Look at them with gcloud pubsub subscriptions pull ${DEAD_LETTER_SUBSCRIPTION} --project=${PROJECT_ID} --limit=10 (add --auto-ack once handled), and at the relay's logs for jsonPayload.outcome."
  },
  "notificationChannels": [${channels_json}]
}
EOF
	if ((DRY_RUN)); then
		note "(dry run: the policy file is written and kept: ${POLICY_FILE})"
	fi
	run gcloud alpha monitoring policies create --policy-from-file="$POLICY_FILE" "${P[@]}"
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
	printf '  Metrics:              %s\n' "${METRICS[*]}"
	printf '  Alert policy:         %s\n' "$POLICY_NAME"
	printf '\nTail the logs:\n'
	printf '  gcloud beta run services logs tail %s --region=%s --project=%s\n' "$FUNCTION_NAME" "$REGION" "$PROJECT_ID"
	printf '  gcloud functions logs read %s --gen2 --region=%s --project=%s --limit=50\n' "$FUNCTION_NAME" "$REGION" "$PROJECT_ID"
	printf '  Logs Explorer: %s AND jsonPayload.outcome!="delivered"\n' "$log_base"
	printf 'Look at dead letters:\n'
	printf '  gcloud pubsub subscriptions pull %s --limit=10 --project=%s\n' "$DEAD_LETTER_SUBSCRIPTION" "$PROJECT_ID"
} >&"$out"
