'use strict';
// A DhanHQ access token from Node, through the dhan-login binary shipped in this package.
// Every call runs the binary once (a few milliseconds for a cached token); a failure
// rejects with an error class named for the binary's exit code, whose message is the
// binary's and never holds a PIN, TOTP secret, API secret or token.

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

class DhanLoginError extends Error {
  constructor(message, exitCode) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}
/** Exit 2: a usage or configuration error (`dhan-login config check`). */
class ConfigError extends DhanLoginError {}
/** Exit 3: Dhan rejected the PIN, TOTP, mobile or API secret; they are not sent again. */
class CredentialsRejected extends DhanLoginError {}
/** Exit 4: the day's consents are used up until midnight IST. */
class ConsentLimit extends DhanLoginError {}
/** Exit 5: network, 5xx or rate limit; `retryAfter` (s) and `retryAt` when the binary said. */
class Temporary extends DhanLoginError {
  constructor(message, exitCode) {
    super(message, exitCode);
    const m = /try again after (\d+) s/.exec(message);
    this.retryAfter = m ? Number(m[1]) : null;
    this.retryAt = m ? new Date(Date.now() + this.retryAfter * 1000) : null;
  }
}
/** Exit 6: no live token, and logins are off on this host. */
class NoLogin extends DhanLoginError {}

const BY_CODE = { 2: ConfigError, 3: CredentialsRejected, 4: ConsentLimit, 5: Temporary, 6: NoLogin };

function fromExit(code, stderr) {
  // Run with --quiet, the binary writes only the error.
  const text = stderr.trim().replace(/^error: /, '');
  return new (BY_CODE[code] || DhanLoginError)(text || `dhan-login exited ${code}`, code);
}

/** The binary to run: $DHAN_LOGIN_BIN, else the one in this package, else PATH. */
function findBinary() {
  if (process.env.DHAN_LOGIN_BIN) return process.env.DHAN_LOGIN_BIN;
  const shipped = path.join(__dirname, 'bin', 'dhan-login');
  try {
    fs.accessSync(shipped, fs.constants.X_OK);
    return shipped;
  } catch {
    return 'dhan-login';
  }
}

function run(args, profile) {
  const argv = ['--quiet', ...(profile == null ? [] : ['--profile', profile]), ...args];
  return new Promise((resolve, reject) => {
    // stdin ignored: the binary never waits for a prompt nobody sees.
    const child = execFile(findBinary(), argv, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if (typeof err.code === 'number') return reject(fromExit(err.code, stderr));
      reject(err); // could not start it: ENOENT and the like
    });
    child.stdin.end();
  });
}

function toToken(out) {
  const v = JSON.parse(out);
  return {
    accessToken: v.access_token,
    clientId: v.client_id,
    expiresAt: new Date(v.expires_at),
    kind: v.kind,
    source: v.source,
  };
}

async function token({ profile, verify = false, validUntil } = {}) {
  const args = ['token', '--json'];
  if (verify) args.push('--verify');
  if (validUntil != null) args.push('--valid-until', validUntil);
  return toToken(await run(args, profile));
}

async function rejected({ profile } = {}) {
  return toToken(await run(['token', '--json', '--rejected'], profile));
}

async function env({ profile } = {}) {
  const out = await run(['token', '--env'], profile);
  const vars = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) vars[line.slice(0, i)] = line.slice(i + 1);
  }
  return vars;
}

async function ip({ profile } = {}) {
  const v = JSON.parse(await run(['ip', 'show', '--json'], profile));
  return {
    primary: v.primary,
    secondary: v.secondary,
    modifyDatePrimary: v.modify_date_primary,
    modifyDateSecondary: v.modify_date_secondary,
  };
}

module.exports = {
  token,
  rejected,
  env,
  ip,
  findBinary,
  DhanLoginError,
  ConfigError,
  CredentialsRejected,
  ConsentLimit,
  Temporary,
  NoLogin,
};
