"""A task's execution resources, fetched in PENDING as the Fargate agent does with the task's execution role:
secrets, registry credentials, ECR auth; and the network path they (and image pulls) travel on."""
