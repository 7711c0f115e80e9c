#!/usr/bin/env bash
# `make run`: start Fargo in the background (unless it is up already), import the example image,
# then register and run examples/hello-fargate.json and show what it printed.
set -euo pipefail
FARGO=$1 DATA_DIR=$2 ENDPOINT=$3 IMAGE_TAR=$4
AWS="$(dirname "$FARGO")/aws"
export AWS_ENDPOINT_URL=$ENDPOINT AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-fargo} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-fargo}

healthy() { curl -fsS "$ENDPOINT/_fargo/health" >/dev/null 2>&1 || \
            "$(dirname "$FARGO")/python" -c "import urllib.request,sys; urllib.request.urlopen('$ENDPOINT/_fargo/health', timeout=2)" >/dev/null 2>&1; }

mkdir -p "$DATA_DIR"
if ! healthy; then
  echo "Starting Fargo (data dir $DATA_DIR, log $DATA_DIR/fargo.log) ..."
  nohup "$FARGO" up --data-dir "$DATA_DIR" >>"$DATA_DIR/fargo.log" 2>&1 &
  echo $! >"$DATA_DIR/fargo.pid"
  for i in $(seq 1 150); do healthy && break; sleep 0.2; done
  healthy || { echo "Fargo did not become healthy; see $DATA_DIR/fargo.log"; tail -20 "$DATA_DIR/fargo.log"; exit 1; }
fi
echo "Fargo is healthy at $ENDPOINT"

"$FARGO" image import "$IMAGE_TAR" --endpoint "$ENDPOINT"
if "$AWS" ecs run-task help >/dev/null 2>&1 && [ -f examples/hello-fargate.json ]; then
  "$AWS" ecs create-cluster --cluster-name default --query 'cluster.clusterArn' --output text
  "$AWS" ecs register-task-definition --cli-input-json file://examples/hello-fargate.json \
      --query 'taskDefinition.taskDefinitionArn' --output text
  if "$AWS" ecs run-task --cluster default --launch-type FARGATE --task-definition hello-fargate \
       --network-configuration 'awsvpcConfiguration={subnets=[subnet-fargo-default-1a]}' \
       --query 'tasks[0].taskArn' --output text >"$DATA_DIR/.example-task" 2>"$DATA_DIR/.example-err"; then
    TASK_ARN=$(cat "$DATA_DIR/.example-task"); TASK_ID=${TASK_ARN##*/}
    echo "Running task $TASK_ID; its output follows until it stops:"
    echo "--- output of the task ---"
    "$FARGO" logs "$TASK_ID" --follow --endpoint "$ENDPOINT"
    echo "---"
    "$AWS" ecs describe-tasks --cluster default --tasks "$TASK_ARN" \
        --query 'tasks[0].{lastStatus:lastStatus,stopCode:stopCode,exitCode:containers[0].exitCode,platform:platformVersion,az:availabilityZone}' --output table
  else
    cat "$DATA_DIR/.example-err"
  fi
fi
cat <<MSG

Fargo is running in the background (pid $(cat "$DATA_DIR/fargo.pid" 2>/dev/null || echo '?'); stop it with 'make stop').
Talk to it with the AWS CLI or boto3:
  export AWS_ENDPOINT_URL=$ENDPOINT
  $AWS ecs list-clusters
MSG
