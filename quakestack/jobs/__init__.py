"""The job runtime: jobs as durable rows in the metadata store, workers as replaceable processes.

A job is a row holding its typed, versioned spec (written once at creation), its folded status and its
control record (what the user wants: epochs, stop, cancel, the current attempt), an append-only event
log, a heartbeat per worker and a lease held by the one scheduler replica that supervises it. Workers
read the spec and the control record and report only through the store (artifacts go to object
storage), so a service can die, restart or run as several replicas and re-attach to the workers still
running. The same tables serve every kind of job.
"""
