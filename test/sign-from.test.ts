// signFrom: a key of a list that verifies at once and signs only from a given moment, so one deploy switches
// every instance to a new key at the same time.
import { test } from 'tap'
import { buildApp, fakeClock, login, pemKeys, rejectsRegistration, start, tokenCookieOf } from './helpers/app.js'

const minutes = 60 * 1000
const k1 = { kid: 'k1', secret: 'the-first-secret-of-32-bytes-or-more' }
const k2 = { kid: 'k2', secret: 'the-second-secret-of-32-bytes-or-more' }
const switchAt = new Date(start + 60 * minutes)

function kidOf (token: string): unknown {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid
}

test('a key signs from its signFrom on, on every instance at the same moment, and verifies before it', async (t) => {
  const clock = fakeClock(t)
  const list = [{ ...k2, signFrom: switchAt }, k1]
  const a = await buildApp(t, { secret: list, maxAge: '2h' })
  const b = await buildApp(t, { secret: list, maxAge: '2h' })
  const before = await login(a)
  t.equal(kidOf(before.token), 'k1', 'the first key that may sign now signs')
  t.equal((await b.inject({ url: '/private', headers: { cookie: before.cookie } })).statusCode, 200)

  clock.tick(60 * minutes - 1)
  t.equal(kidOf((await login(a)).token), 'k1', 'one millisecond before the moment: still k1')
  clock.tick(1)
  const afterA = await login(a)
  const afterB = await login(b)
  t.equal(kidOf(afterA.token), 'k2', 'at the moment: k2')
  t.equal(kidOf(afterB.token), 'k2', 'on the other instance too')
  t.equal((await b.inject({ url: '/private', headers: { cookie: afterA.cookie } })).statusCode, 200)
  t.equal((await a.inject({ url: '/private', headers: { cookie: before.cookie } })).statusCode, 200, 'k1 tokens still verify')
})

test('a token signed by a key before its signFrom (an instance whose clock runs ahead) is accepted', async (t) => {
  fakeClock(t)
  const ahead = await buildApp(t, { secret: [k2, k1] })
  const behind = await buildApp(t, { secret: [{ ...k2, signFrom: switchAt }, k1] })
  const { token, cookie } = await login(ahead)
  t.equal(kidOf(token), 'k2')
  t.equal((await behind.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
})

test('a sliding session renews with k1 before the moment and with k2 after it', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { secret: [{ ...k2, signFrom: switchAt }, k1], maxAge: '2h', renewAfter: 0 })
  const { cookie } = await login(app)
  clock.tick(59 * minutes)
  const early = await app.inject({ url: '/private', headers: { cookie } })
  const renewedEarly = tokenCookieOf(early)!
  t.equal(kidOf(renewedEarly.value), 'k1')
  clock.tick(2 * minutes)
  const late = tokenCookieOf(await app.inject({ url: '/private', headers: { cookie: `token=${renewedEarly.value}` } }))!
  t.equal(kidOf(late.value), 'k2', 'the renewal after the moment moves the session to k2')
})

test('signFrom takes a Date, an ISO 8601 date, or a date and time with an offset; a past one signs at once', async (t) => {
  fakeClock(t)
  const forms: Array<[string, Date | string, string]> = [
    ['a past Date', new Date(start - 1), 'k2'],
    ['a future Date', new Date(start + 1), 'k1'],
    ['a past date', '2029-12-31', 'k2'],
    ['the day itself, at midnight UTC', '2030-01-01', 'k2'],
    ['a future date', '2030-01-02', 'k1'],
    ['a time in UTC', '2030-01-01T00:00:00Z', 'k2'],
    ['a time with an offset, one hour ahead of UTC', '2030-01-01T00:30+01:00', 'k2'],
    ['a time with an offset, behind UTC', '2029-12-31T23:30:00.5-01:00', 'k1'],
    ['fractions of a second', '2030-01-01T00:00:00.001Z', 'k1']
  ]
  for (const [name, signFrom, kid] of forms) {
    const app = await buildApp(t, { secret: [{ ...k2, signFrom }, k1] })
    t.equal(kidOf((await login(app)).token), kid, name)
  }
})

test('signFrom on a key pair, and on every key of a list whose last key signs', async (t) => {
  const clock = fakeClock(t)
  const ec = { kid: 'ec', ...pemKeys('ec', 'P-256'), signFrom: switchAt }
  const k3 = { kid: 'k3', secret: 'the-third-secret-of-32-bytes-or-more', signFrom: new Date(start + 120 * minutes) }
  const app = await buildApp(t, { secret: [k3, ec, k1] })
  t.equal(kidOf((await login(app)).token), 'k1')
  clock.tick(60 * minutes)
  const signed = await login(app)
  t.equal(kidOf(signed.token), 'ec')
  t.equal((await app.inject({ url: '/private', headers: { cookie: signed.cookie } })).statusCode, 200, 'an ECDSA token signed from its moment verifies')
  clock.tick(60 * minutes)
  t.equal(kidOf((await login(app)).token), 'k3')
})

test('with encrypt: the key that encrypts switches at signFrom too, and the other decrypts before it', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { secret: [{ ...k2, signFrom: switchAt }, k1], encrypt: true, maxAge: '2h' })
  const before = await login(app)
  t.equal(kidOf(before.token), 'k1')
  clock.tick(60 * minutes)
  const after = await login(app)
  t.equal(kidOf(after.token), 'k2')
  for (const { cookie } of [before, after]) t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
})

const refused: Array<[string, unknown, RegExp]> = [
  ['every key signs only later', [{ ...k2, signFrom: switchAt }, { ...k1, signFrom: switchAt }], /secret has no key that can sign now/],
  ['a word', [{ ...k2, signFrom: 'tomorrow' }, k1], /secret\[0\]\.signFrom must be a Date or an ISO 8601 date/],
  ['a time without an offset (local to each instance)', [{ ...k2, signFrom: '2030-01-02T09:00:00' }, k1], /secret\[0\]\.signFrom/],
  ['a day its month does not have', [{ ...k2, signFrom: '2030-02-30' }, k1], /secret\[0\]\.signFrom/],
  ['an hour past 23', [{ ...k2, signFrom: '2030-01-02T25:00:00Z' }, k1], /secret\[0\]\.signFrom/],
  ['a number', [k2, { ...k1, signFrom: start }], /secret\[1\]\.signFrom/],
  ['an invalid Date', [{ ...k2, signFrom: new Date(NaN) }, k1], /secret\[0\]\.signFrom/],
  ['a misspelled name', [{ ...k2, signfrom: switchAt }, k1], /secret\[0\]\.signfrom is not an option: did you mean secret\[0\]\.signFrom\?/]
]

for (const [name, secret, message] of refused) {
  test(`registration fails: ${name}`, async (t) => {
    fakeClock(t)
    await rejectsRegistration(t, { secret }, message)
  })
}
