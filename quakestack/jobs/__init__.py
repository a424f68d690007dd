"""The job runtime: jobs as durable records on object storage, workers as replaceable processes.

A job is `jobs/<id>/job.json` (its typed, versioned spec, written once at creation), an append-only
event log (`events/<seq>.json`, one object per event), a control record (what the user wants:
epochs, stop, cancel, the current attempt), a heartbeat written by its worker and a lease held by
the one scheduler replica that supervises it. Workers read the spec and the control record and
report only through storage, so a service can die, restart or run as several replicas and re-attach
to the workers still running. The same layout serves every kind of job.
"""
