// The `dhan-login` npm package, installed from its tarball into an empty project, against
// the stand-in of Dhan. Run by scripts/test_packages from that project's folder.
// STAND_IN and CAPPED_STAND_IN hold the first lines `dhan-login mock-server` printed (the
// second allows no consent). Every error class is met once; no error text holds a secret.
'use strict';
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// [readme:node-package]
const { token } = require('dhan-login');

async function profile(api = 'https://api.dhan.co/v2') {
  const t = await token(); // the stored token, renewed, or a new login: the cheapest that works
  const answer = await fetch(`${api}/profile`, { headers: { 'access-token': t.accessToken } });
  return [t, await answer.json()];
}
// [/readme]

const pkg = require('dhan-login');
const standIn = JSON.parse(process.env.STAND_IN);
const capped = JSON.parse(process.env.CAPPED_STAND_IN);
const baseEnv = { ...process.env };
const SECRETS = [standIn.pin, standIn.totp_secret, standIn.api_secret, capped.api_secret];
let checks = 0;

function use(d, extra = {}) {
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, baseEnv, {
    DHAN_CLIENT_ID: d.client_id,
    DHAN_PIN: d.pin,
    DHAN_TOTP_SECRET: d.totp_secret,
    DHAN_AUTH_BASE_URL: d.auth_base_url.replace(/\/$/, ''),
    DHAN_API_BASE_URL: d.api_base_url,
  });
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) delete process.env[k];
    else process.env[k] = v;
  }
}

const freshState = () => fs.mkdtempSync(path.join(os.tmpdir(), 'state-'));

function ok(name) {
  checks += 1;
  console.log(`ok   ${name}`);
}

async function raises(cls, code, fn, name, secrets = []) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${name}: no error`);
  assert.strictEqual(err.constructor, cls, `${name}: ${err.name}: ${err.message}`);
  assert.ok(err instanceof pkg.DhanLoginError);
  assert.strictEqual(err.exitCode, code, name);
  const text = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
  for (const s of [...SECRETS, ...secrets]) assert.ok(!text.includes(s), `${name}: a secret is in the error`);
  ok(`${name} -> ${cls.name} (exit ${code})`);
  return err;
}

(async () => {
  use(standIn);
  const binary = pkg.findBinary();
  assert.strictEqual(binary, path.join(process.cwd(), 'node_modules', 'dhan-login', 'bin', 'dhan-login'));
  ok(`findBinary() is the package's: ${binary}`);

  const [t, p] = await profile(standIn.api_base_url.replace(/\/$/, ''));
  assert.strictEqual(t.clientId, standIn.client_id);
  assert.strictEqual(p.dhanClientId, standIn.client_id);
  assert.ok(t.expiresAt instanceof Date && t.expiresAt > new Date(), String(t.expiresAt));
  assert.strictEqual(t.kind, 'APP');
  assert.strictEqual(t.source, 'totp');
  ok(`token() logs in; /v2/profile accepts it; expiresAt ${t.expiresAt.toISOString()}`);

  const again = await token({ verify: true });
  assert.strictEqual(again.accessToken, t.accessToken);
  ok('token({ verify: true }) is the stored token, checked with Dhan');

  assert.deepStrictEqual(await pkg.env(), { DHAN_ACCESS_TOKEN: t.accessToken, DHAN_CLIENT_ID: t.clientId });
  ok('env() holds DHAN_ACCESS_TOKEN and DHAN_CLIENT_ID');

  const ips = await pkg.ip();
  assert.deepStrictEqual(ips, { primary: null, secondary: null, modifyDatePrimary: null, modifyDateSecondary: null });
  ok('ip() reads the (empty) whitelist');

  use(standIn, { DHAN_LOGIN_MARGIN_MINUTES: 'soon' });
  const config = await raises(pkg.ConfigError, 2, () => token(), 'a malformed variable');
  assert.ok(config.message.includes('DHAN_LOGIN_MARGIN_MINUTES'), config.message);

  const wrongPin = [...standIn.pin].map((c) => String((Number(c) + 1) % 10)).join('');
  use(standIn, { DHAN_PIN: wrongPin, DHAN_LOGIN_STATE_DIR: freshState() });
  const rejected = await raises(pkg.CredentialsRejected, 3, () => token(), 'a wrong PIN', [wrongPin]);
  assert.ok(rejected.message.includes('Invalid PIN'), rejected.message);

  use(standIn, { DHAN_AUTH_BASE_URL: process.env.CLOSED_PORT_URL, DHAN_LOGIN_STATE_DIR: freshState() });
  const down = await raises(pkg.Temporary, 5, () => token(), 'Dhan unreachable');
  assert.strictEqual(down.retryAfter, null);

  const twoMachinesAtOnce = async () => {
    for (let i = 0; i < 6; i++) {
      use(standIn, { DHAN_LOGIN_STATE_DIR: freshState() });
      await token();
    }
  };
  const reused = await raises(pkg.Temporary, 5, twoMachinesAtOnce, 'a reused TOTP step');
  assert.strictEqual(reused.retryAfter, 30);
  assert.ok(reused.retryAt > new Date());
  ok(`Temporary says when: retryAfter=${reused.retryAfter}s`);

  use(capped, {
    DHAN_TOTP_SECRET: null,
    DHAN_OTP_COMMAND: 'false',
    DHAN_MOBILE: capped.mobile,
    DHAN_API_KEY: capped.api_key,
    DHAN_API_SECRET: capped.api_secret,
    DHAN_LOGIN_STATE_DIR: freshState(),
  });
  await raises(pkg.ConsentLimit, 4, () => token(), 'no consent left today', [capped.pin]);

  use(standIn, { DHAN_LOGIN_NO_LOGIN: '1', DHAN_LOGIN_STATE_DIR: freshState() });
  const never = await raises(pkg.NoLogin, 6, () => token(), 'logins off on this host, no token stored');
  assert.ok(never.message.includes('logins are off'), never.message);

  use(standIn, { DHAN_LOGIN_BIN: path.join(freshState(), 'no-such-binary') });
  await assert.rejects(token(), (e) => e.code === 'ENOENT');
  ok('$DHAN_LOGIN_BIN names the binary to run');

  console.log(`node package: ${checks} checks passed`);
})().catch((e) => {
  console.error(`FAIL ${e.stack}`);
  process.exit(1);
});
