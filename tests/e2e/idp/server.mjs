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
//   - a confidential client using client_secret_basic.
//
// Pocket ID logs users in with passkeys; here the interaction is a plain HTML
// form that a test client fills in with a user name (no password), and consent
// is implicit (first-party client), so a script can drive the whole flow.
//
// Configuration: env IDP_CONFIG (JSON), see `config` below. The server binds
// 127.0.0.1 on an ephemeral port (or IDP_PORT) and prints one JSON line
// {"issuer": ...} on stdout once it is listening.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { Provider } from 'oidc-provider';

const config = {
  alg: 'RS256',
  client_id: 'pocketgate',
  client_secret: 'e2e-client-secret',
  redirect_uris: [],
  post_logout_redirect_uris: [],
  // post_logout_redirect_uri values starting with one of these are accepted too
  post_logout_redirect_prefixes: [],
  ...JSON.parse(process.env.IDP_CONFIG || '{}'),
};

const USERS = {
  alice: { name: 'Alice Anders', email: 'alice@example.test', groups: ['admins', 'users'] },
  bob: { name: 'Bob Brown', email: 'bob@example.test', groups: ['users'] },
  carol: { name: 'Carol Clark', email: 'carol@example.test', groups: [] },
  dave: { name: 'Dave Dunn', email: 'dave@example.test', groups: ['grafana-admins'] },
};

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

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: config.redirect_uris,
      post_logout_redirect_uris: config.post_logout_redirect_uris,
      id_token_signed_response_alg: config.alg,
    }],
    jwks: { keys: [signingKey(config.alg)] },
    enabledAlgorithms: { idTokenSigningAlgValues: [config.alg] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    ttl: {
      AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Grant: 86400, Session: 86400,
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Pocket ID puts the scope's claims into the ID token as well.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
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
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
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
      await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: username } },
        { mergeWithLastSubmission: false });
      return undefined;
    }
    return ctx.throw(405);
  });

  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('authorization.error', (ctx, err) => console.error('authorization.error', err.message, err.error_description || ''));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description || ''));
  provider.on('end_session.error', (ctx, err) => console.error('end_session.error', err.message, err.error_description || ''));
  provider.on('grant.success', () => console.log('token issued'));
  provider.on('end_session.success', () => console.log('end_session success'));
  return provider;
}

const server = http.createServer();
server.listen(Number(process.env.IDP_PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = buildProvider(issuer);
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, alg: config.alg })}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); process.exit(0); });
}
