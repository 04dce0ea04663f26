// The fastify-token-cookie demo: `npm start`, then open http://127.0.0.1:3000.
//
//   PORT            port to listen on (default 3000)
//   DEMO_IDLE       idle window of a sliding login (default 60s)
//   DEMO_ABSOLUTE   absolute cap of a sliding login, from login time (default 5m)
//   DEMO_REMEMBER   lifetime of a "remember me" login (default 7d)
//   DEMO_REAUTH     how recent a login the "Change e-mail" action needs (default 1m)
//   TOKEN_SECRET    signing secret, at least 32 bytes (default: a random one, so restarting logs everyone out)
//   LOG_LEVEL       Fastify's log level (default warn; info logs each request)
//
// Durations are seconds ('90') or a number with a unit: '90s', '5m', '12h', '7d'.
// The short defaults are there so you can watch a session slide and expire; a real app keeps the
// plugin's defaults (30 minutes idle, 12 hours absolute) or longer.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import tokenCookie from 'fastify-token-cookie'

// Demo users. A real app looks the user up and checks a password hash (argon2, scrypt, bcrypt), never plain text.
const users = {
  alice: { password: 'wonderland', name: 'Alice Liddell', email: 'alice@example.com' },
  bob: { password: 'builder', name: 'Bob the Builder', email: 'bob@example.com' }
}

const units = { s: 1, m: 60, h: 3600, d: 86400 }

/** Seconds in a duration such as 90, '90', '90s', '5m', '7d'. */
function seconds (value, name) {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(String(value))
  if (match === null || Number(match[1]) <= 0) throw new Error(`${name}: expected a duration like 90, '90s', '5m' or '7d', got ${JSON.stringify(value)}`)
  return Number(match[1]) * units[match[2] || 's']
}

const publicDir = new URL('./public/', import.meta.url)
const pages = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/storage': ['storage.html', 'text/html; charset=utf-8'],
  '/welcome': ['welcome.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/storage.js': ['storage.js', 'text/javascript; charset=utf-8'],
  '/welcome.js': ['welcome.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml']
}

/** The demo's lifetimes when neither options nor environment variables say otherwise. */
export const defaults = { idle: '60s', absolute: '5m', remember: '7d', reauth: '1m' }

/**
 * Builds the demo app (not listening yet). Durations as above; `fastify` goes to Fastify itself.
 * Without a `secret`, a random one: restarting the app then signs everyone out.
 */
export async function buildDemo ({
  idle = defaults.idle,
  absolute = defaults.absolute,
  remember = defaults.remember,
  reauth = defaults.reauth,
  renewAfter = 0.5,
  secret = randomBytes(32).toString('base64url'),
  fastify = {}
} = {}) {
  idle = seconds(idle, 'idle (DEMO_IDLE)')
  absolute = seconds(absolute, 'absolute (DEMO_ABSOLUTE)')
  remember = seconds(remember, 'remember (DEMO_REMEMBER)')
  reauth = seconds(reauth, 'reauth (DEMO_REAUTH)')
  // The users' e-mail addresses, as the "Change e-mail" action leaves them (in memory: a restart resets them).
  const emails = new Map(Object.entries(users).map(([username, user]) => [username, user.email]))

  // forceCloseConnections: browsers keep idle keep-alive connections open, which would hold up close().
  const app = Fastify({ forceCloseConnections: true, ...fastify })

  // The cookie keeps the plugin's defaults: httpOnly, Secure, SameSite=Lax, Path=/. Secure works on
  // http://127.0.0.1 and http://localhost because Chromium treats loopback as a secure context and keeps
  // Secure cookies there (the browser tests check it). Served over plain http from another host, or to a
  // browser that drops them, use `cookie: { secure: 'auto' }` (Secure when the request came over HTTPS).
  await app.register(tokenCookie, {
    secret,
    // Unchecked "remember me": a sliding session in a browser-session cookie (gone when the browser closes)
    // that the server still slides and caps.
    policy: 'sliding',
    maxAge: idle,
    absoluteMaxAge: absolute,
    sessionCookie: true,
    renewAfter,
    // The readable `token.exp` cookie (`e=<expiresAt>&a=<absoluteExpiresAt>`) drives the page's countdowns.
    expiryHint: true,
    // The web-storage tab sends `Authorization: Bearer <token>` instead of the cookie.
    bearer: true,
    // Logout revokes the session, so a copied token stops working too. One process: the memory store;
    // several instances: redisStore from 'fastify-token-cookie/redis'.
    store: true
  })

  // Form-encoded logins (`curl -d`, an HTML form) are application/x-www-form-urlencoded (without a parser
  // Fastify answers 415).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)))
  })

  /** What the page shows about a session: `claims` are the token's, `expiry` comes from request.tokenExpiry(). */
  function describe (claims, expiry) {
    const persistent = claims.remember === true
    return {
      user: { username: claims.sub, name: claims.name },
      policy: persistent ? 'persistent' : 'sliding',
      // Seconds: the idle window and the whole login, for the page's progress bars.
      lifetime: persistent ? { idle: remember, absolute: remember, renewAfter: null } : { idle, absolute, renewAfter },
      expiry,
      // Seconds: how recent a login "Change e-mail" needs.
      reauth
    }
  }

  function sessionInfo (request) {
    const expiry = request.tokenExpiry()
    // tokenExpiry() reflects a renewal made by this request; request.user is the token that came in.
    return { ...describe(request.user, expiry), renewed: expiry.expiresAt !== request.user.exp }
  }

  const protect = { preHandler: async (request) => { await request.verifyToken() } }

  /** A new login of `username`: a new session, its login time now. Resolves to the token and what the page shows. */
  async function logIn (request, reply, username, remembered) {
    const claims = { sub: username, name: users[username].name, remember: remembered }
    // Unchecked: the sliding default from registration. Checked: a persistent cookie that does not slide.
    const accessToken = await reply.setTokenCookie(claims, remembered ? { policy: 'persistent', maxAge: remember } : undefined)
    return { accessToken, info: describe(claims, request.tokenExpiry()) }
  }

  app.post('/login', async (request, reply) => {
    const { username, password, remember: rememberMe } = request.body ?? {}
    const user = typeof username === 'string' && Object.hasOwn(users, username) ? users[username] : undefined
    if (user === undefined || user.password !== password) {
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Unknown user or wrong password' })
    }
    // JSON callers send true; a checked box in a form posts "on".
    const { accessToken, info } = await logIn(request, reply, username, rememberMe === true || rememberMe === 'on')
    // The token in the body is for clients that keep it in web storage (the /storage tab).
    return { access_token: accessToken, token_type: 'Bearer', ...info }
  })

  // "Confirm your password": a new login of the signed-in user, with the same remember-me choice, in place of
  // the current session (which is revoked, so this browser is not listed twice among the devices).
  app.post('/api/reauth', {
    ...protect,
    schema: { body: { type: 'object', required: ['password'], properties: { password: { type: 'string' } } } }
  }, async (request, reply) => {
    const { sub, sid, remember: remembered } = request.user
    if (users[sub].password !== request.body.password) {
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Wrong password' })
    }
    const { info } = await logIn(request, reply, sub, remembered === true)
    await app.tokenCookie.revokeSession(sid)
    return info
  })

  // The sensitive action: only with a recent login (a stolen, long-lived cookie is not enough). An older one
  // answers 401 FST_TOKEN_COOKIE_REAUTH and keeps the cookie: the page asks for the password, then retries.
  app.post('/api/email', {
    preHandler: async (request) => { await request.verifyToken({ maxAuthAge: reauth }) },
    schema: {
      body: {
        type: 'object',
        required: ['email'],
        properties: { email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' } }
      }
    }
  }, async (request) => {
    emails.set(request.user.sub, request.body.email)
    return { email: request.body.email }
  })

  // The signed-in user's account, as "Change e-mail" left it.
  app.get('/api/account', protect, async (request) => ({ email: emails.get(request.user.sub) }))

  // "Your devices": the signed-in user's live sessions, newest first, the current one marked.
  app.get('/api/sessions', protect, async (request) => {
    const sessions = await app.tokenCookie.listSessions(request.user.sub)
    return { sessions: sessions.map((session) => ({ ...session, current: session.sid === request.user.sid })) }
  })

  // Signs one of the user's sessions out everywhere. Only a session of the same user (another's sid: 404); the
  // current one is a logout.
  app.post('/api/sessions/:sid/revoke', protect, async (request, reply) => {
    const { sid } = request.params
    const sessions = await app.tokenCookie.listSessions(request.user.sub)
    if (!sessions.some((session) => session.sid === sid)) {
      return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such session' })
    }
    if (sid === request.user.sid) await reply.clearTokenCookie()
    else await app.tokenCookie.revokeSession(sid)
    return reply.code(204).send()
  })

  // "Sign out other devices": every session of the user but this one.
  app.post('/api/sessions/revoke-others', protect, async (request) => {
    const others = (await app.tokenCookie.listSessions(request.user.sub)).filter((session) => session.sid !== request.user.sid)
    await Promise.all(others.map((session) => app.tokenCookie.revokeSession(session.sid)))
    return { revoked: others.length }
  })

  // Public: a greeting for whoever asks. Signed in or not (no cookie, an expired or revoked one), a 200.
  app.get('/api/hello', async (request) => {
    const session = await request.verifyToken({ optional: true })
    return session === null ? { signedIn: false, greeting: 'Hello, guest' } : { signedIn: true, greeting: `Hello, ${session.name}`, user: session.sub }
  })

  // Protected: any request here may slide the session (re-issue the cookie) once it is due.
  app.get('/api/me', protect, async (request) => sessionInfo(request))

  // Protected, never renews: a page can poll this to show the session without keeping it alive.
  app.get('/api/poll', { ...protect, config: { tokenCookie: { renew: false } } }, async (request) => sessionInfo(request))

  // A protected state-changing route. SameSite=Lax keeps the cookie off cross-site POSTs, and the plugin's
  // cross-site request guard (on by default) refuses, with a 403, unsafe requests that carry the cookie from
  // another origin of the same site (another port or subdomain).
  app.post('/api/echo', protect, async (request) => ({ user: request.user.sub, received: request.body }))

  app.post('/logout', async (request, reply) => {
    // Clears the cookie and revokes the session of the token that came with the request, cookie or Bearer
    // header (the web-storage tab's "Forget token"): settled once the store has it.
    await reply.clearTokenCookie()
    return reply.code(204).send()
  })

  for (const [path, [file, type]] of Object.entries(pages)) {
    app.get(path, async (request, reply) => {
      reply.type(type).header('cache-control', 'no-cache')
      return readFile(new URL(file, publicDir))
    })
  }

  // The pages link /favicon.svg; whatever asks for /favicon.ico anyway gets an empty answer, not a 404.
  app.get('/favicon.ico', async (request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send())

  return app
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** What went wrong at startup, in one line: a bad setting, a busy port, an option the plugin refused. */
function explain (error, port) {
  if (error.code === 'EADDRINUSE') return `port ${port} is in use; set PORT to another port (PORT=0 picks a free one)`
  return error.message
}

// `node demo/server.js` (npm start): settings from the environment, listening on 127.0.0.1 only.
const main = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
if (main) {
  const {
    PORT = '3000',
    DEMO_IDLE = defaults.idle,
    DEMO_ABSOLUTE = defaults.absolute,
    DEMO_REMEMBER = defaults.remember,
    DEMO_REAUTH = defaults.reauth,
    TOKEN_SECRET,
    LOG_LEVEL = 'warn'
  } = process.env
  let app
  try {
    if (!/^\d{1,5}$/.test(PORT) || Number(PORT) > 65535) throw new Error(`PORT must be a port number from 0 to 65535, got ${JSON.stringify(PORT)}`)
    if (!logLevels.includes(LOG_LEVEL)) throw new Error(`LOG_LEVEL must be one of ${logLevels.join(', ')}, got ${JSON.stringify(LOG_LEVEL)}`)
    if (TOKEN_SECRET !== undefined && Buffer.byteLength(TOKEN_SECRET) < 32) {
      throw new Error(`TOKEN_SECRET must be at least 32 bytes (it has ${Buffer.byteLength(TOKEN_SECRET)}); leave it unset for a random one`)
    }
    app = await buildDemo({
      idle: DEMO_IDLE,
      absolute: DEMO_ABSOLUTE,
      remember: DEMO_REMEMBER,
      reauth: DEMO_REAUTH,
      secret: TOKEN_SECRET,
      fastify: { logger: { level: LOG_LEVEL } }
    })
    const url = await app.listen({ host: '127.0.0.1', port: Number(PORT) })
    // Ctrl-C: close the server and let the process end by itself.
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close())
    console.log(`fastify-token-cookie demo: ${url}`)
    console.log(`  sign-in without "remember me": ${DEMO_IDLE} idle, ${DEMO_ABSOLUTE} absolute; with it: ${DEMO_REMEMBER}`)
    console.log(`  "Change e-mail" needs a sign-in within ${DEMO_REAUTH}`)
    if (TOKEN_SECRET === undefined) console.log('  no TOKEN_SECRET: signing with a random secret, so a restart signs everyone out')
    console.log('  demo users: alice / wonderland, bob / builder')
  } catch (error) {
    // One line, not a stack trace: at startup it is the settings that are wrong, and the line says which.
    console.error(`demo: ${explain(error, PORT)}`)
    await app?.close()
    process.exitCode = 1
  }
}
