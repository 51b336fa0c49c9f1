"""The policy gate: rules (plain functions) and the CrossGuard pack built from them."""
