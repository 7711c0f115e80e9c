"""Fargo's own registry: Debian's docker-registry (distribution 2.8.2) run and supervised by `fargo up`, its files
under DATA_DIR/registry/. Clients reach it only through the edge port's `/v2/` proxy (`fargo.api.registry_proxy`)."""
