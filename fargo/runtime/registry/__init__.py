"""A registry client for pulls (OCI distribution spec): references, auth challenges and tokens, resolving a tag
to a manifest digest, and fetching manifests and blobs with their digests checked. No containerd here.
"""
from fargo.runtime.registry.access import RegistryAccess, RegistryEndpoint
from fargo.runtime.registry.auth import Challenge, Credentials, parse_www_authenticate
from fargo.runtime.registry.errors import RegistryError
from fargo.runtime.registry.reference import RegistryReference, split_reference

__all__ = ["Challenge", "Credentials", "RegistryAccess", "RegistryEndpoint", "RegistryError", "RegistryReference",
           "parse_www_authenticate", "split_reference"]
