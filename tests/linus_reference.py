"""A straightforward "degrees of Linus": Python sets over the whole files, no nodes, no bitsets."""

from __future__ import annotations

from pathlib import Path


def ids(line: bytes) -> list[int]:
    return [int(field) for field in line.strip().strip(b"<>").split(b"><")]


def degrees_of_linus(folder: Path, degrees: int = 4, linus: int = 4967, compat: bool = False) -> list[dict]:
    n_projects = sum(1 for line in (folder / "projects.ltgt").read_bytes().splitlines() if line.strip())
    n_users = sum(1 for line in (folder / "users.ltgt").read_bytes().splitlines() if line.strip())
    commits = [ids(line)[:2] for line in (folder / "commits.ltgt").read_bytes().splitlines() if line.strip()]

    def known(member: int, found: set, size: int) -> bool:
        return member in found or (compat and member >= size)

    projects, users, delta, stages = set(), set(), {linus}, []
    for stage in range(degrees):
        # An id outside its range is in no set (bounded), or in every set (compat): either
        # way it is never new.
        new_projects = {
            p
            for p, u in commits
            if known(u, delta, n_users) and not known(p, projects, n_projects) and 0 <= p < n_projects
        }
        projects |= new_projects
        new_users = {
            u
            for p, u in commits
            if known(p, new_projects, n_projects) and not known(u, users, n_users) and 0 <= u < n_users
        }
        users |= new_users
        delta = new_users
        stages.append({"stage": stage, "projects": len(projects), "users": len(users)})
    return stages
