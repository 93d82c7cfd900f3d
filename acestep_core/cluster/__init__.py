"""The worker's /v1 API served by a Ray Serve cluster, for studios (the [cluster] extra).

- `app`: the Serve application (an ingress serving the worker's FastAPI app, and the
  generation deployment's replicas).
- `runner`: ClusterRunner, the worker's job-queue interface over Serve replicas.
- `replica`: GenerationReplica, one backend and one job at a time.
- `up`: `acestep-dcc cluster up`.

Nothing here is imported by `import acestep_core`; Ray loads only when a cluster starts.
"""
