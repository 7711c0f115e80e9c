"""Amazon EFS on Fargo's control plane: file systems (a directory each), access points, mount targets (ENIs
of the VPC), tags, and what RunTask makes of a task's efsVolumeConfiguration volumes.

`efs.Efs` is the one entry point: the EFS handlers, the start-up resume, and `plan_task_volumes` for RunTask.
"""
