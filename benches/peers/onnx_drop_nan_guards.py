#!/usr/bin/env python3
"""Python twin of harness_retrieval::dense::graph::drop_softmax_nan_guards, written with the
`onnx` package: removes every Where(IsNaN(p), z, p) whose p is a Softmax output and whose z is a
one-element initializer, rewiring the guard's consumers to p. The side-by-side runs python
onnxruntime on this file too, so the gain of the graph edit and the gain of the native code are
reported apart. Usage: onnx_drop_nan_guards.py IN.onnx OUT.onnx (prints the number dropped)"""
import sys

import onnx

model = onnx.load(sys.argv[1])
graph = model.graph
producer = {o: n for n in graph.node for o in n.output}
uses = {}
for n in graph.node:
    for i in n.input:
        uses[i] = uses.get(i, 0) + 1
scalars = {t.name for t in graph.initializer if len(t.dims) <= 1 and all(d == 1 for d in t.dims)}
outputs = {o.name for o in graph.output}
rename, dropped = {}, set()
for n in graph.node:
    if n.op_type != "Where" or len(n.input) != 3:
        continue
    cond, zero, probs = n.input
    guard, soft = producer.get(cond), producer.get(probs)
    if (guard is not None and guard.op_type == "IsNaN" and guard.input[0] == probs and soft is not None
            and soft.op_type == "Softmax" and zero in scalars and uses[cond] == 1 and cond not in outputs and n.output[0] not in outputs):
        rename[n.output[0]] = probs
        dropped.update({n.name, guard.name})
kept = [n for n in graph.node if n.name not in dropped]
for n in kept:
    for k, name in enumerate(n.input):
        if name in rename:
            n.input[k] = rename[name]
del graph.node[:]
graph.node.extend(kept)
onnx.save(model, sys.argv[2])
print(len(rename))
