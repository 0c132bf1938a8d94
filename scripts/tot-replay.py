# Replays the calls a Tree of Thoughts run made (logged by TOT_LOG=calls.jsonl
# scripts/tot-client.py ...): the same prompts, n and temperature, one after
# another, against OPENAI_API_BASE; prints the wall time. At temperature 0.7, or
# in fast mode, a server's answers and so the client's next prompts vary from run
# to run; a replay sends every server the same work.
# Usage: tot-replay.py CALLS.jsonl TEMPERATURE (openai 0.27, as the client's venv has)
import json, sys, time
import openai
calls = [json.loads(line) for line in open(sys.argv[1])]
temperature = float(sys.argv[2])
start, tokens = time.time(), 0
for c in calls:
    r = openai.ChatCompletion.create(model="any", messages=[{"role": "user", "content": c["prompt"]}],
                                     n=c["n"], temperature=temperature, max_tokens=100)
    tokens += r["usage"]["completion_tokens"]
print(json.dumps({"calls": len(calls), "wall_s": round(time.time() - start, 1), "completion_tokens": tokens}))
