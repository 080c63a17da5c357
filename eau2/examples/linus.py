"""Linus: who is within D degrees of collaboration of Linus Torvalds, by projects committed to."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from eau2.app.application import Application
from eau2.store.key import Key

LINUS = 4967

COLUMNS = {"projects": [0], "users": [0], "commits": [0, 1]}
"""The columns of each file that Linus uses: the ids (of projects and users it needs only
the counts, of commits the project and the author). Reading only these keeps the names
out of memory."""


def tag(
    tagged: np.ndarray, keys: np.ndarray, values: np.ndarray, key_set: PackedSet, past_end_present: bool
) -> None:
    """Mark in the bitset `tagged` the ``values[r]`` of the rows whose ``keys[r]`` is in
    `key_set`.

    One pass, no temporaries. Ids outside their set's range are in no set ("bounded") or,
    with `past_end_present`, in every set, as in the 2020 original ("compat"); either way
    a value outside `tagged` is never tagged, since it can never be new.
    """
    _compiled_tag()(tagged, keys, values, key_set.bits, key_set.size, past_end_present)


@functools.cache
def _compiled_tag():
    """`_tag`, compiled: numba is imported when Linus first runs, not with the examples."""
    import numba

    return numba.njit(cache=True, nogil=True)(_tag)


def _tag(tagged, keys, values, key_bits, n_keys, past_end_present):
    size = len(tagged)
    for r in range(len(keys)):
        key = keys[r]
        if 0 <= key < n_keys:
            hit = (key_bits[key >> 3] >> (key & 7)) & 1 == 1
        else:
            hit = past_end_present and key >= n_keys
        value = values[r]
        if hit and 0 <= value < size:
            tagged[value] = True


class PackedSet(NamedTuple):
    """A set of ids in ``[0, size)`` as one bit each: every row of a pass looks an id up
    in it, and at a bit an id even the sets of a hundred million ids stay in the cache
    (and travel between nodes in a few MB)."""

    bits: np.ndarray
    size: int

    @classmethod
    def of(cls, present: np.ndarray) -> PackedSet:
        """The set of a bool array's true positions."""
        return cls(np.packbits(present, bitorder="little"), len(present))

    def unpacked(self) -> np.ndarray:
        """The set as a bool array of its `size`."""
        return np.unpackbits(self.bits, count=self.size, bitorder="little").view(bool)


def bitset(ids: np.ndarray, size: int) -> np.ndarray:
    """The bitset of the ids in ``[0, size)``."""
    present = np.zeros(size, bool)
    present[ids[(ids >= 0) & (ids < size)]] = True
    return present


class Linus(Application):
    """The "degrees of Linus" of the original eau2 over three stored frames.

    `projects`, `users` and `commits` are keys of frames read from projects.ltgt,
    users.ltgt and commits.ltgt. Each node tags with the commit chunks it holds; only
    the new projects and users of each stage travel, through the store, under
    ``projects-<s>-<node>`` and ``users-<s+1>-<node>``; node 0 merges them under
    ``...-0``. Node 0 returns the cumulative counts per stage.
    """

    nodes = 2

    def __init__(
        self,
        projects: Key,
        users: Key,
        commits: Key,
        degrees: int = 4,
        linus: int = LINUS,
        compat: bool = False,
    ):
        self.keys = (projects, users, commits)
        self.degrees = degrees
        self.linus = linus
        self.compat = compat

    def run(self):
        projects, users, commits = (self.kv.get_and_wait(key) for key in self.keys)
        if str(commits.schema)[:2] != "II":
            raise ValueError(
                f"the commits frame {self.keys[2].name!r} has schema {str(commits.schema)!r}: Linus "
                "needs its first two columns to be INT (project and user ids)"
            )
        n_projects, n_users = projects.nrows, users.nrows
        # (pids, author uids) of the commit chunks this node holds, without copies
        chunks = commits.local_map_batches(lambda b: (b.column(0).to_numpy(), b.column(1).to_numpy()))
        p_set = np.zeros(n_projects, bool)
        u_set = np.zeros(n_users, bool)
        if self.this_node() == 0:
            self.kv.put(Key("users-0-0", 0), PackedSet.of(bitset(np.array([self.linus]), n_users)).bits)
        stages = []
        by_user = [(uids, pids) for pids, uids in chunks]
        for stage in range(self.degrees):
            delta = PackedSet(self.kv.get_and_wait(Key(f"users-{stage}-0", 0)), n_users)
            new_projects = self._reach(f"projects-{stage}", by_user, delta, p_set)
            self._reach(f"users-{stage + 1}", chunks, new_projects, u_set)
            counts = {"stage": stage, "projects": int(p_set.sum()), "users": int(u_set.sum())}
            stages.append(counts)
            if self.this_node() == 0:
                print(f"stage {stage}: {counts['projects']} projects, {counts['users']} users")
        self._clean_up()
        return {"stages": stages} if self.this_node() == 0 else None

    def _clean_up(self) -> None:
        """Delete the stage keys once every node is done with them (so the run can repeat)."""
        node = self.this_node()
        if node != 0:
            self.kv.put(Key(f"linus-done-{node}", node), b"")
            return
        for i in range(1, self.num_nodes()):
            self.kv.get_and_wait(Key(f"linus-done-{i}", i))
            self.kv.delete(Key(f"linus-done-{i}", i))
        n, stages = self.num_nodes(), range(self.degrees)
        names = ["users-0-0"]
        names += [
            f"{kind}-{stage + (kind == 'users')}-{i}"
            for stage in stages
            for kind in ("projects", "users")
            for i in range(n)
        ]
        for name in names:
            self.kv.delete(Key(name, int(name.rsplit("-", 1)[1])))

    def _reach(
        self, name: str, rows: list[tuple[np.ndarray, np.ndarray]], keys: PackedSet, seen: np.ndarray
    ) -> PackedSet:
        """The ids not `seen` yet that rows (key, value) whose key is in `keys` reach, on
        every node, stored under ``<name>-...``; they are added to `seen`. Sets travel
        and stay packed (16 MB for all the projects, where their ids take up to 1 GB)."""
        reached = np.zeros(len(seen), bool)
        for row_keys, row_values in rows:
            tag(reached, row_keys, row_values, keys, self.compat)
        np.greater(reached, seen, out=reached)  # reached and not seen
        new = self._merged(name, PackedSet.of(reached))
        del reached
        np.logical_or(seen, new.unpacked(), out=seen)
        return new

    def _merged(self, name: str, mine: PackedSet) -> PackedSet:
        """Every node's new ids `mine`, merged on node 0 under ``<name>-0``, as all nodes see it."""
        node = self.this_node()
        if node != 0:
            self.kv.put(Key(f"{name}-{node}", node), mine.bits)
        else:
            merged = mine.bits
            for i in range(1, self.num_nodes()):
                np.bitwise_or(merged, self.kv.get_and_wait(Key(f"{name}-{i}", i)), out=merged)
            self.kv.put(Key(f"{name}-0", 0), merged)
        return PackedSet(self.kv.get_and_wait(Key(f"{name}-0", 0)), mine.size)
