"""An agent with only a wallet, paying provdb per request with the official x402 client.

Usage (scripts/x402-client.sh runs it in its venv):
    PROVDB_URL=http://127.0.0.1:7878 PROVDB_MODEL=NAME X402_PRIVATE_KEY=0x... \
        x402_client.py DATANET "question" [--max-tokens N]

PROVDB_MODEL is the model the server serves (its `GET /v1/models`).

It sends a cited question to /v1/chat/completions with no API key; the client pays the 402
(an EIP-3009 authorization signed with the key) and retries. It prints one JSON object:
status, the first 402's requirements, the receipt (PAYMENT-RESPONSE), the answer, its
citations and fee. Exit 0 when the answer came back paid, 1 otherwise.
"""

import argparse
import base64
import json
import os
import sys

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http.clients import x402_requests
from x402.mechanisms.evm.exact import ExactEvmScheme


def decode(header):
    """A base64 JSON header, or None."""
    if not header:
        return None
    return json.loads(base64.b64decode(header))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("datanet")
    parser.add_argument("question")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    url = os.environ["PROVDB_URL"].rstrip("/") + "/v1/chat/completions"
    body = {
        "model": os.environ["PROVDB_MODEL"],
        "messages": [{"role": "user", "content": args.question}],
        "datanets": [args.datanet],
        # Leave-one-out: the sources are paid by how much the answer used them.
        "attribution": "loo",
        "max_tokens": args.max_tokens,
    }
    # What an unpaid request is told (the client below does the same on its own).
    unpaid = requests.post(url, json=body, timeout=60)
    required = decode(unpaid.headers.get("PAYMENT-REQUIRED"))

    account = Account.from_key(os.environ["X402_PRIVATE_KEY"])
    client = x402ClientSync()
    client.register("eip155:*", ExactEvmScheme(signer=account))
    # The token is the deployment's own (not one of the client's built-in stablecoins).
    client.set_spend_controls(False)
    session = x402_requests(client)
    paid = session.post(url, json=body, timeout=600)
    out = {
        "payer": account.address,
        "unpaid_status": unpaid.status_code,
        "required": required,
        "status": paid.status_code,
        "receipt": decode(paid.headers.get("PAYMENT-RESPONSE")),
    }
    if paid.ok:
        answer = paid.json()
        out["answer"] = answer["choices"][0]["message"]["content"]
        out["citations"] = answer.get("citations")
        out["fee_wei"] = answer.get("fee_wei")
        out["answer_id"] = answer.get("answer_id")
        out["split"] = answer.get("split")
    else:
        out["error"] = paid.text[:2000]
    print(json.dumps(out))
    return 0 if paid.ok and out["receipt"] and out["receipt"].get("success") else 1


if __name__ == "__main__":
    sys.exit(main())
