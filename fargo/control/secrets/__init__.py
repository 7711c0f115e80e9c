"""AWS Secrets Manager and SSM Parameter Store on Fargo's control plane: secrets and parameters with their
versions, names and ARNs, values sealed at rest.

`secrets.Secrets` is the one entry point: the handlers of both services, for the edge port.
"""
