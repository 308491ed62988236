"""The only code that calls AWS: the session, discovery, the applier and its waiting, run-once
jobs, the apply lease, drift detection, pre-flight checks, status and the embedded emulator.

It imports the core, never the GitOps layer or the command line.
"""
