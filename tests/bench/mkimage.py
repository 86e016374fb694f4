#!/usr/bin/env python3
"""Deterministic benchmark images for tests/bench/run.sh.

  mkimage.py create IMAGE --size-gib N [--seed S]
      Writes N GiB made of 1 MiB regions in a fixed, seeded shuffled order:
      40% random bytes, 30% text-like, 30% zeros (zeros are written, not left
      as holes: a block device has no holes). Every region is distinct, so
      nothing dedups across regions, neither for fixed-size chunking (bunker)
      nor for content-defined chunking (restic, borg).

  mkimage.py mutate IMAGE --seed S
      The incremental change: 1% of the image's 1 MiB blocks get one 64 KiB
      write of new random bytes each (10 writes for 1 GiB, 41 for 4 GiB),
      spread evenly across the image. Prints the offsets.

Standard library only; about 7 s per GiB (most of it writing).
"""
import argparse
import os
import random
import sys

MiB = 1 << 20
GiB = 1 << 30
WRITE = 64 << 10
TEXT_SUBSET = 3000

# Fixed vocabulary: pronounceable words from seeded syllables, drawn with a
# Zipf-like weight so some words are common and most are rare, as in text.
_SYL = ("ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu "
        "na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu "
        "za ze zi zo zu ch sh th st tr pl gr an en in on er or ar").split()


def _text_pool(seed):
    rng = random.Random(seed ^ 0x7E57)
    words = set()
    while len(words) < 1000:
        words.add("".join(rng.choice(_SYL) for _ in range(rng.randint(1, 4))))
    words = sorted(words)
    rng.shuffle(words)
    cum, acc = [], 0.0
    for i in range(len(words)):
        acc += 1.0 / (i + 1) ** 1.1
        cum.append(acc)
    punct = ["", "", "", "", ",", ",", ".", ";", ":"]
    lines = []
    # 128 Ki distinct lines; a region is ~15k lines drawn from its own subset
    # of them (see _text_region), so every 1 MiB region is unique. LZ4 -1
    # compresses the text regions ~2.1x (the whole 1 GiB image ~1.8x).
    for _ in range(1 << 17):
        n = rng.randint(3, 16)
        ws = rng.choices(words, cum_weights=cum, k=n)
        parts = []
        for w in ws:
            r = rng.random()
            if r < 0.08:
                parts.append(str(rng.randint(0, 99999)))
            elif r < 0.12:
                parts.append("%d.%02d" % (rng.randint(0, 9999), rng.randint(0, 99)))
            parts.append(w + rng.choice(punct))
        line = " ".join(parts)
        if rng.random() < 0.2:
            line = line.capitalize()
        if rng.random() < 0.1:
            line = "  " + line
        lines.append(line.encode())
    return lines


def _text_region(rng, pool, k=TEXT_SUBSET):
    # Each region draws its lines from its own random subset of the pool
    # (like a log or document that repeats its own phrases), so LZ4's 64 KiB
    # window finds whole-line as well as word matches.
    sub = rng.sample(pool, k)
    chunk = b"\n".join(rng.choices(sub, k=16000))
    while len(chunk) < MiB:
        chunk += b"\n" + b"\n".join(rng.choices(sub, k=4000))
    return chunk[:MiB]


def layout(n_regions, seed):
    n_rand = round(n_regions * 0.4)
    n_text = round(n_regions * 0.3)
    n_zero = n_regions - n_rand - n_text
    kinds = ["R"] * n_rand + ["T"] * n_text + ["Z"] * n_zero
    random.Random(seed).shuffle(kinds)
    return kinds


def create(path, size_gib, seed):
    n = int(size_gib * GiB) // MiB
    kinds = layout(n, seed)
    pool = _text_pool(seed)
    rnd = random.Random(seed ^ 0xDA7A)
    txt = random.Random(seed ^ 0x7E47)
    zero = bytes(MiB)
    with open(path, "wb") as f:
        for k in kinds:
            if k == "R":
                f.write(rnd.randbytes(MiB))
            elif k == "T":
                f.write(_text_region(txt, pool))
            else:
                f.write(zero)
    counts = {k: kinds.count(k) for k in "RTZ"}
    print("image %s: %d MiB = %d random + %d text + %d zero regions (seed %d)"
          % (path, n, counts["R"], counts["T"], counts["Z"], seed))


def mutate(path, seed):
    size = os.path.getsize(path)
    blocks = size // MiB
    n = max(1, round(blocks / 100))
    step = size // n
    rng = random.Random(seed ^ 0x1C4E)
    offs = []
    with open(path, "r+b") as f:
        for i in range(n):
            off = (i * step + step // 2) // WRITE * WRITE
            f.seek(off)
            f.write(rng.randbytes(WRITE))
            offs.append(off)
    print("mutated %s: %d writes of 64 KiB (%d of %d 1-MiB blocks), seed %d"
          % (path, n, len({o // MiB for o in offs}), blocks, seed))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("image")
    c.add_argument("--size-gib", type=float, required=True)
    c.add_argument("--seed", type=int, default=20240601)
    m = sub.add_parser("mutate")
    m.add_argument("image")
    m.add_argument("--seed", type=int, required=True)
    a = ap.parse_args()
    if a.cmd == "create":
        create(a.image, a.size_gib, a.seed)
    else:
        mutate(a.image, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
