"""Distributed dataframes: frames stored as row chunks over the nodes, and the user's KV store."""
