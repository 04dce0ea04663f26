// Type tests for typed sessions: an app that declares its payload through @fastify/jwt's FastifyJWT interface.
// Module augmentation is global to a compilation, so these run in a tsd program of their own
// (test/typed-sessions.test.ts); types/index.test-d.ts checks the same API without the declaration.
import fastify, { type FastifyRequest } from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import tokenCookie, { type SessionPayload, type SessionUser, type TokenClaims, type VerifyTokenOptions } from 'fastify-token-cookie'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string, name: string }
    user: { sub: string, name: string, admin?: boolean }
  }
}

type User = { sub: string, name: string, admin?: boolean }

const app = fastify()
app.register(tokenCookie, { secret: 'x'.repeat(32) })

expectType<{ sub: string, name: string }>(({} as SessionPayload))
expectType<User>(({} as SessionUser))

// ---------------------------------------------------------------- setTokenCookie accepts only the declared payload
app.post('/login', async (_request, reply) => {
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'alice', name: 'Alice' }))
  expectType<Promise<string>>(reply.setTokenCookie({ sub: 'alice', name: 'Alice' }, { policy: 'persistent', maxAge: '30d' }))
  expectError(reply.setTokenCookie({ sub: 'alice' }))
  expectError(reply.setTokenCookie({ sub: 42, name: 'Alice' }))
  expectError(reply.setTokenCookie({ sub: 'alice', name: 'Alice', role: 'admin' }))
  expectError(reply.setTokenCookie({ sub: 'alice', name: 'Alice' }, { policy: 'forever' }))
  expectError(reply.setTokenCookie('alice'))
  expectError(reply.setTokenCookie())
  expectType<Promise<string>>(reply.updateTokenCookie({ sub: 'alice', name: 'Alice B.' }))
  expectError(reply.updateTokenCookie({ sub: 'alice' }))
  expectError(reply.updateTokenCookie({ sub: 'alice', name: 'Alice', role: 'admin' }))
  return { ok: true }
})

// ---------------------------------------------------------------- verifyToken resolves to the declared user, no generic
app.get('/me', async (request) => {
  const user = await request.verifyToken()
  expectType<User & TokenClaims>(user)
  expectType<string>(user.sub)
  expectType<string>(user.name)
  expectType<boolean | undefined>(user.admin)
  expectType<number>(user.auth_time)
  expectType<string | undefined>(user.sid)
  expectError(user.missing)

  expectType<User & TokenClaims>(await request.verifyToken({}))
  expectType<User & TokenClaims>(await request.verifyToken({ optional: false }))
  expectType<User & TokenClaims>(await request.verifyToken({ maxAuthAge: '5m' }))
  expectType<{ sub: string } & TokenClaims>(await request.verifyToken<{ sub: string }>())
  return { sub: user.sub, name: user.name }
})

// ---------------------------------------------------------------- optional: true adds null
app.get('/maybe', async (request) => {
  const maybe = await request.verifyToken({ optional: true })
  expectType<(User & TokenClaims) | null>(maybe)
  expectNotAssignable<User>(maybe)
  expectType<string | undefined>(maybe?.name)
  expectType<(User & TokenClaims) | null>(await request.verifyToken({ optional: true, maxAuthAge: 300 }))

  // `optional` known only at run time: null stays possible
  const options: VerifyTokenOptions = { optional: Math.random() > 0.5 }
  expectType<(User & TokenClaims) | null>(await request.verifyToken(options))

  expectError(request.verifyToken({ optional: 'yes' }))
  expectError(request.verifyToken({ maxAuthAge: 'a while' }))
  expectError(request.verifyToken({ maxAge: '5m' }))
  return maybe === null ? { anonymous: true } : { sub: maybe.sub }
})

// ---------------------------------------------------------------- request.user is typed, with no import of @fastify/jwt
app.get('/user', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => {
  expectType<User>(request.user)
  expectType<string>(request.user.sub)
  expectError(request.user.missing)
  return { sub: request.user.sub, name: request.user.name }
})
declare const someRequest: FastifyRequest
expectType<User>(someRequest.user)
expectAssignable<{ sub: string }>(someRequest.user)
expectNotAssignable<{ sub: number }>(someRequest.user)
