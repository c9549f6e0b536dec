"""GitOps operations: what the overlays say is what runs (release, promote, rollback, status)."""
