"""Amazon ECR on Fargo's control plane: repositories, the images pushed to Fargo's registry, authorization
tokens. The images' bytes live in the registry's storage (`fargo.registry`); their records live in the store."""
