# The Tree of Thoughts reference client (tree-of-thoughts-llm 0.1.0, unchanged) on
# Game of 24 rows, against OPENAI_API_BASE: one JSON line per row.
# Usage: [TOT_LOG=calls.jsonl] tot-client.py LABEL TEMPERATURE ROW...
# Needs the client in a virtual environment: python3 -m venv tot && tot/bin/pip install tree-of-thoughts-llm==0.1.0
import argparse, json, os, sys, time
import tot.methods.bfs as bfs, tot.models as models
from functools import partial
from tot.tasks.game24 import Game24Task
label, temperature, rows = sys.argv[1], float(sys.argv[2]), [int(r) for r in sys.argv[3:]]
bfs.gpt = partial(models.gpt, max_tokens=100)   # the default 1000 lets a small model ramble
if os.environ.get("TOT_LOG"):   # one JSON line per call (prompt, n, outputs), for scripts/tot-replay.py
    log, call = open(os.environ["TOT_LOG"], "w"), bfs.gpt
    def logged(prompt, **kw):
        out = call(prompt, **kw)
        log.write(json.dumps({"prompt": prompt, "n": kw.get("n", 1), "out": out}) + "\n"); log.flush()
        return out
    bfs.gpt = logged
args = argparse.Namespace(backend="any", temperature=temperature, method_generate="propose",
    method_evaluate="value", method_select="greedy", n_generate_sample=1,
    n_evaluate_sample=3, n_select_sample=2, prompt_sample=None)
task = Game24Task()
for row in rows:
    before = models.completion_tokens
    t = time.time()
    ys, info = bfs.solve(args, task, row, to_print=False)
    wall = time.time() - t
    solved = any(task.test_output(row, y)["r"] for y in ys)
    print(json.dumps({"server": label, "temperature": temperature, "row": row,
                      "wall_s": round(wall, 1), "solved": solved,
                      "completion_tokens": models.completion_tokens - before}), flush=True)
