# Sourced by .ci/main and .ci/run: Python warnings filters for notices a user cannot act on.
# - Dagster 1.13 marks every `dagster` CLI command as superseded by `dg` (the dagster-dg-cli
#   package, not installed here); the commands still work.
# - Dagster's own Pipes context reads PipesMessageReader.expected_writer_count, a preview API, for
#   every Pipes session (the training subprocess); nothing in this project calls it.
# Each filter matches the start of one message only; anything else still shows.
quiet=(
  'ignore:Function `job_execute_command` is superseded'
  'ignore:Function `definitions_validate_command` is superseded'
  'ignore:Function `PipesMessageReader.expected_writer_count` is currently in preview'
)
PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}$(IFS=,; echo "${quiet[*]}")"
export PYTHONWARNINGS
unset quiet
