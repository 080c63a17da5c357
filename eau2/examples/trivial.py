"""Trivial: one node stores a million floats and reads them back."""

import numpy as np
import pyarrow.compute as pc

from eau2.app.application import Application
from eau2.frame.dataframe import DataFrame
from eau2.store.key import Key


class Trivial(Application):
    """Store 0.0, 1.0, ... 999,999.0 under ``triv``, check a cell and the sum read back."""

    size = 1_000_000
    nodes = 1

    def run(self):
        if self.this_node() != 0:
            return None
        values = np.arange(self.size, dtype=np.float64)
        key = Key("triv")
        df = DataFrame.from_array(key, self.kv, values)
        assert df.get(0, 1) == 1
        stored = self.kv.get(key)
        total = sum(stored.map_batches(lambda batch: pc.sum(batch.column(0)).as_py()))
        expected = float(values.sum())
        if total != expected:
            raise AssertionError(f"the stored values sum to {total}, not {expected}")
        print(f"The sum is {total:.0f}")
        self.kv.delete(key)
        return {"sum": total}
