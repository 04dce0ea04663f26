// The lifetime policy alone: pure functions of claims, a lifetime and `now` (seconds).
import { test } from 'tap'
import {
  absoluteExpiresAt, checkTimes, cookieMaxAge, expiresAt, lifetimeOf, loginClaims, renewal, toLifetimeClaim, type Lifetime
} from '../lib/policy.js'

const sliding: Lifetime = { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200, sessionCookie: false }
const persistent: Lifetime = { policy: 'persistent', maxAge: 3600, absoluteMaxAge: 43200, sessionCookie: false }
const session: Lifetime = { policy: 'session', maxAge: 3600, absoluteMaxAge: 43200, sessionCookie: false }
const login = 1_900_000_000

test('a login gets iat, auth_time and exp = iat + maxAge', async (t) => {
  t.same(loginClaims(sliding, login + 0.7), { iat: login, exp: login + 1800, auth_time: login })
  t.same(loginClaims(persistent, login), { iat: login, exp: login + 3600, auth_time: login })
  t.same(loginClaims(session, login), { iat: login, exp: login + 3600, auth_time: login })
})

test('sliding exp never passes auth_time + absoluteMaxAge', async (t) => {
  t.equal(expiresAt(sliding, login + 42000, login), login + 43200, 'capped')
  t.equal(expiresAt(sliding, login + 1000, login), login + 2800, 'idle window')
  t.equal(expiresAt(persistent, login + 42000, login), login + 45600, 'persistent has no cap beyond its exp')
  t.equal(absoluteExpiresAt(sliding, { exp: login + 1800, auth_time: login }), login + 43200)
  t.equal(absoluteExpiresAt(session, { exp: login + 3600, auth_time: login }), login + 3600, 'session: exp is the end')
})

test('checkTimes: valid until exp, expired at exp (now >= exp)', async (t) => {
  const claims = { iat: login, exp: login + 1800, auth_time: login }
  t.equal(checkTimes(claims, sliding, login, 0), 'valid')
  t.equal(checkTimes(claims, sliding, login + 1799.999, 0), 'valid')
  t.equal(checkTimes(claims, sliding, login + 1800, 0), 'expired')
  t.equal(checkTimes(claims, sliding, login + 1830, 60), 'valid', 'clock tolerance extends exp')
})

test('checkTimes: the absolute cap expires a sliding token whatever its exp says', async (t) => {
  const claims = { iat: login + 43000, exp: login + 50000, auth_time: login }
  t.equal(checkTimes(claims, sliding, login + 43199, 0), 'valid')
  t.equal(checkTimes(claims, sliding, login + 43200, 0), 'expired')
  t.equal(checkTimes(claims, persistent, login + 43200, 0), 'valid', 'persistent ignores absoluteMaxAge')
})

test('checkTimes: missing, non-numeric, non-finite or future time claims are invalid', async (t) => {
  const good = { iat: login, exp: login + 1800, auth_time: login }
  for (const name of ['iat', 'exp', 'auth_time']) {
    for (const bad of [undefined, '1900000000', null, Number.NaN, Number.POSITIVE_INFINITY, -1, true]) {
      t.equal(checkTimes({ ...good, [name]: bad }, sliding, login + 1, 0), 'invalid', `${name} = ${String(bad)}`)
    }
  }
  t.equal(checkTimes({ ...good, auth_time: login + 10, iat: login + 10 }, sliding, login, 0), 'invalid', 'auth_time in the future')
  t.equal(checkTimes({ ...good, iat: login + 10 }, sliding, login, 0), 'invalid', 'iat in the future, auth_time after iat')
  t.equal(checkTimes({ ...good, iat: login + 30, auth_time: login + 30 }, sliding, login, 60), 'valid', 'within clock tolerance')
  t.equal(checkTimes({ ...good, iat: login + 90, auth_time: login + 90 }, sliding, login, 60), 'invalid', 'beyond clock tolerance')
})

test('renewal: due once now - iat >= renewAfter * maxAge', async (t) => {
  const claims = { iat: login, exp: login + 1800, auth_time: login }
  t.equal(renewal(claims, sliding, 0.5, login + 899), undefined, 'before the threshold')
  t.same(renewal(claims, sliding, 0.5, login + 900), { iat: login + 900, exp: login + 2700, auth_time: login }, 'at the threshold')
  t.same(renewal(claims, sliding, 0.5, login + 1000.5), { iat: login + 1000, exp: login + 2800, auth_time: login }, 'after it, whole seconds')
  t.same(renewal(claims, sliding, 0, login + 1), { iat: login + 1, exp: login + 1801, auth_time: login }, 'renewAfter 0: every request')
  t.equal(renewal(claims, sliding, 0, login), undefined, 'renewAfter 0 within the same second: exp would not move')
  t.equal(renewal(claims, sliding, 1, login + 1799), undefined, 'renewAfter 1: only at the very end')
})

test('renewal: never for session or persistent, never past the cap', async (t) => {
  const claims = { iat: login, exp: login + 3600, auth_time: login }
  t.equal(renewal(claims, session, 0, login + 3000), undefined)
  t.equal(renewal(claims, persistent, 0, login + 3000), undefined)
  const nearCap = { iat: login + 42000, exp: login + 43200, auth_time: login }
  t.equal(renewal(nearCap, sliding, 0.5, login + 43000), undefined, 'at the cap: exp would not move')
  const beforeCap = { iat: login + 41000, exp: login + 42800, auth_time: login }
  t.same(renewal(beforeCap, sliding, 0.5, login + 41900), { iat: login + 41900, exp: login + 43200, auth_time: login }, 'renewed up to the cap')
})

test('cookie Max-Age: none for session cookies, seconds left otherwise', async (t) => {
  t.equal(cookieMaxAge(session, login + 3600, login), undefined)
  t.equal(cookieMaxAge({ ...sliding, sessionCookie: true }, login + 1800, login), undefined)
  t.equal(cookieMaxAge(persistent, login + 3600, login), 3600)
  t.equal(cookieMaxAge(sliding, login + 1800, login + 0.5), 1799, 'rounded down')
  t.equal(cookieMaxAge(sliding, login, login + 5), 0, 'never negative')
})

test('the lifetime claim round-trips and malformed ones are refused', async (t) => {
  t.same(lifetimeOf(toLifetimeClaim(sliding), persistent), sliding)
  t.same(lifetimeOf(toLifetimeClaim({ ...sliding, sessionCookie: true }), persistent), { ...sliding, sessionCookie: true })
  t.same(toLifetimeClaim(session), { policy: 'session' })
  t.equal(lifetimeOf(toLifetimeClaim(session), sliding)?.policy, 'session', 'the login policy wins over the app default')
  t.equal(lifetimeOf(toLifetimeClaim(persistent), sliding)?.policy, 'persistent')
  t.same(lifetimeOf(undefined, sliding), sliding, 'no claim: the app lifetime')
  const malformed = [null, 'sliding', [], { policy: 'forever' }, { policy: 'sliding' }, { policy: 'sliding', maxAge: 100, absoluteMaxAge: 10 },
    { policy: 'sliding', maxAge: -1, absoluteMaxAge: 10 }, { policy: 'sliding', maxAge: 10, absoluteMaxAge: 100, sessionCookie: 'yes' }]
  for (const claim of malformed) t.equal(lifetimeOf(claim, sliding), undefined, JSON.stringify(claim))
})
