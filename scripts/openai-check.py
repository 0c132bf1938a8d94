#!/usr/bin/env python3
"""Runs the official `openai` Python client (0.27 or 1.x) against a seed server.

    seed serve --target smollm2-135m --draft smollm2-135m --api-key k1 --port 8080 &
    python3 scripts/openai-check.py http://127.0.0.1:8080/v1 k1
"""
import sys

import openai

base, key = sys.argv[1], sys.argv[2]
print("openai", openai.__version__)
chat = [{"role": "user", "content": "Say hello."}]
if openai.__version__.startswith("0."):
    openai.api_base, openai.api_key = base, key
    print([m.id for m in openai.Model.list().data])
    r = openai.ChatCompletion.create(model="x", messages=chat, n=2, max_tokens=12, temperature=0.7)
    print(r.id, [(c.index, c.finish_reason, c.message.content) for c in r.choices], r.usage.total_tokens)
    r = openai.Completion.create(model="x", prompt=["1, 2, 3,", "a, b, c,"], max_tokens=6, temperature=0, stop="\n")
    print([(c.index, c.text, c.finish_reason) for c in r.choices])
    parts = [c.choices[0].delta.get("content", "") for c in openai.ChatCompletion.create(model="x", messages=chat, max_tokens=12, stream=True)]
    print("streamed:", repr("".join(parts)))
    try:
        openai.ChatCompletion.create(model="x", messages=chat, max_tokens=-1)
    except openai.error.InvalidRequestError as e:
        print("InvalidRequestError", e.http_status, e)
else:
    c = openai.OpenAI(base_url=base, api_key=key)
    print([m.id for m in c.models.list().data])
    r = c.chat.completions.create(model="x", messages=chat, n=2, max_tokens=12, temperature=0.7, seed=1)
    print(r.id, [(ch.index, ch.finish_reason, ch.message.content) for ch in r.choices], r.usage)
    r = c.completions.create(model="x", prompt=["1, 2, 3,", "a, b, c,"], max_tokens=6, temperature=0, stop=["\n"])
    print([(ch.index, ch.text, ch.finish_reason) for ch in r.choices], r.usage.total_tokens)
    s = c.chat.completions.create(model="x", messages=chat, max_tokens=12, stream=True, stream_options={"include_usage": True})
    parts = []
    for chunk in s:
        parts += [ch.delta.content or "" for ch in chunk.choices]
        if chunk.usage:
            print("usage", chunk.usage)
    print("streamed:", repr("".join(parts)))
    try:
        c.chat.completions.create(model="x", messages=chat, n=0)
    except openai.BadRequestError as e:
        print("BadRequestError", e.status_code, e.body)
    try:
        openai.OpenAI(base_url=base, api_key="wrong").models.list()
    except openai.AuthenticationError as e:
        print("AuthenticationError", e.status_code)
