// Type tests for the public types (tsd, against the built .d.ts: run `npm run build` first).
import fastify, { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import type { Cluster, Redis } from 'ioredis'
import { redisStore } from 'fastify-token-cookie/redis'
import tokenCookie, {
  tokenCookie as namedTokenCookie,
  memoryStore,
  OptionsError,
  TokenExpiredError,
  TokenInvalidError,
  TokenMissingError,
  TokenRevokedError,
  TokenTooLargeError,
  type AsymmetricKey,
  type CookieAttributes,
  type Duration,
  type HmacKey,
  type IsRevoked,
  type KeyPair,
  type RevocationState,
  type RevocationStore,
  type LoginOptions,
  type Policy,
  type Secret,
  type SignOptions,
  type TokenClaims,
  type TokenCookieOptions,
  type TokenCookieRouteConfig,
  type TokenExpiry,
  type TokenPayload,
  type SessionPayload,
  type SessionUser,
  type SessionInfo,
  type VerifyOptions,
  type VerifyTokenOptions
} from 'fastify-token-cookie'

/** `true` only for `any`: a leak check that `expectType` on the property would also catch, listed per option. */
type IsAny<T> = 0 extends (1 & T) ? true : false
declare function typeOf<T> (): T

const app = fastify()

// ---------------------------------------------------------------- the plugin and its exports
expectType<FastifyPluginAsync<TokenCookieOptions>>(tokenCookie)
expectType<typeof tokenCookie>(namedTokenCookie)
expectType<'FST_TOKEN_COOKIE_MISSING'>(new TokenMissingError().code)
expectType<'FST_TOKEN_COOKIE_INVALID'>(new TokenInvalidError().code)
expectType<'FST_TOKEN_COOKIE_EXPIRED'>(new TokenExpiredError().code)
expectType<'FST_TOKEN_COOKIE_REVOKED'>(new TokenRevokedError().code)
expectType<'FST_TOKEN_COOKIE_TOO_LARGE'>(new TokenTooLargeError().code)
expectType<'FST_TOKEN_COOKIE_OPTIONS'>(new OptionsError().code)
expectType<401>(new TokenMissingError().statusCode)
expectType<500>(new TokenTooLargeError().statusCode)
expectAssignable<Error>(new TokenRevokedError())

// ---------------------------------------------------------------- registering
app.register(tokenCookie, { secret: 'a-secret-of-at-least-thirty-two-bytes!!' })
app.register(tokenCookie, { secret: Buffer.alloc(32) })
app.register(tokenCookie, { secret: { private: '-----BEGIN PRIVATE KEY-----', public: Buffer.from('-----BEGIN PUBLIC KEY-----') } })
app.register(namedTokenCookie, { secret: 'x'.repeat(32), prefix: '/auth' })

for (const policy of ['session', 'persistent', 'sliding'] as const) {
  app.register(tokenCookie, { secret: 'x'.repeat(32), policy })
}
app.register(tokenCookie, {
  secret: 'x'.repeat(32),
  policy: 'sliding',
  maxAge: '30m',
  absoluteMaxAge: '12h',
  renewAfter: 0.5,
  sessionCookie: true,
  cookieName: '__Host-token',
  cookie: { httpOnly: true, secure: 'auto', sameSite: 'strict', path: '/', domain: 'example.com', partitioned: true },
  sign: { algorithm: 'HS256', iss: 'https://issuer.example', aud: ['app', 'api'], sub: 'subject', typ: 'JWT' },
  verify: { allowedIss: 'https://issuer.example', allowedAud: [/^app/, 'api'], allowedSub: /./, requiredClaims: ['sub'], clockTolerance: '5s' },
  bearer: true,
  expiryHint: true,
  maxChunks: 3,
  isRevoked: async (payload, request) => {
    expectType<TokenPayload>(payload)
    expectType<FastifyRequest>(request)
    return payload.sub === 'mallory' || request.ip === '192.0.2.1'
  }
})
app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: 1800, absoluteMaxAge: 43_200, renewAfter: 0 })
app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: '250ms', absoluteMaxAge: '7d', verify: { clockTolerance: 2 } })
app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: '90 seconds', absoluteMaxAge: '1 week' })
app.register(tokenCookie, { secret: 'x'.repeat(32), cookie: { secure: false, sameSite: 'lax' } })
app.register(tokenCookie, { secret: 'x'.repeat(32), cookie: { secure: true, sameSite: 'none' } })
app.register(tokenCookie, { secret: 'x'.repeat(32), isRevoked: () => false })
app.register(tokenCookie, { secret: { private: 'pem', public: 'pem' }, sign: { algorithm: 'ES256' } })
app.register(tokenCookie, { secret: { private: 'pem', public: 'pem' }, sign: { algorithm: 'EdDSA' } })
app.register(tokenCookie, { secret: 'x'.repeat(32), encrypt: true })
app.register(tokenCookie, { secret: [{ kid: 'k2', secret: 'x'.repeat(32) }, { kid: 'k1', secret: Buffer.alloc(32) }], encrypt: false })

// misuse
expectError(app.register(tokenCookie, {}))
expectError(app.register(tokenCookie, { policy: 'sliding' }))
expectError(app.register(tokenCookie, { secret: 42 }))
expectError(app.register(tokenCookie, { secret: { private: 'pem' } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), policy: 'forever' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: true }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: '30 minutes please' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), maxAge: '30' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), absoluteMaxAge: '12 parsecs' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), renewAfter: '0.5' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), sessionCookie: 'yes' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), cookie: { sameSite: 'sideways' } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), cookie: { sameSite: true } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), cookie: { secure: 'always' } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), sign: { algorithm: 'none' } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), verify: { clockTolerance: 'a while' } }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), bearer: 'yes' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), expiryHint: 'yes' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), encrypt: 'A256GCM' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), maxChunks: '3' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), isRevoked: () => 'no' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), isRevoked: async () => 'no' }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), maxAgeSeconds: 60 }))

// ---------------------------------------------------------------- the option types
expectAssignable<Duration>(30)
expectAssignable<Duration>('250ms')
expectAssignable<Duration>('90s')
expectAssignable<Duration>('30m')
expectAssignable<Duration>('12h')
expectAssignable<Duration>('7d')
expectAssignable<Duration>('1.5 hours')
expectNotAssignable<Duration>('30')
expectNotAssignable<Duration>('30 minutes please')
expectNotAssignable<Duration>('soon')
expectNotAssignable<Duration>(true)

expectType<'session' | 'persistent' | 'sliding'>(typeOf<Policy>())
expectType<string | Buffer | KeyPair | ReadonlyArray<HmacKey | AsymmetricKey>>(typeOf<Secret>())
expectType<Secret>(typeOf<TokenCookieOptions['secret']>())
expectType<Policy | undefined>(typeOf<TokenCookieOptions['policy']>())
expectType<Duration | undefined>(typeOf<TokenCookieOptions['maxAge']>())
expectType<Duration | undefined>(typeOf<TokenCookieOptions['absoluteMaxAge']>())
expectType<number | undefined>(typeOf<TokenCookieOptions['renewAfter']>())
expectType<boolean | undefined>(typeOf<TokenCookieOptions['sessionCookie']>())
expectType<string | undefined>(typeOf<TokenCookieOptions['cookieName']>())
expectType<CookieAttributes | undefined>(typeOf<TokenCookieOptions['cookie']>())
expectType<SignOptions | undefined>(typeOf<TokenCookieOptions['sign']>())
expectType<VerifyOptions | undefined>(typeOf<TokenCookieOptions['verify']>())
expectType<boolean | undefined>(typeOf<TokenCookieOptions['bearer']>())
expectType<IsRevoked | undefined>(typeOf<TokenCookieOptions['isRevoked']>())
expectType<(payload: TokenPayload, request: FastifyRequest) => boolean | Promise<boolean>>(typeOf<IsRevoked>())
expectType<boolean | 'auto' | undefined>(typeOf<CookieAttributes['secure']>())
expectType<'lax' | 'strict' | 'none' | undefined>(typeOf<CookieAttributes['sameSite']>())
expectType<Duration | undefined>(typeOf<VerifyOptions['clockTolerance']>())
expectType<LoginOptions>(typeOf<Pick<TokenCookieOptions, keyof LoginOptions>>())

// without a FastifyJWT declaration (types/typed-sessions/ has one): any plain object in, TokenPayload out
expectType<Record<string, unknown>>(typeOf<SessionPayload>())
expectType<TokenPayload>(typeOf<SessionUser>())

// no `any` anywhere in the options, the claims, the login options or the route config
type AnyKeys<T> = { [K in keyof T]-?: IsAny<T[K]> extends true ? K : never }[keyof T]
expectType<never>(typeOf<AnyKeys<TokenCookieOptions>>())
expectType<never>(typeOf<AnyKeys<CookieAttributes>>())
expectType<never>(typeOf<AnyKeys<SignOptions>>())
expectType<never>(typeOf<AnyKeys<VerifyOptions>>())
expectType<never>(typeOf<AnyKeys<LoginOptions>>())
expectType<never>(typeOf<AnyKeys<TokenClaims>>())
expectType<never>(typeOf<AnyKeys<TokenCookieRouteConfig>>())
expectType<never>(typeOf<AnyKeys<TokenExpiry>>())
expectType<never>(typeOf<AnyKeys<VerifyTokenOptions>>())
expectType<false>(typeOf<IsAny<TokenPayload>>())
expectType<false>(typeOf<IsAny<Duration>>())
expectType<false>(typeOf<IsAny<Secret>>())

// ---------------------------------------------------------------- the payload
declare const payload: TokenPayload
expectType<number>(payload.iat)
expectType<number>(payload.exp)
expectType<number>(payload.auth_time)
expectType<unknown>(payload.sub)
expectType<unknown>(payload.anything)
expectError(payload.iat = 'now')

// ---------------------------------------------------------------- the decorators
app.post('/login', async (request, reply) => {
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'a' }))
  expectType<string>(await reply.setTokenCookie({ sub: 'a', roles: ['admin'], org: { id: 1 } }))
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'a' }, { policy: 'persistent', maxAge: '30d' }))
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'a' }, { policy: 'sliding', maxAge: 900, absoluteMaxAge: '8h', sessionCookie: true }))
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'a' }, {}))

  // A payload typed with an interface (a user record from a database layer) is a plain object too.
  interface User { sub: string, name: string }
  const user: User = { sub: 'a', name: 'Alice' }
  expectType<Promise<string>>(reply.setTokenCookie(user))

  expectError(reply.setTokenCookie({ sub: 'a' }, { policy: 'x' }))
  expectError(reply.setTokenCookie({ sub: 'a' }, { maxAge: 'forever' }))
  expectError(reply.setTokenCookie({ sub: 'a' }, { renewAfter: 0.5 }))
  expectError(reply.setTokenCookie({ sub: 'a' }, 'persistent'))
  expectError(reply.setTokenCookie('alice'))
  expectError(reply.setTokenCookie(['alice']))
  expectError(reply.setTokenCookie(() => ({ sub: 'a' })))
  expectError(reply.setTokenCookie(42))
  expectError(reply.setTokenCookie(null))
  expectError(reply.setTokenCookie())

  expectType<Promise<void>>(reply.clearTokenCookie())
  expectError(reply.clearTokenCookie({ sub: 'a' }))

  expectType<Promise<string>>(reply.updateTokenCookie({ sub: 'a', role: 'admin' }))
  expectError(reply.updateTokenCookie('admin'))
  expectError(reply.updateTokenCookie(['admin']))
  expectError(reply.updateTokenCookie())
  return { ok: true }
})

app.get('/me', async (request) => {
  const verified = await request.verifyToken()
  expectType<TokenPayload>(verified)
  expectAssignable<TokenClaims>(verified)
  expectType<number>(verified.iat)
  expectType<number>(verified.exp)
  expectType<number>(verified.auth_time)
  expectType<unknown>(verified.sub)

  const typed = await request.verifyToken<{ sub: string, roles: string[] }>()
  expectType<string>(typed.sub)
  expectType<string[]>(typed.roles)
  expectType<number>(typed.iat)
  expectType<number>(typed.exp)
  expectType<number>(typed.auth_time)
  expectType<{ sub: string, roles: string[] } & TokenClaims>(typed)
  expectError(typed.missing)

  expectError(request.verifyToken<string>())
  expectError(request.verifyToken('token'))

  // options: `optional: true` adds null; `maxAuthAge` is a duration
  expectType<TokenPayload>(await request.verifyToken({}))
  expectType<TokenPayload>(await request.verifyToken({ optional: false, maxAuthAge: '5m' }))
  expectType<TokenPayload | null>(await request.verifyToken({ optional: true }))
  expectType<({ sub: string } & TokenClaims) | null>(await request.verifyToken<{ sub: string }>({ optional: true, maxAuthAge: 300 }))
  const runtimeOptions: VerifyTokenOptions = { optional: request.url === '/maybe' }
  expectType<TokenPayload | null>(await request.verifyToken(runtimeOptions))
  expectType<boolean | undefined>(typeOf<VerifyTokenOptions['optional']>())
  expectType<Duration | undefined>(typeOf<VerifyTokenOptions['maxAuthAge']>())
  expectError(request.verifyToken({ optional: 'yes' }))
  expectError(request.verifyToken({ maxAuthAge: 'a while' }))
  expectError(request.verifyToken({ maxAuthAge: '300' }))
  expectError(request.verifyToken({ renew: false }))

  // request.user: @fastify/jwt's declaration (its default type without a FastifyJWT declaration)
  expectType<string | object | Buffer>(request.user)

  const expiry = request.tokenExpiry()
  expectType<TokenExpiry | null>(expiry)
  if (expiry !== null) {
    expectType<number>(expiry.expiresAt)
    expectType<number>(expiry.absoluteExpiresAt)
  }
  return typed
})

// as a preHandler, the way the README protects a route
app.get('/protected', { preHandler: async (request) => { await request.verifyToken() } }, async () => 'ok')

// unknown decorator names do not compile
app.get('/typos', async (request, reply) => {
  expectError(request.verifyTokens())
  expectError(request.verify())
  expectError(reply.setToken({ sub: 'a' }))
  expectError(reply.setTokenCookies({ sub: 'a' }))
  expectError(reply.clearToken())
  expectError(request.setTokenCookie({ sub: 'a' }))
  expectError(reply.verifyToken())
  expectError(app.verifyToken())
})

// decorators are typed on every request and reply, also outside a route handler
declare const someRequest: FastifyRequest
declare const someReply: FastifyReply
expectType<Promise<TokenPayload>>(someRequest.verifyToken())
expectType<Promise<TokenPayload | null>>(someRequest.verifyToken({ optional: true }))
expectType<Promise<string>>(someReply.setTokenCookie({ sub: 'a' }))
expectType<Promise<void>>(someReply.clearTokenCookie())

// ---------------------------------------------------------------- per-route config
app.get('/poll', { config: { tokenCookie: { renew: false } } }, async () => 'ok')
app.route({ method: 'GET', url: '/poll2', config: { tokenCookie: { renew: true } }, handler: async () => 'ok' })
app.get('/plain', { config: { tokenCookie: {} } }, async () => 'ok')
app.get('/config', async (request) => {
  expectType<TokenCookieRouteConfig | undefined>(request.routeOptions.config.tokenCookie)
  expectType<boolean | undefined>(request.routeOptions.config.tokenCookie?.renew)
  return 'ok'
})
app.get('/config2', { config: { tokenCookie: { renew: false } } }, async (request) => {
  expectAssignable<TokenCookieRouteConfig | undefined>(request.routeOptions.config.tokenCookie)
  return 'ok'
})
expectError(app.get('/poll3', { config: { tokenCookie: { renew: 'no' } } }, async () => 'ok'))
expectError(app.route({ method: 'GET', url: '/poll4', config: { tokenCookie: { renew: 0 } }, handler: async () => 'ok' }))
// Not asserted: `{ tokenCookie: false }` and `{ tokenCookie: { renewal: false } }` compile. Fastify infers the
// route's ContextConfig generic from the literal and types `config` as `FastifyContextConfig & ContextConfig`,
// so there is no excess-property check and `false` passes the all-optional TokenCookieRouteConfig: a Fastify
// limitation that no declaration in this package can close.

// ---------------------------------------------------------------- key rotation and the cross-site guard
app.register(tokenCookie, {
  secret: [
    { kid: '2026-11', secret: 'x'.repeat(32) },
    { kid: '2026-10', secret: Buffer.alloc(32), algorithm: 'HS512' },
    { kid: 'rsa', private: 'pem', public: 'pem', algorithm: 'RS256' }
  ],
  csrf: { trustedOrigins: ['https://admin.example'] }
})
app.register(tokenCookie, { secret: 'x'.repeat(32), csrf: false })
app.get('/webhook', { config: { tokenCookie: { csrf: false } } }, async () => 'ok')
expectError(app.register(tokenCookie, { secret: [{ secret: 'x'.repeat(32) }] }))
expectError(app.register(tokenCookie, { secret: [{ kid: 'a', secret: 'x'.repeat(32), algorithm: 'RS256' }] }))
app.register(tokenCookie, {
  secret: [
    { kid: 'k3', secret: 'x'.repeat(32), signFrom: '2026-12-05T09:00:00Z' },
    { kid: 'k2', private: 'pem', public: 'pem', signFrom: new Date() },
    { kid: 'k1', secret: 'y'.repeat(32) }
  ]
})
expectError(app.register(tokenCookie, { secret: [{ kid: 'k2', secret: 'x'.repeat(32), signFrom: Date.now() }] }))
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), csrf: { trustedOrigins: 'https://admin.example' } }))
expectError(app.get('/hook', { config: { tokenCookie: { csrf: 'off' } } }, async () => 'ok'))

// ---------------------------------------------------------------- revocation store
app.register(tokenCookie, { secret: 'x'.repeat(32), store: true, storeTimeout: '50ms', failOpen: false })
app.register(tokenCookie, { secret: 'x'.repeat(32), store: memoryStore({ max: 1000 }) })
const customStore: RevocationStore = {
  check: async (sid: string, sub: string | undefined) => ({ sessionRevoked: sid === sub, userRevokedAt: undefined }),
  revokeSession: async () => {},
  revokeUser: async () => {}
}
app.register(tokenCookie, { secret: 'x'.repeat(32), store: customStore })
expectError(app.register(tokenCookie, { secret: 'x'.repeat(32), store: { check: async () => true } }))
expectType<Promise<void>>(app.tokenCookie.revokeSession('sid', { ttl: '12h' }))
expectType<Promise<void>>(app.tokenCookie.revokeUser('alice'))
expectType<Promise<SessionInfo[]>>(app.tokenCookie.listSessions('alice'))
expectError(app.tokenCookie.listSessions(42))
declare const listed: SessionInfo
expectType<string>(listed.sid)
expectType<number>(listed.authTime)
expectType<number>(listed.lastSeenAt)
expectType<number>(listed.expiresAt)
expectType<string | null>(listed.userAgent)
expectAssignable<RevocationStore>({ ...memoryStore(), recordSession: undefined, listSessions: undefined })
// A store may answer checks synchronously (a replica), and have a life of its own.
expectAssignable<RevocationStore>({
  check: () => ({ sessionRevoked: false, userRevokedAt: undefined }),
  revokeSession: async () => {},
  revokeUser: async () => {},
  ready: async () => {},
  close: async () => {}
})
expectError<RevocationStore>({ ...customStore, ready: () => true })
expectType<RevocationState | Promise<RevocationState>>(customStore.check('sid', undefined))
expectError(app.tokenCookie.revokeUser('alice', { ttl: true }))
expectType<string | undefined>(typeOf<TokenPayload>().sid)

// ---------------------------------------------------------------- redisStore: replica, Cluster
declare const redisClient: Redis
declare const clusterClient: Cluster
expectType<RevocationStore>(redisStore({ client: redisClient, replica: true, maxLag: '250ms' }))
expectType<RevocationStore>(redisStore({ client: clusterClient, prefix: '{tc}:', replica: true, maxLag: 2 }))
expectError(redisStore({ client: redisClient, replica: 'yes' }))
expectError(redisStore({ client: redisClient, replica: true, maxLag: '5 parsecs' }))
