"""AWS wire protocols, one codec module each (`json11`, `ec2_query`, ...).

`codec.py` holds what every codec implements; a service names its codec in its own module.
"""
