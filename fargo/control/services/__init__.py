"""ECS services on the control plane: the API (`services.py`), their documents (`service_docs.py`,
`deployments.py`), the scheduler loop that keeps their tasks running (`scheduler.py`, one leader at a time:
`leadership.py`) and the rollout planner it asks what to do (`rollout.py`)."""
