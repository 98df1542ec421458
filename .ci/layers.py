#!/usr/bin/env python3
"""Module dependency cycles in src/: edges from `crate::a::b` paths (use lines and inline
paths), grouped at depth 1 (top-level areas) and depth 2; prints SCCs with more than one node
and, for each edge inside an SCC, the files that make it. Exits 1 when there is one.

Why: the top-level areas are layered (README, "Architecture in a few lines"): main/startup,
web, programs, domain, tasks, mail, then db, audit, ids, config. A lower area naming a higher
one closes a circle, and `.ci/run` fails on it (`python3 .ci/layers.py src 1`)."""
import os, re, sys, collections
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
depth = int(sys.argv[2]) if len(sys.argv) > 2 else 1
mods = set()
def modpath(f):
    p = os.path.relpath(f, root)[:-3].split(os.sep)
    if p[-1] in ('mod', 'lib', 'main'): p = p[:-1]
    return p
files = []
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            files.append(os.path.join(d, f)); mods.add(tuple(modpath(os.path.join(d, f))))
def key(p):
    return '::'.join(p[:depth]) if p else '(root)'
edges = collections.defaultdict(set)
use_re = re.compile(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)')
group_re = re.compile(r'use crate::\{(.*?)\};', re.S)
for f in files:
    src = open(f).read()
    src = re.sub(r'//.*', '', src)
    me = modpath(f)
    paths = [m.split('::') for m in use_re.findall(src)]
    for g in group_re.findall(src):
        # top-level items of a grouped use: a, b::c, d::{e, f}
        depthc = 0; cur = ''
        for ch in g:
            if ch == '{': depthc += 1
            if ch == '}': depthc -= 1
            if ch == ',' and depthc == 0:
                paths.append(cur.strip().split('::')); cur = ''
            else: cur += ch
        if cur.strip(): paths.append(cur.strip().split('::'))
    for p in paths:
        p = [x.strip('{} \n') for x in p if x.strip('{} \n')]
        # the longest prefix that is a module
        best = []
        for i in range(1, len(p)+1):
            if tuple(p[:i]) in mods: best = p[:i]
        if not best: continue
        a, b = key(me), key(best)
        if a != b and not (len(me) >= depth and best[:depth] == me[:depth]):
            edges[(a, b)].add(os.path.relpath(f, root))
g = collections.defaultdict(set)
for (a, b) in edges: g[a].add(b)
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in g[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in list(g):
    if v not in idx: sc(v)
bad = [s for s in sccs if len(s) > 1]
for s in bad:
    print('cycle:', ' <-> '.join(sorted(s)))
    for (a, b), fs in sorted(edges.items()):
        if a in s and b in s: print(f'  {a} -> {b}: {", ".join(sorted(fs))}')
if not bad: print(f'no cycles at depth {depth}')
sys.exit(1 if bad else 0)
