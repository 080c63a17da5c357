"""Demo: a producer, a counter and a summarizer on three nodes (the seeds' example)."""

import numpy as np

from eau2.app.application import Application
from eau2.frame.dataframe import DataFrame
from eau2.store.key import Key


class Demo(Application):
    """Node 0 stores 0..99,999 and their sum; node 1 sums what it reads; node 2 compares."""

    nodes = 3
    main = Key("main", 0)
    verify = Key("verif", 0)
    check = Key("ck", 0)

    def run(self):
        if self.num_nodes() < 3:
            raise ValueError(f"Demo needs 3 nodes, not {self.num_nodes()}")
        match self.this_node():
            case 0:
                return self.producer()
            case 1:
                return self.counter()
            case 2:
                return self.summarizer()

    def producer(self):
        vals = np.arange(100_000, dtype=np.float64)
        DataFrame.from_array(self.main, self.kv, vals)
        DataFrame.from_scalar(self.check, self.kv, float(vals.sum()))

    def counter(self):
        v = self.kv.get_and_wait(self.main)
        total = 0.0
        for index in range(v.nchunks):  # every value, read from its chunk fetched once
            chunk = v.chunk(index)
            for i in range(chunk.nrows):
                total += chunk.get_float(0, i)
        print(f"The sum is {total:.0f}")
        DataFrame.from_scalar(self.verify, self.kv, total)
        return {"sum": total}

    def summarizer(self):
        result = self.kv.get_and_wait(self.verify)
        expected = self.kv.get_and_wait(self.check)
        outcome = "SUCCESS" if result.get_float(0, 0) == expected.get_float(0, 0) else "FAILURE"
        print(outcome)
        for key in (self.main, self.verify, self.check):
            self.kv.delete(key)
        return {"result": outcome}
