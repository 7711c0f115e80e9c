"""Every text the metadata and credentials endpoints send, worded as the ECS agent words them.

Clients and tests match these strings exactly, so they live here once; handlers only pick one.
"""
from __future__ import annotations

# The tail the agent adds when an endpoint id maps to nothing; an id owned by another caller gets it too.
_NO_DOCKER_ID = "unable to get container ID from request: unable to get docker ID from v3 endpoint ID: {id}"
_NO_TASK_ARN = "unable to get task arn from request: unable to get task Arn from v3 endpoint ID: {id}"

V4_CONTAINER_NOT_FOUND = "V4 container metadata handler: " + _NO_DOCKER_ID
V4_TASK_NOT_FOUND = "V4 task metadata handler: " + _NO_TASK_ARN
V4_CONTAINER_STATS_TASK_NOT_FOUND = "V4 container stats handler: " + _NO_TASK_ARN
V4_CONTAINER_STATS_CONTAINER_NOT_FOUND = "V4 container stats handler: " + _NO_DOCKER_ID
V4_TASK_STATS_NOT_FOUND = "V4 task stats handler: " + _NO_TASK_ARN

V3_CONTAINER_NOT_FOUND = "V3 container metadata handler: " + _NO_DOCKER_ID
V3_TASK_NOT_FOUND = "V3 task metadata handler: " + _NO_TASK_ARN
V3_CONTAINER_STATS_TASK_NOT_FOUND = "V3 container stats handler: " + _NO_TASK_ARN
V3_CONTAINER_STATS_CONTAINER_NOT_FOUND = "V3 container stats handler: " + _NO_DOCKER_ID
V3_TASK_STATS_NOT_FOUND = "V3 task stats handler: " + _NO_TASK_ARN

# Known id, but the snapshot or the stats could not be had.
V4_TASK_METADATA_FAILED = "Unable to generate metadata for v4 task: '{task}'"
V3_TASK_METADATA_FAILED = "Unable to generate metadata for task: '{task}'"
CONTAINER_METADATA_FAILED = "failed to get container metadata"
CONTAINER_STATS_UNAVAILABLE = "Unable to get container stats for: {docker_id}"

# Go's net/http NotFound, which gorilla/mux answers for a path no route matches (trailing slashes included).
PAGE_NOT_FOUND = "404 page not found\n"
METHOD_NOT_ALLOWED = "405 method not allowed\n"
# Past the tollbooth limiter's burst.
TOO_MANY_REQUESTS = "You have reached maximum request limit.\n"

# Container credentials: (code, message format) pairs; {version} is V1 or V2 as the path says.
CREDENTIALS_NO_ID = ("NoIdInRequest", "Credentials{version}Request: No Credential ID in the request")
CREDENTIALS_NOT_FOUND = ("InvalidIdInRequest", "Credentials{version}Request: Credentials not found")
