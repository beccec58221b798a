"""Deploy backends: how a release's instances are replaced on a target."""
