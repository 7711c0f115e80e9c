"""Every error text of cluster settings, capacity providers and capacity provider strategies, in one place.

Texts marked AWS were seen in real ECS responses (quoted in public issues: pulumi/pulumi-awsx#599,
dask/dask-cloudprovider#328, terraform-aws-modules/terraform-aws-ecs#27 and #53, containers-roadmap#631,
cloudformation-coverage-roadmap#1086); texts marked OWN are Fargo's, in the same style.
"""
from __future__ import annotations

# --- capacity provider strategies (RunTask, CreateService, a cluster's default) ---------------------------
# AWS
LAUNCH_TYPE_AND_STRATEGY = ("Specifying both a launch type and capacity provider strategy is not supported. "
                            "Remove one and try again.")
NOT_ASSOCIATED = ("The specified capacity provider strategy cannot contain a capacity provider that is not "
                  "associated with the cluster. Associate the capacity provider with the cluster or specify a "
                  "valid capacity provider and try again.")
DEFAULT_STRATEGY_NO_WEIGHT = (
    "There are no capacity providers with a weight value greater than zero defined in the default capacity "
    "provider strategy. At least one capacity provider must have a weight value greater than zero specified. "
    "Update the cluster's default capacity provider strategy or specify a valid capacity provider strategy and "
    "try again.")
# OWN (the default strategy's text, said of the strategy given)
STRATEGY_NO_WEIGHT = (
    "There are no capacity providers with a weight value greater than zero defined in the capacity provider "
    "strategy. At least one capacity provider must have a weight value greater than zero specified. Specify a "
    "valid capacity provider strategy and try again.")
BASE_ON_MANY = ("The capacity provider strategy can only have a base value defined for one capacity provider. "
                "Update the capacity provider strategy and try again.")
DUPLICATE_PROVIDER = ("The capacity provider strategy cannot contain the same capacity provider more than once. "
                      "Update the capacity provider strategy and try again.")
STRATEGY_TOO_LONG = "A capacity provider strategy can contain at most 20 capacity providers."
WEIGHT_RANGE = "The capacity provider strategy weight must be between 0 and 1000."
BASE_RANGE = "The capacity provider strategy base must be between 0 and 100000."
EMPTY_PROVIDER_NAME = "The capacity provider strategy contains a capacity provider with no name."

# --- a cluster's capacity providers (CreateCluster, PutClusterCapacityProviders) ---------------------------
# AWS
PROVIDER_NOT_FOUND = "The specified capacity provider was not found. Specify a valid capacity provider and try again."
PROVIDER_IN_USE = "The specified capacity provider is in use and cannot be removed."
TOO_MANY_PROVIDERS = "The maximum number of capacity providers per cluster has been exceeded."
MAX_PROVIDERS_PER_CLUSTER = 20

# --- cluster settings and configuration (CreateCluster, UpdateCluster, UpdateClusterSettings) --------------
# OWN
CONTAINER_INSIGHTS_VALUE = ("Invalid value '{value}' for the containerInsights setting. Valid values are enhanced, "
                            "enabled and disabled.")
UPDATE_NEEDS_SOMETHING = "At least one of settings, configuration or serviceConnectDefaults must be specified."
SETTINGS_EMPTY = "Settings cannot be empty."
NAMESPACE_EMPTY = "The serviceConnectDefaults namespace cannot be empty."
