"""The Messenger channel: keys scoped to one customer, the view it shows, live-update fan-out."""
