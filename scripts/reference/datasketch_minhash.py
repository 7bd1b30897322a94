"""datasketch's MinHash (its default scheme, affine32) and MinHashLSH on the shingle sets
provdb made, with provdb's permutations and shingle hash (xxHash32, seed 0): the outside
reference of
index/src/minhash.rs. Reads {"a": [...], "b": [...], "sets": [[shingle, ...], ...],
"bands": B, "rows": R, "threshold": T} on stdin; prints {"signatures": [[...], ...],
"candidates": [[i, j], ...]} (pairs i < j that datasketch's LSH returns for each other)."""
import json
import sys

import numpy as np
import xxhash
from datasketch import MinHash, MinHashLSH


def shingle_hash(data):
    return xxhash.xxh32_intdigest(data, seed=0)


def main():
    request = json.load(sys.stdin)
    permutations = (
        np.array(request["a"], dtype=np.uint32),
        np.array(request["b"], dtype=np.uint32),
    )
    num_perm = len(request["a"])
    hashes = []
    for shingles in request["sets"]:
        m = MinHash(
            num_perm=num_perm,
            hashfunc=shingle_hash,
            permutations=permutations,
            scheme="affine32",
        )
        m.update_batch([s.encode("utf-8") for s in shingles])
        hashes.append(m)
    lsh = MinHashLSH(
        threshold=request["threshold"],
        num_perm=num_perm,
        params=(request["bands"], request["rows"]),
    )
    for i, m in enumerate(hashes):
        lsh.insert(i, m)
    candidates = set()
    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            if i != j:
                candidates.add((min(i, j), max(i, j)))
    json.dump(
        {
            "signatures": [[int(v) for v in m.hashvalues] for m in hashes],
            "candidates": sorted([list(p) for p in candidates]),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
