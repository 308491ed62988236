"""Running next to a config repository: git sources, the reconcile wiring, CodeBuild runs,
the ledger and history, notifications, watching a branch, and the controller's own stack.
"""
