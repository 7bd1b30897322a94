// An agent with only a wallet, paying provdb per request with the official x402 TypeScript
// client (@x402/fetch, pinned in scripts/reference/x402-ts). Run by scripts/x402-ts-client.sh:
//   PROVDB_URL=... PROVDB_MODEL=NAME X402_PRIVATE_KEY=0x... x402-ts-client.sh DATANET "question" [MAX_TOKENS]
// Prints one JSON object: status, the receipt (PAYMENT-RESPONSE), the answer, its citations
// and fee. Exit 0 when the answer came back paid.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const dir = process.env.X402_TS_DIR;
const require = createRequire(path.join(dir, "package.json"));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } = await load("@x402/fetch");
const { ExactEvmScheme } = await load("@x402/evm/exact/client");
const { privateKeyToAccount } = await load("viem/accounts");

const [datanet, question, maxTokens] = process.argv.slice(2);
const account = privateKeyToAccount(process.env.X402_PRIVATE_KEY);
// The token is the deployment's own, not one of the client's built-in stablecoins.
const client = new x402Client().register("eip155:*", new ExactEvmScheme(account)).setSpendControls(false);
const pay = wrapFetchWithPayment(fetch, client);
const response = await pay(`${process.env.PROVDB_URL.replace(/\/$/, "")}/v1/chat/completions`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({
    model: process.env.PROVDB_MODEL,
    messages: [{ role: "user", content: question }],
    datanets: [datanet],
    attribution: "loo",
    max_tokens: Number(maxTokens ?? 32),
  }),
});
const header = response.headers.get("PAYMENT-RESPONSE");
const out = { payer: account.address, status: response.status, receipt: header ? decodePaymentResponseHeader(header) : null };
const text = await response.text();
if (response.ok) {
  const answer = JSON.parse(text);
  Object.assign(out, {
    answer: answer.choices[0].message.content,
    citations: answer.citations,
    fee_wei: answer.fee_wei,
    answer_id: answer.answer_id,
  });
} else {
  out.error = text.slice(0, 2000);
}
console.log(JSON.stringify(out));
process.exit(response.ok && out.receipt?.success ? 0 : 1);
