"""Services: the policy core combined with the ledger and the network.

Floor 3 of the layers in docs/architecture.md.
"""
