// One accepted spelling per token, ECDSA included: its signatures come in two valid forms, (r, s) and
// (r, n − s); the plugin signs and accepts only the low one.
import { test } from 'tap'
import { buildApp, fakeClock, login, pemKeys } from './helpers/app.js'
import { isLowS, withLowS } from '../lib/ecdsa.js'
import { craft, timeClaims } from './helpers/craft.js'

const orders: Record<string, bigint> = {
  ES256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n,
  ES384: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973n,
  ES512: BigInt(`0x01FF${'FFFFFFFF'.repeat(7)}FFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409`)
}

/** The other valid spelling of an ECDSA JWS: s replaced by n − s. */
function flipS (token: string, alg: string): string {
  const dot = token.lastIndexOf('.')
  const bytes = Buffer.from(token.slice(dot + 1), 'base64url')
  const size = bytes.length / 2
  const s = orders[alg] - BigInt(`0x${bytes.subarray(size).toString('hex')}`)
  Buffer.from(s.toString(16).padStart(2 * size, '0'), 'hex').copy(bytes, size)
  return `${token.slice(0, dot)}.${bytes.toString('base64url')}`
}

for (const [alg, curve] of [['ES256', 'prime256v1'], ['ES384', 'secp384r1'], ['ES512', 'secp521r1']] as const) {
  test(`${alg}: tokens are signed in low-S form, and the high-S spelling of a token is refused`, async (t) => {
    fakeClock(t)
    const keys = pemKeys('ec', curve)
    const app = await buildApp(t, { secret: keys, renewAfter: 1 })
    let flipped = 0
    for (let index = 0; index < 12; index++) {
      const { token, cookie } = await login(app)
      t.ok(isLowS(alg, token.split('.')[2]), 'the plugin signed the low form')
      t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
      const other = flipS(token, alg)
      const refused = await app.inject({ url: '/private', headers: { cookie: `token=${other}` } })
      t.match(refused.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_INVALID', message: /low-S/ }, 'the other spelling is refused')
      // A token crafted outside, with a high-S signature half of the time: accepted only in its low form.
      const crafted = craft({ header: { alg, typ: 'JWT' }, payload: { sub: 'x', ...timeClaims() }, key: keys.private })
      const low = withLowS(alg, crafted)
      if (low !== crafted) flipped++
      t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${low}` } })).statusCode, 200, 'the low form is accepted')
    }
    t.ok(flipped > 0, `node signs high-S signatures too (${flipped} of 12 were)`)
  })
}

test('a signature of the wrong length is not low-S; other algorithms are left alone', async (t) => {
  t.equal(isLowS('ES256', Buffer.alloc(63).toString('base64url')), false)
  t.equal(isLowS('HS256', 'anything'), true)
  t.equal(withLowS('RS256', 'a.b.c'), 'a.b.c')
})
