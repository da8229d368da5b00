// The console's only way to the server: the public REST API (docs/api.md),
// with a bearer token kept in this module's memory only (never in storage,
// cookies or the URL): a reload or a closed tab signs out.
//
// Two ways in: an OAuth client's id and secret (client credentials grant at
// /oauth/token; the token is fetched again before it expires, so the secret
// stays in memory too, for as long as the page is open), or a pasted token
// (a JWT access token; it is used until it expires, then the console asks for
// a sign-in again).

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// Seconds before expiry at which a client's token is renewed (or a fifth of
// its lifetime, for short ones).
const kRenewAheadSeconds = 60;

function jwtExpiry(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json);
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function encodeName(name) {
  return encodeURIComponent(name);
}

export function branchPath(project, branch, tail = '') {
  return `/v1/projects/${encodeName(project)}/branches/${encodeName(branch)}${tail}`;
}

export class Session {
  #token = null;
  #expiresAt = 0;
  #client = null;  // {id, secret} when signed in as a client
  #timer = null;

  constructor() {
    this.onSignedOut = () => {};  // (message) when the session ends by itself
    this.label = '';
  }

  get signedIn() { return this.#token !== null; }
  get expiresAt() { return this.#expiresAt; }

  async signInWithClient(id, secret) {
    await this.#fetchToken(id, secret);
    this.#client = { id, secret };
    this.label = id;
    this.#schedule();
  }

  // A pasted token: refused at once when it is malformed, expired, or the
  // server does not accept it.
  async signInWithToken(token) {
    token = token.trim();
    const exp = jwtExpiry(token);
    if (exp === null) throw new ApiError(0, 'invalid_token', 'That is not an access token (a JWT of three dot-separated parts).');
    if (exp <= Date.now()) throw new ApiError(401, 'invalid_token', 'That token has expired: get a new one (POST /oauth/token) or sign in with a client.');
    this.#token = token;
    this.#expiresAt = exp;
    this.#client = null;
    this.label = 'pasted token';
    try {
      await this.call('GET', '/v1/projects', undefined, { quiet: true });
    } catch (e) {
      if (e.status === 401) {
        this.#clear();
        throw new ApiError(401, e.code, `The server refused this token (${e.message}).`);
      }
      // 403: a token without projects:read may still do what it is for.
    }
    this.#schedule();
  }

  async signOut() {
    const client = this.#client;
    const token = this.#token;
    this.#clear();
    if (client && token) {
      // Best effort: the token is forgotten here whatever the answer.
      await fetch('/oauth/revoke', {
        method: 'POST',
        body: new URLSearchParams({ token, client_id: client.id, client_secret: client.secret }),
      }).then((res) => res.text()).catch(() => {});
    }
  }

  // method path [body]: the answer's JSON; throws ApiError with the API's
  // error code and message. A 401 on a client session renews the token and
  // tries once more; otherwise it ends the session (onSignedOut, unless
  // options.quiet).
  async call(method, path, body, options = {}) {
    if (!this.#token) throw new ApiError(401, 'signed_out', 'Signed out: sign in again.');
    const init = { method, headers: { Authorization: `Bearer ${this.#token}` } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network_error', `The server did not answer (${e.message}).`);
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (res.ok) return json;
    const err = json && json.error && typeof json.error === 'object' ? json.error : {};
    const error = new ApiError(res.status, err.code || `http_${res.status}`,
                               err.message || `${method} ${path}: HTTP ${res.status}`, err.details);
    if (res.status === 401) {
      if (this.#client && !options.retried) {
        await this.#fetchToken(this.#client.id, this.#client.secret);
        return this.call(method, path, body, { ...options, retried: true });
      }
      this.#clear();
      if (!options.quiet) this.onSignedOut(`Your session ended (${error.message}). Sign in again.`);
    }
    throw error;
  }

  async #fetchToken(id, secret) {
    let res;
    try {
      // The client's credentials in the body (RFC 6749 client_secret_post),
      // not in Basic auth: a refused Basic login makes browsers prompt.
      res = await fetch('/oauth/token', {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }),
      });
    } catch (e) {
      throw new ApiError(0, 'network_error', `The server did not answer (${e.message}).`);
    }
    const json = await res.json().catch(() => ({}));
    if (!res.ok || !json.access_token) {
      const code = json.error || `http_${res.status}`;
      const message = code === 'invalid_client'
        ? 'Wrong client id or secret.'
        : (json.error_description || `Sign-in failed (HTTP ${res.status}).`);
      throw new ApiError(res.status, code, message);
    }
    this.#token = json.access_token;
    this.#expiresAt = Date.now() + json.expires_in * 1000;
  }

  // Renews a client's token ahead of expiry; ends a pasted token's session at it.
  #schedule() {
    clearTimeout(this.#timer);
    const left = this.#expiresAt - Date.now();
    if (this.#client) {
      const ahead = Math.min(kRenewAheadSeconds * 1000, left / 5);
      this.#timer = setTimeout(async () => {
        try {
          await this.#fetchToken(this.#client.id, this.#client.secret);
          this.#schedule();
        } catch (e) {
          this.#clear();
          this.onSignedOut(`Could not renew the session (${e.message}). Sign in again.`);
        }
      }, Math.max(1000, left - ahead));
    } else {
      this.#timer = setTimeout(() => {
        this.#clear();
        this.onSignedOut('The pasted token has expired. Sign in again.');
      }, Math.max(0, left));
    }
  }

  #clear() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#token = null;
    this.#client = null;
    this.#expiresAt = 0;
    this.label = '';
  }
}
