"""The texts of the errors ECS's service calls answer with (AWS's where known, reference section 4)."""
from __future__ import annotations

SERVICE_NOT_FOUND = "Service not found."
SERVICE_NOT_ACTIVE = "Service was not ACTIVE."
NOT_IDEMPOTENT = "Creation of service was not idempotent."
SCALED_ABOVE_ZERO = "The service cannot be stopped while it is scaled above 0."
SERVICE_NAME = ("Service names can only contain letters, numbers, hyphens and underscores, up to 255 "
                "characters.")
TOO_MANY_SERVICES = "services can have at most 10 items."
NO_SERVICES = "Services cannot be empty."
TASK_DEFINITION_REQUIRED = "TaskDefinition is required for a service with the ECS deployment controller."
DESIRED_COUNT = "desiredCount must be between 0 and 5000."
CLIENT_TOKEN = "clientToken must be 1-36 printable ASCII characters."
DAEMON_ON_FARGATE = "The DAEMON scheduling strategy is not supported with the FARGATE launch type."
DEPLOYMENT_CONTROLLER = "Fargo supports the ECS deployment controller only."
MAXIMUM_PERCENT = "maximumPercent must be at least 100."
MINIMUM_HEALTHY_PERCENT = "minimumHealthyPercent must be between 0 and 100."
GRACE_PERIOD = "healthCheckGracePeriodSeconds must be between 0 and 2147483647."
CIRCUIT_BREAKER_MEMBERS = "deploymentCircuitBreaker needs both enable and rollback."
SPOT_NEEDS_STRATEGY = "Fargate Spot needs a capacity provider strategy, not a launch type."
BOTH_LAUNCH_TYPE_AND_STRATEGY = "Specifying both a launch type and capacity provider strategy is not supported."
TAGS = "A resource can have at most 50 tags."

