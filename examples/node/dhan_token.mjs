// Reads the DhanHQ access token that dhan-login keeps, in one of three ways, and calls
// Dhan's profile endpoint with it. Node 18 or newer, no package.
//
//   node examples/node/dhan_token.mjs cli      # runs `dhan-login token`
//   node examples/node/dhan_token.mjs serve    # asks a running `dhan-login serve`
//   node examples/node/dhan_token.mjs file     # reads serve's token file
//
// On a 401 (DH-901) from Dhan the token is reported to its owner (`dhan-login token
// --rejected`, or serve's `POST .../token/rejected`), and the one that comes back is used.
//
// Environment (all optional): DHAN_LOGIN_PROFILE (default "default"),
// DHAN_LOGIN_STATE_DIR (default ~/.local/state/dhan-login), DHAN_LOGIN_SERVE_URL
// (default http://127.0.0.1:7787), DHAN_API_BASE_URL (default https://api.dhan.co/v2).

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";

const PROFILE = process.env.DHAN_LOGIN_PROFILE || "default";
const STATE = process.env.DHAN_LOGIN_STATE_DIR || `${homedir()}/.local/state/dhan-login`;

// [readme:node-cli]
function fromCli() {
  return execFileSync("dhan-login", ["token"], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
}
// [/readme]

// [readme:node-serve]
async function fromServe() {
  const key = readFileSync(`${STATE}/serve.key`, "utf8").trim();
  const url = `${process.env.DHAN_LOGIN_SERVE_URL || "http://127.0.0.1:7787"}/v1/profiles/${PROFILE}/token`;
  const res = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
  if (!res.ok) throw new Error(`serve answered ${res.status}: ${await res.text()}`);
  return (await res.json()).access_token;
}
// [/readme]

// [readme:node-file]
function fromFile() {
  return readFileSync(`${STATE}/serve/${PROFILE}.token`, "utf8").trim();
}
// [/readme]

// [readme:node-rejected]
// Dhan answered DH-901 (401): tell the token's owner, which checks it with Dhan and hands
// back a new one only if it is dead. Never log in here: that would end the token every
// other program holds.
async function afterRefusal(source) {
  if (source === "serve") {
    const key = readFileSync(`${STATE}/serve.key`, "utf8").trim();
    const url = `${process.env.DHAN_LOGIN_SERVE_URL || "http://127.0.0.1:7787"}/v1/profiles/${PROFILE}/token/rejected`;
    const res = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${key}` } });
    if (!res.ok) throw new Error(`serve answered ${res.status}: ${await res.text()}`);
    return (await res.json()).access_token;
  }
  // `dhan-login token --rejected` asks a running serve itself when there is one.
  return execFileSync("dhan-login", ["token", "--rejected"], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
}
// [/readme]

// Dhan's profile answer, or null when it says the token is invalid (DH-901, HTTP 401).
async function profile(token) {
  const base = process.env.DHAN_API_BASE_URL || "https://api.dhan.co/v2";
  const res = await fetch(`${base}/profile`, { headers: { "access-token": token, Accept: "application/json" } });
  if (res.status === 401) return null;
  if (!res.ok) throw new Error(`profile answered ${res.status}`);
  return res.json();
}

const source = process.argv[2] || "cli";
const readers = { cli: fromCli, serve: fromServe, file: fromFile };
if (!readers[source]) {
  console.error("usage: dhan_token.mjs cli|serve|file");
  process.exit(2);
}
let token = await readers[source]();
let info = await profile(token);
if (info === null) {
  console.error(`Dhan refused the token (${source}): reporting it`);
  token = await afterRefusal(source);
  info = await profile(token);
  if (info === null) throw new Error("Dhan refused the token the owner handed back");
}
console.log(`token (${source}): ${token}`);
console.log(`profile: client ${info.dhanClientId}, valid until ${info.tokenValidity}`);
