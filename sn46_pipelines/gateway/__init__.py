"""The upload gateway: the Subnet 46 S3 auth API, compatible with today's miners and hardened.

Miners prove who they are with a signed commitment (or an ``X-Tao`` or
``btauth/1`` signed request) and get a presigned POST that can only write
under their own folder; validators get presigned listings and downloads of
everyone's data. Nothing here holds AWS credentials on behalf of callers:
every grant is a presigned URL or POST policy that expires.

Modules: :mod:`.settings` (environment), :mod:`.metagraph` (who is
registered), :mod:`.auth` (signatures), :mod:`.ledger` (replays, retries and quotas),
:mod:`.presign` (what a grant allows), :mod:`.app` (the HTTP API),
:mod:`.metrics` (grants and refusals for Prometheus), :mod:`.cli` (``sn46 gateway``).
"""
