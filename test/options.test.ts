// Bad options fail registration with FST_TOKEN_COOKIE_OPTIONS and a message naming the option.
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import { pemKeys, secret } from './helpers/app.js'

async function register (options: unknown): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(tokenCookie, options as TokenCookieOptions)
    await app.ready()
    return undefined
  } catch (error) {
    return error
  } finally {
    await app.close()
  }
}

const rsa = pemKeys('rsa')
const otherRsa = pemKeys('rsa')

const bad: Array<[string, unknown, RegExp]> = [
  ['no options', undefined, /secret/],
  ['missing secret', {}, /secret/],
  ['short secret', { secret: 'x'.repeat(31) }, /secret must be at least 32 bytes/],
  ['short Buffer secret', { secret: Buffer.alloc(16) }, /secret must be at least 32 bytes/],
  ['secret of the wrong type', { secret: 42 }, /secret/],
  ['key pair that is not PEM', { secret: { private: 'nope', public: 'nope' } }, /secret/],
  ['keys that are not a pair', { secret: { private: rsa.private, public: otherRsa.public } }, /secret/],
  ['RSA algorithm with an HMAC secret', { secret, sign: { algorithm: 'RS256' } }, /sign.algorithm/],
  ['HMAC algorithm with an RSA key', { secret: rsa, sign: { algorithm: 'HS256' } }, /sign.algorithm/],
  ['unknown policy', { secret, policy: 'forever' }, /policy/],
  ['zero maxAge', { secret, maxAge: 0 }, /maxAge/],
  ['negative maxAge', { secret, maxAge: -5 }, /maxAge/],
  ['unparsable maxAge', { secret, maxAge: 'soon' }, /maxAge/],
  ['unitless string maxAge', { secret, maxAge: '60' }, /maxAge/],
  ['infinite maxAge', { secret, maxAge: Number.POSITIVE_INFINITY }, /maxAge/],
  ['sub-second maxAge', { secret, maxAge: '250ms' }, /maxAge/],
  ['bad absoluteMaxAge', { secret, absoluteMaxAge: 'never' }, /absoluteMaxAge/],
  ['absoluteMaxAge shorter than maxAge', { secret, maxAge: '2h', absoluteMaxAge: '1h' }, /absoluteMaxAge/],
  ['renewAfter above 1', { secret, renewAfter: 1.5 }, /renewAfter/],
  ['renewAfter below 0', { secret, renewAfter: -0.1 }, /renewAfter/],
  ['renewAfter not a number', { secret, renewAfter: '0.5' }, /renewAfter/],
  ['sessionCookie not a boolean', { secret, sessionCookie: 'yes' }, /sessionCookie/],
  ['sameSite none without secure', { secret, cookie: { sameSite: 'none', secure: false } }, /sameSite/],
  ['sameSite none with secure auto', { secret, cookie: { sameSite: 'none', secure: 'auto' } }, /sameSite/],
  ['unknown sameSite', { secret, cookie: { sameSite: 'sideways' } }, /sameSite/],
  ['secure of the wrong type', { secret, cookie: { secure: 'yes' } }, /secure/],
  ['httpOnly of the wrong type', { secret, cookie: { httpOnly: 'yes' } }, /httpOnly/],
  ['cookie not an object', { secret, cookie: 'strict' }, /cookie/],
  ['cookieName with a space', { secret, cookieName: 'my token' }, /cookieName/],
  ['cookieName with a semicolon', { secret, cookieName: 'token;x=1' }, /cookieName/],
  ['empty cookieName', { secret, cookieName: '' }, /cookieName/],
  ['domain with a semicolon', { secret, cookie: { domain: 'example.com; Secure' } }, /cookie.domain/],
  ['domain with a space', { secret, cookie: { domain: 'exa mple.com' } }, /cookie.domain/],
  ['path with a semicolon', { secret, cookie: { path: '/; Domain=evil.com' } }, /cookie.path/],
  ['path with a newline', { secret, cookie: { path: '/\r\nX: y' } }, /cookie.path/],
  ['relative path', { secret, cookie: { path: 'api' } }, /cookie.path/],
  ['partitioned of the wrong type', { secret, cookie: { partitioned: 'yes' } }, /partitioned/],
  ['priority of the wrong kind', { secret, cookie: { priority: 'urgent' } }, /priority/],
  ['__Host- name with secure false', { secret, cookieName: '__Host-token', cookie: { secure: false } }, /secure/],
  ['__Secure- name with secure false', { secret, cookieName: '__Secure-token', cookie: { secure: false } }, /secure/],
  ['bad clockTolerance', { secret, verify: { clockTolerance: 'a bit' } }, /clockTolerance/],
  ['bearer not a boolean', { secret, bearer: 'yes' }, /bearer/],
  ['isRevoked not a function', { secret, isRevoked: true }, /isRevoked/],
  ['expiryHint not a boolean', { secret, expiryHint: 1 }, /expiryHint/]
]

for (const [name, options, message] of bad) {
  test(`registration fails: ${name}`, async (t) => {
    const error = await register(options) as { code?: string, message?: string }
    t.equal(error?.code, 'FST_TOKEN_COOKIE_OPTIONS')
    t.match(error?.message, message)
  })
}

const good: Array<[string, TokenCookieOptions]> = [
  ['a 32-byte secret', { secret }],
  ['a 32-byte Buffer', { secret: Buffer.alloc(32, 7) }],
  ['durations as numbers and strings', { secret, maxAge: 60, absoluteMaxAge: '2h', renewAfter: 0 }],
  ['renewAfter 1', { secret, renewAfter: 1 }],
  ['persistent with a maxAge beyond the default absoluteMaxAge', { secret, policy: 'persistent', maxAge: '30d' }],
  ['session with a maxAge beyond the default absoluteMaxAge', { secret, policy: 'session', maxAge: '1d' }],
  ['sameSite none with secure true', { secret, cookie: { sameSite: 'none', secure: true, partitioned: true } }],
  ['secure auto', { secret, cookie: { secure: 'auto' } }],
  ['__Host- name with secure auto', { secret, cookieName: '__Host-token', cookie: { secure: 'auto' } }],
  ['HS512', { secret: 'y'.repeat(64), sign: { algorithm: 'HS512' } }],
  ['an RSA key pair', { secret: rsa }],
  ['clockTolerance 0', { secret, verify: { clockTolerance: 0 } }]
]

for (const [name, options] of good) {
  test(`registration succeeds: ${name}`, async (t) => {
    t.equal(await register(options), undefined)
  })
}
