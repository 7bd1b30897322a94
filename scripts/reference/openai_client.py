"""OpenAI's Python client against provdb serve: models, chat (plain and streamed), a cited
answer from a Datanet (provdb's extra fields through `extra_body`), embeddings (the client's
default base64 encoding). Prints one JSON object of what it saw; the Rust test asserts on it.

Environment: PROVDB_URL (http://127.0.0.1:PORT), PROVDB_KEY (an API key), PROVDB_DATANET.
"""

import json
import os

import openai

client = openai.OpenAI(
    base_url=os.environ["PROVDB_URL"] + "/v1",
    api_key=os.environ["PROVDB_KEY"],
    max_retries=0,
    timeout=600,
)
out = {"client_version": openai.__version__}

models = [m.id for m in client.models.list()]
out["models"] = models
model = models[0]

plain = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is a boundary layer?"},
    ],
    max_tokens=12,
)
out["plain"] = {
    "content": plain.choices[0].message.content,
    "finish_reason": plain.choices[0].finish_reason,
    "completion_tokens": plain.usage.completion_tokens,
}

pieces = []
last = None
for chunk in client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "What is a boundary layer?"}],
    max_tokens=12,
    stream=True,
):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    last = chunk
out["stream"] = {
    "pieces": len(pieces),
    "content": "".join(pieces),
    "finish_reason": last.choices[0].finish_reason if last else None,
}

cited = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "What happens to the boundary layer near the trailing edge?"}],
    max_tokens=24,
    extra_body={
        "datanets": [os.environ["PROVDB_DATANET"]],
        "k": 2,
        "max_fee_wei": "1000000000000000",
        "attribution": "loo",
    },
)
extra = cited.model_extra or {}
out["cited"] = {
    "content": cited.choices[0].message.content,
    "answer_id": extra.get("answer_id"),
    "citations": extra.get("citations"),
    "split": extra.get("split"),
}

streamed_citations = None
for chunk in client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Why does the boundary layer thicken?"}],
    max_tokens=16,
    stream=True,
    extra_body={"datanets": [os.environ["PROVDB_DATANET"]], "k": 2, "attribution": "loo"},
):
    if (chunk.model_extra or {}).get("citations") is not None:
        streamed_citations = chunk.model_extra["citations"]
out["stream_citations"] = streamed_citations

emb = client.embeddings.create(model="minilm", input=["boundary layer", "shock wave"])
out["embeddings"] = [len(d.embedding) for d in emb.data]
out["embedding_norms"] = [sum(x * x for x in d.embedding) ** 0.5 for d in emb.data]

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    out["unknown_model"] = "accepted"
except openai.NotFoundError as e:
    out["unknown_model"] = e.status_code

try:
    openai.OpenAI(base_url=os.environ["PROVDB_URL"] + "/v1", api_key="pdb_bad", max_retries=0).models.list()
    out["bad_key"] = "accepted"
except openai.AuthenticationError as e:
    out["bad_key"] = e.status_code

print(json.dumps(out))
