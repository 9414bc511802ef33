"""Outbound side: notification policy, rendering, composition, delivery and the unseen check."""
