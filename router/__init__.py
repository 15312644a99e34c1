"""unhardcoded's routing package.

`router.core` is the pure policy core (floor 1 of the layers in docs/architecture.md): the
`sigma-pol/v1` policy IR, its normalization and fingerprint, the catalog model and the evaluator.
It does no I/O, reads no clock and never touches asyncio or a database. `router.services`
(floor 3) builds the gateway, the upstream adapters, the catalog importers and the replay engine
on top of the core and the ledger.
"""
