"""An outside x402 facilitator: the official `x402` package's own facilitator
(`x402FacilitatorSync` with its `exact` EVM scheme and web3 signer) behind x402's HTTP API.

Usage (scripts/x402-facilitator.sh runs it in the x402 venv):
    X402_FACILITATOR_KEY=0x... x402_facilitator.py --rpc URL --network eip155:31337 --port N

Routes, as the package's `HTTPFacilitatorClient` calls them:
    GET  /supported  the kinds it settles
    POST /verify     {x402Version, paymentPayload, paymentRequirements} -> VerifyResponse
    POST /settle     the same body -> SettleResponse (it sends transferWithAuthorization)

It prints "listening on PORT" once it serves. `provdb serve --x402 --x402-facilitator URL`
uses it instead of settling the payments itself.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from x402 import x402FacilitatorSync
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.schemas import PaymentPayload, PaymentRequirements


def build(rpc, network):
    """The package's facilitator for `network`, signing with $X402_FACILITATOR_KEY."""
    signer = FacilitatorWeb3Signer(
        private_key=os.environ["X402_FACILITATOR_KEY"], rpc_url=rpc
    )
    facilitator = x402FacilitatorSync()
    register_exact_evm_facilitator(facilitator, signer, networks=network)
    return facilitator


def handler_for(facilitator):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") != "/supported":
                return self.reply(404, {"error": "not found"})
            supported = facilitator.get_supported()
            self.reply(200, supported.model_dump(by_alias=True, exclude_none=True))

        def do_POST(self):
            route = self.path.rstrip("/")
            if route not in ("/verify", "/settle"):
                return self.reply(404, {"error": "not found"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                payload = PaymentPayload.model_validate(body["paymentPayload"])
                requirements = PaymentRequirements.model_validate(
                    body["paymentRequirements"]
                )
            except Exception as e:  # a malformed request is the caller's error
                return self.reply(400, {"error": f"bad request: {e}"})
            if route == "/verify":
                result = facilitator.verify(payload, requirements)
            else:
                result = facilitator.settle(payload, requirements)
            self.reply(200, result.model_dump(by_alias=True, exclude_none=True))

        def log_message(self, fmt, *args):
            sys.stderr.write("x402-facilitator: " + (fmt % args) + "\n")

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--network", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler_for(build(args.rpc, args.network))
    )
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
