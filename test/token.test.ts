// The token codec alone: verified tokens are remembered (frozen, bounded), and payload copies are independent.
import { test } from 'tap'
import { TokenInvalidError } from '../lib/errors.js'
import { copyJson, createCodec, isInvalidToken, verifiedCacheSize, type VerifiedPayload } from '../lib/token.js'

function encode (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/**
 * A codec over a stub verifier that counts the crypto calls and accepts tokens whose signature is "good";
 * its admit step counts its calls too, and refuses payloads with `refuse: true`.
 */
function countingCodec () {
  const calls = { verify: 0, admit: 0 }
  const admit = (payload: VerifiedPayload): VerifiedPayload => {
    calls.admit++
    if (payload.refuse === true) throw new TokenInvalidError('refused by admit')
    return payload
  }
  const codec = createCodec([{
    kid: undefined,
    algorithm: 'HS256',
    jwt: {
      sign: () => 'unused',
      verify (token) {
        calls.verify++
        const [, payload, signature] = token.split('.')
        if (signature !== 'good') throw new Error('bad signature')
        return JSON.parse(Buffer.from(payload, 'base64url').toString())
      }
    }
  }], admit)
  const header = encode({ alg: 'HS256' })
  const token = (n: number, signature = 'good', extra: object = {}): string => `${header}.${encode({ n, roles: ['user'], ...extra })}.${signature}`
  return { codec, calls, token }
}

test('a token is verified and admitted once, and then remembered', async (t) => {
  const { codec, calls, token } = countingCodec()
  const first = codec.verify(token(1))
  const second = codec.verify(token(1))
  t.equal(calls.verify, 1, 'the crypto ran once')
  t.equal(calls.admit, 1, 'admitted once')
  t.equal(second, first, 'the remembered result')
  t.same(second, { n: 1, roles: ['user'] })
})

test('a payload that admit refuses is INVALID and not remembered', async (t) => {
  const { codec, calls, token } = countingCodec()
  t.match(codec.verify(token(1, 'good', { refuse: true })), { code: 'FST_TOKEN_COOKIE_INVALID', message: /refused by admit/ })
  t.ok(isInvalidToken(codec.verify(token(1, 'good', { refuse: true }))))
  t.equal(calls.verify, 2, 'verified again: nothing was remembered')
})

test('copyJson: a deep copy of JSON values, however deep they nest', async (t) => {
  const original = { sub: 'a', n: 1, flag: true, none: null, tc: { policy: 'sliding' }, roles: ['x', { y: [1, 2] }] }
  const copy = copyJson(original)
  t.same(copy, original)
  copy.tc.policy = 'changed'
  copy.roles.push('admin')
  ;(copy.roles[1] as { y: number[] }).y.push(3)
  t.same(original, { sub: 'a', n: 1, flag: true, none: null, tc: { policy: 'sliding' }, roles: ['x', { y: [1, 2] }] }, 'the original is untouched')
  t.ok(Array.isArray(copy.roles) && Array.isArray((copy.roles[1] as { y: unknown }).y), 'arrays stay arrays')
  // `[[[…]]]` and `{"a":{"a":…}}` in a 4096-byte token (1600 levels), and far deeper than the stack goes (a
  // 40 KB chunked token nests some 15,000 levels deep).
  for (const levels of [1600, 100_000]) {
    for (const wrap of [(inner: unknown) => [inner], (inner: unknown) => ({ a: inner, b: [1] })]) {
      let deep: unknown = 'bottom'
      for (let i = 0; i < levels; i++) deep = wrap(deep)
      let level = copyJson(deep)
      let depth = 0
      for (; level !== null && typeof level === 'object' && level !== deep; depth++) {
        const step = (node: unknown): unknown => Array.isArray(node) ? node[0] : (node as { a: unknown }).a
        ;[level, deep] = [step(level), step(deep)]
      }
      t.equal(depth, levels, `every one of ${levels} levels copied (${Array.isArray(deep) ? 'arrays' : 'objects'})`)
      t.equal(level, 'bottom')
    }
  }
  t.equal(copyJson('text'), 'text', 'primitives as they are')
})

test('bad tokens are not remembered, and the cache is bounded', async (t) => {
  const { codec, calls, token } = countingCodec()
  t.ok(codec.verify(token(1, 'bad0')) instanceof TokenInvalidError, 'refused with FST_TOKEN_COOKIE_INVALID, returned')
  t.ok(isInvalidToken(codec.verify(token(1, 'bad0'))))
  t.equal(calls.verify, 2, 'a rejected token is checked again each time')
  for (let n = 0; n <= verifiedCacheSize; n++) codec.verify(token(n))
  t.equal(calls.verify, 2 + verifiedCacheSize + 1)
  codec.verify(token(verifiedCacheSize))
  t.equal(calls.verify, 2 + verifiedCacheSize + 1, 'the newest is remembered')
  codec.verify(token(0))
  t.equal(calls.verify, 2 + verifiedCacheSize + 2, 'the oldest was dropped and is verified again')
})

test('rejecting a token leaves Error.stackTraceLimit as it was, and no stack is captured for it', async (t) => {
  const { codec, token } = countingCodec()
  const before = Error.stackTraceLimit
  t.match(codec.verify(token(1, 'bad0')), { code: 'FST_TOKEN_COOKIE_INVALID', message: /bad signature/ }, 'the verifier\'s own error, as INVALID')
  t.match(codec.verify('not-a-token'), { code: 'FST_TOKEN_COOKIE_INVALID', message: /not a signed JWT/ })
  t.equal(Error.stackTraceLimit, before)
})

test('an admit step that fails for another reason than the token throws: a bug is not a 401', async (t) => {
  const codec = createCodec([{ kid: undefined, algorithm: 'HS256', jwt: { sign: () => 'unused', verify: () => ({ n: 1 }) } }], () => {
    throw new TypeError('a bug in admit')
  })
  t.throws(() => codec.verify(`${encode({ alg: 'HS256' })}.${encode({ n: 1 })}.good`), TypeError)
})

test('random ids: 128 bits, base64url, all different across refills of the pool', async (t) => {
  const { randomId } = await import('../lib/token.js')
  const ids = new Set(Array.from({ length: 1000 }, () => randomId()))
  t.equal(ids.size, 1000)
  for (const id of ids) t.match(id, /^[A-Za-z0-9_-]{22}$/)
  t.equal(Buffer.from([...ids][0], 'base64url').length, 16)
})
