"""ll_reorder.py - DeepEP's low-latency receive order, as the golden tests scramble it.

Source blocks come in arrival order and rows within a block in any order: for
each expert e of a packed layout (count [L], layout_range [L][R] of
(begin << 32 | count), src_info [L][R*N]), reverse the order of the source
blocks and of the rows in each, rewrite the ranges to match, and move the
rows of every array in `rows` ([L][R*N][...]) along. In place.
"""


def reorder(cnt, rng, src, rows):
    for e, n in enumerate(cnt):
        blocks = [(s, int(v) >> 32, int(v) & 0xffffffff) for s, v in enumerate(rng[e]) if int(v) & 0xffffffff]
        order, pos = [], 0
        for s, b, c in reversed(blocks):
            rng[e, s] = (pos << 32) | c
            order += list(range(b, b + c))[::-1]
            pos += c
        src[e, :n] = src[e, order]
        for a in rows:
            a[e, :n] = a[e, order]
