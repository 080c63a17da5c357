"""The key-value store: keys, values, a node's spilling chunk store, the KV interface and its
in-process implementation. Transports (in-process threads, Dask) sit behind one interface."""
