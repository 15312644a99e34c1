"""Services (DESIGN §2 floor 3): the policy core combined with the ledger and the network."""
