"""Routing: who answers each query.  For now operator presence and the first-free-operator
placeholder policy (the routing issue replaces the policy with skills, capacity and queues)."""
