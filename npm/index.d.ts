/** A token as `dhan-login token --json` prints it. */
export interface Token {
  accessToken: string;
  clientId: string;
  /** When Dhan stops accepting it. */
  expiresAt: Date;
  /** `SELF` (made on Dhan Web, renewable) or `APP`. */
  kind: string;
  /** How it was obtained: `renew`, `totp`, `browser`, `manual` or `import`. */
  source: string;
}

export interface StaticIps {
  primary: string | null;
  secondary: string | null;
  /** `yyyy-mm-dd`: the first day the slot may change. */
  modifyDatePrimary: string | null;
  modifyDateSecondary: string | null;
}

export interface Options {
  /** A `[profiles.NAME]` of the config file; default `$DHAN_LOGIN_PROFILE`, else `default`. */
  profile?: string;
}

export interface TokenOptions extends Options {
  /** Also ask Dhan's profile endpoint (one request); a refused token is replaced. */
  verify?: boolean;
  /** "HH:MM" (IST): a token that lives past that time (`token --valid-until`). */
  validUntil?: string;
}

export function token(options?: TokenOptions): Promise<Token>;
/** Reports a token Dhan refused (DH-901) and resolves to a good one (`token --rejected`). */
export function rejected(options?: Options): Promise<Token>;
/** `{ DHAN_ACCESS_TOKEN, DHAN_CLIENT_ID }`, for a child process's environment. */
export function env(options?: Options): Promise<Record<string, string>>;
/** The whitelisted IPs (`dhan-login ip show`), asked with the live token. */
export function ip(options?: Options): Promise<StaticIps>;
/** The binary run: `$DHAN_LOGIN_BIN`, else the one in this package, else PATH. */
export function findBinary(): string;

export class DhanLoginError extends Error {
  /** The binary's exit code. */
  exitCode: number;
}
/** Exit 2. */
export class ConfigError extends DhanLoginError {}
/** Exit 3. */
export class CredentialsRejected extends DhanLoginError {}
/** Exit 4. */
export class ConsentLimit extends DhanLoginError {}
/** Exit 5. */
export class Temporary extends DhanLoginError {
  /** Seconds to wait, when the binary said. */
  retryAfter: number | null;
  retryAt: Date | null;
}
/** Exit 6. */
export class NoLogin extends DhanLoginError {}
