"""The pure core: config, pipeline registry, images, rendering, planning and reports.

Nothing here imports boto3 or touches the network or git; every function takes plain data
and returns plain data, so the whole core is testable offline.
"""
