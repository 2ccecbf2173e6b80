#!/usr/bin/env bash
# Post the reports given as arguments (report.md files) as one pull-request comment, or update
# the comment this script posted before: the one whose body has the <!-- irqmon-report --> marker
# and whose author is IRQMON_COMMENT_AUTHOR. The comment is always written to the job summary too;
# on a fork's pull request (read-only token) only there.
#
# Environment: IRQMON_PR (number), IRQMON_REPOSITORY (owner/repo, default GITHUB_REPOSITORY),
# IRQMON_RUN_URL (the run whose artifacts hold the figures), IRQMON_FORK (true: do not post),
# IRQMON_COMMENT_AUTHOR (default github-actions[bot]; empty: any author), GH_TOKEN for gh.
set -euo pipefail
export LC_ALL=C.UTF-8 # lengths in characters, as GitHub counts them

marker='<!-- irqmon-report -->'
comment_limit=65536
run_url=${IRQMON_RUN_URL:-}
artifacts="the run's artifacts"
if [ -n "$run_url" ]; then
  artifacts="[the run's artifacts]($run_url)"
fi

compose() {
  echo "$marker"
  echo "## irqmon"
  local report name
  for report in "$@"; do
    name=$(basename "$(dirname "$(dirname "$report")")")
    echo
    echo "<details open><summary><b>${name}</b></summary>"
    echo
    if [ -f "$report" ]; then
      # A comment cannot show the artifact's PNGs: a figure becomes its caption and a link.
      sed -E -e "s|^!\[([^]]*)\]\(([^)]*)\)$|*Figure: \1 (\`\2\` in ${artifacts//|/\\|}).*|" \
        -e 's/^(#+) /\1# /' "$report"
    else
      echo "*No report: the capture or the analysis failed, see ${artifacts}.*"
    fi
    echo
    echo "</details>"
  done
  echo
  echo "Figures and a self-contained report.html: ${artifacts}."
}

body=$(compose "$@")
if [ "${#body}" -ge "$comment_limit" ]; then
  note=$'\n\n'"*The report was cut here: GitHub comments hold at most ${comment_limit} characters. The whole report is in ${artifacts}.*"
  body=${body:0:$((comment_limit - ${#note} - 1))}
  body="${body%$'\n'*}${note}"
fi
body_file=$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/irqmon-comment.XXXXXX")
printf '%s\n' "$body" > "$body_file"
echo "body=$body_file" >> "${GITHUB_OUTPUT:-/dev/null}"

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$body_file" >> "$GITHUB_STEP_SUMMARY"
fi

if [ "${IRQMON_FORK:-false}" = "true" ]; then
  echo "irqmon: a fork's pull request gets a read-only token: the report is in the job summary only"
  exit 0
fi
: "${IRQMON_PR:?the pull request number}"
repository=${IRQMON_REPOSITORY:-${GITHUB_REPOSITORY:?owner/repo of the pull request}}
author=${IRQMON_COMMENT_AUTHOR-github-actions[bot]}

comment_id=$(gh api --paginate "repos/$repository/issues/$IRQMON_PR/comments" \
  | jq -rs --arg marker "$marker" --arg author "$author" '
      add // []
      | map(select((.body // "") | contains($marker)))
      | map(select($author == "" or .user.login == $author))
      | last | .id // empty')

if [ -n "$comment_id" ]; then
  gh api -X PATCH "repos/$repository/issues/comments/$comment_id" -F "body=@$body_file" > /dev/null
  echo "irqmon: updated comment $comment_id"
else
  gh api -X POST "repos/$repository/issues/$IRQMON_PR/comments" -F "body=@$body_file" > /dev/null
  echo "irqmon: posted a new comment"
fi
