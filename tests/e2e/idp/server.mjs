// A Pocket ID look-alike OpenID provider for pocketgate's end-to-end tests.
//
// Built on the certified npm `oidc-provider`, configured the way Pocket ID
// presents itself to a relying party:
//   - endpoints on Pocket ID's paths (/authorize, /api/oidc/token,
//     /api/oidc/userinfo, /api/oidc/end-session, /.well-known/jwks.json);
//   - scopes openid profile email groups; `groups` (group names) only with the
//     `groups` scope; claims also in the ID token;
//   - PKCE S256 required; exactly one ID token signing algorithm, advertised
//     alone in discovery (IDP_ALG=RS256 or ES256);
//   - RP-initiated logout (end_session_endpoint) with registered
//     post_logout_redirect_uris;
//   - refresh tokens only for the `offline_access` scope (listed in
//     scopes_supported, as Pocket ID lists it), rotated on every use; a
//     refresh returns the account's claims as they are now;
//   - OIDC Back-Channel Logout: a logout here POSTs a logout token (with the
//     session's `sid`, also in the ID token) to the client's
//     backchannel_logout_uri;
//   - a confidential client using client_secret_basic;
//   - for bearer-token tests, script clients `e2e-alice` and `e2e-bob`
//     (secret `e2e-script-secret`) with the client_credentials grant: their
//     access tokens are JWTs (typ at+jwt, signed like ID tokens) for the
//     resource `urn:pocketgate:api`, `aud` = `pocketgate`, carrying the
//     groups and preferred_username of the user the client is named after.
//     (The code flow's access tokens stay opaque, answered by userinfo.)
//
// Pocket ID logs users in with passkeys; here the interaction is a plain HTML
// form that a test client fills in with a user name (no password), and consent
// is implicit (first-party client), so a script can drive the whole flow.
//
// Configuration: env IDP_CONFIG (JSON), see `config` below. The server binds
// 127.0.0.1 on an ephemeral port (or IDP_PORT) and prints one JSON line
// {"issuer": ...} on stdout once it is listening. With IDP_STATE_DIR, keys,
// users and every stored token survive a restart (state.mjs), as Pocket ID's
// database does: stop it, start it again with the same IDP_PORT and
// IDP_STATE_DIR, and the refresh tokens it issued still work.
//
// Test control, on the same loopback port (never behind a proxy):
//   PUT /_test/users/NAME   {"groups": [...], "name"?, "email"?}  create or change a user;
//                           refreshed tokens and userinfo carry the change
//   GET /_test/users/NAME   the user
//   GET /_test/backchannel  every back-channel logout sent so far:
//                           [{client_id, sub, sid, ok, error}], oldest first
//   GET /_test/userinfo     the W3C trace context of every userinfo request so
//                           far: [{traceparent, tracestate}] (null: no such
//                           header), oldest first

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { Provider, errors, interactionPolicy } from 'oidc-provider';

import { State } from './state.mjs';

const config = {
  alg: 'RS256',
  client_id: 'pocketgate',
  client_secret: 'e2e-client-secret',
  redirect_uris: [],
  post_logout_redirect_uris: [],
  // post_logout_redirect_uri values starting with one of these are accepted too
  post_logout_redirect_prefixes: [],
  // where logout tokens are POSTed (OIDC Back-Channel Logout); none: no back-channel logout
  backchannel_logout_uri: undefined,
  ...JSON.parse(process.env.IDP_CONFIG || '{}'),
};

const state = new State(process.env.IDP_STATE_DIR);

const USERS = state.users || {
  alice: { name: 'Alice Anders', email: 'alice@example.test', groups: ['admins', 'users'] },
  bob: { name: 'Bob Brown', email: 'bob@example.test', groups: ['users'] },
  carol: { name: 'Carol Clark', email: 'carol@example.test', groups: [] },
  dave: { name: 'Dave Dunn', email: 'dave@example.test', groups: ['grafana-admins'] },
};
state.users = USERS;

// Script clients (client_credentials, JWT access tokens) and the user each acts as.
const SCRIPT_CLIENTS = { 'e2e-alice': 'alice', 'e2e-bob': 'bob' };
const API_RESOURCE = 'urn:pocketgate:api';

// Back-channel logouts sent, for GET /_test/backchannel.
const BACKCHANNEL = [];
// The trace context of each userinfo request, for GET /_test/userinfo.
const USERINFO_TRACE_CONTEXTS = [];

function signingKey(alg) {
  const kid = `e2e-${alg.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}`;
  let pair;
  if (alg === 'RS256') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else {
    throw new Error(`unsupported IDP alg ${alg}`);
  }
  return { ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`
    + `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req) {
  return new URLSearchParams(await readBody(req));
}

// oidc-provider keeps offline_access only when the request also says
// prompt=consent (OIDC Core 11 lets a provider insist); Pocket ID grants it
// without. So an authorization request that asks for offline_access and no
// prompt is given prompt=consent on arrival, and the consent prompt asks
// nothing: consent is implicit here anyway (see loadExistingGrant).
function offlineAccessLikePocketId(ctx, next) {
  if (ctx.path === '/authorize' && ctx.method === 'GET' && ctx.query.prompt === undefined
      && String(ctx.query.scope || '').split(' ').includes('offline_access')) {
    ctx.query = { ...ctx.query, prompt: 'consent' };
  }
  return next();
}

function interactions() {
  const policy = interactionPolicy.base();
  policy.get('consent').checks.remove('consent_prompt');
  return { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` };
}

function buildProvider(issuer) {
  if (!state.restored) {
    state.keys = {
      signing: signingKey(config.alg),
      cookies: [crypto.randomBytes(32).toString('hex')],
    };
    state.changed();
  }
  const provider = new Provider(issuer, {
    adapter: state.adapter(),
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: config.redirect_uris,
      post_logout_redirect_uris: config.post_logout_redirect_uris,
      id_token_signed_response_alg: config.alg,
      ...(config.backchannel_logout_uri ? {
        backchannel_logout_uri: config.backchannel_logout_uri,
        // the logout token, and the ID token, carry the provider session's sid
        backchannel_logout_session_required: true,
      } : {}),
    }, ...['alice', 'bob'].map((user) => ({
      client_id: `e2e-${user}`,
      client_secret: 'e2e-script-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: config.alg,
    }))],
    extraTokenClaims: async (ctx, token) => {
      const user = SCRIPT_CLIENTS[token.clientId];
      if (token.kind !== 'ClientCredentials' || !user) return undefined;
      return { preferred_username: user, groups: USERS[user]?.groups || [] };
    },
    jwks: { keys: [state.keys.signing] },
    enabledAlgorithms: { idTokenSigningAlgValues: [config.alg] },
    cookies: { keys: state.keys.cookies },
    pkce: { required: () => true },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Grant: 86400,
      Session: 86400,
      RefreshToken: 86400,
    },
    // Like Pocket ID: a refresh token only for offline_access, a new one at
    // every use (the old one is then spent; reusing it revokes the grant).
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && code.scopes.has('offline_access'),
    rotateRefreshToken: true,
    // oidc-provider refuses to POST to special-use addresses (SSRF guard);
    // every component of these tests is on loopback, so lift the guard for
    // 127.0.0.1 alone (the back-channel logout to pocketgate).
    async fetch(url, options) {
      if (new URL(url).hostname === '127.0.0.1') delete options.dispatcher;
      return globalThis.fetch(url, options);
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      // auth_time and amr (phr passkey, otp one-time code) as Pocket ID 2.14 sends them.
      openid: ['sub', 'auth_time', 'amr'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Pocket ID puts the scope's claims into the ID token as well.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only the script clients get a resource (hence JWT access tokens).
        defaultResource: async (ctx, client, oneOf) => oneOf
          || (SCRIPT_CLIENTS[client.clientId] ? API_RESOURCE : undefined),
        getResourceServerInfo: async (ctx, resource) => {
          if (resource !== API_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'api',
            audience: config.client_id,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: config.alg } },
          };
        },
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The stock page confirms with a button outside the form; put the
        // answer inside the form so a script can submit it as is.
        async logoutSource(ctx, form) {
          ctx.body = page('Sign out?', form.replace('</form>',
            '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>'));
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p>You have been signed out.</p>');
        },
      },
    },
    routes: {
      authorization: '/authorize',
      token: '/api/oidc/token',
      userinfo: '/api/oidc/userinfo',
      end_session: '/api/oidc/end-session',
      jwks: '/.well-known/jwks.json',
    },
    interactions: interactions(),
    async findAccount(ctx, sub) {
      const user = USERS[sub];
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            preferred_username: sub,
            name: user.name,
            email: user.email,
            email_verified: true,
            groups: user.groups,
          };
        },
      };
    },
    // First-party client: consent to whatever supported scope is asked.
    async loadExistingGrant(ctx) {
      const { session, client, provider: p } = ctx.oidc;
      if (!session?.accountId) return undefined;
      const existing = session.grantIdFor(client.clientId);
      const grant = (existing && await p.Grant.find(existing))
        || new p.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
      await grant.save();
      return grant;
    },
  });

  const registered = provider.Client.prototype.postLogoutRedirectUriAllowed;
  provider.Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
    return registered.call(this, value)
      || config.post_logout_redirect_prefixes.some((prefix) => String(value).startsWith(prefix));
  };

  provider.use(offlineAccessLikePocketId);

  // The login "page": GET renders a form, POST logs in as the named user.
  provider.use(async (ctx, next) => {
    const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
    if (!m) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== m[1]) ctx.throw(400, 'interaction mismatch');
    if (ctx.method === 'GET' && !m[2]) {
      ctx.type = 'html';
      ctx.body = page('Sign in', `<p>prompt: ${escapeHtml(details.prompt.name)}</p>`
        + `<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">`
        + '<input type="text" name="username" autofocus/>'
        // How the user signs in (amr): a passkey unless told otherwise (otp: a one-time code).
        + '<input type="text" name="amr" value="phr"/>'
        + '<button type="submit">Sign in</button></form>');
      return undefined;
    }
    if (ctx.method === 'POST' && m[2]) {
      const form = await readForm(ctx.req);
      const username = form.get('username') || '';
      if (!USERS[username]) {
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = page('Unknown user', `<p>${escapeHtml(username)}</p>`);
        return undefined;
      }
      console.log(`login ${username} (${details.params.client_id}, scope ${details.params.scope})`);
      ctx.respond = false;
      const amr = (form.get('amr') || 'phr').split(',').filter(Boolean);
      await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: username, amr } },
        { mergeWithLastSubmission: false });
      return undefined;
    }
    return ctx.throw(405);
  });

  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('authorization.error', (ctx, err) => console.error('authorization.error', err.message, err.error_description || ''));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description || ''));
  provider.on('end_session.error', (ctx, err) => console.error('end_session.error', err.message, err.error_description || ''));
  provider.on('grant.success', (ctx) => console.log(`token issued (${ctx.oidc.params.grant_type})`));
  provider.on('end_session.success', () => console.log('end_session success'));
  provider.on('backchannel.success', (ctx, client, sub, sid) => {
    console.log(`backchannel logout ${sub} sid ${sid}: delivered`);
    BACKCHANNEL.push({ client_id: client.clientId, sub, sid, ok: true, error: null });
  });
  provider.on('backchannel.error', (ctx, err, client, sub, sid) => {
    console.error(`backchannel logout ${sub} sid ${sid}: ${err.message}`);
    BACKCHANNEL.push({ client_id: client.clientId, sub, sid, ok: false, error: err.message });
  });
  return provider;
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

// The test control endpoints (see the top of this file).
async function control(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/_test/backchannel' && req.method === 'GET') {
    return sendJson(res, 200, BACKCHANNEL);
  }
  if (url.pathname === '/_test/userinfo' && req.method === 'GET') {
    return sendJson(res, 200, USERINFO_TRACE_CONTEXTS);
  }
  const m = /^\/_test\/users\/([a-z0-9-]{1,64})$/.exec(url.pathname);
  if (!m) return sendJson(res, 404, { error: 'no such control endpoint' });
  const name = m[1];
  if (req.method === 'GET') {
    return USERS[name] ? sendJson(res, 200, USERS[name]) : sendJson(res, 404, { error: 'no such user' });
  }
  if (req.method !== 'PUT') return sendJson(res, 405, { error: 'GET or PUT' });
  let body;
  try {
    body = JSON.parse(await readBody(req) || '{}');
  } catch {
    body = null;
  }
  if (!body || !Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string')) {
    return sendJson(res, 400, { error: 'expected {"groups": [strings], "name"?, "email"?}' });
  }
  const before = USERS[name];
  USERS[name] = {
    name: body.name || before?.name || name,
    email: body.email || before?.email || `${name}@example.test`,
    groups: body.groups,
  };
  state.changed();
  console.log(`control: user ${name} ${before ? 'changed' : 'created'}: groups ${JSON.stringify(body.groups)}`);
  return sendJson(res, 200, USERS[name]);
}

const server = http.createServer();
const restored = state.restored;
// IDP_BIND and IDP_ISSUER are for the container test alone, where this
// provider runs in its own container on a private network: it listens there
// and names itself by its host name on that network.
server.listen(Number(process.env.IDP_PORT || 0), process.env.IDP_BIND || '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = process.env.IDP_ISSUER || `http://127.0.0.1:${port}`;
  const provider = buildProvider(issuer);
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/_test/')) {
      control(req, res).catch((err) => sendJson(res, 500, { error: String(err) }));
      return;
    }
    if (new URL(req.url, issuer).pathname === '/api/oidc/userinfo') {
      const { traceparent = null, tracestate = null } = req.headers;
      USERINFO_TRACE_CONTEXTS.push({ traceparent, tracestate });
    }
    callback(req, res);
  });
  console.log(`${restored ? 'restarted with the saved state' : 'fresh state'}`
    + `${process.env.IDP_STATE_DIR ? ` (${process.env.IDP_STATE_DIR})` : ' (not saved)'}`);
  process.stdout.write(`${JSON.stringify({ issuer, alg: config.alg })}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    state.flush();
    server.close();
    process.exit(0);
  });
}
