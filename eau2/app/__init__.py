"""Applications: one `run` on every node at once, and the runners that start them."""
