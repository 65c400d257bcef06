"""The deployable stack, and the local provisioning that mirrors it from the same definitions."""
