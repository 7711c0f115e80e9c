"""Every error text of the ECS account-setting calls, in one place.

AWS's wording for these refusals is not public: all are OWN, written in the style of ECS's other messages.
"""
from __future__ import annotations

# OWN
INVALID_VALUE = "Invalid value '{value}' for the account setting {name}. Valid values are {valid}."
READ_ONLY = ("The {name} account setting is managed by AWS on your behalf and can't be changed. It shows whether "
             "your security administrator turned on Runtime Monitoring in Amazon GuardDuty.")
ROOT_ONLY = "The {name} account setting can only be set for the root user of the account."
LONG_ARN_OPT_OUT = ("The {name} account setting can no longer be disabled: every Amazon ECS resource uses the "
                    "long ARN and resource ID format.")
INVALID_PRINCIPAL = ("Invalid principal ARN '{arn}'. Specify the ARN of an IAM user, an IAM role or the root user "
                     "of account {account}.")
VALUE_NEEDS_NAME = "The value filter can only be used together with a setting name."
